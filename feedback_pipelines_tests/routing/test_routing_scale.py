"""What keeps the routing step small beside embedding on a large day (issue 19, part 1).

Two costs grew with the day: the near-duplicate searches (several products over the window's
requests, each ~40k x 40k at 100k events) and the texts the step embeds itself (answers, and
requests `feedback_embeddings` holds only inside a longer text). `SharedSearch` compares each
pair of texts once per run; `text_vectors` keeps what the step embedded, so a rerun embeds
nothing. Neither may change a row or a file.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import timedelta

import duckdb
import numpy as np
import pandas as pd

from feedback_pipelines.embedding.onnx import OnnxEmbedder
from feedback_pipelines.routing import review
from feedback_pipelines.routing.day import (
    pair_memory_path,
    read_inputs,
    run_day,
    save_text_vectors,
    tuning_frame,
)
from feedback_pipelines.routing.tuning import similarity
from feedback_pipelines.routing.tuning.similarity import (
    BlockNeighbours,
    PairMemory,
    SharedSearch,
    exact_neighbours,
    similar_texts,
)
from feedback_pipelines_tests.fixtures.pipeline import WEEK_END

DS = (WEEK_END - timedelta(days=1)).isoformat()


def test_shared_search_gives_every_search_the_pairs_of_its_own_product():
    rng = np.random.default_rng(5)
    base = rng.normal(size=(120, 48))
    rows = np.concatenate([base, base[:80] + 0.2 * rng.normal(size=(80, 48)), base[:30]])
    rows = (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)
    texts = [f"text {k:03d}" for k in range(len(rows))]
    by_text = dict(zip(texts, rows, strict=True))
    asked: list[int] = []

    def vectors(batch):
        asked.append(len(batch))
        return np.stack([by_text[t] for t in batch])

    lines: list[str] = []
    shared = SharedSearch(BlockNeighbours(), floor=0.9, block=16, log=lines.append, every=0.0)
    # Overlapping sets at both thresholds, as the builders ask them; the last one is new texts
    # only, and one under the floor goes to the plain search.
    for lo, hi, threshold in ((0, 150, 0.95), (100, 230, 0.95), (0, 230, 0.9), (40, 90, 0.92)):
        subset = texts[lo:hi]
        distinct, pairs = similar_texts(subset, vectors, shared, threshold)
        want = exact_neighbours(vectors(distinct), threshold)
        assert [(i, j) for i, j, _ in pairs] == [(i, j) for i, j, _ in want]
        assert np.allclose([s for *_, s in pairs], [s for *_, s in want], atol=1e-5)
    assert shared.calls == 4 and len(shared._ids) == 230
    assert any(line.startswith("near-duplicate search: 16/150 new texts") for line in lines)
    assert similar_texts(texts, vectors, shared, 0.5)[1] == exact_neighbours(rows, 0.5)
    assert len(exact_neighbours(rows, 0.95)) > 100  # the sets do hold near copies


def test_the_int8_prefilter_finds_every_pair_of_the_float_product(monkeypatch):
    """The int8 product only chooses candidates: pairs and cosines are float32's, to 1e-6."""
    rng = np.random.default_rng(11)
    base = rng.normal(size=(400, 64))
    noise = [0.1, 0.2, 0.3, 0.33, 0.35]  # cosines from ~0.99 down through 0.9 and below
    rows = np.concatenate([base] + [base[:200] + k * rng.normal(size=(200, 64)) for k in noise])
    rows = (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)
    exact = rows.astype(np.float64) @ rows.T.astype(np.float64)
    texts = [f"t{k:04d}" for k in range(len(rows))]

    def vectors(batch):
        return rows[[int(t[1:]) for t in batch]]

    found = {}
    for name, cells in (("int8", 0), ("float32", 10**12)):
        monkeypatch.setattr(similarity, "INT8_MIN_CELLS", cells)
        shared = SharedSearch(BlockNeighbours(), floor=0.9, block=128)
        found[name] = {p[:2]: p[2] for p in similar_texts(texts, vectors, shared, 0.9)[1]}
        want = {(i, j) for i, j in zip(*np.nonzero(np.triu(exact >= 0.9 - 1e-6, 1)), strict=True)}
        near = {(i, j) for i, j in want if abs(exact[i, j] - (0.9 - 1e-6)) < 1e-5}
        assert set(found[name]) - near == want - near
        assert all(abs(s - exact[i, j]) < 1e-5 for (i, j), s in found[name].items())
    assert len(found["int8"]) > 500
    assert similarity._matmul_integer() is not None  # the int8 kernel really ran


def test_the_int8_kernel_multiplies_the_codes_exactly_even_at_their_extremes():
    """Without AVX-512 VNNI, MLAS sums pairs of uint8 x int8 products in int16, saturating: 8-bit
    codes came out wrong by up to 10^6 on an AVX2 machine and true pairs were missed."""
    rng = np.random.default_rng(3)
    known = rng.normal(size=(300, 384)).astype(np.float32)
    known[:40] = np.sign(known[:40]) * np.abs(known).max()  # every component at an extreme
    quantized = similarity._Quantized.of(known)
    assert quantized is not None
    inputs = {"A": quantized.rows, "B": quantized.columns, "Z": quantized.ZERO}
    product = quantized.session.run(None, inputs)[0]
    codes = (quantized.rows ^ np.uint8(128)).view(np.int8).astype(np.int64)
    assert np.abs(codes).max() == similarity.QMAX
    assert np.array_equal(product, codes @ codes.T)


def test_pairs_remembered_from_the_last_run_are_what_a_new_search_finds(monkeypatch, tmp_path):
    """Yesterday's window shares most texts with today's: their pairs are taken, not multiplied,
    and every search answers to the bit what a search from nothing answers, on both products."""
    rng = np.random.default_rng(3)
    base = rng.normal(size=(300, 64))
    rows = np.concatenate([base] + [base + k * rng.normal(size=(300, 64)) for k in (0.2, 0.33)])
    rows = (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)
    texts = [f"t{k:04d}" for k in range(len(rows))]
    order = rng.permutation(len(rows))  # a text's neighbours on either side of the slide
    texts, rows = [texts[k] for k in order], rows[order]
    by_text = dict(zip(texts, rows, strict=True))

    def vectors(batch):
        return np.stack([by_text[t] for t in batch])

    for cells in (0, 10**12):  # the int8 pre-filter, then the float32 product
        monkeypatch.setattr(similarity, "INT8_MIN_CELLS", cells)
        yesterday = SharedSearch(BlockNeighbours(), floor=0.9, block=64)
        similar_texts(texts[:600], vectors, yesterday, 0.9)
        path = tmp_path / f"memory-{cells}.npz"
        assert path.exists() is False and yesterday.memory().save(path) > 0
        memory = PairMemory.load(path)
        assert len(memory.keys) == 600 and len(memory.i) == yesterday.pair_count > 300

        window = {t: by_text[t] for t in texts[200:]}  # 400 of yesterday's texts, 300 new
        window[texts[250]] = by_text[texts[250]] + np.float32(1e-3)  # re-embedded: not the same
        today, fresh = (SharedSearch(BlockNeighbours(), floor=0.9, block=64) for _ in range(2))
        assert today.seed(memory, window) == 399
        assert SharedSearch(BlockNeighbours(), floor=0.92).seed(memory, window) == 399
        assert SharedSearch(BlockNeighbours(), floor=0.85).seed(memory, window) == 0  # pairs lack
        for lo, threshold in ((300, 0.95), (200, 0.9), (420, 0.92)):
            got = similar_texts(texts[lo:], vectors, today, threshold)
            want = similar_texts(texts[lo:], vectors, fresh, threshold)
            assert got == want and len(got[1]) > 50
        keys = [
            {
                (*sorted((bytes(m.keys[i]), bytes(m.keys[j]))), float(s))
                for i, j, s in zip(m.i, m.j, m.s)
            }
            for m in (today.memory(), fresh.memory())
        ]
        assert keys[0] == keys[1]  # the next day starts from the same memory either way

    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 3])  # cut short (a full disk): a broken zip
    assert PairMemory.load(path) is None
    path.write_bytes(b"not a memory")
    assert PairMemory.load(path) is None and PairMemory.load(tmp_path / "none.npz") is None


def _digest(folder) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_a_rerun_embeds_nothing_and_writes_the_same_rows_and_files(ingested_week, tmp_path):
    env, _ = ingested_week
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(env.warehouse, warehouse)  # the shared fixture's warehouse stays as it was
    model = OnnxEmbedder()
    sent: list[int] = []

    def embed(texts):
        sent.append(len(texts))
        return model.embed(texts)

    runs, lines = [], []
    for k in range(2):
        sent.clear()
        with duckdb.connect(str(warehouse), read_only=True) as conn:
            inputs = read_inputs(conn, DS, 2, model.model_id)
        if k == 1:  # the first run's near-duplicate pairs too: this run starts from them
            memory = pair_memory_path(tmp_path / "run0", model.model_id)
            pair_memory_path(tmp_path / "run1", model.model_id).parent.mkdir(parents=True)
            shutil.copy(memory, pair_memory_path(tmp_path / "run1", model.model_id))
        result = run_day(
            inputs, DS, tmp_path / f"run{k}", embed=embed, model_id=model.model_id,
            neighbours=BlockNeighbours(), window_days=2, log=lines.append,
        )  # fmt: skip
        with duckdb.connect(str(warehouse)) as conn:
            for _ in range(2):  # idempotent: the second write adds nothing
                save_text_vectors(conn, model.model_id, result.embedded)
            stored = conn.execute("SELECT count(*), count(DISTINCT text_hash) FROM text_vectors")
            count, distinct = stored.fetchone()
        runs.append((sum(sent), len(inputs.stored), count, distinct, result))
    (embedded1, stored1, count1, distinct1, one), (embedded2, stored2, count2, _, two) = runs
    assert embedded1 > 50 and stored1 == 0 and count1 == distinct1 == embedded1
    assert embedded2 == 0 and stored2 == embedded1 and count2 == count1
    assert 0 < one.embed_seconds < one.seconds and two.embed_seconds == 0.0  # timed as embedding
    remembered = [line for line in lines if line.startswith("near-duplicate memory: ")]
    assert len(remembered) == 3 and "texts and" in remembered[0]  # kept, then read and kept
    searched = len(PairMemory.load(memory).keys)
    assert remembered[1].startswith(f"near-duplicate memory: {searched:,} of the {searched:,}")

    pd.testing.assert_frame_equal(tuning_frame(one.export), tuning_frame(two.export))
    assert len(one.export.table) > 0
    pd.testing.assert_frame_equal(review.table_frame(one.queue), review.table_frame(two.queue))
    files = [_digest(tmp_path / f"run{k}" / "exports" / f"dt={DS}") for k in range(2)]
    assert files[0] == files[1]  # the data card too: it counts texts this step embedded, ever
    card = json.loads((tmp_path / "run1" / "exports" / f"dt={DS}" / "datacard.json").read_text())
    assert card["embedding"]["texts_embedded"] == embedded1 > 0
    review_files = [_digest(tmp_path / f"run{k}" / "review" / f"dt={DS}") for k in range(2)]
    assert review_files[0] == review_files[1]
