"""A bounded vector store: each day's write removes points older than the retention horizon.

Real stores: Qdrant Edge (the embedded default) and qdrant-client in memory (the same
`QdrantClientStore` code as the `QDRANT_URL` path); and the real `qdrant_feedback` asset on the
generated week's embedded days.
"""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg
import numpy as np
import pytest

from feedback_pipelines import config
from feedback_pipelines.recall.sync import sync_day
from feedback_pipelines.resources.semantic import VectorStoreResource
from feedback_pipelines.vectorstore import open_store, point_id
from feedback_pipelines_tests.fixtures.semantic import DAYS, resources, semantic_world

PER_DAY = 30
HORIZON = 3


def _day_points(ds: str, rng: np.random.Generator) -> list:
    vectors = rng.normal(size=(PER_DAY, 16)).astype(np.float32)
    return [
        (point_id(f"{ds}-{i}"), vectors[i], {"feedback_id": f"{ds}-{i}", "ds": ds, "kind": "x"})
        for i in range(PER_DAY)
    ]


@pytest.mark.parametrize("backend", ["edge", "memory"])
def test_store_stops_growing_past_the_horizon(tmp_path, backend):
    resource = VectorStoreResource(retention_days=HORIZON)
    rng = np.random.default_rng(1)
    days = [(date(2026, 11, 1) + timedelta(days=k)).isoformat() for k in range(8)]
    counts = []
    with open_store("retention", 16, path=tmp_path / "qdrant", backend=backend) as store:
        store.upsert([(point_id("no-day"), rng.normal(size=16), {"feedback_id": "no-day"})])
        for ds in days:
            sync_day(store, ds, _day_points(ds, rng))
            removed = store.delete_before(resource.retention_cutoff(ds))
            assert removed == (PER_DAY if len(counts) >= HORIZON else 0)
            counts.append(store.count({"ds": {"gte": "2000-01-01"}}))
        kept = {p["ds"] for p in store.retrieve_payloads(store.ids()).values() if "ds" in p}
        assert store.count() == HORIZON * PER_DAY + 1  # a point without a day is kept
    assert counts == [PER_DAY * min(k + 1, HORIZON) for k in range(len(days))]
    assert kept == set(days[-HORIZON:])


def test_horizon_setting(monkeypatch):
    monkeypatch.delenv("FEEDBACK_QDRANT_RETENTION_DAYS", raising=False)
    assert VectorStoreResource().retention() == config.DEFAULT_QDRANT_RETENTION_DAYS == 90
    assert VectorStoreResource().retention_cutoff("2026-11-20") == "2026-08-23"  # 90 days kept
    monkeypatch.setenv("FEEDBACK_QDRANT_RETENTION_DAYS", "0")
    assert VectorStoreResource().retention_cutoff("2026-11-20") is None  # keep everything
    monkeypatch.setenv("FEEDBACK_QDRANT_RETENTION_DAYS", "1")
    assert VectorStoreResource().retention_cutoff("2026-11-20") == "2026-11-20"
    assert VectorStoreResource(retention_days=2).retention_cutoff("2026-11-20") == "2026-11-19"
    for bad in ("-3", "ninety"):  # refused with the variable's name, not int()'s message
        monkeypatch.setenv("FEEDBACK_QDRANT_RETENTION_DAYS", bad)
        with pytest.raises(ValueError, match="FEEDBACK_QDRANT_RETENTION_DAYS must be a whole"):
            VectorStoreResource().retention()
    for bad in ("0", "two"):
        monkeypatch.setenv("FEEDBACK_EMBED_SHARDS", bad)
        with pytest.raises(ValueError, match="FEEDBACK_EMBED_SHARDS must be a whole number >= 1"):
            config.embed_shards()


def test_qdrant_feedback_asset_removes_days_past_the_horizon(ingested_week, tmp_path_factory):
    """With a 1-day horizon the second day's write leaves only that day's points."""
    from feedback_pipelines.defs.semantic import qdrant_feedback

    world = semantic_world(ingested_week, tmp_path_factory.mktemp("semantic"))
    res = resources(world)
    store_path = tmp_path_factory.mktemp("bounded") / "qdrant"
    res["vector_store"] = VectorStoreResource(
        path=str(store_path), backend="edge", retention_days=1
    )
    meta = []
    for day in DAYS:
        result = dg.materialize([qdrant_feedback], partition_key=day, resources=res)
        assert result.success
        (mat,) = result.asset_materializations_for_node("qdrant_feedback")
        meta.append({k: v.value for k, v in mat.metadata.items()})
    first, second = meta
    assert first["expired_removed"] == 0 and first["retention_from"] == DAYS[0]
    assert second["expired_removed"] == first["dagster/row_count"] > 0
    assert second["points_in_collection"] == second["dagster/row_count"] > 0
