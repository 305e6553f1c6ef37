"""Semantic recall of feedback: "have we seen this complaint before, and where?".

`search_feedback("the SQL it wrote doesn't run on Postgres", version="nimbus-2026-11")` embeds
the query with the same model as the stored feedback, then asks the vector store for the nearest
points that pass the metadata filters. Pure module (no Dagster); the CLI `feedback-pipelines
search` is a thin shell over it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

from feedback_pipelines.embedding import Embedder, get_embedder
from feedback_pipelines.vectorstore import Hit, VectorStore, iso_date, open_store


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

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


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
    limit: int = 10,
    embedder: Embedder | str | None = None,
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
        limit: Number of hits.
        embedder: An Embedder, a backend name, or None for FEEDBACK_EMBEDDER / the default.
        store: An open store; otherwise the collection of the embedder's model is opened
            (QDRANT_URL, else the embedded store under `path`, default data/qdrant) and closed.
        path: Embedded store folder when `store` is None.
        url: Qdrant server URL when `store` is None (default QDRANT_URL).
        api_key: Qdrant API key when `store` is None (default QDRANT_API_KEY).

    Raises:
        ValueError: On an empty query or inconsistent filters.
    """
    if not query or not query.strip():
        raise ValueError("the query is empty")
    if limit < 1:
        raise ValueError("limit must be at least 1")
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
    vector = model.embed([query.strip()])[0]
    own = store is None
    if own:
        store = open_store(model.model_id, model.dim, url=url, api_key=api_key, path=path)
    try:
        hits = store.search(vector, flt, limit)
    finally:
        if own:
            store.close()
    return [to_search_hit(i + 1, h) for i, h in enumerate(hits)]
