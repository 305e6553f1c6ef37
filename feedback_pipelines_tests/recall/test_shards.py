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


def test_cpu_families_name_the_kernels_onnxruntime_picks():
    from feedback_pipelines.embedding.cpu import cpu_kernels, kernel_family

    v4 = dict.fromkeys(["AVX2", "FMA3", "AVX512F", "AVX512BW", "AVX512DQ", "AVX512VL",
                        "AVX512CD"], True)  # fmt: skip
    assert kernel_family({**v4, "AVX512VNNI": True}, "x86_64") == "x86-64-v4+vnni"
    assert kernel_family(v4, "x86_64") == "x86-64-v4"
    assert kernel_family({**v4, "AVX512BW": False}, "x86_64") == "x86-64-v3"  # no AVX-512 BW
    assert kernel_family({"AVX2": True, "FMA3": True}, "AMD64") == "x86-64-v3"
    assert kernel_family({"AVX2": True}, "x86_64") == "x86-64"  # AVX2 without FMA
    assert kernel_family({"ASIMDDP": True}, "aarch64") == "aarch64+dotprod"
    assert kernel_family({}, "arm64") == "aarch64"
    assert kernel_family({}, "") == "unknown"
    assert cpu_kernels() == cpu_kernels() != "unknown"
    results = [
        {"texts": 3, "cpu": "x86-64-v3"},
        {"texts": 0, "cpu": "aarch64"},  # embedded nothing: says nothing of the vectors
        {"texts": 2, "cpu": "x86-64-v4+vnni"},
        {"texts": 1, "cpu": "x86-64-v3"},
        {"texts": 1},  # a result of an earlier release
    ]
    assert shards.families(results) == ["unknown", "x86-64-v3", "x86-64-v4+vnni"]
    assert shards.families(results[:2]) == ["x86-64-v3"]
    assert shards.families([]) == []
