"""The `feedback_embeddings` table: one vector per feedback event and day, cached by content.

Columns: ds DATE, feedback_id, model_id, text_hash, text (redacted interaction text),
vector FLOAT[dim]. Readers (clustering, tuning) select `vector` by `feedback_id` or
`text_hash` and should filter on `model_id` when they compare vectors across days.

A day is computed in three steps so the warehouse is held only briefly: `read_day_events` and
`lookup_vectors` (connection open), embedding the new texts (closed, possibly in parallel shards:
`recall.shards`), `compose_day` + `write_day` (open again).
"""

from __future__ import annotations

import logging
from collections.abc import Container, Mapping
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from feedback_pipelines.embedding.base import interaction_text
from feedback_pipelines.embedding.cache import text_hash
from feedback_pipelines.privacy import redact_texts
from feedback_pipelines.schema import EMBEDDING_COLUMNS
from feedback_pipelines.tables import table_exists, write_partition
from feedback_pipelines.vector_tables import read_vectors, vector_array

logger = logging.getLogger(__name__)

TABLE = "feedback_embeddings"


def embeddings_ddl(dim: int) -> str:
    """CREATE TABLE for `feedback_embeddings` with `dim`-long vectors."""
    return (
        f"CREATE TABLE IF NOT EXISTS {TABLE} (ds DATE, feedback_id VARCHAR, model_id VARCHAR, "
        f"text_hash VARCHAR, text VARCHAR, vector FLOAT[{dim}])"
    )


def table_dim(conn: duckdb.DuckDBPyConnection) -> int | None:
    """The vector length of the existing table, or None when there is no table."""
    if not table_exists(conn, TABLE):
        return None
    rows = conn.execute(
        "SELECT data_type FROM information_schema.columns "
        "WHERE table_name = ? AND column_name = 'vector'",
        [TABLE],
    ).fetchall()
    row = rows[0] if rows else None
    text = row[0] if row else ""
    return int(text[text.index("[") + 1 : text.index("]")]) if "[" in text else None


def read_day_events(conn: duckdb.DuckDBPyConnection, ds: str) -> pd.DataFrame:
    """The day's feedback events with the fields the text and the Qdrant payload need."""
    if not table_exists(conn, "feedback_events"):
        return pd.DataFrame(
            columns=[
                "feedback_id", "trace_id", "session_id", "timestamp", "kind", "reason",
                "score", "comment", "correction", "request", "model_version",
                "prompt_version", "user_role", "is_negative",
            ]
        )  # fmt: skip
    return conn.execute(
        "SELECT feedback_id, trace_id, session_id, timestamp, kind, reason, score, comment, "
        "correction, request, model_version, prompt_version, user_role, is_negative "
        "FROM feedback_events WHERE ds = ? ORDER BY feedback_id",
        [ds],
    ).df()


def event_texts(events: pd.DataFrame) -> pd.Series:
    """Each event's interaction text, redacted again (a defensive second pass over ingest's)."""
    texts = [
        interaction_text(r, c, k)
        for r, c, k in zip(events["request"], events["comment"], events["correction"], strict=True)
    ]
    return pd.Series([t or "" for t in redact_texts(texts)], index=events.index, dtype=object)


def _by_hash(conn: duckdb.DuckDBPyConnection, hashes: list[str], select: str) -> list[tuple]:
    """`select` over the rows of these text hashes (any day), grouped by text_hash."""
    if not hashes or not table_exists(conn, TABLE):
        return []
    conn.register("_embedding_hashes", pd.DataFrame({"text_hash": hashes}))
    try:
        return conn.execute(
            f"SELECT {select} FROM {TABLE} "
            "WHERE text_hash IN (SELECT text_hash FROM _embedding_hashes) GROUP BY text_hash"
        ).fetchall()
    finally:
        conn.unregister("_embedding_hashes")


def known_hashes(conn: duckdb.DuckDBPyConnection, hashes: list[str]) -> set[str]:
    """The text hashes among `hashes` that some day already embedded (vectors not read)."""
    return {h for (h,) in _by_hash(conn, hashes, "text_hash")}


def lookup_vectors(conn: duckdb.DuckDBPyConnection, hashes: list[str]) -> dict[str, np.ndarray]:
    """Vectors already in the table for these text hashes (any day)."""
    return read_vectors(conn, TABLE, hashes)


@dataclass
class DayTexts:
    """The day's events that have a text, with their texts and cache keys."""

    events: pd.DataFrame
    texts: list[str]
    hashes: list[str]
    skipped: int  # events with no text at all (unknown trace, no comment)

    def new_texts(self, known: Container[str]) -> list[tuple[str, str]]:
        """(text_hash, text) of each distinct text not in `known`: what must be embedded."""
        first: dict[str, str] = {}
        for h, t in zip(self.hashes, self.texts, strict=True):
            if h not in known:
                first.setdefault(h, t)
        return list(first.items())


def day_texts(events: pd.DataFrame, model_id: str) -> DayTexts:
    """Each event's redacted interaction text and its cache key under `model_id`."""
    texts = event_texts(events)
    has_text = (texts.str.len() > 0).to_numpy()
    kept_texts = texts[has_text].tolist()
    return DayTexts(
        events[has_text],
        kept_texts,
        [text_hash(t, model_id) for t in kept_texts],
        int((~has_text).sum()),
    )


def compose_day(
    day: DayTexts, ds: str, model_id: str, vectors: Mapping[str, np.ndarray]
) -> pd.DataFrame:
    """The day's `feedback_embeddings` rows, every vector taken from `vectors` by text hash.

    Raises:
        KeyError: A text hash with no vector (a shard is missing).
    """
    return pd.DataFrame(
        {
            "ds": pd.Series([pd.Timestamp(ds).date()] * len(day.texts), dtype=object),
            "feedback_id": day.events["feedback_id"].to_numpy(),
            "model_id": model_id,
            "text_hash": day.hashes,
            "text": day.texts,
            "vector": [vectors[h] for h in day.hashes],
        }
    )


def write_day(conn: duckdb.DuckDBPyConnection, ds: str, frame: pd.DataFrame, dim: int) -> int:
    """Replace the day's rows in one transaction; returns rows written.

    Raises:
        ValueError: When the table holds vectors of another length (another model): drop or
            rename the table, or go back to the model it was built with.
    """
    existing = table_dim(conn)
    if existing is not None and existing != dim:
        raise ValueError(
            f"{TABLE} holds {existing}-d vectors but the embedder makes {dim}-d ones; "
            f"rename or drop {TABLE} to re-embed with the new model"
        )
    rows = frame[EMBEDDING_COLUMNS].copy()
    rows["vector"] = pd.arrays.ArrowExtensionArray(vector_array(list(rows["vector"]), dim))
    return write_partition(conn, TABLE, embeddings_ddl(dim), rows, ds)


def read_day_vectors(
    conn: duckdb.DuckDBPyConnection, ds: str, model_id: str | None = None
) -> pd.DataFrame:
    """A day's rows (feedback_id, model_id, text_hash, text, vector as np.ndarray)."""
    if not table_exists(conn, TABLE):
        return pd.DataFrame(columns=EMBEDDING_COLUMNS[1:])
    sql = f"SELECT feedback_id, model_id, text_hash, text, vector FROM {TABLE} WHERE ds = ?"
    params: list = [ds]
    if model_id:
        sql += " AND model_id = ?"
        params.append(model_id)
    frame = conn.execute(sql + " ORDER BY feedback_id", params).df()
    frame["vector"] = [np.asarray(v, dtype=np.float32) for v in frame["vector"]]
    return frame
