"""Settings read from the environment (CONTRACT.md section 1), in one place.

Dagster resources and the CLI both read these, so a path or a date means the same thing
everywhere. Secrets are read here but never logged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

DEFAULT_START_DATE = "2024-01-01"
# Used only when FEEDBACK_PSEUDONYM_KEY is unset (demo, tests); ingest logs a warning then.
DEMO_PSEUDONYM_KEY = "feedback-pipelines-demo-key"


def data_dir() -> Path:
    """The one data directory: FEEDBACK_DATA_DIR, default ./data."""
    return Path(os.environ.get("FEEDBACK_DATA_DIR") or "data").absolute()


def landing_dir() -> Path:
    """Where input files land: FEEDBACK_LANDING_DIR, default $FEEDBACK_DATA_DIR/landing."""
    value = os.environ.get("FEEDBACK_LANDING_DIR")
    return Path(value).absolute() if value else data_dir() / "landing"


def warehouse_path() -> Path:
    """The DuckDB warehouse file."""
    return data_dir() / "warehouse.duckdb"


def start_date() -> str:
    """First daily partition (FEEDBACK_START_DATE), so old data can be backfilled."""
    value = os.environ.get("FEEDBACK_START_DATE") or DEFAULT_START_DATE
    date.fromisoformat(value)  # fail early, with the value in the message
    return value


#: Days of feedback the vector store keeps (FEEDBACK_QDRANT_RETENTION_DAYS); 0 keeps all.
DEFAULT_QDRANT_RETENTION_DAYS = 90


def qdrant_retention_days() -> int:
    """FEEDBACK_QDRANT_RETENTION_DAYS, default 90; 0 keeps every point ever embedded.

    Without a horizon the store grows by a day's events every day (36M points a year at
    100k/day) and filtered search slows with it; the warehouse keeps the full history.
    """
    return _env_int("FEEDBACK_QDRANT_RETENTION_DAYS", DEFAULT_QDRANT_RETENTION_DAYS, minimum=0)


def qdrant_hnsw_m() -> int:
    """FEEDBACK_QDRANT_HNSW_M, default 0: HNSW edges per point in a Qdrant *server* collection.

    0 builds no graph: int8 scans, rescored, exact and 4-14 ms at 1.4M points. A node holding
    tens of millions of points may ask for one (e.g. 16). Applied when the collection is
    created (or brought from the server's defaults); the embedded store never builds one.
    """
    return _env_int("FEEDBACK_QDRANT_HNSW_M", 0, minimum=0)


def embed_shards() -> int:
    """FEEDBACK_EMBED_SHARDS, default 1: how many parallel steps embed a day's new texts.

    More than one pays off only where the shards get cores of their own: the multiprocess
    executor on a machine with cores to spare, or pods (FEEDBACK_EXECUTOR=k8s).
    """
    return _env_int("FEEDBACK_EMBED_SHARDS", 1, minimum=1)


def _env_int(name: str, default: int, *, minimum: int) -> int:
    """A whole-number setting; a bad value names the variable instead of failing in `int()`."""
    value = os.environ.get(name) or str(default)
    try:
        number = int(value)
    except ValueError:
        number = minimum - 1
    if number < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return number


@dataclass(frozen=True)
class PseudonymKey:
    """The secret for hashing user ids, and whether it is the built-in demo key."""

    value: str
    is_default: bool

    def __repr__(self) -> str:  # never print the secret
        return f"PseudonymKey(is_default={self.is_default})"


def pseudonym_key() -> PseudonymKey:
    """FEEDBACK_PSEUDONYM_KEY, or the demo key (flagged so callers can warn)."""
    value = os.environ.get("FEEDBACK_PSEUDONYM_KEY")
    if value:
        return PseudonymKey(value, False)
    return PseudonymKey(DEMO_PSEUDONYM_KEY, True)
