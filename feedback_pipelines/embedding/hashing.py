"""A tiny deterministic embedder for unit tests of code that does not care about meaning.

Signed feature hashing of lower-cased word unigrams and bigrams: texts sharing words land near
each other, so it still exercises search and clustering code paths, in microseconds and with no
model. Never use it for real data: it knows no synonyms.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from typing import Any

import numpy as np

from feedback_pipelines.embedding.base import Embedder

_WORD = re.compile(r"[a-z0-9]+")


class HashingEmbedder(Embedder):
    """Feature-hashing embedder.

    Args:
        dim: Vector length.
    """

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.model_id = f"hashing-{dim}:v1"
        self.batch_size = 256

    def _embed_batch(self, items: list[Any]) -> np.ndarray:
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        for row, text in enumerate(items):
            words = _WORD.findall(text.lower())
            features = words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
            for feature in features or [""]:
                digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
                bucket = int.from_bytes(digest[:4], "little") % self.dim
                sign = 1.0 if digest[4] & 1 else -1.0
                out[row, bucket] += sign
        return out
