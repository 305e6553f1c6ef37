"""The `feedback_embeddings` table: one vector per feedback event and day, cached by content.

Columns: ds DATE, feedback_id, model_id, text_hash, text (redacted interaction text),
vector FLOAT[dim]. Readers (clustering, tuning) select `vector` by `feedback_id` or
`text_hash` and should filter on `model_id` when they compare vectors across days.

A day is computed in three steps so the warehouse is held only briefly: `read_day_events`
(connection open), `embed_events` (closed: the slow part), `write_day` (open again).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from feedback_pipelines.embedding.base import Embedder, ProgressCallback, interaction_text
from feedback_pipelines.embedding.cache import embed_with_cache
from feedback_pipelines.schema import EMBEDDING_COLUMNS
from feedback_pipelines.tables import table_exists, write_partition

logger = logging.getLogger(__name__)

TABLE = "feedback_embeddings"


def embeddings_ddl(dim: int) -> str:
    """CREATE TABLE for `feedback_embeddings` with `dim`-long vectors."""
    return (
        f"CREATE TABLE IF NOT EXISTS {TABLE} (ds DATE, feedback_id VARCHAR, model_id VARCHAR, "
        f"text_hash VARCHAR, text VARCHAR, vector FLOAT[{dim}])"
    )


def _redactor():
    """The lead's `redact_pii`, if the privacy module exists (defensive second pass)."""
    try:
        from feedback_pipelines.privacy import redact_pii
    except ImportError:  # pragma: no cover - privacy.py is part of the package
        return None
    return redact_pii


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
    """Each event's interaction text, redacted again if the privacy module is there."""
    redact = _redactor()
    texts = [
        interaction_text(r, c, k)
        for r, c, k in zip(events["request"], events["comment"], events["correction"], strict=True)
    ]
    if redact is not None:
        texts = [redact(t) or "" for t in texts]
    return pd.Series(texts, index=events.index, dtype=object)


def lookup_vectors(conn: duckdb.DuckDBPyConnection, hashes: list[str]) -> dict[str, np.ndarray]:
    """Vectors already in the table for these text hashes (any day)."""
    if not hashes or not table_exists(conn, TABLE):
        return {}
    conn.register("_embedding_hashes", pd.DataFrame({"text_hash": hashes}))
    try:
        rows = conn.execute(
            f"SELECT text_hash, any_value(vector) FROM {TABLE} "
            "WHERE text_hash IN (SELECT text_hash FROM _embedding_hashes) GROUP BY text_hash"
        ).fetchall()
    finally:
        conn.unregister("_embedding_hashes")
    return {h: np.asarray(v, dtype=np.float32) for h, v in rows}


@dataclass
class DayEmbeddings:
    """The rows of one day and what it took to make them."""

    frame: pd.DataFrame
    embedded: int  # texts actually run through the model
    reused: int  # texts whose vector came from the cache
    skipped: int  # events with no text at all (unknown trace, no comment)
    seconds: float

    @property
    def texts_per_second(self) -> float:
        """Model throughput on the embedded texts."""
        return self.embedded / self.seconds if self.seconds > 0 else 0.0


def embed_events(
    events: pd.DataFrame,
    ds: str,
    embedder: Embedder,
    known: dict[str, np.ndarray],
    *,
    progress: ProgressCallback | None = None,
) -> DayEmbeddings:
    """Rows of `feedback_embeddings` for a day, embedding only texts not in `known`.

    Args:
        events: `read_day_events` output.
        ds: The day.
        embedder: The model.
        known: text_hash -> vector already computed (from `lookup_vectors`).
        progress: Passed to the embedder.
    """
    import time

    texts = event_texts(events)
    has_text = texts.str.len() > 0
    kept = events[has_text.to_numpy()]
    kept_texts = texts[has_text].tolist()
    start = time.perf_counter()
    vectors, hashes, embedded = embed_with_cache(
        kept_texts,
        embedder,
        lambda hs: {h: known[h] for h in hs if h in known},
        progress=progress,
    )
    seconds = time.perf_counter() - start
    frame = pd.DataFrame(
        {
            "ds": pd.Series([pd.Timestamp(ds).date()] * len(kept), dtype=object),
            "feedback_id": kept["feedback_id"].to_numpy(),
            "model_id": embedder.model_id,
            "text_hash": hashes,
            "text": kept_texts,
            "vector": list(vectors),
        }
    )
    unique = len(set(hashes))
    return DayEmbeddings(frame, embedded, unique - embedded, int((~has_text).sum()), seconds)


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
    rows["vector"] = [np.asarray(v, dtype=np.float32).tolist() for v in rows["vector"]]
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
