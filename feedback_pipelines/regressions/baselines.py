"""Which version each candidate is compared with: the one released just before, or a pinned one."""

from __future__ import annotations

import math
from collections.abc import Iterable

import pandas as pd


def find_baselines(
    first_seen: pd.Series | dict[str, object],
    present: Iterable[str],
    override: str | None = None,
    label: str = "version",
) -> pd.DataFrame:
    """Decide what each version in the window is compared with.

    Versions are ordered by first sighting (ties by name). A version's baseline is the version
    first seen immediately before it; if that one has no data in the window (rolled back,
    retired), the most recent earlier version that has data stands in, with a note. The first
    version ever seen has nothing to be compared with and is not a candidate. With `override`,
    every other version is compared with the configured one.

    A version that ends up neither compared nor used as a baseline (the only version in the
    window, or one whose predecessors all vanished) still gets a row, with `comparable` False
    and the reason in `note`, so an empty verdict is never silent.

    Args:
        first_seen: Version -> first timestamp (window or full history).
        present: Versions that have data in the window.
        override: A configured baseline version, or None.
        label: How notes name a version ("model_version", "prompt_version").

    Returns:
        Columns candidate_version, baseline_version (None if none), comparable (bool), note.
    """
    seen = pd.Series(first_seen, dtype=object)
    present_set = {str(v) for v in present if v is not None and not _isnan(v)}
    for version in present_set - set(seen.index):
        seen[version] = pd.NaT  # present but unknown history: ordered last, by name
    order = sorted(
        seen.index,
        key=lambda v: (pd.Timestamp(seen[v]) if pd.notna(seen[v]) else pd.Timestamp.max, str(v)),
    )
    rows: list[dict[str, object]] = []
    if override is not None:
        for version in order:
            if version not in present_set or version == override:
                continue
            if override in present_set:
                note = f"baseline set by configuration ({label} {override})"
                rows.append(_baseline_row(version, override, True, note))
            else:
                note = f"configured baseline {override} has no data in the window"
                rows.append(_baseline_row(version, override, False, note))
        if override in present_set and not rows:
            note = f"configured baseline {override} is the only {label} in the window"
            rows.append(_baseline_row(override, None, False, note))
        return pd.DataFrame(
            rows, columns=["candidate_version", "baseline_version", "comparable", "note"]
        )
    used: set[str] = set()
    for position, version in enumerate(order):
        if version not in present_set:
            continue
        earlier = order[:position]
        if not earlier:
            continue
        previous = earlier[-1]
        if previous in present_set:
            rows.append(_baseline_row(version, previous, True, ""))
            used.update({version, previous})
            continue
        fallback = next((v for v in reversed(earlier) if v in present_set), None)
        if fallback is None:
            note = (
                f"baseline {previous} has no data in the window and no earlier {label} "
                "has: nothing to compare with"
            )
            rows.append(_baseline_row(version, previous, False, note))
            used.add(version)
        else:
            note = (
                f"baseline {previous} has no data in the window; compared with {fallback}, "
                f"the most recent earlier {label} that has"
            )
            rows.append(_baseline_row(version, fallback, True, note))
            used.update({version, fallback})
    for version in order:
        if version in present_set and version not in used:
            note = (
                f"only {label} in the window"
                if len(present_set) == 1
                else f"first {label} seen: nothing earlier to compare with"
            )
            rows.append(_baseline_row(version, None, False, note))
    return pd.DataFrame(
        rows, columns=["candidate_version", "baseline_version", "comparable", "note"]
    )


def _baseline_row(candidate: str, baseline: str | None, comparable: bool, note: str) -> dict:
    return {
        "candidate_version": candidate,
        "baseline_version": baseline,
        "comparable": comparable,
        "note": note,
    }


def _isnan(value: object) -> bool:
    return isinstance(value, float) and math.isnan(value)
