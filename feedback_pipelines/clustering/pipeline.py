"""One window of feedback in, a two-level topic map that stays put out.

The day, in order (each stage a short module, all pure: arrays and DataFrames in and out, no
Dagster, no database):

1. blend each event's vector with its conversation's (context.py);
2. subtopics from the registry (registry.py): yesterday's events keep their subtopic, the rest
   join a frozen centroid when close enough, and only the unplaced pool of the last days gives
   birth to new subtopics; on the first day (empty registry) the whole window is fitted
   (subtopics.py); loose catch-alls are split, subtopics that became one are merged; on a
   refit day (schedule or drift) the whole window is fitted again and mapped onto the old ids;
3. themes: the live subtopics merged by Ward's criterion, then themes of alike words merged
   (themes.py), their ids kept by following yesterday's events (lineage.py);
4. labels and quotes for both levels (labels.py), figures and a true status for each id.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd

from feedback_pipelines.clustering.context import session_context
from feedback_pipelines.clustering.labels import LabelConfig, describe_clusters
from feedback_pipelines.clustering.lineage import (
    EVENTS,
    follow_groups,
    kept_shares,
    lineage_event,
)
from feedback_pipelines.clustering.registry import (
    RegistryConfig,
    births,
    cohesion,
    merge_pairs,
    place,
    refit_due,
    refit_ids,
    split_group,
)
from feedback_pipelines.clustering.subtopics import (
    SubtopicConfig,
    fit_window,
    group_means,
    normalize,
)
from feedback_pipelines.clustering.themes import ThemeConfig, themes_of_subtopics
from feedback_pipelines.schema import (
    ASSIGNMENT_COLUMNS,
    CLUSTER_COLUMNS,
    LINEAGE_COLUMNS,
    NOISE,
    REGISTRY_COLUMNS,
    TOPIC_COLUMNS,
)

logger = logging.getLogger(__name__)

STATUSES = ("new", "growing", "stable", "faded")
EVENT_COLUMNS = ("feedback_id", "text", "user_id", "is_negative", "timestamp")
#: Optional event columns: `session_id` (conversation context), `ds` (the event's day).
Embed = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class ClusteringConfig:
    """Every knob of the window's topics, with the measured defaults.

    Attributes:
        context_weight: Share of the session's mean vector blended into each event's vector
            (context.py; 0 turns it off).
        subtopics: The fine level (subtopics.py).
        registry: Day-to-day placement, births, splits and merges (registry.py).
        themes: The coarse level (themes.py).
        labels: Keyphrases and quotes (labels.py).
        keep_share: Share of yesterday's events an id must keep to be 'stable' (or, for a
            theme, to keep its id at all).
        growing_threshold: Growth (see `window_growth`) from which a kept id is 'growing'.
        growing_min_size: Ids with fewer recent events are never called growing.
        growing_min_days: Nothing is called growing before the window spans this many days.
    """

    context_weight: float = 0.7
    subtopics: SubtopicConfig = field(default_factory=SubtopicConfig)
    registry: RegistryConfig = field(default_factory=RegistryConfig)
    themes: ThemeConfig = field(default_factory=ThemeConfig)
    labels: LabelConfig = field(default_factory=LabelConfig)
    keep_share: float = 0.5
    growing_threshold: float = 0.5
    growing_min_size: int = 10
    growing_min_days: int = 4


@dataclass
class PreviousDay:
    """What earlier days left: the only input a day's ids depend on besides its own events.

    Attributes:
        registry: `topic_registry` rows of the latest earlier day (cluster_id, centroid, born,
            retired, topic_id); retired ids are kept so they are never given again.
        clusters: That day's `feedback_clusters` rows (first_seen, status, labels), or None.
        topics: That day's `feedback_topics` rows, or None.
        assignments: That day's `cluster_assignments` (feedback_id, cluster_id, topic_id).
        next_cluster_id: First subtopic id never given before.
        next_topic_id: First theme id never given before.
    """

    registry: pd.DataFrame | None = None
    clusters: pd.DataFrame | None = None
    topics: pd.DataFrame | None = None
    assignments: pd.DataFrame | None = None
    next_cluster_id: int = 0
    next_topic_id: int = 0


@dataclass
class WindowTopics:
    """A day's tables (schema.py column orders) and what happened, for logs and metadata."""

    clusters: pd.DataFrame
    topics: pd.DataFrame
    assignments: pd.DataFrame
    lineage: pd.DataFrame
    registry: pd.DataFrame
    stats: dict = field(default_factory=dict)

    def as_previous(self) -> PreviousDay:
        """What this day leaves for the next, kept in memory (replays, benches, tests).

        The daily job reads the same from the warehouse (`store.read_previous`).
        """

        def next_id(frame: pd.DataFrame, column: str) -> int:
            ids = pd.to_numeric(frame[column], errors="coerce").dropna() if len(frame) else []
            return int(max(ids, default=-1)) + 1

        return PreviousDay(
            registry=self.registry,
            clusters=self.clusters,
            topics=self.topics,
            assignments=self.assignments,
            next_cluster_id=next_id(self.registry, "cluster_id"),
            next_topic_id=next_id(self.topics, "topic_id"),
        )


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


def _alive(registry: pd.DataFrame | None) -> tuple[np.ndarray, np.ndarray]:
    """(ids, unit frozen centroids) of the registry's live subtopics."""
    if registry is None or not len(registry):
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
    live = registry[registry["retired"].isna()].sort_values("cluster_id")
    if not len(live):
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
    cents = np.stack([np.asarray(c, dtype=np.float32) for c in live["centroid"]])
    return live["cluster_id"].to_numpy(dtype=np.int64), normalize(cents)


def _previous_of(events: pd.DataFrame, frame: pd.DataFrame | None, column: str) -> np.ndarray:
    """Yesterday's `column` (an id) of each event, -1 when it had none."""
    if frame is None or not len(frame) or column not in frame.columns:
        return np.full(len(events), NOISE, dtype=np.int64)
    ids = frame.drop_duplicates("feedback_id").set_index("feedback_id")[column]
    mapped = events["feedback_id"].astype(str).map(ids)
    return pd.to_numeric(mapped, errors="coerce").fillna(NOISE).to_numpy(dtype=np.int64)


def _status(
    born: bool, kept: float | None, early: int, recent: int, span_days: int, c: ClusteringConfig
) -> str:
    """The true status of a live id.

    'new' when born today or when it kept too few of yesterday's events to be the same id;
    'growing' when it came back (no event yesterday) or its volume rose; else 'stable'.
    """
    if born or (kept is not None and kept < c.keep_share):
        return "new"
    if kept is None:
        return "growing"
    grew = (early == 0 and recent > 0) or (
        early > 0 and recent / early - 1.0 >= c.growing_threshold
    )
    if grew and recent >= c.growing_min_size and span_days >= c.growing_min_days:
        return "growing"
    return "stable"


def _kept_label(previous: pd.Series, keyphrases: Sequence[str], label: str) -> str:
    """Yesterday's keyphrase label while every phrase of it is still among today's keyphrases.

    The phrases' order moves with each day's counts: the demo's SQL theme read "query, invoices,
    subquery", "query, subquery, invoices" and "query, subquery, postgresql" on three days.
    """
    old = previous.get("label")
    if previous.get("label_source", "keyphrases") != "keyphrases" or not isinstance(old, str):
        return label
    return old if set(old.split(", ")) <= set(keyphrases) else label


def _rows(
    level_ids: np.ndarray,
    described: pd.DataFrame,
    figures: pd.DataFrame,
    born: set[int],
    kept: dict[int, float],
    previous: pd.DataFrame | None,
    id_col: str,
    end: date,
    span_days: int,
    config: ClusteringConfig,
) -> list[dict]:
    """The figures, labels and status of each live id of one level."""
    prev = (
        previous.drop_duplicates(id_col).set_index(id_col)
        if previous is not None and len(previous)
        else None
    )
    by_id = described.set_index("cluster")
    rows = []
    for i in level_ids:
        i = int(i)
        f, d = figures.loc[i], by_id.loc[i]
        early, recent = int(f["early"]), int(f["recent"])
        first_seen, prev_size, label = f["first_seen"], None, d["label"]
        if prev is not None and i in prev.index:
            p = prev.loc[i]
            prev_size = int(p.get("size", 0) or 0)
            if pd.notna(p.get("first_seen")):
                first_seen = min(first_seen, _naive_utc(p["first_seen"]))
            label = _kept_label(p, d["keyphrases"], label)
        rows.append(
            {
                "ds": end,
                id_col: i,
                "label": label,
                "label_source": "keyphrases",
                "keyphrases": list(d["keyphrases"]),
                "quotes": list(d["quotes"]),
                "size": int(f["size"]),
                "distinct_users": int(f["distinct_users"]),
                "n_negative": int(f["n_negative"]),
                "negative_rate": float(f["n_negative"] / f["size"]),
                "first_seen": first_seen,
                "last_seen": f["last_seen"],
                "status": _status(i in born, kept.get(i), early, recent, span_days, config),
                "growth": round(recent / early - 1.0, 4) if early else np.nan,
                "previous_size": prev_size,
                "kept_share": kept.get(i, np.nan),
                "centroid": d["centroid"],
            }
        )
    return rows


def _faded(previous: pd.DataFrame | None, ids: set[int], id_col: str, end: date) -> list[dict]:
    """Rows reporting, once, yesterday's live ids that have no event today."""
    if previous is None or not len(previous) or not ids:
        return []
    rows = []
    for _, p in previous.drop_duplicates(id_col).iterrows():
        if int(p[id_col]) not in ids or str(p.get("status", "")) == "faded":
            continue
        row = {c: p.get(c) for c in previous.columns}
        row.update(
            ds=end, size=0, distinct_users=0, n_negative=0, negative_rate=np.nan,
            status="faded", growth=-1.0, previous_size=int(p.get("size", 0) or 0),
            kept_share=0.0, keyphrases=as_list(p.get("keyphrases")),
            quotes=as_list(p.get("quotes")),
        )  # fmt: skip
        rows.append(row)
    return rows


def _frame(rows: list[dict], columns: list[str], sort: str) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=columns)
    if len(frame):
        frame = frame.sort_values(["size", sort], ascending=[False, True]).reset_index(drop=True)
    return frame


def cluster_window(
    events: pd.DataFrame,
    vectors: np.ndarray,
    ds: date | str,
    previous: PreviousDay | None = None,
    config: ClusteringConfig = ClusteringConfig(),
    embed: Embed | None = None,
) -> WindowTopics:
    """The window's subtopics and themes, with ids that stay put and labels a person reads.

    Args:
        events: One row per feedback event of the window: `feedback_id`, `text` (embedded,
            redacted), `user_id`, `is_negative`, `timestamp`, optionally `ds` and `session_id`.
        vectors: Unit-length embeddings, row-aligned with events (n, dim).
        ds: The partition: the window's last day.
        previous: What earlier days left (None = the first day).
        config: Settings.
        embed: The embedder (texts -> unit vectors) to re-rank keyphrase candidates; None
            keeps the c-TF-IDF order.
    """
    t0 = time.perf_counter()
    end = _as_date(ds)
    missing = [c for c in EVENT_COLUMNS if c not in events.columns]
    if missing:
        raise ValueError(f"events lack columns {missing}")
    if len(events) != len(vectors):
        raise ValueError(f"{len(events)} events but {len(vectors)} vectors")
    previous = previous or PreviousDay()
    rc = config.registry
    events = events.reset_index(drop=True)
    n = len(events)
    raw = normalize(np.asarray(vectors, dtype=np.float32))
    sessions = events["session_id"] if "session_id" in events.columns else None
    x = normalize(session_context(raw, sessions, config.context_weight)) if n else raw
    days = _event_days(events) if n else pd.Series([], dtype=object)
    stats: dict = {"events": n, "ds": end.isoformat()}
    lineage: list[dict] = []

    # -- 2. subtopics: the registry ------------------------------------------------------------
    reg = (
        previous.registry.copy()
        if previous.registry is not None
        else pd.DataFrame(columns=REGISTRY_COLUMNS)
    )
    reg_ids, reg_cents = _alive(reg)
    next_cid = int(previous.next_cluster_id)
    ids = np.full(n, NOISE, dtype=np.int64)
    centroid_of: dict[int, np.ndarray] = dict(zip(reg_ids.tolist(), reg_cents, strict=True))
    new_ids: list[int] = []
    recentred: set[int] = set()  # kept ids whose frozen centroid was replaced today
    recorded: set[int] = set()  # new ids already in a lineage event (split children, refit)
    retired: dict[int, date] = {}

    def register(cents: np.ndarray) -> np.ndarray:
        nonlocal next_cid
        out = np.arange(next_cid, next_cid + len(cents), dtype=np.int64)
        next_cid += len(cents)
        centroid_of.update(zip(out.tolist(), normalize(cents), strict=True))
        new_ids.extend(out.tolist())
        return out

    if n and not len(reg_ids):
        fit = fit_window(x, config.subtopics)
        stats["fit"] = fit.stats
        used = np.bincount(fit.labels[fit.labels >= 0], minlength=fit.n_subtopics) > 0
        remap = np.full(fit.n_subtopics, NOISE, dtype=np.int64)
        remap[used] = register(fit.centroids[used])  # a subtopic of noise only is no subject
        ids = np.where(fit.labels >= 0, remap[np.maximum(fit.labels, 0)], NOISE)
        stats["placed_on_registry"] = 0
    elif n:
        before = _previous_of(events, previous.assignments, "cluster_id")
        keep = np.isin(before, reg_ids)
        ids[keep] = before[keep]
        rest = np.flatnonzero(~keep)
        spot, _ = place(x[rest], reg_cents, rc.join_similarity)
        ids[rest] = np.where(spot >= 0, reg_ids[np.maximum(spot, 0)], NOISE)
        stats["kept_from_yesterday"] = int(keep.sum())
        stats["placed_on_registry"] = int((spot >= 0).sum())
        today = np.flatnonzero((days == end).to_numpy() & ~keep)
        unplaced = float(np.mean(ids[today] == NOISE)) if len(today) else 0.0
        stats["unplaced_share"] = round(unplaced, 4)
        first_day = min(_as_date(b) for b in reg["born"]) if len(reg) else end
        stats["refit"] = refit_due(first_day, end, unplaced, n, rc)
    if n and len(reg_ids) and stats.get("refit"):
        old = sorted(int(i) for i in reg_ids)
        ids, fitted, events_, next_cid = refit_ids(
            x, ids, old, next_cid, end, config.subtopics, rc.refit_keep_share
        )
        lineage += events_
        centroid_of.update(fitted)
        new_ids += [c for c in fitted if c not in old]
        recentred |= {c for c in fitted if c in old}
        recorded |= set(new_ids)
        retired.update((c, end) for c in old if c not in fitted)
    elif n and len(reg_ids):
        pool_start = end - timedelta(days=rc.pool_days - 1)
        pool = np.flatnonzero((ids == NOISE) & (days >= pool_start).to_numpy())
        stats["pool"] = len(pool)
        local, cents = births(x[pool], reg_cents, rc, config.subtopics)
        if len(cents):
            given = register(cents)
            ids[pool[local >= 0]] = given[local[local >= 0]]
    stats["born"] = len(new_ids)

    # repairs: loose catch-alls split, subtopics that became one merged (a refit is its own repair)
    if n and not stats.get("refit"):
        live, counts = np.unique(ids[ids >= 0], return_counts=True)
        big = counts >= max(rc.split_min_events, rc.split_share * n)
        for cid in live[big].tolist():
            members = np.flatnonzero(ids == cid)
            if cohesion(x[members], centroid_of[cid]) >= rc.split_cohesion:
                continue
            parts = split_group(x[members], rc, config.subtopics)
            if parts is None:
                continue
            child, cents = parts
            main = int(np.argmax(np.bincount(child, minlength=len(cents))))
            others = np.flatnonzero(np.arange(len(cents)) != main)
            given = np.full(len(cents), cid, dtype=np.int64)
            given[others] = register(cents[others])
            centroid_of[cid] = cents[main]  # the parent id goes on with its largest child
            recentred.add(cid)
            ids[members] = given[child]
            recorded.update(given[others].tolist())
            lineage.append(lineage_event(end, "subtopic", "split", [cid], given))
        live = np.unique(ids[ids >= 0])
        pos = np.searchsorted(live, ids)
        means, sizes = group_means(x, np.where(ids >= 0, pos, NOISE), len(live))
        older = ~np.isin(live, new_ids)  # a subtopic born today was not a duplicate at birth
        for keep_row, gone_row in merge_pairs(means[older], sizes[older], rc.merge_similarity):
            kept_id, gone_id = int(live[older][keep_row]), int(live[older][gone_row])
            ids[ids == gone_id] = kept_id
            retired[gone_id] = end
            lineage.append(lineage_event(end, "subtopic", "merged", [kept_id, gone_id], [kept_id]))
    born_set = set(new_ids) - set(retired)
    for cid in sorted(born_set - recorded):  # split and refit children have their own events
        lineage.append(lineage_event(end, "subtopic", "born", [], [cid]))
    live = np.unique(ids[ids >= 0])
    prev_live = (
        set(previous.clusters.loc[previous.clusters["status"] != "faded", "cluster_id"].astype(int))
        if previous.clusters is not None and len(previous.clusters)
        else set()
    )
    faded_ids = prev_live - set(live.tolist())
    for cid in sorted(faded_ids - set(retired)):
        lineage.append(lineage_event(end, "subtopic", "faded", [cid], []))

    # -- 3. themes -------------------------------------------------------------------------------
    pos = np.searchsorted(live, ids)
    sub_of = np.where(ids >= 0, pos, NOISE)
    means, sizes = group_means(x, sub_of, len(live))
    texts = events["text"].fillna("").astype(str).tolist()
    theme_local = themes_of_subtopics(means, sizes, texts, sub_of, config.themes, config.labels)
    ev_theme_local = np.where(ids >= 0, theme_local[np.maximum(sub_of, 0)], NOISE)
    prev_topic = _previous_of(events, previous.assignments, "topic_id")
    prev_topics_live = (
        previous.topics.loc[previous.topics["status"] != "faded", "topic_id"].astype(int).tolist()
        if previous.topics is not None and len(previous.topics)
        else []
    )
    n_themes = int(theme_local.max()) + 1 if len(theme_local) else 0
    theme_ids, theme_events, _ = follow_groups(
        prev_topic, ev_theme_local, n_themes, prev_topics_live, previous.next_topic_id, end,
        "theme", config.keep_share,
    )  # fmt: skip
    lineage = [e for e in theme_events] + lineage
    topic_ids = np.where(ids >= 0, theme_ids[np.maximum(ev_theme_local, 0)], NOISE)
    topic_of_sub = dict(zip(live.tolist(), theme_ids[theme_local].tolist(), strict=True))

    # -- 4. labels, figures, status -------------------------------------------------------------
    t = time.perf_counter()
    sub_desc = describe_clusters(texts, raw, ids, config.labels, embed)
    theme_desc = describe_clusters(texts, raw, topic_ids, config.labels, embed)
    stats["label_seconds"] = round(time.perf_counter() - t, 3)
    timestamps = (
        pd.to_datetime(events["timestamp"], utc=True).dt.tz_localize(None)
        if n
        else pd.Series([], dtype="datetime64[ns]")
    )
    span_start = min(days.min(), end) if n else end
    span_days = (end - span_start).days + 1
    prev_cluster = _previous_of(events, previous.assignments, "cluster_id")
    sub_kept = kept_shares(prev_cluster, ids)
    theme_kept = kept_shares(prev_topic, topic_ids)
    theme_born = {int(e["to_ids"][0]) for e in theme_events if e["event"] == "born"}
    sub_rows = _rows(
        live, sub_desc, cluster_figures(ids, events, days, timestamps, span_start, end),
        born_set, sub_kept, previous.clusters, "cluster_id", end, span_days, config,
    )  # fmt: skip
    for row in sub_rows:
        cid = row["cluster_id"]
        row["topic_id"] = topic_of_sub[cid]
        row["match_similarity"] = float(
            normalize(means[np.searchsorted(live, cid)][None])[0] @ centroid_of[cid]
        )
    sub_rows += _faded(previous.clusters, faded_ids, "cluster_id", end)
    clusters = _frame(sub_rows, CLUSTER_COLUMNS, "cluster_id")
    live_themes = np.unique(topic_ids[topic_ids >= 0])
    theme_rows = _rows(
        live_themes, theme_desc,
        cluster_figures(topic_ids, events, days, timestamps, span_start, end),
        theme_born, theme_kept, previous.topics, "topic_id", end, span_days, config,
    )  # fmt: skip
    for row in theme_rows:
        members = [c for c, tid in topic_of_sub.items() if tid == row["topic_id"]]
        row["cluster_ids"] = sorted(members, key=lambda c: -int((ids == c).sum()))
    gone_themes = set(prev_topics_live) - set(live_themes.tolist())
    theme_rows += _faded(previous.topics, gone_themes, "topic_id", end)
    topics = _frame(theme_rows, TOPIC_COLUMNS, "topic_id")

    probability = np.zeros(n, dtype=np.float64)
    if n and len(live):
        cents = np.stack([centroid_of[int(c)] for c in live])
        rows_ = np.flatnonzero(ids >= 0)
        probability[rows_] = np.einsum("ij,ij->i", x[rows_], cents[sub_of[rows_]])
    assignments = pd.DataFrame(
        {
            "ds": end,
            "feedback_id": events["feedback_id"].astype(str).to_numpy(),
            "cluster_id": ids,
            "topic_id": topic_ids,
            "probability": np.round(probability, 4),
            "complaint_id": pd.array([None] * n, dtype="Int64"),
        },
        columns=ASSIGNMENT_COLUMNS,
    )
    registry = _next_registry(reg, centroid_of, new_ids, retired, topic_of_sub, end, recentred)
    lineage_frame = pd.DataFrame(lineage, columns=LINEAGE_COLUMNS)
    by_status = clusters["status"].value_counts().to_dict() if len(clusters) else {}
    stats.update(
        clusters=len(live),
        themes=len(live_themes),
        noise_share=round(float(np.mean(ids == NOISE)), 4) if n else 0.0,
        max_share=round(float(np.bincount(sub_of[sub_of >= 0]).max() / n), 4) if len(live) else 0.0,
        by_status={s: int(by_status.get(s, 0)) for s in STATUSES},
        lineage={e: int(sum(r["event"] == e for r in lineage)) for e in EVENTS},
        seconds=round(time.perf_counter() - t0, 3),
    )  # fmt: skip
    logger.info(
        "window ending %s: %d events, %d subtopics in %d themes (%s), %.0f%% noise in %.1fs",
        end, n, stats["clusters"], stats["themes"], stats["by_status"],
        100 * stats["noise_share"], stats["seconds"],
    )  # fmt: skip
    return WindowTopics(clusters, topics, assignments, lineage_frame, registry, stats)


def _next_registry(
    reg: pd.DataFrame,
    centroid_of: dict[int, np.ndarray],
    new_ids: list[int],
    retired: dict[int, date],
    topic_of_sub: dict[int, int],
    end: date,
    recentred: set[int] = frozenset(),
) -> pd.DataFrame:
    """Yesterday's registry with today's births, retirements, new centroids and themes.

    One row per id ever; a split's parent and the ids a refit kept take their new centroid.
    """
    rows = reg[list(REGISTRY_COLUMNS[1:])].copy() if len(reg) else None
    fresh = pd.DataFrame(
        {
            "cluster_id": np.asarray(new_ids, dtype=np.int64),
            "centroid": [centroid_of[i] for i in new_ids],
            "born": [end] * len(new_ids),
            "retired": [None] * len(new_ids),
            "topic_id": [None] * len(new_ids),
        }
    )
    out = fresh if rows is None else pd.concat([rows.astype(object), fresh.astype(object)])
    out = out.reset_index(drop=True)
    out["cluster_id"] = out["cluster_id"].astype(np.int64)
    for cid, day in retired.items():
        out.loc[out["cluster_id"] == cid, "retired"] = day
    for cid in recentred:
        out.loc[out["cluster_id"] == cid, "centroid"] = pd.Series(
            [centroid_of[cid]], index=out.index[out["cluster_id"] == cid], dtype=object
        )
    themes = out["cluster_id"].map(topic_of_sub).astype(object)
    out["topic_id"] = themes.where(themes.notna(), out["topic_id"].astype(object))
    out.insert(0, "ds", end)
    return out[list(REGISTRY_COLUMNS)].sort_values("cluster_id").reset_index(drop=True)
