"""The always-valid rows of `version_regressions`: cumulative counts since the release, frozen
strata, latched flags, theme rows (pure functions and the store's reads on a real DuckDB)."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest

from feedback_pipelines.regressions import store
from feedback_pipelines.regressions.compare import RegressionSettings, compute_regressions
from feedback_pipelines.regressions.cumulative import (
    always_valid_rows,
    guarantee_sentence,
    release_span_start,
    version_regression_rows,
)
from feedback_pipelines.schema import (
    ALWAYS_VALID_COLUMNS,
    REGRESSION_TABLE_COLUMNS,
    REGRESSIONS_DDL,
)

DAY0 = date(2026, 11, 1)  # first day of the baseline
RELEASE = DAY0 + timedelta(days=14)  # the candidate's first day


def _traffic(
    days: int,
    per_day: int = 60,
    clusters: int = 3,
    rates: dict[tuple[str, int], float] | None = None,
    candidate_rates_from: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Deterministic traffic: v1 from DAY0, v2 from RELEASE beside it (per_day events per version
    per cluster per day). Negative events are spread evenly (error diffusion), so the realized
    rate is the planted one; v2's planted rates apply from `candidate_rates_from` days after
    its release (before: v1's)."""
    rates = rates or {}
    events, traces, assignments = [], [], []
    carry: dict[tuple, float] = {}
    for d in range(days):
        day = DAY0 + timedelta(days=d)
        for version in ("v1", "v2"):
            if version == "v2" and day < RELEASE:
                continue
            for c in range(clusters):
                base = 0.10 + 0.05 * c
                rate = base
                if version == "v2" and (day - RELEASE).days >= candidate_rates_from:
                    rate = rates.get((version, c), base)
                for i in range(per_day):
                    key = (version, c)
                    carry[key] = carry.get(key, 0.0) + rate
                    negative = carry[key] >= 1.0
                    carry[key] -= float(negative)
                    fid = f"{day}-{version}-{c}-{i}"
                    stamp = pd.Timestamp(day) + pd.Timedelta(minutes=i)
                    events.append((day, fid, f"t{fid}", stamp, "thumbs", negative, version, "p1"))
                    traces.append(
                        (day, f"t{fid}", stamp, version, "p1", 1000.0 + 7 * (i % 50), i % 9 == 0)
                    )
                    assignments.append((fid, c, c // 2))
    ev = pd.DataFrame(
        events,
        columns=[
            "ds",
            "feedback_id",
            "trace_id",
            "timestamp",
            "kind",
            "is_negative",
            "model_version",
            "prompt_version",
        ],
    )
    tr = pd.DataFrame(
        traces,
        columns=[
            "ds",
            "trace_id",
            "timestamp",
            "model_version",
            "prompt_version",
            "latency_ms",
            "abandoned",
        ],
    )
    asg = pd.DataFrame(assignments, columns=["feedback_id", "cluster_id", "topic_id"])
    return ev, tr, asg


def _history() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "model_version": ["v1", "v2"],
            "prompt_version": ["p1", "p1"],
            "first_seen": [pd.Timestamp(DAY0), pd.Timestamp(RELEASE)],
        }
    )


def _rows(ev, tr, asg, end: date, **settings) -> pd.DataFrame:
    keep_ev = ev["ds"] <= end
    out = always_valid_rows(
        ev[keep_ev],
        tr[tr["ds"] <= end],
        None if asg is None else asg[asg["feedback_id"].isin(ev.loc[keep_ev, "feedback_id"])],
        end,
        RegressionSettings(**settings),
        first_seen=_history(),
    )
    return out[out["dimension"] == "model_version"]


def _one(out: pd.DataFrame, **match) -> pd.Series:
    mask = pd.Series(True, index=out.index)
    for key, value in match.items():
        mask &= out[key].isna() if value is None else out[key] == value
    assert mask.sum() == 1, match
    return out[mask].iloc[0]


def test_counts_are_cumulative_since_the_release_and_the_baseline_keeps_its_window():
    ev, tr, asg = _traffic(days=24)
    end = RELEASE + timedelta(days=6)  # day 6 of the release: 7 days of v2
    out = _rows(ev, tr, asg[["feedback_id", "cluster_id"]], end)
    assert list(out.columns) == REGRESSION_TABLE_COLUMNS
    assert set(out["test"]) == {"always_valid", "always_valid_mh"}
    row = _one(out, metric="negative_rate", scope="cluster", cluster_id=1)
    assert row.n_candidate == 7 * 60  # release day .. end
    assert row.n_baseline == (14 + 7) * 60  # 14 pre-release days .. end
    assert row.release_day == RELEASE and row.days_since_release == 6
    assert row.window_start == RELEASE and row.window_end == end
    assert row.rate_candidate == pytest.approx(0.15, abs=0.005)
    assert row.cs_low <= row.delta <= row.cs_high and row.ci_low == row.cs_low
    assert row.p_value == row.p_always_valid and 0 < row.p_always_valid <= 1
    assert not out["is_regression"].any() and not out["is_improvement"].any()  # A/A
    assert out["topic_id"].isna().all()  # no topic_id in the assignments: no theme rows
    mix = _one(out, metric="negative_rate", scope="mix_adjusted")
    assert mix.test == "always_valid_mh" and mix.n_candidate == 3 * 7 * 60


def test_a_planted_regression_is_flagged_once_and_stays_flagged_since_its_first_day():
    ev, tr, asg = _traffic(days=30, per_day=30, rates={("v2", 1): 0.30})
    asg = asg[["feedback_id", "cluster_id"]]
    days = [RELEASE + timedelta(days=k) for k in range(0, 15)]
    flagged = []
    for end in days:
        out = _rows(ev, tr, asg, end)
        row = _one(out, metric="negative_rate", scope="cluster", cluster_id=1)
        flagged.append((end, bool(row.is_regression), row.flag_since))
    first = next(end for end, flag, _ in flagged if flag)
    assert first > RELEASE  # it takes evidence: not on the release day
    for end, flag, since in flagged:
        assert flag == (end >= first)  # no flicker
        assert since == (first if end >= first else None) or (end < first and pd.isna(since))
    # every other row is clean: nothing else changed
    last = _rows(ev, tr, asg, days[-1])
    assert set(zip(last.loc[last["is_regression"], "scope"], strict=True)) <= {
        ("cluster",),
        ("mix_adjusted",),
    }
    assert not last["is_improvement"].any()
    assert "regression since" in _one(last, metric="negative_rate", cluster_id=1).note


def test_a_partition_depends_only_on_its_days_so_reruns_and_backfills_agree():
    ev, tr, asg = _traffic(days=30, rates={("v2", 0): 0.40})
    asg = asg[["feedback_id", "cluster_id"]]
    end = RELEASE + timedelta(days=8)
    once = _rows(ev, tr, asg, end)
    # the same partition computed again, after later days exist (their rows are cut at `end`
    # by the store, as `_rows` does here), gives the same rows
    again = _rows(ev, tr, asg, end)
    pd.testing.assert_frame_equal(once, again)
    # ... and the order of the inputs does not matter
    shuffled = _rows(ev.sample(frac=1, random_state=1), tr.sample(frac=1, random_state=2), asg, end)
    cols = ["metric", "scope", "cluster_id"]
    pd.testing.assert_frame_equal(
        once.sort_values(cols).reset_index(drop=True),
        shuffled.sort_values(cols).reset_index(drop=True),
    )


def test_theme_rows_join_the_subtopic_family_when_assignments_carry_topic_id():
    ev, tr, asg = _traffic(days=24, clusters=4, rates={("v2", 1): 0.50})
    end = RELEASE + timedelta(days=9)
    out = _rows(ev, tr, asg, end)
    themes = out[out["scope"] == "topic"]
    assert set(themes["topic_id"].dropna()) == {0, 1} and themes["cluster_id"].isna().all()
    assert (themes["test"] == "always_valid").all()
    # theme 0 holds clusters 0 and 1: its units are theirs
    theme = _one(out, metric="negative_rate", scope="topic", topic_id=0)
    sub = out[(out["metric"] == "negative_rate") & out["cluster_id"].isin([0, 1])]
    assert theme.n_candidate == sub["n_candidate"].sum()
    assert _one(out, metric="negative_rate", scope="cluster", cluster_id=1).is_regression
    assert theme.is_regression and not _one(out, metric="negative_rate", topic_id=1).is_regression
    # one e-BH family: adding theme rows adds tests to the release's family
    without = _rows(ev, tr, asg[["feedback_id", "cluster_id"]], end)
    assert out["e_value"].notna().sum() > without["e_value"].notna().sum()
    row = _one(out, metric="negative_rate", scope="cluster", cluster_id=1)
    row0 = _one(without, metric="negative_rate", scope="cluster", cluster_id=1)
    assert row.e_value == pytest.approx(row0.e_value) and row.q_value >= row0.q_value


def test_latency_thresholds_are_fixed_by_the_baseline_before_the_release():
    ev, tr, asg = _traffic(days=26)
    asg = asg[["feedback_id", "cluster_id"]]
    slow = tr.copy()
    late = (slow["model_version"] == "v2") & (slow["ds"] >= RELEASE + timedelta(days=3))
    slow.loc[late, "latency_ms"] += 5000.0  # v2 gets slow from its day 3
    end = RELEASE + timedelta(days=10)
    out = _rows(ev, slow, asg, end)
    mix = _one(out, metric="latency_p95", scope="mix_adjusted")
    # v1 (unchanged) stays at ~5% above its own pre-release p95; v2 is above it 8 days of 11
    assert mix.rate_baseline == pytest.approx(0.04, abs=0.03)
    assert mix.rate_candidate > 0.6 and mix.is_regression


def test_window_rows_are_descriptive_and_only_always_valid_rows_alert():
    ev, tr, asg = _traffic(days=24, rates={("v2", 2): 0.60})
    asg = asg[["feedback_id", "cluster_id"]]
    end = RELEASE + timedelta(days=9)
    window = compute_regressions(
        ev[ev["ds"] > end - timedelta(days=14)],
        tr[tr["ds"] > end - timedelta(days=14)],
        asg,
        first_seen=_history(),
    )
    assert window["is_regression"].any()
    rows = version_regression_rows(window, _rows(ev, tr, asg, end))
    assert list(rows.columns) == REGRESSION_TABLE_COLUMNS
    win = ~rows["test"].str.startswith("always_valid")
    assert not rows.loc[win, "is_regression"].any() and not rows.loc[win, "is_improvement"].any()
    assert rows.loc[win, "note"].str.startswith("descriptive (window)").all()
    assert rows.loc[win, "note"].str.contains("would flag a regression").any()
    assert rows.loc[win, "release_day"].isna().all() and rows.loc[win, "e_value"].isna().all()
    assert rows.loc[~win, "is_regression"].any()


def test_without_clusters_there_are_overall_rows_only():
    ev, tr, _ = _traffic(days=20)
    out = _rows(ev, tr, None, RELEASE + timedelta(days=5))
    assert set(out["scope"]) == {"overall"}
    tested = out.loc[out["e_value"].notna(), "metric"]
    assert set(tested) == {"negative_rate", "abandonment_rate", "latency_p95"}  # no corrections


def test_store_freezes_each_event_under_its_own_days_cluster():
    """A later re-clustering (new ids on a later partition) does not move yesterday's events."""
    conn = duckdb.connect()
    d1, d2, d3 = date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)
    conn.execute(
        "CREATE TABLE feedback_events (ds DATE, feedback_id VARCHAR, trace_id VARCHAR, "
        "timestamp TIMESTAMP, kind VARCHAR, is_negative BOOLEAN, model_version VARCHAR, "
        "prompt_version VARCHAR)"
    )
    conn.execute(
        "CREATE TABLE traces (ds DATE, trace_id VARCHAR, timestamp TIMESTAMP, "
        "model_version VARCHAR, prompt_version VARCHAR, latency_ms DOUBLE, abandoned BOOLEAN)"
    )
    conn.execute(
        "CREATE TABLE cluster_assignments (ds DATE, feedback_id VARCHAR, cluster_id BIGINT, "
        "topic_id BIGINT, probability DOUBLE)"
    )
    for ds, fid in ((d1, "a"), (d2, "b"), (d3, "c")):
        conn.execute(
            "INSERT INTO feedback_events VALUES (?, ?, 't', ?, 'thumbs', false, 'v1', 'p')",
            [ds, fid, pd.Timestamp(ds)],
        )
    # each partition covers the window up to its day; day 2 re-clusters 'a' into 7
    for ds, fid, cluster in (
        (d1, "a", 1),
        (d2, "a", 7),
        (d2, "b", 2),
        (d3, "a", 8),
        (d3, "b", 9),
        (d3, "c", 3),
    ):
        conn.execute(
            "INSERT INTO cluster_assignments VALUES (?, ?, ?, ?, 1.0)",
            [ds, fid, cluster, cluster * 10],
        )
    span = store.read_release_span(conn, d1, d3)
    frozen = span.assignments.set_index("feedback_id")
    assert frozen["cluster_id"].to_dict() == {"a": 1, "b": 2, "c": 3}
    assert frozen["topic_id"].to_dict() == {"a": 10, "b": 20, "c": 30}
    # a partition never reads assignment partitions after its own day
    early = store.read_release_span(conn, d1, d2).assignments.set_index("feedback_id")
    assert early["cluster_id"].to_dict() == {"a": 1, "b": 2}
    # an event whose own day has no clustering takes the first partition after it
    conn.execute("DELETE FROM cluster_assignments WHERE ds = ?", [d1])
    late = store.read_release_span(conn, d1, d3).assignments.set_index("feedback_id")
    assert late.loc["a", "cluster_id"] == 7


def test_release_span_covers_the_baselines_window_before_the_earliest_release():
    settings = RegressionSettings()
    end = RELEASE + timedelta(days=20)
    # every version first seen in the last max_release_days may be a candidate: v1 too
    assert release_span_start(_history(), end, settings) == DAY0 - timedelta(days=14)
    old = RegressionSettings(max_release_days=10)  # v2 settled: only the trailing window
    assert release_span_start(_history(), end, old) == end - timedelta(days=13)


def test_guarantee_sentence_states_the_error_budget():
    text = guarantee_sentence()
    assert "at most 2.5%" in text and "however often" in text


def test_settled_releases_have_no_always_valid_rows():
    ev, tr, asg = _traffic(days=20)
    out = _rows(ev, tr, asg, RELEASE + timedelta(days=5), max_release_days=3)
    assert out.empty
    assert np.isfinite(
        _rows(ev, tr, asg, RELEASE + timedelta(days=3), max_release_days=3)["n_candidate"]
    ).all()


def test_an_old_warehouse_gets_the_new_columns_on_write():
    """Warehouses written before issue 18 have no always-valid columns: ALTER adds them."""
    conn = duckdb.connect()
    conn.execute(REGRESSIONS_DDL)
    for col in ["topic_id", *ALWAYS_VALID_COLUMNS]:  # the table as it was before
        conn.execute(f"ALTER TABLE version_regressions DROP COLUMN {col}")
    conn.execute("INSERT INTO version_regressions (ds, metric) VALUES ('2026-11-01', 'x')")
    ev, tr, asg = _traffic(days=18)
    end = RELEASE + timedelta(days=3)
    rows = _rows(ev, tr, asg, end)
    rows.insert(0, "ds", end)
    store.write_regressions(conn, rows, end.isoformat())
    cols = {r[0] for r in conn.execute("DESCRIBE version_regressions").fetchall()}
    assert {"topic_id", "release_day", "e_value", "cs_high", "flag_since"} <= cols
    back = conn.execute("SELECT * FROM version_regressions WHERE ds = ?", [end]).df()
    assert len(back) == len(rows) and (back["days_since_release"] == 3).all()
    assert conn.execute("SELECT count(*) FROM version_regressions").fetchone()[0] == len(rows) + 1


def test_a_replaced_baseline_is_a_fixed_reference_and_the_note_says_so():
    ev, tr, asg = _traffic(days=22)
    asg = asg[["feedback_id", "cluster_id"]]
    gone = (ev["model_version"] == "v1") & (ev["ds"] >= RELEASE)
    gone_tr = (tr["model_version"] == "v1") & (tr["ds"] >= RELEASE)
    end = RELEASE + timedelta(days=5)
    out = _rows(ev[~gone], tr[~gone_tr], asg, end)
    row = _one(out, metric="negative_rate", scope="cluster", cluster_id=0)
    assert row.n_baseline == 14 * 60 and row.n_candidate == 6 * 60
    assert "baseline not served since the release" in row.note
    beside = _one(_rows(ev, tr, asg, end), metric="negative_rate", scope="cluster", cluster_id=0)
    assert "baseline not served" not in beside.note


def test_a_window_is_recognised_inside_its_span_missing_values_and_all():
    """The span's prepared frames are reused for the window only when it holds the same rows."""
    from feedback_pipelines.regressions.cumulative import _same_rows

    whole = pd.DataFrame(
        {
            "text": ["a", None, "c", np.nan, "e"],
            "score": [1.0, np.nan, 3.0, 4.0, np.nan],
            "when": pd.to_datetime(["2026-11-01", None, "2026-11-03", "2026-11-04", None]),
            "count": pd.array([1, None, 3, 4, 5], dtype="Int64"),
            "flag": [True, False, True, True, False],
        }
    )
    rows = np.array([False, True, True, True, False])
    part = whole[rows].reset_index(drop=True).copy()
    assert _same_rows(part, whole, rows)

    for column, value in [("text", "x"), ("score", 0.0), ("count", pd.NA), ("flag", False)]:
        changed = part.copy()
        changed.loc[1, column] = value
        assert not _same_rows(changed, whole, rows), column
    none_for_nan = part.copy()
    none_for_nan["text"] = none_for_nan["text"].astype(object)
    none_for_nan.loc[2, "text"] = None  # the span holds NaN there
    assert not _same_rows(none_for_nan, whole, rows)
    assert not _same_rows(part.iloc[:2], whole, rows)
