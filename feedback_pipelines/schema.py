"""The warehouse schema: every table's DDL and column order, and the reserved cluster ids.

One module owns it, so a stage that writes a table and the stages that read it agree by import,
not by copy. Public table and column names are the contract (CONTRACT.md, section 3).
"""

from __future__ import annotations


def vector_cache_ddl(table: str) -> str:
    """A content-hash cache of vectors (`embedding.text_hash` -> vector, with its model id).

    Not partitioned: an entry is valid for as long as its model id exists.
    """
    return f"""
CREATE TABLE IF NOT EXISTS {table} (
    text_hash VARCHAR PRIMARY KEY,
    model_id VARCHAR,
    vector FLOAT[]
)
"""


# --- ingest.day ----------------------------------------------------------------------------------
# Long texts are stored with zstd: on this data half the write CPU of DuckDB's default
# (dictionary + FSST, chosen per segment after trying each) and a third of the file size.
TEXT_COMPRESSED = "VARCHAR USING COMPRESSION zstd"

INGEST_DDL = f"""
CREATE TABLE IF NOT EXISTS traces (
    ds DATE, trace_id VARCHAR, session_id VARCHAR, user_id VARCHAR, timestamp TIMESTAMP,
    model_version VARCHAR, prompt_version VARCHAR, messages {TEXT_COMPRESSED},
    request {TEXT_COMPRESSED}, response {TEXT_COMPRESSED}, latency_ms DOUBLE,
    input_tokens BIGINT, output_tokens BIGINT, user_role VARCHAR, metadata {TEXT_COMPRESSED},
    turn_index INTEGER, abandoned BOOLEAN, regenerations INTEGER, file VARCHAR
);
CREATE TABLE IF NOT EXISTS feedback_events (
    ds DATE, feedback_id VARCHAR, trace_id VARCHAR, session_id VARCHAR, user_id VARCHAR,
    timestamp TIMESTAMP, kind VARCHAR, reason VARCHAR, score DOUBLE, comment {TEXT_COMPRESSED},
    correction {TEXT_COMPRESSED}, user_role VARCHAR, metadata {TEXT_COMPRESSED},
    model_version VARCHAR, prompt_version VARCHAR, request {TEXT_COMPRESSED},
    trace_found BOOLEAN, trace_ds DATE, is_negative BOOLEAN, file VARCHAR
);
CREATE TABLE IF NOT EXISTS quarantine (
    source VARCHAR, ds DATE, file VARCHAR, line BIGINT, error VARCHAR, raw {TEXT_COMPRESSED}
);
CREATE TABLE IF NOT EXISTS ingest_files (
    ds DATE, source VARCHAR, file VARCHAR, bytes BIGINT, modified_at TIMESTAMP, lines BIGINT,
    quarantined BIGINT, late BOOLEAN
);
"""

# Columns earlier versions wrote. `feedback_events` held a copy of its trace's response and
# message list: readers now join `traces` for them (`routing.day.read_events`), which halves
# the table and the cost of writing it.
RETIRED_COLUMNS = (("feedback_events", "response"), ("feedback_events", "messages"))


# --- recall.embeddings ---------------------------------------------------------------------------
EMBEDDING_COLUMNS = ["ds", "feedback_id", "model_id", "text_hash", "text", "vector"]


# --- reserved cluster ids ----------------------------------------
# An event in no subtopic (and so in no theme); `cluster_assignments` stores it as is.
NOISE = -1
# Internal stratum for units without a cluster (feedback not assigned, traces without feedback).
UNASSIGNED = -2


# --- clustering.pipeline -------------------------------------------------------------------------
CLUSTER_COLUMNS = [
    "ds",
    "cluster_id",
    "topic_id",
    "label",
    "label_source",
    "keyphrases",
    "quotes",
    "size",
    "distinct_users",
    "n_negative",
    "negative_rate",
    "first_seen",
    "last_seen",
    "status",
    "growth",
    "previous_size",
    "kept_share",
    "match_similarity",
    "centroid",
]

ASSIGNMENT_COLUMNS = ["ds", "feedback_id", "cluster_id", "topic_id", "probability", "complaint_id"]

# Themes: a subtopic row without match_similarity, with the subtopics the theme holds.
TOPIC_COLUMNS = [
    "ds",
    "topic_id",
    "label",
    "label_source",
    "keyphrases",
    "quotes",
    "size",
    "distinct_users",
    "n_negative",
    "negative_rate",
    "first_seen",
    "last_seen",
    "status",
    "growth",
    "previous_size",
    "kept_share",
    "cluster_ids",
    "centroid",
]

LINEAGE_COLUMNS = ["ds", "level", "event", "from_ids", "to_ids"]

# Every subtopic id ever given (retired ones too, so ids are never reused), as of `ds`.
REGISTRY_COLUMNS = ["ds", "cluster_id", "centroid", "born", "retired", "topic_id"]


# --- clustering.store ----------------------------------------------------------------------------
CLUSTERS = "feedback_clusters"
ASSIGNMENTS = "cluster_assignments"
TOPICS = "feedback_topics"
LINEAGE = "topic_lineage"
REGISTRY = "topic_registry"

CLUSTERS_DDL = f"""
CREATE TABLE IF NOT EXISTS {CLUSTERS} (
    ds DATE,
    cluster_id BIGINT,
    topic_id BIGINT,
    label VARCHAR,
    label_source VARCHAR,
    keyphrases VARCHAR[],
    quotes VARCHAR[],
    size BIGINT,
    distinct_users BIGINT,
    n_negative BIGINT,
    negative_rate DOUBLE,
    first_seen TIMESTAMP,
    last_seen TIMESTAMP,
    status VARCHAR,
    growth DOUBLE,
    previous_size BIGINT,
    kept_share DOUBLE,
    match_similarity DOUBLE,
    centroid FLOAT[],
    window_start DATE,
    model_id VARCHAR
)
"""

ASSIGNMENTS_DDL = f"""
CREATE TABLE IF NOT EXISTS {ASSIGNMENTS} (
    ds DATE,
    feedback_id VARCHAR,
    cluster_id BIGINT,
    topic_id BIGINT,
    probability DOUBLE,
    complaint_id INTEGER
)
"""

TOPICS_DDL = f"""
CREATE TABLE IF NOT EXISTS {TOPICS} (
    ds DATE,
    topic_id BIGINT,
    label VARCHAR,
    label_source VARCHAR,
    keyphrases VARCHAR[],
    quotes VARCHAR[],
    size BIGINT,
    distinct_users BIGINT,
    n_negative BIGINT,
    negative_rate DOUBLE,
    first_seen TIMESTAMP,
    last_seen TIMESTAMP,
    status VARCHAR,
    growth DOUBLE,
    previous_size BIGINT,
    kept_share DOUBLE,
    cluster_ids BIGINT[],
    centroid FLOAT[],
    window_start DATE,
    model_id VARCHAR
)
"""

LINEAGE_DDL = f"""
CREATE TABLE IF NOT EXISTS {LINEAGE} (
    ds DATE,
    level VARCHAR,
    event VARCHAR,
    from_ids BIGINT[],
    to_ids BIGINT[],
    model_id VARCHAR
)
"""

REGISTRY_DDL = f"""
CREATE TABLE IF NOT EXISTS {REGISTRY} (
    ds DATE,
    cluster_id BIGINT,
    centroid FLOAT[],
    born DATE,
    retired DATE,
    topic_id BIGINT,
    model_id VARCHAR
)
"""

# Content-hash cache of the labels' candidate keyphrases (`embedding.text_hash`), re-ranked by
# the embedder every day: a theme's words recur from day to day, so a day embeds only the
# phrases no earlier day (or run) did.
PHRASE_VECTORS = "phrase_vectors"
PHRASE_VECTORS_DDL = vector_cache_ddl(PHRASE_VECTORS)

# Columns added to the topic tables since they were first written: older warehouses get them
# (NULL in old rows) before the first write.
ADDED_TOPIC_COLUMNS = (
    (CLUSTERS, "topic_id", "BIGINT"),
    (CLUSTERS, "kept_share", "DOUBLE"),
    (ASSIGNMENTS, "topic_id", "BIGINT"),
    (ASSIGNMENTS, "complaint_id", "INTEGER"),
)
TOPIC_TABLES_DDL = [CLUSTERS_DDL, ASSIGNMENTS_DDL, TOPICS_DDL, LINEAGE_DDL, REGISTRY_DDL] + [
    f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {kind}"
    for table, column, kind in ADDED_TOPIC_COLUMNS
]

# The core's columns, plus what only the warehouse records.
CLUSTER_TABLE_COLUMNS = [*CLUSTER_COLUMNS, "window_start", "model_id"]
TOPIC_TABLE_COLUMNS = [*TOPIC_COLUMNS, "window_start", "model_id"]


# --- regressions ---------------------------------------------------------------------------------
REGRESSION_COLUMNS = [
    "window_start",
    "window_end",
    "dimension",
    "model_version",
    "candidate_version",
    "baseline_version",
    "metric",
    "scope",
    "cluster_id",
    "n_candidate",
    "n_baseline",
    "x_candidate",
    "x_baseline",
    "rate_candidate",
    "rate_baseline",
    "delta",
    "ci_low",
    "ci_high",
    "test",
    "p_value",
    "q_value",
    "p_value_improvement",
    "q_value_improvement",
    "is_regression",
    "is_improvement",
    "note",
]

# What only the always-valid rows fill (NULL on window rows), and the table's full row.
ALWAYS_VALID_COLUMNS = [
    "release_day",
    "days_since_release",
    "e_value",
    "e_value_improvement",
    "p_always_valid",
    "p_always_valid_improvement",
    "cs_low",
    "cs_high",
    "flag_since",
]
REGRESSION_TABLE_COLUMNS = [*REGRESSION_COLUMNS, "topic_id", *ALWAYS_VALID_COLUMNS]

METRIC_COLUMNS = [
    "ds",
    "dimension",
    "model_version",
    "prompt_version",
    "n_traces",
    "n_feedback",
    "n_negative",
    "negative_rate",
    "negative_rate_ci_low",
    "negative_rate_ci_high",
    "n_corrections",
    "correction_rate",
    "correction_rate_ci_low",
    "correction_rate_ci_high",
    "n_abandoned",
    "abandonment_rate",
    "abandonment_rate_ci_low",
    "abandonment_rate_ci_high",
    "n_regenerated",
    "regeneration_rate",
    "regeneration_rate_ci_low",
    "regeneration_rate_ci_high",
    "latency_p50_ms",
    "latency_p95_ms",
    "input_tokens",
    "output_tokens",
    "input_tokens_mean",
    "output_tokens_mean",
]

VERSION_METRICS_DDL = """
CREATE TABLE IF NOT EXISTS version_metrics (
    ds DATE, dimension VARCHAR, model_version VARCHAR, prompt_version VARCHAR,
    n_traces BIGINT, n_feedback BIGINT, n_negative BIGINT, negative_rate DOUBLE,
    negative_rate_ci_low DOUBLE, negative_rate_ci_high DOUBLE, n_corrections BIGINT,
    correction_rate DOUBLE, correction_rate_ci_low DOUBLE, correction_rate_ci_high DOUBLE,
    n_abandoned BIGINT, abandonment_rate DOUBLE, abandonment_rate_ci_low DOUBLE,
    abandonment_rate_ci_high DOUBLE, n_regenerated BIGINT, regeneration_rate DOUBLE,
    regeneration_rate_ci_low DOUBLE, regeneration_rate_ci_high DOUBLE, latency_p50_ms DOUBLE,
    latency_p95_ms DOUBLE, input_tokens DOUBLE, output_tokens DOUBLE, input_tokens_mean DOUBLE,
    output_tokens_mean DOUBLE
)
"""

REGRESSIONS_DDL = """
CREATE TABLE IF NOT EXISTS version_regressions (
    ds DATE, window_start DATE, window_end DATE, dimension VARCHAR, model_version VARCHAR,
    candidate_version VARCHAR, baseline_version VARCHAR, metric VARCHAR, scope VARCHAR,
    cluster_id BIGINT, n_candidate BIGINT, n_baseline BIGINT, x_candidate BIGINT,
    x_baseline BIGINT, rate_candidate DOUBLE, rate_baseline DOUBLE, delta DOUBLE, ci_low DOUBLE,
    ci_high DOUBLE, test VARCHAR, p_value DOUBLE, q_value DOUBLE, p_value_improvement DOUBLE,
    q_value_improvement DOUBLE, is_regression BOOLEAN, is_improvement BOOLEAN, note VARCHAR,
    topic_id BIGINT, release_day DATE, days_since_release INTEGER, e_value DOUBLE,
    e_value_improvement DOUBLE, p_always_valid DOUBLE, p_always_valid_improvement DOUBLE,
    cs_low DOUBLE, cs_high DOUBLE, flag_since DATE
)
"""

# Warehouses created before the always-valid rows (issue 18) and the theme level (issue 14).
REGRESSIONS_MIGRATIONS = [
    f"ALTER TABLE version_regressions ADD COLUMN IF NOT EXISTS {name} {kind}"
    for name, kind in (
        ("topic_id", "BIGINT"),
        ("release_day", "DATE"),
        ("days_since_release", "INTEGER"),
        ("e_value", "DOUBLE"),
        ("e_value_improvement", "DOUBLE"),
        ("p_always_valid", "DOUBLE"),
        ("p_always_valid_improvement", "DOUBLE"),
        ("cs_low", "DOUBLE"),
        ("cs_high", "DOUBLE"),
        ("flag_since", "DATE"),
    )
]


# --- routing.day ---------------------------------------------------------------------------------
TUNING_DDL = """
CREATE TABLE IF NOT EXISTS tuning_candidates (
    ds DATE, example_id VARCHAR, dataset VARCHAR, split VARCHAR, source VARCHAR, file VARCHAR,
    line INTEGER, feedback_id VARCHAR, trace_id VARCHAR, session_id VARCHAR,
    paired_feedback_id VARCHAR, paired_trace_id VARCHAR, group_id VARCHAR, cluster_id BIGINT,
    model_version VARCHAR, prompt_version VARCHAR, prompt VARCHAR, completion VARCHAR,
    rejected VARCHAR, label BOOLEAN
)
"""

REVIEW_DDL = """
CREATE TABLE IF NOT EXISTS review_queue (
    ds DATE, review_id VARCHAR, priority INTEGER, routing_reason VARCHAR,
    routing_reasons VARCHAR, detail VARCHAR, feedback_id VARCHAR, trace_id VARCHAR,
    session_id VARCHAR, related_feedback_ids VARCHAR, cluster_id BIGINT, cluster_label VARCHAR,
    kind VARCHAR, reason VARCHAR, score DOUBLE, model_version VARCHAR, prompt_version VARCHAR,
    user_role VARCHAR, timestamp TIMESTAMP, request VARCHAR, response VARCHAR, comment VARCHAR,
    correction VARCHAR, messages VARCHAR
)
"""

# Content-hash cache of the texts the routing step embeds itself (answers, and requests that
# `feedback_embeddings` holds only inside a longer interaction text), keyed like
# `feedback_embeddings.text_hash` (`embedding.text_hash`): a rerun or a later day embeds
# only texts never seen.
TEXT_VECTORS = "text_vectors"
TEXT_VECTORS_DDL = vector_cache_ddl(TEXT_VECTORS)

# --- routing.tuning.writer -----------------------------------------------------------------------
TUNING_COLUMNS = [
    "ds",
    "example_id",
    "dataset",
    "split",
    "source",
    "file",
    "line",
    "feedback_id",
    "trace_id",
    "session_id",
    "paired_feedback_id",
    "paired_trace_id",
    "group_id",
    "cluster_id",
    "model_version",
    "prompt_version",
    "prompt",
    "completion",
    "rejected",
    "label",
]


# --- routing.review ------------------------------------------------------------------------------
REVIEW_COLUMNS = [
    "ds",
    "review_id",
    "priority",
    "routing_reason",
    "routing_reasons",
    "detail",
    "feedback_id",
    "trace_id",
    "session_id",
    "related_feedback_ids",
    "cluster_id",
    "cluster_label",
    "kind",
    "reason",
    "score",
    "model_version",
    "prompt_version",
    "user_role",
    "timestamp",
    "request",
    "response",
    "comment",
    "correction",
    "messages",
]


# --- clustering.complaint_store ------------------------------------------------------------------
# "What went wrong": groups of negative feedback by the complaint's own text (issue 14, point 4).
COMPLAINTS = "complaint_clusters"
COMPLAINT_ASSIGNMENTS = "complaint_assignments"
COMPLAINT_VECTORS = "complaint_vectors"

# One row per complaint group per ds (the trailing window ending on ds). `kind` is the fixed
# kind of the group ("off_topic", ..., or "other" for data-driven groups); `topic_counts` and
# `cluster_counts` are JSON objects {theme or subtopic id: complaints} from cluster_assignments.
COMPLAINTS_DDL = f"""
CREATE TABLE IF NOT EXISTS {COMPLAINTS} (
    ds DATE,
    complaint_id BIGINT,
    kind VARCHAR,
    label VARCHAR,
    label_source VARCHAR,
    keyphrases VARCHAR[],
    size BIGINT,
    share DOUBLE,
    n_with_reason BIGINT,
    distinct_users BIGINT,
    example_ids VARCHAR[],
    quotes VARCHAR[],
    topic_counts VARCHAR,
    cluster_counts VARCHAR,
    centroid FLOAT[],
    window_start DATE,
    model_id VARCHAR
)
"""

# The group of every complaint of the window: also in cluster_assignments.complaint_id, kept
# here with the score and what decided it (text, reason, both), and for events no topic holds.
COMPLAINT_ASSIGNMENTS_DDL = f"""
CREATE TABLE IF NOT EXISTS {COMPLAINT_ASSIGNMENTS} (
    ds DATE,
    feedback_id VARCHAR,
    complaint_id BIGINT,
    kind VARCHAR,
    similarity DOUBLE,
    source VARCHAR
)
"""

# Content-hash cache of complaint sentence vectors (`embedding.text_hash`): a rerun embeds
# nothing.
COMPLAINT_VECTORS_DDL = vector_cache_ddl(COMPLAINT_VECTORS)
