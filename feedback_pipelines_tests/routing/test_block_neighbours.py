"""Near-duplicate search by blocked matrix products: the same pairs and groups as Qdrant's.

The pipeline used to query a scratch Qdrant shard once per text (`EdgeNeighbours`); it now
multiplies the window's vectors in blocks (`BlockNeighbours`). Both are exact, so on a real-ish
window (the generated week, ingested, real MiniLM vectors) every example, gate decision,
conflict, group and split must come out the same.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

import numpy as np
import pytest

from feedback_pipelines.embedding.onnx import OnnxEmbedder
from feedback_pipelines.routing.day import read_events
from feedback_pipelines.routing.tuning import TuningSettings, build_tuning_sets
from feedback_pipelines.routing.tuning.similarity import (
    BlockNeighbours,
    TextVectorCache,
    pair_arrays,
)
from feedback_pipelines.vectorstore.neighbours import EdgeNeighbours
from feedback_pipelines_tests.fixtures.pipeline import WEEK_END

DS = WEEK_END.isoformat()
START = (WEEK_END - timedelta(days=2)).isoformat()


def _brute(x: np.ndarray, threshold: float) -> set[tuple[int, int]]:
    sims = x.astype(np.float64) @ x.T.astype(np.float64)
    rows, cols = np.nonzero(np.triu(sims >= threshold - 1e-6, 1))
    return set(zip(rows.tolist(), cols.tolist(), strict=True))


def test_pair_arrays_match_every_pair_across_block_edges():
    rng = np.random.default_rng(3)
    base = rng.normal(size=(300, 64)).astype(np.float32)
    x = np.concatenate([base, base[:200] + 0.15 * rng.normal(size=(200, 64)), base[:50]])
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    want = _brute(x, 0.9)
    assert len(want) > 250  # near copies, exact copies and copies of copies
    for block in (1, 7, 128, 4096):
        i, j, s = pair_arrays(x, 0.9, block=block)
        assert set(zip(i.tolist(), j.tolist(), strict=True)) == want
        assert (i < j).all() and (s >= 0.9 - 1e-6).all()
        assert list(zip(i, j, strict=True)) == sorted(zip(i, j, strict=True))


def test_block_neighbours_reports_progress():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 32)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    lines: list[str] = []
    search = BlockNeighbours(log=lines.append, block=100, every=0.0)
    assert search(x[:1], 0.9) == []
    pairs = search(np.concatenate([x, x[:5]]), 0.99)
    assert [(i, j) for i, j, _ in pairs] == [(k, 600 + k) for k in range(5)]
    assert any("near-duplicate search: 100/605 vectors" in line for line in lines)
    assert search.calls == 2


@pytest.fixture(scope="module")
def window(ingested_week):
    """Three days of the generated week with a planted cluster per topic (5% left as noise)."""
    env, truth = ingested_week
    topics = {t: i for i, t in enumerate(sorted(t["name"] for t in truth["topics"]))}
    with env.connect() as conn:
        events = read_events(conn, START, DS)

    def cluster(fid: str) -> int:
        topic = truth["feedback_topic"].get(fid)
        noise = topic is None or int(hashlib.sha256(fid.encode()).hexdigest(), 16) % 20 == 0
        return -1 if noise else topics[topic]

    events["cluster_id"] = [cluster(f) for f in events["feedback_id"]]
    return events


def test_block_search_gives_the_same_sets_groups_and_splits_as_qdrant(window):
    vectors = TextVectorCache(OnnxEmbedder().embed)
    settings = TuningSettings(eval_fraction=0.3)
    built = {}
    for name, search in (("qdrant", EdgeNeighbours()), ("matrix", BlockNeighbours())):
        built[name] = build_tuning_sets(
            window, vectors=vectors, neighbours=search, ds=DS, window_start=START,
            settings=settings, regressions=None,
        )  # fmt: skip
    old, new = built["qdrant"], built["matrix"]
    assert old.splits.groups > 50 and old.splits.largest_group > 1  # real near-copies to group
    assert new.splits.split_of == old.splits.split_of
    assert new.splits.group_of == old.splits.group_of
    assert new.splits.groups == old.splits.groups
    assert [x.example_id for x in new.examples] == [x.example_id for x in old.examples]
    assert new.conflicts == old.conflicts
    assert new.log.as_records() == old.log.as_records()
    assert new.log.total() == old.log.total() > 0  # duplicates were found and removed
