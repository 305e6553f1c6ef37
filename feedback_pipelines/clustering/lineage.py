"""What became of each id from one day to the next: `topic_lineage` events and kept shares.

Subtopic ids are kept by construction (the registry places events and moves them only in a
split, where the parent's id goes on with its largest child, or a merge), so their events are
written where they happen (born, split, merged, faded: registry.py); a refit re-cuts the window
and follows its old ids with `follow_groups` at the subtopic level. Themes
are re-merged every day from the subtopics, so their ids are kept by following the events:
a theme keeps yesterday's id when the two are each other's main successor/predecessor and it
holds most (`keep_share`) of yesterday's events that are still in the window. That rule is also
what makes `status` true: an id is 'stable' only when it kept most of its events.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

LEVELS = ("theme", "subtopic")
EVENTS = ("born", "split", "merged", "faded")


def lineage_event(ds, level: str, event: str, from_ids, to_ids) -> dict:
    """One `topic_lineage` row."""
    assert level in LEVELS and event in EVENTS, (level, event)
    return {
        "ds": ds,
        "level": level,
        "event": event,
        "from_ids": sorted(int(i) for i in from_ids),
        "to_ids": sorted(int(i) for i in to_ids),
    }


def kept_shares(previous: np.ndarray, today: np.ndarray) -> dict[int, float]:
    """Per id of yesterday: share of its events still in the window that carry it today."""
    both = pd.DataFrame({"prev": previous, "today": today})
    both = both[both["prev"] >= 0]
    if not len(both):
        return {}
    same = (both["prev"] == both["today"]).groupby(both["prev"]).mean()
    return {int(k): float(v) for k, v in same.items()}


def follow_groups(
    previous: np.ndarray,
    today: np.ndarray,
    n_today: int,
    previous_ids: list[int],
    next_id: int,
    ds,
    level: str = "theme",
    keep_share: float = 0.5,
    part_share: float = 0.2,
) -> tuple[np.ndarray, list[dict], int]:
    """Ids for today's groups by following yesterday's events, and the lineage events.

    Args:
        previous: Yesterday's id of each event present on both days (-1 = none).
        today: Today's local group 0..n_today-1 of the same events (-1 = none).
        n_today: Today's groups.
        previous_ids: Yesterday's live ids (those not followed by anyone are 'faded').
        next_id: First id never given.
        ds: The day (for the lineage rows).
        level: 'theme' or 'subtopic'.
        keep_share: Share of yesterday's events an id must keep to continue.
        part_share: Share of yesterday's events from which a part counts in a split or merge.

    Returns:
        (id of each local group, lineage rows, next unused id).
    """
    prev_ids = sorted({int(i) for i in previous_ids} | {int(i) for i in previous[previous >= 0]})
    row = {p: r for r, p in enumerate(prev_ids)}
    both = (previous >= 0) & (today >= 0)
    m = np.zeros((len(prev_ids), n_today))
    if both.any():
        np.add.at(m, (np.array([row[int(p)] for p in previous[both]]), today[both]), 1)
    out = np.full(n_today, -1, dtype=np.int64)
    totals = m.sum(axis=1)
    best_t = m.argmax(axis=1) if n_today else np.zeros(len(prev_ids), dtype=int)
    best_o = m.argmax(axis=0) if len(prev_ids) else np.zeros(n_today, dtype=int)
    for r, p in enumerate(prev_ids):
        t = best_t[r] if n_today else -1
        if t >= 0 and totals[r] > 0 and best_o[t] == r and m[r, t] >= keep_share * totals[r]:
            out[t] = p
    for t in range(n_today):
        if out[t] < 0:
            out[t] = next_id
            next_id += 1
    events = []
    continued: set[int] = set()
    reached: set[int] = set()
    for r, p in enumerate(prev_ids):
        parts = np.flatnonzero((m[r] >= part_share * totals[r]) & (m[r] > 0))
        if len(parts) >= 2:
            events.append(lineage_event(ds, level, "split", [p], out[parts]))
            continued.add(p)
            reached |= {int(i) for i in out[parts]}
    for t in range(n_today):
        sources = [
            r for r in range(len(prev_ids))
            if best_t[r] == t and m[r, t] > 0 and m[r, t] >= part_share * totals[r]
        ]  # fmt: skip
        if len(sources) >= 2:
            events.append(
                lineage_event(ds, level, "merged", [prev_ids[r] for r in sources], [out[t]])
            )
            continued |= {prev_ids[r] for r in sources}
            reached.add(int(out[t]))
    kept = set(int(i) for i in out) & set(prev_ids)
    for p in prev_ids:
        if p not in kept and p not in continued:
            events.append(lineage_event(ds, level, "faded", [p], []))
    for i in out:
        if int(i) not in kept and int(i) not in reached:
            events.append(lineage_event(ds, level, "born", [], [i]))
    return out, events, next_id
