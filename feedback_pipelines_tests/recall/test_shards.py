"""Shard files: a split that depends only on the texts, vectors that survive the trip exactly."""

import numpy as np

from feedback_pipelines.recall import shards


def test_split_deals_every_text_once_whatever_the_input_order():
    pairs = [(f"{i:04x}", f"text {i}") for i in range(11)]
    parts = shards.split(pairs, 3)
    assert [len(p) for p in parts] == [4, 4, 3]
    assert sorted(x for p in parts for x in p) == sorted(pairs)
    assert shards.split(list(reversed(pairs)), 3) == parts
    assert shards.split([], 2) == [[], []]
    assert shards.split(pairs, 0) == [sorted(pairs)]


def test_vectors_round_trip_bit_for_bit(tmp_path):
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((5, 384)).astype(np.float32)
    hashes = [f"h{i}" for i in range(5)]
    shards.write_texts(tmp_path / "s.parquet", list(zip(hashes, ["a", "b", "c", "d", "é"])))
    assert shards.read_texts(tmp_path / "s.parquet") == (hashes, ["a", "b", "c", "d", "é"])
    shards.write_vectors(tmp_path / "v.parquet", hashes, vectors)
    back = shards.read_vectors(tmp_path / "v.parquet")
    assert list(back) == hashes
    assert all(np.array_equal(back[h], vectors[i]) for i, h in enumerate(hashes))
    shards.write_vectors(tmp_path / "e.parquet", [], np.zeros((0, 384), np.float32))
    assert shards.read_vectors(tmp_path / "e.parquet") == {}


def test_only_old_folders_of_runs_not_in_progress_are_removed(tmp_path):
    import os

    live = shards.work_dir(tmp_path, "2026-11-20", "run-live")
    dead = shards.work_dir(tmp_path, "2026-11-20", "run-dead")
    dead_other_day = shards.work_dir(tmp_path, "2026-11-02", "run-dead-too")
    fresh = shards.work_dir(tmp_path, "2026-11-20", "run-fresh")
    for folder in (live, dead, dead_other_day, fresh):
        folder.mkdir(parents=True)
    old = 1_000_000_000
    for folder in (live, dead, dead_other_day):
        os.utime(folder, (old, old))
    assert shards.remove_stale(tmp_path, {"run-live"}) == 2
    assert live.exists() and fresh.exists() and not dead.exists()
    assert not dead_other_day.parent.exists()  # the emptied day's folder goes too
    shards.remove(live)
    shards.remove(fresh)
    assert not (tmp_path / "work").exists()
