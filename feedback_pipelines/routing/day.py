"""One day of tuning and routing against the warehouse: read, build, write files and tables.

The Dagster asset (`defs/tuning.py`) only calls `run_day` and reports. Reading holds the
warehouse connection briefly, the work runs with it closed, and each table is written by
replacing its day in one transaction, so a rerun of a day leaves the same rows and files.

Upstream tables are optional: without `cluster_assignments` there are no clusters (pairs
need only similar requests, no candidates or noise route); without `version_regressions`
there are no eval cases; without `feedback_embeddings` every text is embedded here. Each
missing table is named in the data card's notes and in the returned `notes`.

Texts this step embeds itself (answers, and requests `feedback_embeddings` holds only inside
a longer interaction text) are kept in `text_vectors` by content hash (`save_text_vectors`),
so a rerun, or a later day that meets the same text, embeds only what it never saw.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from feedback_pipelines.routing import review
from feedback_pipelines.routing.tuning.events import (
    PARSED_COLUMNS,
    RANKING,
    VOTE_COLUMNS,
    Prompts,
)
from feedback_pipelines.routing.tuning.examples import VOTED
from feedback_pipelines.routing.tuning.exportfiles import Export
from feedback_pipelines.routing.tuning.pipeline import (
    ExportedPair,
    TuningSets,
    build_tuning_sets,
    frozen_gc,
    regressed_clusters,
    search_floor,
)
from feedback_pipelines.routing.tuning.settings import TuningSettings
from feedback_pipelines.routing.tuning.similarity import (
    Neighbours,
    PairMemory,
    SharedSearch,
    TextVectorCache,
    shared_search,
)
from feedback_pipelines.routing.tuning.votes import pair_key
from feedback_pipelines.routing.tuning.writer import write_export
from feedback_pipelines.schema import TEXT_VECTORS, TEXT_VECTORS_DDL, TUNING_COLUMNS
from feedback_pipelines.tables import memory_limit, table_columns
from feedback_pipelines.vector_tables import read_vectors, save_vectors

# The event columns tuning and routing read (`read_events` adds the trace's texts).
EVENT_COLUMNS = (
    "ds, feedback_id, trace_id, session_id, timestamp, kind, reason, score, comment, "
    "correction, user_role, model_version, prompt_version, request, trace_found, is_negative"
)


def read_events(
    conn: duckdb.DuckDBPyConnection,
    start: str,
    ds: str,
    clusters_of: str | None = None,
    columns: str = EVENT_COLUMNS,
) -> pd.DataFrame:
    """The window's feedback events with their trace's `response` and `messages`.

    Those texts live in `traces` only: each event finds its trace in the partition ingest
    recorded (`trace_ds`), so they follow a re-run of that day, while the fields ingest copied
    (`request`, versions, `trace_found`) keep the values of the event's own ingest.

    Args:
        conn: An open warehouse connection (read only is enough).
        start: First day of the window.
        ds: Last day of the window.
        clusters_of: Also each event's `cluster_id` of that day (from `cluster_assignments`).
        columns: `feedback_events` columns, comma-separated, or `*`.
    """
    return conn.execute(*_events_query(start, ds, clusters_of, columns)).df()


def _events_query(
    start: str, ds: str, clusters_of: str | None, columns: str
) -> tuple[str, list[str]]:
    """`read_events`' SQL and its parameters."""
    select = ", ".join(f"e.{c.strip()}" for c in columns.split(","))
    joins, params = "", [start, ds]
    if clusters_of:
        select += ", a.cluster_id"
        joins = (
            " LEFT JOIN (SELECT feedback_id, any_value(cluster_id) AS cluster_id "
            "FROM cluster_assignments WHERE ds = ? GROUP BY feedback_id) a USING (feedback_id)"
        )
        params = [clusters_of, *params]
    # A side-by-side vote (`events.VOTE_COLUMNS`): parsed only where the metadata names one.
    votes = ", ".join(
        f"CASE WHEN contains(e.metadata, '\"rejected_trace_id\"') "
        f"THEN json_extract_string(e.metadata, '$.preference.{key}') END AS {name}"
        for key, name in zip(("id", "chosen_trace_id", "rejected_trace_id"), VOTE_COLUMNS)
    )
    sql = (
        f"SELECT {select}, {votes}, t.response, t.messages FROM feedback_events e "
        "LEFT JOIN traces t ON t.trace_id = e.trace_id AND t.ds = e.trace_ds"
        f"{joins} WHERE e.ds BETWEEN ? AND ?"
    )
    return sql, params


def read_rankings(
    conn: duckdb.DuckDBPyConnection, start: str, ds: str, clusters_of: str | None = None
) -> pd.DataFrame:
    """The votes the window's rankings of answers imply, as `read_events` rows (see `votes`).

    Traces sharing `metadata.sibling_group` answer one conversation and `metadata.rank` orders
    them (0 the best; equal ranks compare nothing): each answer beats each one ranked below
    it. A vote is two rows, a thumbs-up on the answer ranked higher and a thumbs-down on the
    other, sharing the vote id (`events.RANKING` + group + the two trace ids; column `ranked`
    true), on the later answer's day (its partition) and time. They are no feedback events:
    nothing in `feedback_events`, no version's rates, only pairs. With `clusters_of`, a vote's
    `cluster_id` is that of the feedback on its conversation's answers (siblings share the
    request; a subtopic before noise), NULL without any.
    """
    columns = [c.strip() for c in EVENT_COLUMNS.split(",")]
    own = {
        "feedback_id": "v.vote || ':' || s.side",
        "timestamp": "v.timestamp",
        "ds": "v.ds",
        "kind": "CASE s.side WHEN 'chosen' THEN 'thumbs_up' ELSE 'thumbs_down' END",
        "trace_found": "true",
        "is_negative": "s.side = 'rejected'",
        **{c: "NULL" for c in ("reason", "score", "comment", "correction")},
    }
    select = ", ".join(f"{own.get(c, 'r.' + c)} AS {c}" for c in columns)
    clusters, params = "", [start, ds]
    if clusters_of:
        select += ", c.cluster_id"
        clusters = """
            LEFT JOIN (
                SELECT r.sibling_group, coalesce(
                    min(a.cluster_id) FILTER (WHERE a.cluster_id >= 0), min(a.cluster_id)
                ) AS cluster_id
                FROM ranked r JOIN feedback_events e ON e.trace_id = r.trace_id
                JOIN cluster_assignments a ON a.feedback_id = e.feedback_id AND a.ds = ?
                WHERE e.ds BETWEEN ? AND ? GROUP BY r.sibling_group
            ) c ON c.sibling_group = r.sibling_group"""
        params += [clusters_of, start, ds]
    sql = f"""
        WITH ranked AS (
            SELECT *, json_extract_string(metadata, '$.sibling_group') AS sibling_group,
                TRY_CAST(json_extract_string(metadata, '$.rank') AS DOUBLE) AS rank
            FROM traces
            WHERE ds BETWEEN ? AND ? AND contains(metadata, '"sibling_group"')
            QUALIFY row_number() OVER (PARTITION BY trace_id ORDER BY ds DESC) = 1
                AND isfinite(rank)
        ), v AS (
            SELECT '{RANKING}' || a.sibling_group || ':' || a.trace_id || '>' || b.trace_id
                    AS vote,
                a.trace_id AS chosen, b.trace_id AS rejected,
                greatest(a.timestamp, b.timestamp) AS timestamp,
                greatest(a.ds, b.ds) AS ds
            FROM ranked a JOIN ranked b ON a.sibling_group = b.sibling_group AND a.rank < b.rank
        )
        SELECT {select}, v.vote AS {VOTE_COLUMNS[0]}, v.chosen AS {VOTE_COLUMNS[1]},
            v.rejected AS {VOTE_COLUMNS[2]}, true AS ranked, r.response, r.messages
        FROM v CROSS JOIN (VALUES ('chosen'), ('rejected')) s(side)
        JOIN ranked r ON r.trace_id = CASE s.side WHEN 'chosen' THEN v.chosen ELSE v.rejected END
        {clusters}
        ORDER BY timestamp, feedback_id
    """
    return conn.execute(sql, params).df()


#: Rows read at a time by `read_window_events` (as one Arrow record batch).
READ_ROWS = 1 << 18
# Columns whose values repeat across a window (kinds, versions, roles, answers...): one
# string object per distinct value. Feedback ids are all distinct and kept as read.
_REPEATING = (
    "trace_id", "session_id", "kind", "reason", "comment", "correction", "user_role",
    "model_version", "prompt_version", "request", "response",
)  # fmt: skip


def _decoded(
    array: pa.Array, convert: Callable[[str], object], width: int = 0, null: object = None
) -> list[np.ndarray]:
    """A string column as objects, each distinct value converted once.

    Only the distinct values of the batch become Python objects (Arrow finds them): a
    window's repeating columns never hold one string per row, even for a moment.

    Args:
        array: The column.
        convert: Value -> object (e.g. the shared copy of an equal string).
        width: 0: one column of what `convert` returns; n: `convert` returns n-tuples, one
            column each.
        null: What a null becomes (an n-tuple when width is n).

    Returns:
        The object columns (one when width is 0).
    """
    encoded = pc.dictionary_encode(array)
    at = encoded.indices.fill_null(-1).to_numpy()  # -1: the last slot, null's
    values = [convert(v) for v in encoded.dictionary.to_pylist()]
    out = []
    for k in range(max(width, 1)):
        table = np.empty(len(values) + 1, dtype=object)
        for slot, value in enumerate([*values, null]):
            table[slot] = value[k] if width else value  # one by one: a list stays a value
        out.append(table[at])
    return out


def _batch_frame(
    batch: pa.RecordBatch, shared: dict[str, dict[str, str]], prompts: Prompts
) -> pd.DataFrame:
    """One batch of `read_window_events` as a frame (the columns `read_events` gives)."""
    columns: dict[str, object] = {}
    for name, array in zip(batch.schema.names, batch.columns, strict=True):
        if name in shared:
            seen = shared[name]
            (columns[name],) = _decoded(array, lambda v, seen=seen: seen.setdefault(v, v))
        elif name == "messages":  # a trace not found: no prompt
            found = _decoded(array, prompts, len(PARSED_COLUMNS), prompts(None))
            columns.update(zip(PARSED_COLUMNS, found, strict=True))
        elif pa.types.is_date(array.type):  # as DuckDB's own frames give dates
            columns[name] = pc.cast(array, pa.timestamp("us")).to_pandas()
        else:
            columns[name] = array.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
    return pd.DataFrame(columns)


def read_window_events(
    conn: duckdb.DuckDBPyConnection,
    start: str,
    ds: str,
    clusters_of: str | None = None,
    after_batch: Callable[[], None] | None = None,
) -> pd.DataFrame:
    """`read_events`' rows, read lean for a whole window: what `run_day` reads.

    The same rows and columns, but `messages` holds each trace's parsed prompt
    (`tuning.events.Prompts`: equal prompts are one list of shared turns) rather than its
    JSON text, with its last request and context key beside it (`events.PARSED_COLUMNS`,
    which `prepare_events` takes as they are), and equal strings of a repeating column are
    one object. A 14-day window at 100k events a day read as one frame held ~3.5 GB of
    Python strings (~5.4 GB at the peak of the conversion); read as Arrow batches of
    `READ_ROWS` rows, decoded by distinct value, the texts cost what their distinct values
    cost.

    Args:
        conn: An open warehouse connection (read only is enough).
        start: First day of the window.
        ds: Last day of the window.
        clusters_of: Also each event's `cluster_id` of that day (from `cluster_assignments`).
        after_batch: Called after each batch (`read_inputs`: `frozen_gc`'s freeze).
    """
    sql, params = _events_query(start, ds, clusters_of, EVENT_COLUMNS)
    reader = conn.sql(sql, params=params).to_arrow_reader(READ_ROWS)
    shared: dict[str, dict[str, str]] = {c: {} for c in _REPEATING}
    prompts = Prompts()
    frames = []
    for batch in reader:
        frames.append(_batch_frame(batch, shared, prompts))
        prompts.forget_texts()  # a messages text is mostly one trace's: seldom met again
        if after_batch is not None:
            after_batch()
    if not frames:
        empty = pa.RecordBatch.from_pylist([], schema=reader.schema)
        return _batch_frame(empty, shared, prompts)
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


@dataclass
class Inputs:
    """What the day reads from the warehouse."""

    events: pd.DataFrame
    clusters: pd.DataFrame | None = None
    regressions: pd.DataFrame | None = None
    regressed_before: list[int] | None = None
    themes: pd.DataFrame | None = None  # feedback_topics: topic_id, label
    themes_regressed_before: list[int] | None = None
    rankings: pd.DataFrame | None = None  # `read_rankings`
    # incremental mode: the voted pairs earlier days exported (`read_exported_votes`)
    exported_votes: dict[bytes, ExportedPair] = field(default_factory=dict)
    cached: dict[str, np.ndarray] = field(default_factory=dict)  # from feedback_embeddings
    stored: dict[str, np.ndarray] = field(default_factory=dict)  # from text_vectors
    notes: list[str] = field(default_factory=list)


@dataclass
class DayResult:
    """What one day wrote, for the asset's metadata and checks."""

    sets: TuningSets
    export: Export
    queue: pd.DataFrame
    review_files: dict[str, int]
    review_folder: Path
    new_regressions: list[int]  # clusters newly regressed on the day
    seconds: float
    notes: list[str]
    embedded: dict[str, np.ndarray] = field(default_factory=dict)  # texts embedded by this run
    embed_seconds: float = 0.0  # of `seconds`, spent embedding them
    new_theme_regressions: list[int] = field(default_factory=list)  # themes, likewise


def window_start(ds: str, window_days: int) -> str:
    """First day of the trailing window ending at ds."""
    return (date.fromisoformat(ds) - timedelta(days=max(window_days, 1) - 1)).isoformat()


#: DuckDB's memory while `read_inputs` reads (`tables.memory_limit`): with the default, the
#: scan of `feedback_embeddings` for cached vectors alone left ~2.2 GB resident (the whole
#: table, whatever the window), beside the window's events.
READ_MEMORY_LIMIT = "1GB"


def read_inputs(
    conn: duckdb.DuckDBPyConnection,
    ds: str,
    window_days: int,
    model_id: str | None,
    incremental: bool = False,
) -> Inputs:
    """The window's events (with cluster ids when known), clusters, regressions, cached vectors.

    DuckDB's memory limit is `READ_MEMORY_LIMIT` while it reads (set back afterwards), and
    what is read stays out of the garbage collector's full passes (`frozen_gc`).

    Args:
        conn: An open warehouse connection (read only is enough).
        ds: The partition (window end).
        window_days: Length of the trailing window.
        model_id: The embedder's model id; cached vectors of another model are not used.
        incremental: The export mode is `incremental`: also the voted pairs earlier days
            exported, which are not exported again.
    """
    try:
        with memory_limit(conn, READ_MEMORY_LIMIT), frozen_gc() as freeze:
            inputs = _read_inputs(conn, ds, window_days, model_id, freeze)
            if incremental:
                inputs.exported_votes = read_exported_votes(conn, ds)
        return inputs
    finally:
        # Arrow's allocator keeps what the read's batches and vector columns freed (~0.2 GB
        # on 3 days) for later Arrow work, of which this step has little: give it back.
        pa.default_memory_pool().release_unused()


def _read_inputs(
    conn: duckdb.DuckDBPyConnection,
    ds: str,
    window_days: int,
    model_id: str | None,
    freeze: Callable[[], None],
) -> Inputs:
    tables = table_columns(conn)
    start = window_start(ds, window_days)
    if "feedback_events" not in tables:
        raise RuntimeError("feedback_events table not found: run ingest first")
    notes: list[str] = []
    clustered = {"feedback_id", "cluster_id", "ds"} <= tables.get("cluster_assignments", set())
    if (
        clustered
        and not conn.execute(
            "SELECT count(*) FROM cluster_assignments WHERE ds = ?", [ds]
        ).fetchall()[0][0]
    ):
        clustered = False
        notes.append(f"cluster_assignments has no rows for {ds}: clustering treated as absent")
    events = read_window_events(
        conn, start, ds, clusters_of=ds if clustered else None, after_batch=freeze
    )
    if not clustered:
        notes.append(
            "no cluster assignments: pairs by request similarity only, no prompt-tuning "
            "candidates, no noise route"
        )
    inputs = Inputs(events=events, notes=notes)
    if "metadata" in tables.get("traces", set()):
        inputs.rankings = read_rankings(conn, start, ds, ds if clustered else None)
    cluster_columns = tables.get("feedback_clusters", set())
    if {"cluster_id", "label", "ds"} <= cluster_columns:
        theme = ", topic_id" if "topic_id" in cluster_columns else ""
        inputs.clusters = conn.execute(
            f"SELECT cluster_id, label{theme} FROM feedback_clusters WHERE ds = ?", [ds]
        ).df()
    elif "cluster_id" in events.columns:
        notes.append("feedback_clusters not found: clusters without labels")
    if {"topic_id", "label", "ds"} <= tables.get("feedback_topics", set()):
        inputs.themes = conn.execute(
            "SELECT topic_id, label FROM feedback_topics WHERE ds = ?", [ds]
        ).df()
    regression_columns = tables.get("version_regressions", set())
    if {"cluster_id", "is_regression"} <= regression_columns and (
        {"ds", "window_end"} & regression_columns
    ):
        day = "ds" if "ds" in regression_columns else "window_end"
        inputs.regressions = conn.execute(
            f"SELECT * FROM version_regressions WHERE {day} = ?", [ds]
        ).df()
        prev = (date.fromisoformat(ds) - timedelta(days=1)).isoformat()
        themes = (
            "list(DISTINCT topic_id) FILTER (WHERE is_regression AND cluster_id IS NULL AND "
            "topic_id IS NOT NULL)"
            if "topic_id" in regression_columns
            else "[]"
        )
        before = conn.execute(
            "SELECT count(*), list(DISTINCT cluster_id) FILTER (WHERE is_regression AND "
            f"cluster_id IS NOT NULL), {themes} FROM version_regressions WHERE {day} = ?",
            [prev],
        ).fetchall()[0]
        if before[0]:
            inputs.regressed_before = [int(c) for c in before[1] or []]
            inputs.themes_regressed_before = [int(t) for t in before[2] or []]
        if before[0] == 0:
            notes.append(f"no version_regressions for {prev}: every regression counts as new")
    else:
        notes.append("version_regressions not found: no eval cases, no regression samples")
    if model_id and {"text_hash", "vector"} <= tables.get("feedback_embeddings", set()):
        inputs.cached = _cached_vectors(conn, events, model_id)
    else:
        notes.append("feedback_embeddings not found: every text embedded by this step")
    if model_id and TEXT_VECTORS in tables:
        texts = _texts(events, ("request", "correction", "response")) | {""}  # "": no text
        if inputs.rankings is not None:
            texts |= _texts(inputs.rankings, ("request", "response"))
        inputs.stored = _vectors_by_hash(conn, TEXT_VECTORS, texts - inputs.cached.keys(), model_id)
    return inputs


def read_exported_votes(conn: duckdb.DuckDBPyConnection, ds: str) -> dict[bytes, ExportedPair]:
    """`votes.pair_key` -> where each voted pair exported before ds was (its first export).

    `tuning_candidates` records every exported example with its texts, file and line. None
    without the table.
    """
    needed = {"ds", "example_id", "dataset", "source", "prompt", "completion", "rejected"}
    if not needed <= table_columns(conn).get("tuning_candidates", set()):
        return {}
    sources = ", ".join(f"'{s}'" for s in sorted(VOTED))
    result = conn.execute(
        "SELECT prompt, completion, rejected, ds::VARCHAR, example_id, file, line "
        "FROM tuning_candidates "
        f"WHERE ds < ? AND dataset = 'preference' AND source IN ({sources})",
        [ds],
    )
    out: dict[bytes, ExportedPair] = {}
    while rows := result.fetchmany(EXPORTED_ROWS):  # streamed: the texts never all held
        for prompt, chosen, rejected, *where in rows:
            key = pair_key(json.loads(prompt or "[]"), chosen, rejected)
            found = ExportedPair(*where)
            held = out.get(key)
            if held is None or found < held:
                out[key] = found
    return out


#: Rows of earlier exported pairs read at a time by `read_exported_votes` (500k pairs read at
#: once held ~3 GB of texts).
EXPORTED_ROWS = 20_000


def _texts(events: pd.DataFrame, columns: tuple[str, ...]) -> set[str]:
    return {str(t) for column in columns for t in events[column].dropna().unique()}


def _cached_vectors(
    conn: duckdb.DuckDBPyConnection, events: pd.DataFrame, model_id: str
) -> dict[str, np.ndarray]:
    """Vectors the semantic stage already computed for texts this step needs.

    `feedback_embeddings` holds each event's interaction text, which for a plain thumbs event
    is exactly its request: most requests are found here by their content hash.
    """
    texts = _texts(events, ("request", "correction"))
    return _vectors_by_hash(conn, "feedback_embeddings", texts, model_id)


def _vectors_by_hash(
    conn: duckdb.DuckDBPyConnection, table: str, texts: set[str], model_id: str
) -> dict[str, np.ndarray]:
    """Text -> vector of the texts whose content hash `table` holds (one vector per hash)."""
    from feedback_pipelines.embedding import text_hash

    by_hash = {text_hash(t, model_id): t for t in sorted(texts)}
    return {by_hash[h]: v for h, v in read_vectors(conn, table, by_hash).items()}


def save_text_vectors(
    conn: duckdb.DuckDBPyConnection, model_id: str, vectors: dict[str, np.ndarray]
) -> int:
    """Add the texts this run embedded to `text_vectors` (entries already there are kept).

    Idempotent: a rerun adds nothing, and two runs adding one text keep the first vector.

    Returns:
        How many texts were offered.
    """
    from feedback_pipelines.embedding import text_hash

    by_hash = {text_hash(t, model_id): vectors[t] for t in sorted(vectors)}
    return save_vectors(conn, TEXT_VECTORS, TEXT_VECTORS_DDL, model_id, by_hash)


def tuning_frame(export: Export) -> pd.DataFrame:
    """The `tuning_candidates` rows of an export."""
    frame = pd.DataFrame(export.table, columns=TUNING_COLUMNS)
    frame["ds"] = pd.to_datetime(frame["ds"]).dt.date
    frame["line"] = frame["line"].astype("int32")
    frame["cluster_id"] = pd.array(frame["cluster_id"], dtype="Int64")
    frame["label"] = pd.array(frame["label"], dtype="boolean")
    return frame


def tuning_settings(config: object) -> TuningSettings:
    """The tuning settings a pipeline configuration asks for (`PipelineConfig` or alike).

    Reads `export_mode` and `export_license` when the configuration has them; everything
    else keeps `TuningSettings`' defaults.
    """
    options: dict[str, str] = {}
    if getattr(config, "export_mode", ""):
        options["export_mode"] = config.export_mode  # type: ignore[attr-defined]
    if getattr(config, "export_license", ""):
        options["license"] = config.export_license  # type: ignore[attr-defined]
    return TuningSettings(**options)


def pair_memory_path(data_dir: Path, model_id: str) -> Path:
    """Where the near-duplicate search keeps its pairs between runs (one file per embedder)."""
    name = hashlib.sha256(model_id.encode()).hexdigest()[:16]
    return data_dir / "work" / "near_duplicates" / f"{name}.npz"


def _seed_pairs(
    search: SharedSearch,
    path: Path,
    vectors: dict[str, np.ndarray],
    log: Callable[[str], None] | None,
) -> None:
    started = time.perf_counter()
    memory = PairMemory.load(path)
    texts = search.seed(memory, vectors)
    if log is not None and memory is not None:
        log(
            f"near-duplicate memory: {texts:,} of the {len(memory.keys):,} texts the last run "
            f"searched are in this window, with {search.pair_count:,} pairs, read in "
            f"{time.perf_counter() - started:.1f}s"
        )


def _keep_pairs(search: SharedSearch, path: Path, log: Callable[[str], None] | None) -> None:
    started = time.perf_counter()
    memory = search.memory()
    size = memory.save(path)
    if log is not None:
        log(
            f"near-duplicate memory: {len(memory.keys):,} texts and {len(memory.i):,} pairs "
            f"kept for the next run ({size / 1e6:,.0f} MB) in {time.perf_counter() - started:.1f}s"
        )


def run_day(
    inputs: Inputs,
    ds: str,
    data_dir: Path,
    *,
    embed,
    model_id: str,
    neighbours: Neighbours,
    window_days: int,
    settings: TuningSettings | None = None,
    write_exports: bool = True,
    write_queue: bool = True,
    run_id: str | None = None,
    log: Callable[[str], None] | None = None,
) -> DayResult:
    """Build and write one day's exports and review queue (files only; tables by the caller).

    Args:
        inputs: From `read_inputs`.
        ds: The partition.
        data_dir: The data directory (`exports/` and `review/` are written under it).
        embed: The embedder's `embed` (texts -> normalized rows).
        model_id: The embedder's model id (for the data card).
        neighbours: The similarity search (Qdrant in the pipeline).
        window_days: Length of the window (for the data card).
        settings: Tuning thresholds.
        write_exports: Write `exports/dt=<ds>/` (otherwise only `result.export.table` is built).
        write_queue: Write `review/dt=<ds>/`.
        run_id: The orchestrator's run (the data card names it); None outside a run, so two
            builds of the same inputs write the same bytes.
        log: Progress lines of the long steps (the asset's `context.log.info`); None: silent.
    """
    # Long-lived objects (the inputs, then the sets) are left out of full collections.
    with frozen_gc() as freeze:
        started = time.perf_counter()
        settings = settings or TuningSettings()
        vectors = TextVectorCache(embed, inputs.cached, inputs.stored)
        search = shared_search(neighbours, search_floor(settings))
        memory_file = pair_memory_path(data_dir, model_id)
        if isinstance(search, SharedSearch):
            _seed_pairs(search, memory_file, {**inputs.stored, **inputs.cached}, log)
        sets = build_tuning_sets(
            inputs.events,
            vectors=vectors,
            neighbours=search,
            ds=ds,
            window_start=window_start(ds, window_days),
            settings=settings,
            clusters=inputs.clusters,
            regressions=inputs.regressions,
            themes=inputs.themes,
            notes=inputs.notes,
            log=log,
            rankings=inputs.rankings,
            exported_votes=inputs.exported_votes,
        )
        freeze()
        if isinstance(search, SharedSearch):
            _keep_pairs(search, memory_file, log)
        sets.run_id = run_id
        sets.embedding = {
            "model_id": model_id,
            "search": getattr(neighbours, "backend", getattr(neighbours, "__name__", "custom")),
            "texts_embedded": vectors.needed,  # whether now or on an earlier run (text_vectors)
            "texts_reused": vectors.reused,
            "texts_from_feedback_embeddings": len(inputs.cached),
            "thresholds": {
                "near_duplicate": settings.near_duplicate,
                "same_request": settings.same_request,
                "group_similarity": settings.group_similarity,
                "conflict_below": settings.conflict_below,
            },
        }
        written = time.perf_counter()
        export = (
            write_export(sets, data_dir / "exports" / f"dt={ds}")
            if write_exports
            else Export(data_dir / "exports" / f"dt={ds}")
        )
        labels = {r["cluster_id"]: r["label"] for r in sets.ranking}
        new = review.newly_regressed(
            regressed_clusters(inputs.regressions), inputs.regressed_before
        )
        new_themes = review.newly_regressed(
            [t.topic_id for t in sets.regressed_themes], inputs.themes_regressed_before
        )
        queue = review.route_for_review(
            sets.events,
            ds,
            conflicts=sets.conflicts,
            clustering=sets.clustering,
            new_regressions=new,
            new_theme_regressions=[t for t in sets.regressed_themes if t.topic_id in new_themes],
            labels=labels,
            sample_per_cluster=settings.review_sample_per_cluster,
            seed=settings.seed,
            contested=sets.contested,
            split_votes=settings.review_split_votes,
            reversed_votes=sets.reversed_votes,
        )
        folder = data_dir / "review" / f"dt={ds}"
        files = review.write_review(queue, folder) if write_queue else {}
        if log is not None:
            log(
                f"tuning files: {len(export.table):,} export rows, {len(queue):,} review items "
                f"written in {time.perf_counter() - written:.1f}s; {vectors.needed:,} texts "
                f"embedded by this step ({vectors.embedded:,} now in {vectors.seconds:.1f}s, "
                f"{vectors.from_store:,} from text_vectors), {vectors.reused:,} reused"
            )
        return DayResult(
            sets=sets,
            export=export,
            queue=queue,
            review_files=files,
            review_folder=folder,
            new_regressions=new,
            new_theme_regressions=new_themes,
            seconds=time.perf_counter() - started,
            notes=list(inputs.notes),
            embedded=vectors.fresh,
            embed_seconds=vectors.seconds,
        )
