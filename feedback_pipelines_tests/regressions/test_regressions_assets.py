"""The regression assets on a generated, ingested week: real Dagster, real DuckDB.

Cluster assignments come from the generator's planted topics (what a perfect clustering would
write), so these tests judge the regression stage alone.
"""

from __future__ import annotations

import shutil
from datetime import date, timedelta

import dagster as dg
import duckdb
import pandas as pd
import pytest

from feedback_pipelines.defs.regressions import version_metrics, version_regressions
from feedback_pipelines.regressions import store
from feedback_pipelines.regressions.compare import RegressionSettings, compute_regressions
from feedback_pipelines.regressions.cumulative import (
    always_valid_rows,
    partition_rows,
    release_span_start,
    version_regression_rows,
)
from feedback_pipelines.resources.settings import PipelineConfig
from feedback_pipelines.resources.warehouse import WarehouseResource
from feedback_pipelines_tests.fixtures.pipeline import WEEK_END, make_env, week_days

END = WEEK_END.isoformat()


def _topic_ids(truth: dict) -> tuple[pd.DataFrame, dict[str, int]]:
    topics = sorted({t["name"] for t in truth["topics"]})
    ids = {name: i for i, name in enumerate(topics)}
    frame = pd.DataFrame(
        {
            "feedback_id": list(truth["feedback_topic"]),
            "cluster_id": [ids[t] for t in truth["feedback_topic"].values()],
        }
    )
    return frame, ids


@pytest.fixture
def week(ingested_week, tmp_path, monkeypatch):
    """A private copy of the ingested week (these tests write to it) and its truth."""
    shared, truth = ingested_week
    env = make_env(tmp_path, monkeypatch)
    shutil.copy(shared.warehouse, env.warehouse)
    return env, truth


def _with_planted_clusters(env, truth) -> dict[str, int]:
    assignments, ids = _topic_ids(truth)
    assignments.insert(0, "ds", WEEK_END)
    with duckdb.connect(str(env.warehouse)) as conn:
        conn.execute("CREATE TABLE cluster_assignments AS SELECT * FROM assignments")
    return ids


def _materialize(*assets, partition=END, **settings) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        list(assets),
        partition_key=partition,
        resources={"settings": PipelineConfig(**settings), "warehouse": WarehouseResource()},
    )


def test_version_metrics_match_the_warehouse_and_the_truth(week):
    env, truth = week
    for ds in week_days():
        assert _materialize(version_metrics, partition=ds).success
    with env.connect() as conn:
        metrics = conn.execute(
            "SELECT * FROM version_metrics WHERE dimension = 'model_version' ORDER BY ds"
        ).df()
        per_day = conn.execute(
            "SELECT ds, model_version, count(*) AS n, sum(is_negative::INT) AS neg "
            "FROM feedback_events GROUP BY ALL"
        ).df()
        traces = conn.execute("SELECT ds, count(*) AS n FROM traces GROUP BY ds").df()
    assert sorted({str(d)[:10] for d in metrics["ds"]}) == week_days()
    merged = metrics.merge(per_day, on=["ds", "model_version"], how="outer")
    known = merged[merged["model_version"].notna()]
    assert (known["n_feedback"] == known["n"]).all() and (known["n_negative"] == known["neg"]).all()
    for ds, day in truth["counts"].items():
        rows = metrics[metrics["ds"].astype(str).str[:10] == ds]
        assert rows["n_feedback"].sum() == day["feedback_valid_unique"], ds
        assert (
            rows["n_traces"].sum()
            == traces.set_index(traces["ds"].astype(str).str[:10]).loc[ds, "n"]
        )
    versions = {v["model_version"] for v in truth["versions"]}
    assert set(metrics["model_version"].dropna()) == versions
    assert (metrics["negative_rate_ci_low"] <= metrics["negative_rate"]).all()
    served = metrics[metrics["n_traces"] > 0]
    assert (served["latency_p50_ms"] <= served["latency_p95_ms"]).all()
    assert metrics.loc[metrics["model_version"].isna(), "n_traces"].eq(0).all()
    # a rerun replaces the day, it does not add to it
    before = len(metrics)
    assert _materialize(version_metrics, partition=END).success
    with env.connect() as conn:
        after = conn.execute(
            "SELECT count(*) FROM version_metrics WHERE dimension = 'model_version'"
        ).fetchone()[0]
    assert after == before


def test_version_regressions_find_the_planted_topic_and_warn(week):
    env, truth = week
    ids = _with_planted_clusters(env, truth)
    expected = truth["expected_regressions"][0]
    cluster = ids[expected["topic"]]
    result = _materialize(version_regressions)
    assert result.success
    with env.connect() as conn:
        rows = conn.execute("SELECT * FROM version_regressions WHERE ds = ?", [END]).df()
    always = rows["test"].str.startswith("always_valid")
    window = rows[~always]
    assert {str(d)[:10] for d in window["window_start"]} == {
        (WEEK_END - timedelta(days=13)).isoformat()
    }
    flagged = rows[rows["is_regression"]]
    assert not flagged.empty and always[flagged.index].all()  # only always-valid rows alert
    # the window test sees it too, for reading
    assert window["note"].str.contains("the window test alone would flag a regression").any()
    # every regression is the planted one: its version, its baseline, its topic's cluster
    assert set(flagged["candidate_version"]) == {expected["candidate"]}
    assert set(flagged["baseline_version"]) == {expected["baseline"]}
    assert set(flagged["cluster_id"]) == {cluster}
    hit = flagged[
        (flagged["metric"] == "negative_rate") & (flagged["dimension"] == "model_version")
    ]
    assert len(hit) == 1
    assert hit["rate_candidate"].iloc[0] == pytest.approx(expected["rate_candidate"], abs=0.02)
    # flagged on day N of the release: cumulative since its first day, with its e-value
    release = next(
        v["first_day"] for v in truth["versions"] if v["model_version"] == expected["candidate"]
    )
    row = hit.iloc[0]
    assert str(row["release_day"])[:10] == release == str(row["window_start"])[:10]
    assert row["days_since_release"] == (WEEK_END - date.fromisoformat(release)).days
    assert row["test"] == "always_valid" and row["q_value"] <= 0.025 and row["e_value"] > 40
    assert row["cs_low"] > 0 and str(row["flag_since"])[:10] <= END
    # the release equal to its baseline (A/A) is clean
    for clean in truth["expected_clean"]:
        compared = rows[
            (rows["candidate_version"] == clean["candidate"])
            & (rows["baseline_version"] == clean["baseline"])
        ]
        for kind in (compared["test"].str.startswith("always_valid"), ~always[compared.index]):
            assert compared.loc[kind, "q_value"].notna().sum() > 10  # tested, per cluster too
        assert not compared["is_regression"].any()
    # the unadjusted overall rate hides it; the mix-adjusted comparison sees the rise
    model_rows = window[
        (window["dimension"] == "model_version")
        & (window["candidate_version"] == expected["candidate"])
        & (window["metric"] == "negative_rate")
    ]
    raw = model_rows[model_rows["scope"] == "overall"].iloc[0]
    cmh = model_rows[model_rows["scope"] == "mix_adjusted"].iloc[0]
    assert raw["p_value"] > 0.2 and not raw["is_regression"] and pd.isna(raw["q_value"])
    assert cmh["test"] == "cmh" and cmh["delta"] > 3 * raw["delta"] > 0
    assert cmh["p_value"] < raw["p_value"] / 5
    # NaN is stored as NULL, untested cells say why
    with env.connect() as conn:
        nan_count = conn.execute(
            "SELECT count(*) FROM version_regressions WHERE isnan(p_value) OR isnan(delta)"
        ).fetchone()[0]
    assert nan_count == 0
    assert rows.loc[rows["p_value"].isna(), "note"].str.contains("not ").all()
    # the check warns, naming version, metric and cluster with the numbers
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "no_regression" and not check.passed
    assert check.severity == dg.AssetCheckSeverity.WARN
    found = check.metadata["regressions"].value
    first = next(f for f in found if f["metric"] == "negative_rate")
    assert first["candidate_version"] == expected["candidate"]
    assert first["cluster_id"] == cluster
    assert first["rate_baseline"] < 0.25 < first["rate_candidate"] and first["q_value"] < 0.05
    assert first["days_since_release"] == row["days_since_release"]
    assert expected["candidate"] in check.description and f"cluster {cluster}" in check.description
    assert "of the release" in check.description and "however often" in check.description


def test_version_regressions_rerun_is_identical_and_pure_function_agrees(week):
    env, truth = week
    _with_planted_clusters(env, truth)
    assert _materialize(version_regressions).success
    with env.connect() as conn:
        first = conn.execute("SELECT * FROM version_regressions ORDER BY ALL").df()
        events = conn.execute("SELECT * FROM feedback_events").df()
        traces = conn.execute("SELECT * FROM traces").df()
        assignments = conn.execute("SELECT * FROM cluster_assignments").df()
    assert _materialize(version_regressions).success
    with env.connect() as conn:
        second = conn.execute("SELECT * FROM version_regressions ORDER BY ALL").df()
    pd.testing.assert_frame_equal(first, second)
    with env.connect() as conn:
        history = store.read_window(conn, WEEK_END - timedelta(days=13), WEEK_END).first_seen
    window = compute_regressions(events, traces, assignments, first_seen=history)
    judged = always_valid_rows(events, traces, assignments, WEEK_END, first_seen=history)
    pure = version_regression_rows(window, judged)
    assert len(pure) == len(first)
    with env.connect() as conn:  # what the asset computes, from the pure core
        read = store.read_window(conn, WEEK_END - timedelta(days=13), WEEK_END)
        span = store.read_release_span(conn, release_span_start(read.first_seen, WEEK_END,
                                       RegressionSettings()), WEEK_END)  # fmt: skip
    core = partition_rows(read, span, WEEK_END - timedelta(days=13), WEEK_END)
    assert len(core) == len(first)
    assert int(core["is_regression"].sum()) == int(first["is_regression"].sum())
    assert sorted(core["q_value"].dropna().round(9)) == sorted(first["q_value"].dropna().round(9))
    assert int(pure["is_regression"].sum()) == int(first["is_regression"].sum()) > 0
    assert release_span_start(history, WEEK_END, RegressionSettings()) < WEEK_END


def test_backfill_in_any_order_gives_the_same_rows(week):
    """Each partition replays its releases from their first day: no read of yesterday's rows,
    so days materialized backwards, forwards or twice agree; later days never change it."""
    env, truth = week
    _with_planted_clusters(env, truth)
    days = week_days()[-3:]
    for ds in reversed(days):
        assert _materialize(version_regressions, partition=ds).success
    with env.connect() as conn:
        backwards = conn.execute("SELECT * FROM version_regressions ORDER BY ALL").df()
    for ds in days:
        assert _materialize(version_regressions, partition=ds).success
    with env.connect() as conn:
        forwards = conn.execute("SELECT * FROM version_regressions ORDER BY ALL").df()
    pd.testing.assert_frame_equal(backwards, forwards)
    assert set(backwards["ds"].astype(str).str[:10]) == set(days)


def test_without_clusters_the_stage_still_runs_overall_and_passes(week):
    env, _ = week
    result = _materialize(version_regressions)
    assert result.success
    with env.connect() as conn:
        rows = conn.execute("SELECT * FROM version_regressions").df()
    assert set(rows["scope"]) == {"overall"} and rows["cluster_id"].isna().all()
    assert rows["note"].str.contains("cluster_assignments unavailable").any()
    (check,) = result.get_asset_check_evaluations()
    assert check.passed and "no regression" in check.description  # the mix hides it overall


def test_configured_baseline_is_used(week):
    env, truth = week
    _with_planted_clusters(env, truth)
    first = truth["versions"][0]["model_version"]
    assert _materialize(version_regressions, baseline_version=first).success
    with env.connect() as conn:
        rows = conn.execute(
            "SELECT DISTINCT candidate_version, baseline_version FROM version_regressions "
            "WHERE dimension = 'model_version'"
        ).df()
    assert set(rows["baseline_version"]) == {first}
    assert first not in set(rows["candidate_version"])


def test_theme_rows_when_assignments_carry_a_topic_id(week):
    """With `cluster_assignments.topic_id` (issue 14), theme rows join the always-valid family:
    `cluster_id` NULL, `topic_id` set; the planted subtopic is still the one flagged."""
    env, truth = week
    assignments, ids = _topic_ids(truth)
    assignments["topic_id"] = assignments["cluster_id"] // 3
    assignments.insert(0, "ds", WEEK_END)
    with duckdb.connect(str(env.warehouse)) as conn:
        conn.execute("CREATE TABLE cluster_assignments AS SELECT * FROM assignments")
    expected = truth["expected_regressions"][0]
    cluster = ids[expected["topic"]]
    assert _materialize(version_regressions).success
    with env.connect() as conn:
        rows = conn.execute("SELECT * FROM version_regressions WHERE ds = ?", [END]).df()
    all_themes = rows[rows["scope"] == "topic"]
    assert all_themes["cluster_id"].isna().all() and all_themes["topic_id"].notna().all()
    # the window test per theme, for reading: never alerts
    read = all_themes[~all_themes["test"].str.startswith("always_valid")]
    assert len(read) and read["q_value"].notna().any() and not read["is_regression"].any()
    themes = all_themes[all_themes["test"] == "always_valid"]
    assert len(themes) and themes["e_value"].notna().any()
    assert set(themes["topic_id"]) <= set(assignments["topic_id"])
    flagged = rows[rows["is_regression"] & rows["cluster_id"].notna()]
    assert set(flagged["cluster_id"]) == {cluster}
    assert set(flagged["candidate_version"]) == {expected["candidate"]}
    theme = themes[
        (themes["candidate_version"] == expected["candidate"])
        & (themes["metric"] == "negative_rate")
        & (themes["topic_id"] == cluster // 3)
        & (themes["dimension"] == "model_version")
    ].iloc[0]
    assert theme["delta"] > 0.05  # the planted rise shows in its theme too
    clean = rows[rows["candidate_version"] == truth["expected_clean"][0]["candidate"]]
    assert not clean["is_regression"].any()
