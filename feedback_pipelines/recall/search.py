"""Semantic recall of feedback: "have we seen this complaint before, and where?".

`search_feedback("the SQL it wrote doesn't run on Postgres", version="nimbus-2026-11")` embeds
the query with the same model as the stored feedback, then asks the vector store for the nearest
points that pass the metadata filters. Pure module (no Dagster); the CLI `feedback-pipelines
search` is a thin shell over it.

With a warehouse connection, `complaint=` keeps only feedback in a "what went wrong" group (an
id, or a kind such as "off_topic": `complaint_assignments`, each event's latest partition), and
every hit is placed as theme > subtopic > complaint (`topic_label`, `cluster_label`,
`complaint_label`) from the latest partition that clustered it; a table or column the warehouse
does not have yet (themes arrive with the two-level topics) leaves its fields None.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from feedback_pipelines.embedding import Embedder, get_embedder
from feedback_pipelines.schema import ASSIGNMENTS, CLUSTERS, COMPLAINT_ASSIGNMENTS, COMPLAINTS
from feedback_pipelines.tables import table_columns
from feedback_pipelines.vectorstore import Hit, VectorStore, iso_date, open_store

#: The themes table of the two-level topics (CONTRACT section 3).
TOPICS = "feedback_topics"


@dataclass(frozen=True)
class SearchHit:
    """One feedback event found by meaning, with what a person needs to judge it."""

    rank: int
    score: float
    feedback_id: str
    ds: str | None
    model_version: str | None
    prompt_version: str | None
    kind: str | None
    reason: str | None
    is_negative: bool | None
    cluster_id: int | None
    text: str
    trace_id: str | None
    session_id: str | None
    point_id: str
    topic_id: int | None = None
    topic_label: str | None = None
    cluster_label: str | None = None
    complaint_id: int | None = None
    complaint_kind: str | None = None
    complaint_label: str | None = None

    @property
    def path(self) -> str:
        """Where the hit sits: "theme > subtopic > complaint", the levels that are known."""
        parts = [self.topic_label, self.cluster_label, self.complaint_label]
        return " > ".join(p for p in parts if p)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (with `path`)."""
        return {**asdict(self), "path": self.path}


def _values(value: str | Iterable[str] | None) -> list[str] | str | None:
    """None, one value, or several (a list, or a comma-separated string)."""
    if value is None:
        return None
    items = [value] if isinstance(value, str) else list(value)
    flat = [part.strip() for item in items for part in str(item).split(",") if part.strip()]
    if not flat:
        return None
    return flat[0] if len(flat) == 1 else flat


def build_filter(
    *,
    version: str | Iterable[str] | None = None,
    prompt_version: str | Iterable[str] | None = None,
    kind: str | Iterable[str] | None = None,
    reason: str | Iterable[str] | None = None,
    since: str | date | None = None,
    until: str | date | None = None,
    cluster: int | Iterable[int] | None = None,
    negative: bool | None = None,
    user_role: str | Iterable[str] | None = None,
) -> dict[str, Any]:
    """The vector store filter for the search options (all conditions must hold).

    Args:
        version: Model version(s).
        prompt_version: Prompt version(s).
        kind: Feedback kind(s), e.g. "thumbs_down,correction".
        reason: Reason(s), e.g. "factual_error".
        since: First day (inclusive), YYYY-MM-DD.
        until: Last day (inclusive), YYYY-MM-DD.
        cluster: Cluster id(s).
        negative: Only negative (True) or only non-negative (False) feedback.
        user_role: User role(s).
    """
    flt: dict[str, Any] = {
        "model_version": _values(version),
        "prompt_version": _values(prompt_version),
        "kind": _values(kind),
        "reason": _values(reason),
        "user_role": _values(user_role),
        "is_negative": negative,
    }
    if cluster is not None:
        clusters = [cluster] if isinstance(cluster, int) else [int(c) for c in cluster]
        flt["cluster_id"] = clusters[0] if len(clusters) == 1 else clusters
    if since is not None or until is not None:
        days = {}
        if since is not None:
            days["gte"] = iso_date(since)
        if until is not None:
            days["lte"] = iso_date(until)
        if "gte" in days and "lte" in days and days["gte"] > days["lte"]:
            raise ValueError(f"--since {days['gte']} is after --until {days['lte']}")
        flt["ds"] = days
    return {k: v for k, v in flt.items() if v is not None}


def to_search_hit(rank: int, hit: Hit) -> SearchHit:
    """A store hit as a SearchHit."""
    p = hit.payload
    cluster = p.get("cluster_id")
    return SearchHit(
        rank=rank,
        score=round(hit.score, 4),
        feedback_id=str(p.get("feedback_id", "")),
        ds=p.get("ds"),
        model_version=p.get("model_version"),
        prompt_version=p.get("prompt_version"),
        kind=p.get("kind"),
        reason=p.get("reason"),
        is_negative=p.get("is_negative"),
        cluster_id=int(cluster) if cluster is not None else None,
        text=str(p.get("text", "")),
        trace_id=p.get("trace_id"),
        session_id=p.get("session_id"),
        point_id=hit.id,
    )


def check_request(query: str, limit: int) -> None:
    """The checks of a search that need no store: said before a long open, not after it."""
    if not query or not query.strip():
        raise ValueError("the query is empty")
    if limit < 1:
        raise ValueError("limit must be at least 1")


def search_feedback(
    query: str,
    *,
    version: str | Iterable[str] | None = None,
    kind: str | Iterable[str] | None = None,
    reason: str | Iterable[str] | None = None,
    since: str | date | None = None,
    until: str | date | None = None,
    cluster: int | Iterable[int] | None = None,
    negative: bool | None = None,
    prompt_version: str | Iterable[str] | None = None,
    user_role: str | Iterable[str] | None = None,
    complaint: str | int | Iterable[str | int] | None = None,
    limit: int = 10,
    embedder: Embedder | str | None = None,
    warehouse: duckdb.DuckDBPyConnection | None = None,
    store: VectorStore | None = None,
    path: str | Path | None = None,
    url: str | None = None,
    api_key: str | None = None,
) -> list[SearchHit]:
    """Feedback events nearest in meaning to `query` that pass the filters, best first.

    Args:
        query: Free text; it is embedded with the same model as the stored feedback.
        version: Model version(s).
        kind: Feedback kind(s).
        reason: Reason(s).
        since: First day (inclusive).
        until: Last day (inclusive).
        cluster: Cluster id(s).
        negative: Only negative (True) or only other (False) feedback.
        prompt_version: Prompt version(s).
        user_role: User role(s).
        complaint: Complaint group id(s) or kind(s) ("off_topic", "other"); needs `warehouse`.
        limit: Number of hits.
        embedder: An Embedder, a backend name, or None for FEEDBACK_EMBEDDER / the default.
        warehouse: An open (read-only is enough) warehouse connection: for `complaint`, and to
            label each hit with its theme, subtopic and complaint.
        store: An open store; otherwise the collection of the embedder's model is opened
            (QDRANT_URL, else the embedded store under `path`, default data/qdrant) and closed.
        path: Embedded store folder when `store` is None.
        url: Qdrant server URL when `store` is None (default QDRANT_URL).
        api_key: Qdrant API key when `store` is None (default QDRANT_API_KEY).

    Raises:
        ValueError: On an empty query, inconsistent filters, or `complaint` without a warehouse.
    """
    check_request(query, limit)
    in_complaint = None
    if complaint is not None:
        if warehouse is None:
            raise ValueError("filtering by complaint needs the warehouse")
        in_complaint = complaint_feedback_ids(warehouse, complaint)
        if not in_complaint:
            return []
    model = embedder if isinstance(embedder, Embedder) else get_embedder(embedder)
    flt = build_filter(
        version=version,
        prompt_version=prompt_version,
        kind=kind,
        reason=reason,
        since=since,
        until=until,
        cluster=cluster,
        negative=negative,
        user_role=user_role,
    )
    if in_complaint is not None:
        # complaints are negative by construction; the indexed flag narrows the scan first
        flt["feedback_id"] = in_complaint
        flt.setdefault("is_negative", True)
    vector = model.embed([query.strip()])[0]
    own = store is None
    if own:
        store = open_store(model.model_id, model.dim, url=url, api_key=api_key, path=path)
    try:
        hits = store.search(vector, flt, limit)
    finally:
        if own:
            store.close()
    found = [to_search_hit(i + 1, h) for i, h in enumerate(hits)]
    return with_places(warehouse, found) if warehouse is not None else found


def _values_of(complaint: str | int | Iterable[str | int]) -> list[int | str]:
    from feedback_pipelines.clustering.complaints import resolve_complaint  # sklearn: lazily

    items = [complaint] if isinstance(complaint, str | int) else list(complaint)
    parts = [p for item in items for p in str(item).split(",") if p.strip()]
    return [resolve_complaint(p) for p in parts]


def complaint_feedback_ids(
    conn: duckdb.DuckDBPyConnection, complaint: str | int | Iterable[str | int]
) -> list[str]:
    """The feedback ids whose latest complaint group is one of `complaint` (ids or kinds).

    Raises:
        ValueError: On an unknown kind, or when the warehouse has no complaint groups yet.
    """
    wanted = _values_of(complaint)
    if COMPLAINT_ASSIGNMENTS not in table_columns(conn):
        raise ValueError(
            "no complaint groups in the warehouse yet: run the pipeline (complaint_clusters)"
        )
    ids = [w for w in wanted if isinstance(w, int)] or [None]
    kinds = [w for w in wanted if isinstance(w, str)] or [None]
    rows = conn.execute(
        "SELECT feedback_id FROM (SELECT feedback_id, arg_max(complaint_id, ds) AS cid, "
        f"arg_max(kind, ds) AS kind FROM {COMPLAINT_ASSIGNMENTS} GROUP BY feedback_id) "
        "WHERE list_contains(?, cid) OR list_contains(?, kind) ORDER BY feedback_id",
        [ids, kinds],
    ).fetchall()
    return [r[0] for r in rows]


def places(conn: duckdb.DuckDBPyConnection, feedback_ids: Iterable[str]) -> pd.DataFrame:
    """Theme, subtopic and complaint of each feedback id, from its latest partition.

    Columns: feedback_id, cluster_id, cluster_label, topic_id, topic_label, complaint_id,
    complaint_kind, complaint_label; None for what the warehouse does not hold.
    """
    columns = table_columns(conn)
    out = pd.DataFrame({"feedback_id": list(dict.fromkeys(feedback_ids))})
    for col in ("cluster_id", "cluster_label", "topic_id", "topic_label", "complaint_id",
                "complaint_kind", "complaint_label"):  # fmt: skip
        out[col] = None
    if not len(out):
        return out
    conn.register("_hit_ids", out[["feedback_id"]])
    try:
        if ASSIGNMENTS in columns:
            have = columns[ASSIGNMENTS]
            topic = "a.topic_id" if "topic_id" in have else "NULL::BIGINT"
            label = "c.label" if CLUSTERS in columns else "NULL"
            join = (
                f"LEFT JOIN {CLUSTERS} c ON c.ds = a.ds AND c.cluster_id = a.cluster_id"
                if CLUSTERS in columns
                else ""
            )
            theme = "NULL"
            if TOPICS in columns and "topic_id" in have and "label" in columns[TOPICS]:
                theme = "t.label"
                join += f" LEFT JOIN {TOPICS} t ON t.ds = a.ds AND t.topic_id = a.topic_id"
            rows = conn.execute(
                f"SELECT a.feedback_id, arg_max(a.cluster_id, a.ds), arg_max({label}, a.ds), "
                f"arg_max({topic}, a.ds), arg_max({theme}, a.ds) FROM {ASSIGNMENTS} a "
                f"JOIN _hit_ids h USING (feedback_id) {join} GROUP BY a.feedback_id"
            ).fetchall()
            found = {r[0]: r[1:] for r in rows}
            for i, fid in enumerate(out["feedback_id"]):
                if fid in found:
                    cid, clabel, tid, tlabel = found[fid]
                    out.at[i, "cluster_id"] = None if cid is None else int(cid)
                    out.at[i, "cluster_label"] = clabel
                    out.at[i, "topic_id"] = None if tid is None else int(tid)
                    out.at[i, "topic_label"] = tlabel
        if COMPLAINT_ASSIGNMENTS in columns:
            label = "c.label" if COMPLAINTS in columns else "NULL"
            join = (
                f"LEFT JOIN {COMPLAINTS} c ON c.ds = a.ds AND c.complaint_id = a.complaint_id"
                if COMPLAINTS in columns
                else ""
            )
            rows = conn.execute(
                f"SELECT a.feedback_id, arg_max(a.complaint_id, a.ds), arg_max(a.kind, a.ds), "
                f"arg_max({label}, a.ds) FROM {COMPLAINT_ASSIGNMENTS} a "
                f"JOIN _hit_ids h USING (feedback_id) {join} GROUP BY a.feedback_id"
            ).fetchall()
            found = {r[0]: r[1:] for r in rows}
            for i, fid in enumerate(out["feedback_id"]):
                if fid in found:
                    cid, kind, clabel = found[fid]
                    out.at[i, "complaint_id"] = None if cid is None else int(cid)
                    out.at[i, "complaint_kind"] = kind
                    out.at[i, "complaint_label"] = clabel
    finally:
        conn.unregister("_hit_ids")
    return out


def with_places(conn: duckdb.DuckDBPyConnection, hits: list[SearchHit]) -> list[SearchHit]:
    """The hits with their theme, subtopic and complaint filled in from the warehouse."""
    if not hits:
        return hits
    from dataclasses import replace

    table = places(conn, [h.feedback_id for h in hits]).set_index("feedback_id")
    out = []
    for h in hits:
        row = table.loc[h.feedback_id]
        out.append(
            replace(
                h,
                cluster_id=h.cluster_id if row["cluster_id"] is None else row["cluster_id"],
                cluster_label=row["cluster_label"],
                topic_id=row["topic_id"],
                topic_label=row["topic_label"],
                complaint_id=row["complaint_id"],
                complaint_kind=row["complaint_kind"],
                complaint_label=row["complaint_label"],
            )
        )
    return out
