"""One window of feedback in, topics a team can follow out.

The stages, each a short function in its own module: blend in the conversation's context
(context.py), sample distinct texts (fit.py), reduce
(reduce.py), HDBSCAN on the sample (fit.py), assign every event (assign.py), describe each
cluster with keyphrases and quotes (labels.py), give it a stable id by matching the previous
partition's clusters (lineage.py), and compute the figures people read: size, distinct users,
negative rate, first and last seen, growth over the window and a status (new, growing, stable,
faded). Pure: arrays and DataFrames in, DataFrames out; no Dagster, no database.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd

from feedback_pipelines.clustering.assign import assign_to_clusters
from feedback_pipelines.clustering.context import session_context
from feedback_pipelines.clustering.fit import (
    FitConfig,
    fit_clusters,
    select_fit_sample,
    split_emerging,
    vector_keys,
)
from feedback_pipelines.clustering.labels import LabelConfig, describe_clusters
from feedback_pipelines.clustering.lineage import assign_stable_ids
from feedback_pipelines.clustering.reduce import PCAReducer, select_reducer
from feedback_pipelines.schema import ASSIGNMENT_COLUMNS, CLUSTER_COLUMNS, NOISE

logger = logging.getLogger(__name__)

STATUSES = ("new", "growing", "stable", "faded")
EVENT_COLUMNS = ("feedback_id", "text", "user_id", "is_negative", "timestamp")
#: Optional event columns: `session_id` (conversation context), `ds` (the event's day).


@dataclass(frozen=True)
class ClusteringConfig:
    """Every knob of the window clustering, with the measured defaults.

    Attributes:
        context_weight: Share of the session's mean vector blended into each event's vector
            before clustering (context.py; 0 turns it off).
        reducer: 'umap' (default), 'pca' or 'none'.
        n_components: Dimensions after reduction.
        umap_min_points: Below this many sample points UMAP is replaced by PCA.
        neighbour_dims: Dimensions of the space nearest exemplars are searched in.
        fit: HDBSCAN and sampling settings.
        labels: Keyphrase and quote settings.
        match_threshold: Minimum centroid cosine similarity for a cluster to keep yesterday's
            id (measured on generated data: one topic on consecutive days 0.96-0.998, two
            different planted topics at most 0.66).
        growing_threshold: Growth (see `window_growth`) from which a kept cluster is
            'growing' (+0.5 = the recent half of the window has 1.5 times the early half's
            events); a kept cluster with no early events is growing too.
        growing_min_size: Clusters with fewer recent events are never called growing (small
            counts swing).
        growing_min_days: Nothing is called growing before the window spans this many days
            (one day against the next is noise, not a trend).
        seed: Seed for the reducer (the fit has its own in `fit`).
    """

    context_weight: float = 0.7
    reducer: str = "umap"
    n_components: int = 5
    umap_min_points: int = 100
    neighbour_dims: int = 64
    fit: FitConfig = field(default_factory=FitConfig)
    labels: LabelConfig = field(default_factory=LabelConfig)
    match_threshold: float = 0.8
    growing_threshold: float = 0.5
    growing_min_size: int = 10
    growing_min_days: int = 4
    seed: int = 0


@dataclass
class WindowClusters:
    """The result for one window: the two tables and what happened, for logs and metadata."""

    clusters: pd.DataFrame
    assignments: pd.DataFrame
    stats: dict = field(default_factory=dict)


def window_halves(event_days: pd.Series, start: date, end: date) -> tuple[int, int]:
    """Events in the early and in the recent half of the window's span.

    The halves are the first and last `L // 2` days of the span [start, end] (the middle day of
    an odd span counts for neither), so both cover the same number of days. The span starts at
    the first day that has data, so a young history is not read as growth.

    Args:
        event_days: The day (date) of each of the cluster's events.
        start: First day of the span.
        end: Last day of the span (the partition).
    """
    half = ((end - start).days + 1) // 2
    if half == 0 or len(event_days) == 0:
        return 0, 0
    early_end = start + timedelta(days=half - 1)
    recent_start = end - timedelta(days=half - 1)
    return int((event_days <= early_end).sum()), int((event_days >= recent_start).sum())


def window_growth(event_days: pd.Series, start: date, end: date) -> float:
    """Relative change of a cluster's volume from the window's early half to its recent half.

    ``recent / early - 1``: 0 is flat, +0.5 means half as many again, -1 means it stopped.
    NaN when the early half has no event (a topic born in the recent half has no finite
    growth; its status says it is new or growing).
    """
    early, recent = window_halves(event_days, start, end)
    return recent / early - 1.0 if early else float("nan")


def neighbour_space(
    vectors: np.ndarray, sample: np.ndarray, dims: int, seed: int = 0
) -> np.ndarray:
    """Unit vectors projected on the sample's first `dims` principal axes, re-normalized.

    Nearest-exemplar search compares every event with every sample row; in 64 dimensions
    instead of 384 that costs six times less, and the neighbours barely change (PCA keeps the
    directions along which the texts differ most).
    """
    if dims <= 0 or vectors.shape[1] <= dims or len(sample) <= dims:
        return vectors
    projected = PCAReducer(dims, seed).fit(vectors[sample]).transform(vectors)
    norms = np.linalg.norm(projected, axis=1, keepdims=True)
    return projected / np.maximum(norms, 1e-12)


def cluster_figures(
    labels: np.ndarray,
    events: pd.DataFrame,
    days: pd.Series,
    timestamps: pd.Series,
    span_start: date,
    end: date,
) -> pd.DataFrame:
    """The figures of every cluster (noise excluded), in one group-by over the window.

    Size, distinct users, negatives, first and last seen, and the events in the early and the
    recent half of the span (see `window_halves`); one pass, so the cost does not grow with the
    number of clusters.
    """
    half = ((end - span_start).days + 1) // 2
    frame = pd.DataFrame(
        {
            "cluster": labels,
            "user": events["user_id"].to_numpy(),
            "negative": events["is_negative"].fillna(False).astype(bool).to_numpy(),
            "ts": timestamps.to_numpy(),
            "early": (days <= span_start + timedelta(days=half - 1)).to_numpy() & (half > 0),
            "recent": (days >= end - timedelta(days=half - 1)).to_numpy() & (half > 0),
        }
    )
    grouped = frame[frame["cluster"] != NOISE].groupby("cluster")
    return pd.DataFrame(
        {
            "size": grouped.size(),
            "distinct_users": grouped["user"].nunique(),
            "n_negative": grouped["negative"].sum(),
            "first_seen": grouped["ts"].min(),
            "last_seen": grouped["ts"].max(),
            "early": grouped["early"].sum(),
            "recent": grouped["recent"].sum(),
        }
    )


def _event_days(events: pd.DataFrame) -> pd.Series:
    """The day of each event: its `ds` when given, else the UTC date of its timestamp."""
    if "ds" in events.columns:
        return pd.to_datetime(events["ds"]).dt.date
    return pd.to_datetime(events["timestamp"], utc=True).dt.date


def _as_date(value: object) -> date:
    return pd.Timestamp(value).date()


def _naive_utc(value: object) -> pd.Timestamp:
    """A timestamp as naive UTC (the warehouse's TIMESTAMP), whatever it came as."""
    ts = pd.Timestamp(value)
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts


def as_list(value: object) -> list:
    """A list column's value (list, numpy array, None or NaN from a table) as a plain list."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


def _empty_clusters() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in CLUSTER_COLUMNS})


def _faded_rows(previous: pd.DataFrame, faded_ids: list[int], ds: date) -> list[dict]:
    """Rows reporting, once, the previous clusters nobody continued today."""
    rows = []
    if previous is None or not faded_ids:
        return rows
    prev = previous.set_index("cluster_id", drop=False)
    for cid in faded_ids:
        p = prev.loc[cid]
        if isinstance(p, pd.DataFrame):
            p = p.iloc[0]
        if str(p.get("status", "")) == "faded":
            continue  # already reported yesterday: it stays gone
        rows.append(
            {
                "ds": ds,
                "cluster_id": int(cid),
                "label": p.get("label"),
                "label_source": p.get("label_source", "keyphrases"),
                "keyphrases": as_list(p.get("keyphrases")),
                "quotes": as_list(p.get("quotes")),
                "size": 0,
                "distinct_users": 0,
                "n_negative": 0,
                "negative_rate": np.nan,
                "first_seen": p.get("first_seen"),
                "last_seen": p.get("last_seen"),
                "status": "faded",
                "growth": -1.0,
                "previous_size": int(p.get("size", 0) or 0),
                "match_similarity": np.nan,
                "centroid": np.asarray(p["centroid"], dtype=np.float32),
            }
        )
    return rows


def cluster_window(
    events: pd.DataFrame,
    vectors: np.ndarray,
    ds: date | str,
    previous: pd.DataFrame | None = None,
    next_id: int = 0,
    config: ClusteringConfig = ClusteringConfig(),
) -> WindowClusters:
    """Cluster one trailing window and give its clusters stable ids and readable labels.

    Args:
        events: One row per feedback event of the window, with `feedback_id`, `text` (the
            embedded, redacted interaction text), `user_id`, `is_negative`, `timestamp`, and
            optionally `ds` (the event's day; derived from `timestamp` when absent).
        vectors: Unit-length embeddings, row-aligned with events (n, dim).
        ds: The partition: the window's last day.
        previous: The previous partition's `feedback_clusters` rows (at least `cluster_id`,
            `centroid`, `first_seen`, `size`, `status`, `label`...), or None on the first day.
        next_id: The first id never given before (max id so far + 1).
        config: Settings.

    Returns:
        `clusters` (CLUSTER_COLUMNS, one row per cluster plus faded ones), `assignments`
        (ASSIGNMENT_COLUMNS, one row per event, -1 for noise) and `stats`.
    """
    t0 = time.perf_counter()
    end = _as_date(ds)
    missing = [c for c in EVENT_COLUMNS if c not in events.columns]
    if missing:
        raise ValueError(f"events lack columns {missing}")
    if len(events) != len(vectors):
        raise ValueError(f"{len(events)} events but {len(vectors)} vectors")
    events = events.reset_index(drop=True)
    vectors = np.asarray(vectors, dtype=np.float32)
    n = len(events)
    stats: dict = {"events": n, "ds": end.isoformat()}
    if n == 0:
        faded = (
            _faded_rows(previous, [int(x) for x in previous["cluster_id"]], end)
            if previous is not None and len(previous)
            else []
        )
        clusters = pd.DataFrame(faded, columns=CLUSTER_COLUMNS) if faded else _empty_clusters()
        assignments = pd.DataFrame(columns=ASSIGNMENT_COLUMNS)
        return WindowClusters(clusters, assignments, {**stats, "clusters": 0})

    # 1. conversation context, then the sample: distinct vectors, bounded
    sessions = events["session_id"] if "session_id" in events.columns else None
    context = session_context(vectors, sessions, config.context_weight)
    keys = vector_keys(context)
    sample = select_fit_sample(keys, config.fit.max_sample, config.fit.max_copies, config.fit.seed)
    stats["distinct_texts"] = int(keys.max()) + 1
    stats["sample"] = len(sample)
    # 2. reduce the sample (fitted and applied to the sample only)
    t = time.perf_counter()
    reducer_name = config.reducer
    if reducer_name == "umap" and len(sample) < config.umap_min_points:
        reducer_name = "pca"  # UMAP's graph needs more points than a tiny window has
    if len(sample) <= config.n_components + 1:
        reducer_name = "none"
    reducer = select_reducer(reducer_name, config.n_components, config.seed)
    points = reducer.fit_transform(context[sample])
    stats["reducer"] = reducer.name
    stats["reduce_seconds"] = round(time.perf_counter() - t, 3)
    # 3. HDBSCAN on the sample
    t = time.perf_counter()
    fitted = fit_clusters(points, config.fit)
    event_days = _event_days(events)
    recent_start = end - timedelta(days=config.fit.emerging_days - 1)
    recent = (event_days.iloc[sample] >= recent_start).to_numpy()
    fitted = split_emerging(points, fitted, recent, vectors[sample], config.fit)
    stats["emerging"] = len(fitted.emerging)
    stats["fit_seconds"] = round(time.perf_counter() - t, 3)
    stats["min_cluster_size"] = fitted.min_cluster_size
    # 4. every event: nearest exemplars, in a cheap neighbour space
    t = time.perf_counter()
    space = neighbour_space(context, sample, config.neighbour_dims, config.seed)
    labels, strength = assign_to_clusters(fitted.labels, fitted.probabilities, space, keys, sample)
    stats["assign_seconds"] = round(time.perf_counter() - t, 3)
    # 5. labels and quotes
    t = time.perf_counter()
    texts = events["text"].fillna("").astype(str).tolist()
    described = describe_clusters(texts, vectors, labels, config.labels)
    stats["label_seconds"] = round(time.perf_counter() - t, 3)
    # 6. stable ids
    lineage = assign_stable_ids(
        list(described["centroid"]), previous, next_id, config.match_threshold
    )
    local_to_id = dict(zip(described["cluster"], lineage["cluster_id"], strict=True))
    # 7. figures
    timestamps = pd.to_datetime(events["timestamp"], utc=True).dt.tz_localize(None)
    days = event_days
    span_start = min(days.min(), end)
    span_days = (end - span_start).days + 1
    prev_by_id = (
        previous.drop_duplicates("cluster_id").set_index("cluster_id")
        if previous is not None and len(previous)
        else None
    )
    figures = cluster_figures(labels, events, days, timestamps, span_start, end)
    rows = []
    for pos, d in described.iterrows():
        f = figures.loc[int(d["cluster"])]
        cid = int(lineage.at[pos, "cluster_id"])
        matched = bool(lineage.at[pos, "matched"])
        early, recent = int(f["early"]), int(f["recent"])
        growth = recent / early - 1.0 if early else float("nan")
        first_seen = f["first_seen"]
        prev_size = None
        if matched and prev_by_id is not None and cid in prev_by_id.index:
            p = prev_by_id.loc[cid]
            prev_size = int(p.get("size", 0) or 0)
            if pd.notna(p.get("first_seen")):
                first_seen = min(first_seen, _naive_utc(p["first_seen"]))
        grew = (early == 0 and recent > 0) or growth >= config.growing_threshold
        if not matched:
            status = "new"
        elif grew and recent >= config.growing_min_size and span_days >= config.growing_min_days:
            status = "growing"
        else:
            status = "stable"
        rows.append(
            {
                "ds": end,
                "cluster_id": cid,
                "label": d["label"],
                "label_source": "keyphrases",
                "keyphrases": list(d["keyphrases"]),
                "quotes": list(d["quotes"]),
                "size": int(f["size"]),
                "distinct_users": int(f["distinct_users"]),
                "n_negative": int(f["n_negative"]),
                "negative_rate": float(f["n_negative"] / f["size"]),
                "first_seen": first_seen,
                "last_seen": f["last_seen"],
                "status": status,
                "growth": round(float(growth), 4) if early else np.nan,
                "previous_size": prev_size,
                "match_similarity": float(lineage.at[pos, "similarity"]),
                "centroid": d["centroid"],
            }
        )
    rows.extend(_faded_rows(previous, lineage.attrs.get("faded", []), end))
    clusters = pd.DataFrame(rows, columns=CLUSTER_COLUMNS)
    if len(clusters):
        clusters = clusters.sort_values(["size", "cluster_id"], ascending=[False, True])
        clusters = clusters.reset_index(drop=True)
    lookup = np.full(max(labels.max(initial=NOISE), 0) + 2, NOISE, dtype=np.int64)
    for local, cid in local_to_id.items():
        lookup[local] = cid
    ids = lookup[labels]  # index -1 (noise) is the last slot, which stays NOISE
    assignments = pd.DataFrame(
        {
            "ds": end,
            "feedback_id": events["feedback_id"].astype(str).to_numpy(),
            "cluster_id": ids,
            "probability": np.round(strength, 4),
        }
    )
    counts = clusters["status"].value_counts().to_dict() if len(clusters) else {}
    stats.update(
        {
            "clusters": int((clusters["status"] != "faded").sum()) if len(clusters) else 0,
            "noise_share": round(float(np.mean(ids == NOISE)), 4),
            "by_status": {s: int(counts.get(s, 0)) for s in STATUSES},
            "seconds": round(time.perf_counter() - t0, 3),
        }
    )
    logger.info(
        "window ending %s: %d events, %d clusters (%s), %.0f%% noise in %.1fs",
        end,
        n,
        stats["clusters"],
        stats["by_status"],
        100 * stats["noise_share"],
        stats["seconds"],
    )
    return WindowClusters(clusters, assignments, stats)
