"""The content-hash cache: a text is embedded once per model, across days and reruns.

The key is sha256 of the model id and the text, so the same words embedded by another model (or
another build of the same model) are a different entry. Callers look keys up in whatever holds
past vectors (the `feedback_embeddings` table) and embed only the misses.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from feedback_pipelines.embedding.base import Embedder, ProgressCallback


def text_hash(text: str, model_id: str) -> str:
    """Cache key of one text under one model (hex sha256 of model id, NUL, text)."""
    return hashlib.sha256(f"{model_id}\x00{text}".encode()).hexdigest()


def embed_with_cache(
    texts: Sequence[str],
    embedder: Embedder,
    lookup: Callable[[list[str]], Mapping[str, np.ndarray]],
    *,
    progress: ProgressCallback | None = None,
    fresh: dict[str, np.ndarray] | None = None,
) -> tuple[np.ndarray, list[str], int]:
    """Vectors for `texts`, embedding only texts whose hash `lookup` does not know.

    Duplicates within `texts` are embedded once too.

    Args:
        texts: Texts to embed (redacted).
        embedder: The model.
        lookup: Given hashes, returns the known ones and their vectors.
        progress: Passed to `Embedder.embed` for the misses.
        fresh: If given, the vectors embedded now are added to it (hash -> vector), to be saved.

    Returns:
        (vectors in input order, their hashes, how many texts were actually embedded).
    """
    hashes = [text_hash(t, embedder.model_id) for t in texts]
    unique = list(dict.fromkeys(hashes))
    known = dict(lookup(unique)) if unique else {}
    missing = [h for h in unique if h not in known]
    if missing:
        first_text = {}
        for h, t in zip(hashes, texts, strict=True):
            first_text.setdefault(h, t)
        now = embedder.embed([first_text[h] for h in missing], progress=progress)
        known.update(zip(missing, now, strict=True))
        if fresh is not None:
            fresh.update(zip(missing, now, strict=True))
    vectors = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    for row, h in enumerate(hashes):
        vectors[row] = known[h]
    return vectors, hashes, len(missing)


def known_from_rows(rows: Iterable[tuple[str, Sequence[float]]]) -> dict[str, np.ndarray]:
    """A lookup result from (text_hash, vector) rows, e.g. a DuckDB query's fetchall()."""
    return {h: np.asarray(v, dtype=np.float32) for h, v in rows}


class CachedEmbed:
    """An `embed(texts) -> vectors` for core code that takes one, asking a cache first.

    What it had to embed collects in `fresh` (hash -> vector) for the caller to save; `reused`
    counts the distinct texts the cache knew. No text is looked up or embedded twice.
    """

    def __init__(
        self, embedder: Embedder, lookup: Callable[[list[str]], Mapping[str, np.ndarray]]
    ) -> None:
        self.embedder = embedder
        self.lookup = lookup
        self.fresh: dict[str, np.ndarray] = {}
        self._found: dict[str, np.ndarray] = {}

    @property
    def reused(self) -> int:
        """Distinct texts whose vectors came from the cache."""
        return len(self._found)

    def _known(self, hashes: list[str]) -> dict[str, np.ndarray]:
        asked = [h for h in hashes if h not in self._found and h not in self.fresh]
        if asked:
            self._found.update(self.lookup(asked))
        return {h: v for h in hashes if (v := self._found.get(h, self.fresh.get(h))) is not None}

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of `texts`, in order."""
        return embed_with_cache(texts, self.embedder, self._known, fresh=self.fresh)[0]
