"""The `complaint_clusters` asset through Dagster on real FeedbackQA ratings and a real DuckDB.

The WHO file of FeedbackQA (real rater comments, Apache-2.0) is imported into the landing zone,
ingested by the real `ingest_day` (the ingest asset's core: the job would add 10 s of start-up),
then `complaint_clusters` materializes on the day through Dagster, twice. Topic clustering is
another stage's work and slow, so the day's `cluster_assignments` is written here in the shape
the warehouse had before complaints existed (no `complaint_id` column, no `topic_id`): the asset
must add the column and fill it.
"""

from __future__ import annotations

import json
import shutil
from datetime import date

import dagster as dg
import pytest

from feedback_pipelines.ingest.day import ingest_day
from feedback_pipelines.schema import ASSIGNMENTS_DDL
from feedback_pipelines.sources.public_sets import import_public_set
from feedback_pipelines_tests.fixtures.pipeline import TEST_DATA, make_env

DS = "2026-11-20"
DAY_BEFORE = "2026-11-19"


def materialize(env, ds: str = DS) -> dg.ExecuteInProcessResult:
    from feedback_pipelines.defs.complaints import complaint_clusters
    from feedback_pipelines.embedding import DEFAULT_EMBEDDER
    from feedback_pipelines.resources.semantic import EmbedderResource
    from feedback_pipelines.resources.settings import PipelineConfig
    from feedback_pipelines.resources.warehouse import WarehouseResource

    return dg.materialize(
        [complaint_clusters],
        partition_key=ds,
        resources={
            "settings": PipelineConfig(data_dir=str(env.data)),
            "warehouse": WarehouseResource(database=str(env.warehouse)),
            "embedder": EmbedderResource(name=DEFAULT_EMBEDDER),
        },
    )


@pytest.fixture(scope="module")
def complained(tmp_path_factory):
    source = tmp_path_factory.mktemp("who")
    shutil.copy(TEST_DATA / "real" / "feedbackqa" / "WHO_feedback_valid.json", source)
    with pytest.MonkeyPatch.context() as mp:
        env = make_env(tmp_path_factory.mktemp("complaints"), mp)
        import_public_set("feedbackqa", source, env.landing, end=date.fromisoformat(DS), days=2)
        with env.connect(read_only=False) as conn:
            for day in (DAY_BEFORE, DS):
                ingest_day(conn, env.landing, day, "test-secret-key")
            conn.execute(ASSIGNMENTS_DDL)
            conn.execute(
                "INSERT INTO cluster_assignments (ds, feedback_id, cluster_id, probability) "
                "SELECT ?::DATE, feedback_id, "
                "hash(trace_id) % 5, 1.0 FROM feedback_events",
                [DS],
            )
        assert materialize(env, DAY_BEFORE).success
        first = materialize(env)
        with env.connect() as conn:
            before = conn.execute(
                "SELECT * FROM complaint_clusters WHERE ds = ? ORDER BY complaint_id", [DS]
            ).df()
        second = materialize(env)
    return env, first, second, before


def test_groups_every_negative_comment_and_writes_the_ids(complained):
    env, first, _, _ = complained
    assert first.success
    with env.connect() as conn:
        n_neg = conn.execute(
            "SELECT count(*) FROM feedback_events WHERE ds <= ? AND is_negative "
            "AND nullif(trim(comment), '') IS NOT NULL",
            [DS],
        ).fetchone()[0]
        groups = conn.execute("SELECT * FROM complaint_clusters WHERE ds = ?", [DS]).df()
        links = conn.execute(
            "SELECT a.feedback_id, a.complaint_id, e.is_negative FROM cluster_assignments a "
            "JOIN feedback_events e USING (feedback_id) WHERE a.ds = ?",
            [DS],
        ).df()
    assert n_neg == 112 and groups["size"].sum() == n_neg
    # the column was added, filled for every complaint and only for them
    assert links.loc[links["is_negative"], "complaint_id"].notna().all()
    assert links.loc[~links["is_negative"], "complaint_id"].isna().all()
    top = groups.sort_values("size", ascending=False).iloc[0]
    assert top["kind"] == "off_topic" and top["label"] == "does not answer the question"
    assert len(top["example_ids"]) == 5 and len(top["quotes"]) == 5
    counts = json.loads(top["cluster_counts"])  # per subtopic of cluster_assignments
    assert sum(counts.values()) == top["size"]
    assert top["topic_counts"] is None  # no themes in this warehouse yet


def test_checks_pass_and_metadata_tells_the_story(complained):
    _, first, _, _ = complained
    checks = {c.check_name: c for c in first.get_asset_check_evaluations()}
    assert checks["every_complaint_grouped"].passed
    assert checks["other_share"].passed
    meta = first.asset_materializations_for_node("complaint_clusters")[0].metadata
    assert meta["complaints"].value == 112
    assert meta["kind_share"].value >= 0.65
    assert meta["vectors_embedded"].value > 0
    assert meta["embedding_seconds"].value > 0  # bench/day.py counts it as embedding


def test_a_rerun_embeds_nothing_and_replaces_its_day(complained):
    env, _, second, before = complained
    assert second.success
    meta = second.asset_materializations_for_node("complaint_clusters")[0].metadata
    assert meta["vectors_embedded"].value == 0  # every sentence came from the cache
    assert meta["embedding_seconds"].value == 0
    with env.connect() as conn:
        after = conn.execute(
            "SELECT * FROM complaint_clusters WHERE ds = ? ORDER BY complaint_id", [DS]
        ).df()
        per_day = conn.execute(
            "SELECT count(*), count(DISTINCT feedback_id) FROM complaint_assignments WHERE ds = ?",
            [DS],
        ).fetchone()
    assert per_day[0] == per_day[1] == 112
    assert list(after["complaint_id"]) == list(before["complaint_id"])
    assert list(after["size"]) == list(before["size"])


def test_yesterdays_grouped_complaints_keep_their_ids(complained):
    env, *_ = complained
    with env.connect() as conn:
        both = conn.execute(
            "SELECT y.feedback_id, y.complaint_id AS before, t.complaint_id AS after "
            "FROM complaint_assignments y JOIN complaint_assignments t USING (feedback_id) "
            "WHERE y.ds = ? AND t.ds = ?",
            [DAY_BEFORE, DS],
        ).df()
    assert 20 <= len(both) < 112  # the day before holds part of the window
    grouped = both[both["before"] != 0]  # "other" may find a group once more complaints come
    assert (grouped["before"] >= 100).any()  # a data-driven group, not only fixed kinds
    assert (grouped["before"] == grouped["after"]).all()


def test_the_asset_names_its_table_and_columns_from_the_schema_module():
    import duckdb

    from feedback_pipelines.schema import COMPLAINTS_DDL
    from feedback_pipelines_tests.fixtures.pipeline import load_defs

    spec = next(
        s for s in load_defs().resolve_all_asset_specs() if s.key.path == ["complaint_clusters"]
    )
    assert spec.metadata["dagster/table_name"] == "warehouse.main.complaint_clusters"
    assert spec.metadata["partition_expr"] == "ds"
    value = spec.metadata["dagster/column_schema"]
    columns = [(c.name, c.type) for c in getattr(value, "schema", value).columns]
    with duckdb.connect() as conn:
        conn.execute(COMPLAINTS_DDL)
        expected = [(r[0], r[1]) for r in conn.execute("DESCRIBE complaint_clusters").fetchall()]
    assert columns == expected
    assert spec.owners and spec.group_name == "clustering"


def test_a_day_without_complaints_writes_nothing_and_passes(tmp_path, monkeypatch):
    env = make_env(tmp_path, monkeypatch)
    result = materialize(env)
    assert result.success
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"every_complaint_grouped": True, "other_share": True}
    with env.connect() as conn:
        assert conn.execute("SELECT count(*) FROM complaint_clusters").fetchone()[0] == 0
