"""Feedback events as vector store points: payloads, and the idempotent sync of one day.

A payload holds only redacted text and metadata (no user id, no response, no raw messages):
what search shows and filters on. `cluster_id` and `topic_id` are not part of it: the clustering
stage sets them with `set_payloads`, and a rerun of the day keeps the ids already set.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from feedback_pipelines.vectorstore.base import PointTuple, VectorStore, iso_date, point_id

#: Payload fields written for every point (cluster_id is added later by clustering).
PAYLOAD_FIELDS = (
    "feedback_id", "trace_id", "session_id", "ds", "timestamp", "model_version",
    "prompt_version", "kind", "reason", "score", "is_negative", "user_role", "text",
    "embedding_model",
)  # fmt: skip


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


def feedback_points(events: pd.DataFrame, rows: pd.DataFrame, ds: str) -> list[PointTuple]:
    """Points for a day: `rows` (feedback_embeddings) joined to `events` (feedback_events).

    Args:
        events: The day's feedback events (`read_day_events`).
        rows: The day's embeddings: feedback_id, model_id, text, vector.
        ds: The day.
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
    found = rows["feedback_id"].isin(events["feedback_id"]).to_numpy()
    columns = {f: meta[f].to_numpy(dtype=object) for f in fields}
    points: list[PointTuple] = []
    for i, (fid, model_id, text, vector) in enumerate(
        zip(rows["feedback_id"], rows["model_id"], rows["text"], rows["vector"], strict=True)
    ):
        payload = {"feedback_id": fid, "ds": day, "text": text, "embedding_model": model_id}
        if found[i]:
            for f in fields:
                payload[f] = _value(columns[f][i])
        points.append((point_id(fid), np.asarray(vector, dtype=np.float32), payload))
    return points


#: Payload fields the clustering stage sets, which a rerun of the day keeps.
CLUSTER_FIELDS = ("cluster_id", "topic_id")

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
    return SyncResult(upserted, len(stale), kept, store.count({"ds": day}))


@dataclass
class ClusterWrite:
    """What `write_cluster_ids` did: payloads written, already right, and events with no point."""

    written: int
    unchanged: int
    missing: int
    read: int = 0  # points whose ids were read from the store (the rest: the sync mark's)


def assignments_digest(assignments: pd.DataFrame) -> str:
    """The rows (feedback_id, cluster_id, topic_id) as one string, whatever their order."""
    frame = pd.DataFrame(
        {
            "feedback_id": assignments["feedback_id"].astype(str),
            "cluster_id": assignments["cluster_id"].astype("int64"),
            "topic_id": assignments["topic_id"].astype("int64"),
        }
    )
    rows = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return f"{len(rows)}:{int(rows.sum(dtype=np.uint64))}"


def _ids(assignments: pd.DataFrame) -> dict[str, dict[str, int]]:
    return {
        fid: {"cluster_id": cid, "topic_id": tid}
        for fid, cid, tid in zip(
            assignments["feedback_id"].astype(str).tolist(),
            assignments["cluster_id"].astype("int64").tolist(),
            assignments["topic_id"].astype("int64").tolist(),
            strict=True,
        )
    }


def write_cluster_ids(
    store: VectorStore,
    window: tuple[str, str],
    assignments: pd.DataFrame,
    previous: tuple[str, pd.DataFrame] | None = None,
) -> ClusterWrite:
    """Set `cluster_id` and `topic_id` of the window's points to `assignments`' (one per event).

    Only points whose ids differ from what the store holds are written: most of a window keeps
    its subtopic from one day to the next, and rewriting a payload costs far more than reading
    two fields. Points outside the window keep the ids of the last window they were in.

    What the store holds is read from it (every point of the window, found by the
    `feedback_id` it holds), unless the collection's sync mark says it holds `previous` (the
    last window's day and assignments) in full: then only the window's last day is read and
    the rest is `previous` (1.4M points: ~45 s of reading). The mark goes before the first
    write and comes back, for this window, after the last, when every event had a point: a
    write cut short leaves none.

    Args:
        store: The collection.
        window: First and last day.
        assignments: Every event of the window: feedback_id, cluster_id, topic_id.
        previous: The last clustered day before this window's last and its assignments.
    """
    wanted = _ids(assignments)
    mark = store.sync_mark()
    store.set_sync_mark(None)
    held = None
    if previous is not None and mark == {
        "ds": previous[0],
        "digest": assignments_digest(previous[1]),
    }:
        held = _held_since(store, window[1], wanted, previous[1])
    read = sum(pid is not None for pid, _ in held.values()) if held is not None else 0
    if held is None:  # no mark, or not this one: read what every point holds
        in_window = {"ds": {"gte": window[0], "lte": window[1]}}
        held = {}
        for pid, fields in store.fields(in_window, ("feedback_id", *CLUSTER_FIELDS)).items():
            fid = fields.pop("feedback_id", None)
            if fid in wanted:
                held[fid] = (pid, fields)
        read = len(held)
    changed = {
        pid or point_id(fid): wanted[fid] for fid, (pid, ids) in held.items() if ids != wanted[fid]
    }
    store.set_payloads(changed)
    if len(held) == len(wanted):  # every event has its point, which holds its ids
        store.set_sync_mark({"ds": window[1], "digest": assignments_digest(assignments)})
    return ClusterWrite(len(changed), len(held) - len(changed), len(wanted) - len(held), read)


def _held_since(
    store: VectorStore, day: str, wanted: dict, previous: pd.DataFrame
) -> dict[str, tuple[str | None, dict]] | None:
    """Feedback id -> (point id or None, ids held).

    The day's points as read, the rest as `previous` left them; None when an event of the
    window is in neither (then everything is read).
    """
    held: dict[str, tuple[str | None, dict]] = {}
    for pid, fields in store.fields({"ds": day}, ("feedback_id", *CLUSTER_FIELDS)).items():
        fid = fields.pop("feedback_id", None)
        if fid in wanted:
            held[fid] = (pid, fields)
    before = _ids(previous)
    for fid in wanted:
        if fid not in held:
            ids = before.get(fid)
            if ids is None:
                return None
            held[fid] = (None, ids)
    return held


def _day_before(day: str) -> str:
    return (date.fromisoformat(day) - timedelta(days=1)).isoformat()
