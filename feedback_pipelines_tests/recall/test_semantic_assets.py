"""The semantic assets on the generated week, with the real model: cache, store, checks, privacy."""

import duckdb
import numpy as np
import pytest

from feedback_pipelines.embedding import DEFAULT_EMBEDDER, get_embedder, interaction_text, text_hash
from feedback_pipelines.embedding.cpu import cpu_kernels
from feedback_pipelines.vectorstore import open_store
from feedback_pipelines_tests.fixtures.semantic import DAYS, materialize_day, semantic_world


@pytest.fixture(scope="module")
def world(ingested_week, tmp_path_factory):
    return semantic_world(ingested_week, tmp_path_factory.mktemp("semantic"))


def _events(world, day):
    with duckdb.connect(str(world.warehouse), read_only=True) as conn:
        return conn.execute(
            "SELECT feedback_id, request, comment, correction FROM feedback_events WHERE ds = ?",
            [day],
        ).df()


def _hashes(events, model_id):
    texts = [
        interaction_text(r, c, k)
        for r, c, k in zip(events["request"], events["comment"], events["correction"], strict=True)
    ]
    return {text_hash(t, model_id) for t in texts if t}


def test_every_event_embedded_once_with_the_model_recorded(world):
    model = get_embedder(DEFAULT_EMBEDDER)
    with duckdb.connect(str(world.warehouse), read_only=True) as conn:
        rows = conn.execute(
            "SELECT ds::VARCHAR AS ds, feedback_id, model_id, text, vector FROM feedback_embeddings"
        ).df()
        dtype = conn.execute(
            "SELECT data_type FROM information_schema.columns "
            "WHERE table_name = 'feedback_embeddings' AND column_name = 'vector'"
        ).fetchall()[0][0]
    assert dtype == "FLOAT[384]"
    assert set(rows["ds"]) == set(DAYS)
    assert not rows["feedback_id"].duplicated().any()
    assert set(rows["model_id"]) == {model.model_id}
    for day in DAYS:
        events = _events(world, day)
        with_text = sum(
            1
            for r, c, k in zip(events["request"], events["comment"], events["correction"])
            if interaction_text(r, c, k)
        )
        assert (rows["ds"] == day).sum() == with_text > 0
    v = np.vstack(rows["vector"].to_numpy())
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    # The stored vector is the model's vector of the stored text.
    again = model.embed(rows["text"].head(3).tolist())
    assert np.allclose(again, v[:3], atol=1e-4)


def test_cache_first_day_rerun_embeds_nothing_and_new_day_only_unseen_texts(world):
    model_id = get_embedder(DEFAULT_EMBEDDER).model_id
    first, second = world.runs[0], world.runs[1]
    day1, day2 = (
        _hashes(_events(world, DAYS[0]), model_id),
        _hashes(_events(world, DAYS[1]), model_id),
    )
    assert first["meta"]["feedback_embeddings"]["embedded"] == len(day1)
    assert second["meta"]["feedback_embeddings"]["embedded"] == len(day2 - day1)
    assert len(day2 - day1) < len(day2)  # templated feedback repeats: the cache matters
    rerun = materialize_day(world, DAYS[0])
    assert rerun["meta"]["feedback_embeddings"]["embedded"] == 0
    assert rerun["meta"]["feedback_embeddings"]["reused_from_cache"] == len(day1)


def test_store_holds_one_point_per_event_after_reruns(world):
    rerun = materialize_day(world, DAYS[1])
    assert all(rerun["checks"].values()), rerun["checks"]
    model = get_embedder(DEFAULT_EMBEDDER)
    with duckdb.connect(str(world.warehouse), read_only=True) as conn:
        per_day = dict(
            conn.execute(
                "SELECT ds::VARCHAR, count(*) FROM feedback_embeddings GROUP BY ds"
            ).fetchall()
        )
    with open_store(model.model_id, model.dim, path=world.store) as store:
        for day in DAYS:
            assert store.count({"ds": day}) == per_day[day]
        assert store.count() == sum(per_day.values())
    assert rerun["meta"]["qdrant_feedback"]["stale_removed"] == 0


def test_filters_work_on_the_real_payloads(world):
    model = get_embedder(DEFAULT_EMBEDDER)
    with duckdb.connect(str(world.warehouse), read_only=True) as conn:
        events = conn.execute(
            "SELECT e.model_version, e.kind, e.reason, e.is_negative, e.ds::VARCHAR AS ds "
            "FROM feedback_events e JOIN feedback_embeddings m USING (feedback_id)"
        ).df()
    version = events["model_version"].dropna().mode()[0]
    with open_store(model.model_id, model.dim, path=world.store) as store:
        assert store.count({"model_version": version}) == (events["model_version"] == version).sum()
        assert store.count({"kind": "correction"}) == (events["kind"] == "correction").sum()
        assert store.count({"is_negative": True}) == events["is_negative"].sum()
        both = (
            (events["model_version"] == version) & events["is_negative"] & (events["ds"] == DAYS[1])
        )
        assert (
            store.count({"model_version": version, "is_negative": True, "ds": {"gte": DAYS[1]}})
            == both.sum()
            > 0
        )
        reasons = events["reason"].dropna()
        assert (
            store.count({"reason": reasons.iloc[0]}) == (events["reason"] == reasons.iloc[0]).sum()
        )


def test_no_planted_pii_in_any_payload_or_embedded_text(world):
    planted = [p for p in world.truth["pii"] if len(p) >= 6]
    assert planted
    model = get_embedder(DEFAULT_EMBEDDER)
    with open_store(model.model_id, model.dim, path=world.store) as store:
        payloads = store.retrieve_payloads(store.ids())
    blob = "\n".join(str(v) for p in payloads.values() for v in p.values())
    assert not [p for p in planted if p in blob]
    assert "<EMAIL>" in blob or "<PHONE>" in blob  # PII was there, and was redacted
    for p in payloads.values():
        assert set(p) <= {
            "feedback_id", "trace_id", "session_id", "ds", "timestamp", "model_version",
            "prompt_version", "kind", "reason", "score", "is_negative", "user_role", "text",
            "embedding_model", "cluster_id",
        }  # fmt: skip
    with duckdb.connect(str(world.warehouse), read_only=True) as conn:
        texts = "\n".join(
            t for (t,) in conn.execute("SELECT text FROM feedback_embeddings").fetchall()
        )
    assert not [p for p in planted if p in texts]


def test_checks_pass_and_metadata_reports_throughput(world):
    first = world.runs[0]
    assert first["checks"] == {
        "every_event_embedded": True,
        "no_pii_in_embedded_text": True,
        "one_cpu_family": True,
        "point_count": True,
        "no_pii_in_payloads": True,
    }
    meta = first["meta"]["feedback_embeddings"]
    assert meta["texts_per_second"] > 0 and meta["dim"] == 384
    assert meta["cpu_families"] == cpu_kernels()
    assert first["meta"]["qdrant_feedback"]["collection"].startswith("feedback-")


def test_feedback_points_hold_metadata_and_json_values():
    import pandas as pd

    from feedback_pipelines.recall.sync import feedback_points
    from feedback_pipelines.resources.semantic import VectorStoreResource
    from feedback_pipelines.vectorstore import point_id

    events = pd.DataFrame(
        {
            "feedback_id": ["a", "b"],
            "trace_id": ["t1", "t2"],
            "session_id": ["s", "s"],
            "timestamp": [pd.Timestamp("2026-11-20 10:00"), pd.NaT],
            "model_version": ["v1", None],
            "prompt_version": ["p", "p"],
            "kind": ["thumbs_down", "rating"],
            "reason": [None, "tone"],
            "score": [float("nan"), 2.0],
            "is_negative": [True, False],
            "user_role": ["analyst", "admin"],
            "request": ["secret request", "x"],  # not copied: only the embedded text is
        }
    )
    rows = pd.DataFrame(
        {"feedback_id": ["b", "a"], "model_id": ["m", "m"], "text": ["tb", "ta"],
         "vector": [np.ones(3), np.ones(3)]}
    )  # fmt: skip
    points = {pid: payload for pid, _, payload in feedback_points(events, rows, "2026-11-20")}
    a = points[point_id("a")]
    assert a["timestamp"] == "2026-11-20T10:00:00" and a["score"] is None
    assert a["is_negative"] is True and a["ds"] == "2026-11-20" and a["embedding_model"] == "m"
    b = points[point_id("b")]
    assert b["model_version"] is None and b["timestamp"] is None and b["reason"] == "tone"
    assert type(b["score"]) is float and b["score"] == 2.0 and b["is_negative"] is False
    assert all(
        type(v) in (str, float, bool, type(None)) for p in points.values() for v in p.values()
    )
    assert "secret request" not in str(points)
    assert "cluster_id" not in a  # not clustered yet: a rerun keeps what the points hold
    # clustered: an assigned event's point holds its subtopic and theme as ints (-1: noise)
    clusters = pd.DataFrame(
        {"feedback_id": ["a", "x"], "cluster_id": np.array([-1, 4]), "topic_id": [-1, 2]}
    )
    points = {pid: p for pid, _, p in feedback_points(events, rows, "2026-11-20", clusters)}
    a, b = points[point_id("a")], points[point_id("b")]
    assert (a["cluster_id"], a["topic_id"]) == (-1, -1) and type(a["cluster_id"]) is int
    assert "cluster_id" not in b and "topic_id" not in b
    resource = VectorStoreResource(optimize_above=1000)
    assert not resource.should_optimize(999) and resource.should_optimize(1000)
    assert VectorStoreResource().should_optimize(1)  # cheap: every day by default
    assert not VectorStoreResource(optimize_above=0).should_optimize(10**9)


def _fresh_world(ingested_week, tmp_path):
    """The ingested week's warehouse copied into an empty data folder: nothing embedded yet."""
    import shutil

    from feedback_pipelines_tests.fixtures.semantic import SemanticWorld

    env, truth = ingested_week
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(env.warehouse, data / "warehouse.duckdb")
    return SemanticWorld(data, data / "warehouse.duckdb", data / "qdrant", truth)


def test_two_shards_give_the_same_rows_and_points_as_one(
    world, ingested_week, tmp_path, monkeypatch
):
    """Issue 19: the day's new texts embedded as two shard steps, bytes for bytes as one."""
    import dagster as dg

    from feedback_pipelines.defs.semantic import feedback_embeddings, qdrant_feedback
    from feedback_pipelines_tests.fixtures.semantic import resources

    sharded = _fresh_world(ingested_week, tmp_path)
    monkeypatch.setenv("FEEDBACK_EMBED_SHARDS", "2")
    result = dg.materialize(
        [feedback_embeddings, qdrant_feedback], partition_key=DAYS[0], resources=resources(sharded)
    )
    assert result.success
    steps = {e.step_key for e in result.get_step_success_events()}
    assert {"feedback_embeddings.embed_shard[shard_0]",
            "feedback_embeddings.embed_shard[shard_1]"} <= steps  # fmt: skip
    assert not (sharded.data / "work").exists()  # the shard files are gone once committed

    def rows(path):
        with duckdb.connect(str(path), read_only=True) as conn:
            return conn.execute(
                "SELECT feedback_id, model_id, text_hash, text, vector FROM feedback_embeddings "
                "WHERE ds = ? ORDER BY feedback_id",
                [DAYS[0]],
            ).fetchall()

    one, two = rows(world.warehouse), rows(sharded.warehouse)
    assert len(one) == len(two) > 100
    assert [r[:4] for r in one] == [r[:4] for r in two]
    diff = np.abs(np.array([r[4] for r in one]) - np.array([r[4] for r in two])).max()
    assert diff == 0.0

    model = get_embedder(DEFAULT_EMBEDDER)

    def points(path):
        store = open_store(model.model_id, model.dim, path=path)
        try:
            return sorted(str(i) for i in store.ids({"ds": DAYS[0]}))
        finally:
            store.close()

    assert points(sharded.store) == points(world.store)
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["one_cpu_family"] is True


def test_shards_on_two_cpu_families_are_flagged(ingested_week, tmp_path, monkeypatch):
    """Vectors are bit-identical only within one CPU family (`embedding.cpu`): a day whose
    shards ran on two (pods on mixed nodes; here the second family is a stand-in, as no other
    CPU runs here) is committed, with a warning and a failed WARN check."""
    import dagster as dg

    from feedback_pipelines.defs import semantic
    from feedback_pipelines_tests.fixtures.semantic import resources

    world = _fresh_world(ingested_week, tmp_path)
    monkeypatch.setenv("FEEDBACK_EMBED_SHARDS", "2")
    families = iter(["x86-64-v3", "x86-64-v4+vnni"])
    monkeypatch.setattr(semantic, "cpu_kernels", lambda: next(families))
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [semantic.feedback_embeddings],
        partition_key=DAYS[0],
        resources=resources(world),
        instance=instance,
    )
    assert result.success  # the vectors are good: the day is written
    (check,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "one_cpu_family"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    (mat,) = result.asset_materializations_for_node("feedback_embeddings")
    assert mat.metadata["cpu_families"].value == "x86-64-v3, x86-64-v4+vnni"
    warnings = [e.user_message for e in instance.all_logs(result.run_id) if e.level == 30]
    assert any("2 CPU families (x86-64-v3, x86-64-v4+vnni)" in m for m in warnings)
