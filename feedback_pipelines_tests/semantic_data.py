"""Shared by the semantic tests: the generated week's warehouse, embedded and indexed for 2 days.

Built once per test process (the real model on ~1,000 texts is the slow part) on a copy of the
`ingested_week` warehouse, so the session fixture's data is never changed.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

DAYS = ("2026-11-19", "2026-11-20")


@dataclass
class SemanticWorld:
    """Where the semantic assets wrote, and what each materialization reported."""

    data: Path
    warehouse: Path
    store: Path
    truth: dict
    runs: list[dict] = field(default_factory=list)  # (day, metadata of both assets, checks)


_cache: dict[str, SemanticWorld] = {}


def resources(world: SemanticWorld) -> dict:
    """The resources the semantic assets need, pointed at the world's files."""
    from feedback_pipelines.embedding import DEFAULT_EMBEDDER
    from feedback_pipelines.resources.semantic import EmbedderResource, VectorStoreResource
    from feedback_pipelines.resources.warehouse import WarehouseResource

    return {
        "warehouse": WarehouseResource(database=str(world.warehouse)),
        "embedder": EmbedderResource(name=DEFAULT_EMBEDDER),
        "vector_store": VectorStoreResource(path=str(world.store), backend="edge"),
    }


def materialize_day(world: SemanticWorld, day: str) -> dict:
    """Run both semantic assets for one day; returns their metadata and check results."""
    from feedback_pipelines.defs.semantic import feedback_embeddings, qdrant_feedback

    result = dg.materialize(
        [feedback_embeddings, qdrant_feedback], partition_key=day, resources=resources(world)
    )
    assert result.success
    meta = {}
    for key in ("feedback_embeddings", "qdrant_feedback"):
        (mat,) = result.asset_materializations_for_node(key)
        meta[key] = {k: v.value for k, v in mat.metadata.items()}
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    run = {"day": day, "meta": meta, "checks": checks}
    world.runs.append(run)
    return run


def semantic_world(ingested_week, root: Path) -> SemanticWorld:
    """The world, built on first call in this process."""
    if "world" in _cache:
        return _cache["world"]
    env, truth = ingested_week
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    shutil.copy(env.warehouse, data / "warehouse.duckdb")
    world = SemanticWorld(data, data / "warehouse.duckdb", data / "qdrant", truth)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    for day in DAYS:
        materialize_day(world, day)
    _cache["world"] = world
    return world
