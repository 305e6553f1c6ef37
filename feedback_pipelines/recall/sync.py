"""Feedback events as vector store points: payloads, and the idempotent sync of one day.

A payload holds only redacted text and metadata (no user id, no response, no raw messages):
what search shows and filters on, with the event's `cluster_id` and `topic_id` once the day's
window is clustered. The day's points are written with them; the window's earlier points get
theirs with `set_payloads`, only where they changed. Written without them (no clustering yet),
a point keeps the ids it held.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from feedback_pipelines.vectorstore.base import PointTuple, VectorStore, iso_date, point_id

#: Payload fields written for every point (and `CLUSTER_FIELDS` once the day is clustered).
PAYLOAD_FIELDS = (
    "feedback_id", "trace_id", "session_id", "ds", "timestamp", "model_version",
    "prompt_version", "kind", "reason", "score", "is_negative", "user_role", "text",
    "embedding_model",
)  # fmt: skip


#: Payload fields of the event's subtopic and theme (-1: noise), from `cluster_assignments`.
CLUSTER_FIELDS = ("cluster_id", "topic_id")


def _cluster_ids(clusters: pd.DataFrame | None, feedback_ids: pd.Series) -> list:
    """(cluster_id, topic_id) as ints for each feedback id, None for one not assigned."""
    if clusters is None or not len(clusters):
        return [None] * len(feedback_ids)
    known = clusters.drop_duplicates("feedback_id").set_index("feedback_id")
    known = known.reindex(feedback_ids.to_numpy())
    assigned = known["cluster_id"].notna().to_numpy()
    pairs = zip(*(known[f].fillna(0).astype("int64").tolist() for f in CLUSTER_FIELDS))
    return [p if a else None for p, a in zip(pairs, assigned, strict=True)]


def _value(value: Any) -> Any:
    """A JSON-friendly payload value (None for NaN/NA; ISO strings for times)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def _payload_column(values: pd.Series) -> list:
    """A column as payload values (see `_value`), converted a column at a time, not a cell."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return [None if v is pd.NaT else v.isoformat() for v in values]
    out = values.astype(object).where(values.notna(), None).tolist()
    if values.dtype == object and not all(v is None or type(v) is str for v in out):
        return [_value(v) for v in out]  # not a column of strings: cell by cell
    return out


def feedback_points(
    events: pd.DataFrame,
    rows: pd.DataFrame,
    ds: str,
    clusters: pd.DataFrame | None = None,
) -> list[PointTuple]:
    """Points for a day: `rows` (feedback_embeddings) joined to `events` (feedback_events).

    Args:
        events: The day's feedback events (`read_day_events`).
        rows: The day's embeddings: feedback_id, model_id, text, vector.
        ds: The day.
        clusters: Assignments (feedback_id, cluster_id, topic_id) of the window ending `ds`:
            each point of an assigned event holds its ids.
    """
    if rows.empty:
        return []
    day = iso_date(ds)
    fields = [
        "trace_id", "session_id", "timestamp", "model_version", "prompt_version", "kind",
        "reason", "score", "is_negative", "user_role",
    ]  # fmt: skip
    meta = events.drop_duplicates("feedback_id").set_index("feedback_id")
    meta = meta.reindex(columns=fields).reindex(rows["feedback_id"])
    found = rows["feedback_id"].isin(events["feedback_id"]).tolist()
    metadata = zip(*(_payload_column(meta[f]) for f in fields), strict=True)
    ids = _cluster_ids(clusters, rows["feedback_id"])
    points: list[PointTuple] = []
    for fid, model_id, text, vector, known, values, cluster in zip(
        rows["feedback_id"],
        rows["model_id"],
        rows["text"],
        rows["vector"],
        found,
        metadata,
        ids,
        strict=True,
    ):
        payload = {"feedback_id": fid, "ds": day, "text": text, "embedding_model": model_id}
        if known:
            payload.update(zip(fields, values))
        if cluster is not None:
            payload.update(zip(CLUSTER_FIELDS, cluster))
        points.append((point_id(fid), np.asarray(vector, dtype=np.float32), payload))
    return points


# The payload fields that hold user text; the rest are ids, versions, labels and dates.
PAYLOAD_TEXT_FIELDS = ("text",)


def payload_texts(points: Sequence[PointTuple]) -> list[str]:
    """The free text of the points' payloads: what a PII scan must read (ids would cry wolf)."""
    return [p[f] for _, _, p in points for f in PAYLOAD_TEXT_FIELDS if isinstance(p.get(f), str)]


@dataclass
class SyncResult:
    """What a day's sync did."""

    upserted: int
    deleted: int  # points of the day whose event is gone (a corrected re-delivery)
    kept_cluster_ids: int
    count: int  # points of the day after the sync
    held: pd.DataFrame | None = None  # what the day's points hold now, as `_held` reads it


def sync_day(
    store: VectorStore, ds: str, points: Sequence[PointTuple], batch_size: int = 512
) -> SyncResult:
    """Make the store's points of `ds` exactly `points`: upsert, drop stale ones, keep clusters.

    The sync mark (see `write_cluster_ids`) is kept only when `ds` is the day after it: the
    next window's write then reads only `ds`. A write to any other day (a rerun, a backfill)
    may leave points the mark does not account for, so it goes.
    """
    day = iso_date(ds)
    mark = store.sync_mark()
    if mark is not None and mark.get("ds") != _day_before(day):
        store.set_sync_mark(None)
    new_ids = [pid for pid, _, _ in points]
    previous = store.fields({"ds": day}, CLUSTER_FIELDS)
    stale = sorted(set(previous) - set(new_ids))
    if stale:
        store.delete(stale)
    kept = 0
    merged: list[PointTuple] = []
    for pid, vector, payload in points:
        clusters = {k: v for k, v in previous.get(pid, {}).items() if k not in payload}
        if clusters.get("cluster_id") is not None:
            payload = {**payload, **clusters}
            kept += 1
        merged.append((pid, vector, payload))
    upserted = store.upsert(merged, batch_size=batch_size)
    held = _held_frame([pid for pid, _, _ in merged], [p for _, _, p in merged])
    return SyncResult(upserted, len(stale), kept, store.count({"ds": day}), held)


@dataclass
class ClusterWrite:
    """What `write_cluster_ids` did: payloads written, already right, and events with no point."""

    written: int
    unchanged: int
    missing: int
    read: int = 0  # points whose ids were read from the store (the rest: the sync mark's)


def _id_frame(assignments: pd.DataFrame) -> pd.DataFrame:
    """feedback_id (str), cluster_id and topic_id (int64) of each row."""
    return pd.DataFrame(
        {
            "feedback_id": assignments["feedback_id"].astype(str).to_numpy(),
            "cluster_id": assignments["cluster_id"].astype("int64").to_numpy(),
            "topic_id": assignments["topic_id"].astype("int64").to_numpy(),
        }
    )


def assignments_digest(assignments: pd.DataFrame) -> str:
    """The rows (feedback_id, cluster_id, topic_id) as one string, whatever their order."""
    rows = pd.util.hash_pandas_object(_id_frame(assignments), index=False).to_numpy()
    return f"{len(rows)}:{int(rows.sum(dtype=np.uint64))}"


def _held(store: VectorStore, filter: dict) -> pd.DataFrame:
    """point_id, feedback_id and the ids each point of `filter` holds (NA: none yet)."""
    found = store.fields(filter, ("feedback_id", *CLUSTER_FIELDS))
    return _held_frame(list(found), list(found.values()))


def _held_frame(point_ids: list[str], fields: list[Mapping[str, Any]]) -> pd.DataFrame:
    """`_held`'s frame from points' ids and payloads (or the fields read of them)."""
    return pd.DataFrame(
        {
            "point_id": point_ids,
            "feedback_id": [f.get("feedback_id") for f in fields],
            **{
                name: pd.array([f.get(name) for f in fields], dtype="Int64")
                for name in CLUSTER_FIELDS
            },
        }
    )


def write_cluster_ids(
    store: VectorStore,
    window: tuple[str, str],
    assignments: pd.DataFrame,
    previous: tuple[str, pd.DataFrame] | None = None,
    today: pd.DataFrame | None = None,
) -> ClusterWrite:
    """Set `cluster_id` and `topic_id` of the window's points to `assignments`' (one per event).

    Only points whose ids differ from what the store holds are written: most of a window keeps
    its subtopic from one day to the next, and rewriting a payload costs far more than reading
    two fields. Points outside the window keep the ids of the last window they were in.

    What the store holds is read from it (every point of the window, found by the
    `feedback_id` it holds), unless the collection's sync mark says it holds `previous` (the
    last window's day and assignments) in full: then only the window's last day is read and
    the rest is `previous` (1.4M points: ~45 s of reading). The window's last day is not read
    either when `today` says what its points hold (`SyncResult.held`: the sync just wrote
    them). The mark goes before the first write and comes back, for this window, after the
    last, when every event had a point: a write cut short leaves none.

    Args:
        store: The collection.
        window: First and last day.
        assignments: Every event of the window: feedback_id, cluster_id, topic_id.
        previous: The last clustered day before this window's last and its assignments.
        today: What the points of the window's last day hold, as `_held` reads it.
    """
    wanted = _id_frame(assignments)
    mark = store.sync_mark()
    store.set_sync_mark(None)
    held = None
    if previous is not None and mark == {
        "ds": previous[0],
        "digest": assignments_digest(previous[1]),
    }:
        held, read = _held_since(store, window[1], wanted, previous[1], today)
    if held is None:  # no mark, or not this one: read what the window's points hold
        last = "lte" if today is None else "lt"  # (the last day's: `today` says)
        held = _held(store, {"ds": {"gte": window[0], last: window[1]}})
        read = len(held)
        if today is not None:
            held = pd.concat([held, today], ignore_index=True)
    both = wanted.merge(held, on="feedback_id", suffixes=("", "_held"))
    differs = np.zeros(len(both), dtype=bool)
    for name in CLUSTER_FIELDS:
        differs |= (both[name] != both[f"{name}_held"]).fillna(True).to_numpy(dtype=bool)
    rows = both[differs]
    changed = {
        pid if isinstance(pid, str) else point_id(fid): {"cluster_id": cid, "topic_id": tid}
        for pid, fid, cid, tid in zip(
            rows["point_id"],
            rows["feedback_id"],
            rows["cluster_id"].tolist(),
            rows["topic_id"].tolist(),
            strict=True,
        )
    }
    store.set_payloads(changed)
    if len(both) == len(wanted):  # every event has its point, which holds its ids
        store.set_sync_mark({"ds": window[1], "digest": assignments_digest(assignments)})
    return ClusterWrite(len(changed), len(both) - len(changed), len(wanted) - len(both), read)


def _held_since(
    store: VectorStore,
    day: str,
    wanted: pd.DataFrame,
    previous: pd.DataFrame,
    today: pd.DataFrame | None,
) -> tuple[pd.DataFrame | None, int]:
    """What the window's points hold, and how many points were read.

    The day's points as read (or as `today` says), the rest as `previous` left them; None
    when an event of the window is in neither (then everything is read).
    """
    read = today is None
    if today is None:
        today = _held(store, {"ds": day})
    before = _id_frame(previous)
    before = before[~before["feedback_id"].isin(today["feedback_id"])]
    before = before.astype({name: "Int64" for name in CLUSTER_FIELDS})
    before.insert(0, "point_id", None)
    held = pd.concat([today, before], ignore_index=True)
    if not wanted["feedback_id"].isin(held["feedback_id"]).all():
        return None, 0
    return held, len(today) if read else 0


def _day_before(day: str) -> str:
    return (date.fromisoformat(day) - timedelta(days=1)).isoformat()
