"""The vectorized preparation of the regression frames (`compare._Prepared`) against the simple
frame-by-frame reference it replaced (`_prepare_events`, `_prepare_traces`, boolean masks)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from feedback_pipelines.regressions.compare import (
    _best_strata,
    _by_stratum,
    _Comparison,
    _prepare_events,
    _prepare_traces,
    _Prepared,
    _trace_strata,
    _unique_codes,
)


def _frames(seed: int = 0, n: int = 600) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Events and traces with the awkward cases: missing versions, prompts and trace ids,
    feedback whose trace is unknown, repeated assignment rows, noise and null clusters."""
    rng = np.random.default_rng(seed)
    models = np.array(["m1", "m2", None], dtype=object)[rng.choice(3, n, p=[0.5, 0.45, 0.05])]
    prompts = np.array(["p1", "p2", None], dtype=object)[rng.integers(0, 3, n)]
    trace_ids = np.array([f"t{i}" for i in range(n)], dtype=object)
    stamps = pd.Timestamp("2026-11-01") + pd.to_timedelta(rng.integers(0, 5 * 86400, n), "s")
    traces = pd.DataFrame(
        {
            "ds": stamps.normalize(),
            "trace_id": trace_ids,
            "timestamp": stamps,
            "model_version": models,
            "prompt_version": prompts,
            "latency_ms": np.where(rng.random(n) < 0.05, np.nan, rng.gamma(2, 400, n)),
            "abandoned": rng.random(n) < 0.1,
        }
    )
    pick = rng.integers(0, n, 2 * n)
    event_traces = trace_ids[pick].copy()
    event_traces[rng.random(2 * n) < 0.03] = None
    event_traces[rng.random(2 * n) < 0.03] = "unknown"
    events = pd.DataFrame(
        {
            "ds": traces["ds"].to_numpy()[pick],
            "feedback_id": [f"f{i}" for i in range(2 * n)],
            "trace_id": event_traces,
            "timestamp": stamps[pick],
            "kind": np.where(rng.random(2 * n) < 0.1, "correction", "thumbs"),
            "is_negative": rng.random(2 * n) < 0.2,
            "model_version": models[pick],
            "prompt_version": prompts[pick],
        }
    )
    assignments = pd.DataFrame(
        {
            "feedback_id": events["feedback_id"],
            "cluster_id": rng.integers(-1, 6, 2 * n).astype(float),
            "topic_id": rng.integers(-1, 3, 2 * n),
        }
    )
    assignments.loc[rng.random(2 * n) < 0.05, "cluster_id"] = np.nan
    again = assignments.sample(frac=0.2, random_state=seed).assign(cluster_id=5.0)
    assignments = pd.concat([assignments, again]).sample(frac=0.9, random_state=seed)
    return events, traces, assignments.reset_index(drop=True)


def test_strata_match_the_frame_by_frame_reference():
    for seed in range(3):
        events, traces, assignments = _frames(seed)
        prepared = _Prepared(events, traces)
        for column in ("cluster_id", "topic_id"):
            asg = assignments[["feedback_id", column]].rename(columns={column: "cluster_id"})
            ev = _prepare_events(events, asg)
            tr = _prepare_traces(traces, ev)
            ev_strata = prepared.event_strata(assignments, column)
            assert np.array_equal(ev_strata, ev["stratum"].to_numpy())
            assert np.array_equal(prepared.trace_strata(ev_strata), tr["stratum"].to_numpy())
            # known_only: the last row with a value wins, as the reference on known rows
            known = asg[asg["cluster_id"].notna()]
            ev_known = _prepare_events(events, known)
            assert np.array_equal(
                prepared.event_strata(assignments, column, known_only=True),
                ev_known["stratum"].to_numpy(),
            )
        assert np.array_equal(prepared.ev_values["negative_rate"], ev["negative_rate"])
        assert np.array_equal(prepared.tr_values["latency_p95"], tr["latency_p95"], equal_nan=True)


def test_sides_select_the_rows_the_version_compares_selected():
    events, traces, _ = _frames(1)
    prepared = _Prepared(events, traces)
    ev = _prepare_events(events, None)
    for comparison in (
        _Comparison("model_version", "m2", "m2", "m1", True, ""),
        _Comparison("prompt_version", "m1", "p2", "p1", True, ""),
        _Comparison("prompt_version", "m1", "p9", "p1", True, ""),  # a version with no rows
    ):
        for mask, version in zip(
            prepared.sides("ev", comparison), (comparison.candidate, comparison.baseline)
        ):
            if comparison.dimension == "model_version":
                expected = ev["model_version"] == version
            else:
                expected = (ev["model_version"] == comparison.model_version) & (
                    ev["prompt_version"] == version
                )
            assert np.array_equal(mask, expected.to_numpy())


def test_a_subset_is_the_same_as_preparing_the_rows_anew():
    events, traces, assignments = _frames(2)
    ev_in = (events["ds"] >= pd.Timestamp("2026-11-03")).to_numpy()
    tr_in = (traces["ds"] >= pd.Timestamp("2026-11-03")).to_numpy()
    part_ev = events[ev_in].reset_index(drop=True)
    part_tr = traces[tr_in].reset_index(drop=True)
    fresh = _Prepared(part_ev, part_tr)
    subset = _Prepared(events, traces).subset(part_ev, part_tr, ev_in, tr_in)
    assert np.array_equal(subset.ev_rows, fresh.ev_rows)
    assert np.array_equal(subset.tr_rows, fresh.tr_rows)
    strata = fresh.event_strata(assignments, "cluster_id")
    assert np.array_equal(subset.event_strata(assignments, "cluster_id"), strata)
    assert np.array_equal(subset.trace_strata(strata), fresh.trace_strata(strata))
    for mine, theirs in zip(subset.version_stamps(), fresh.version_stamps(), strict=True):
        key = ["model_version", "prompt_version"]
        pd.testing.assert_frame_equal(
            mine.sort_values(key, ignore_index=True), theirs.sort_values(key, ignore_index=True)
        )


def test_best_strata_is_the_trace_strata_of_the_reference():
    ev = pd.DataFrame(
        {
            "trace_id": ["a", "a", "a", "b", "b", "c", "d", "d"],
            "stratum": [-1, -1, 3, 5, 2, -1, -2, 7],
        }
    )
    expected = _trace_strata(ev)
    codes, ids = pd.factorize(ev["trace_id"])
    known = ev["stratum"].to_numpy() != -2
    best = _best_strata(codes[known], ev["stratum"].to_numpy()[known], len(ids))
    assert dict(zip(ids, best, strict=True)) == expected.to_dict()


def test_unique_codes_and_groups_match_numpy():
    rng = np.random.default_rng(3)
    for values in (
        rng.integers(-2, 40, 1000),
        np.array([5, 5, -1], dtype=np.int64),
        np.array([], dtype=np.int64),
        np.array([0, 1 << 40, -3], dtype=np.int64),  # a wide range: np.unique itself
    ):
        uniques, codes = _unique_codes(values)
        expected, inverse = np.unique(values, return_inverse=True)
        assert np.array_equal(uniques, expected) and np.array_equal(codes, inverse.reshape(-1))
        payload = rng.random(len(values))
        groups = _by_stratum(values, payload)
        assert sorted(groups) == sorted(int(v) for v in expected)
        for stratum, got in groups.items():
            assert np.array_equal(got, payload[values == stratum])  # same values, same order
