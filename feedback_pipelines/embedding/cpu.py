"""Which family of CPU kernels onnxruntime runs here: vectors are bit-identical only within one.

onnxruntime (MLAS) picks its kernels by the instruction sets the CPU reports, and the float
parts of the model (layer norms, softmax, GELU, the fp32 projections) round differently with
16-lane AVX-512 than with 8-lane AVX2 kernels. In a dynamic-int8 model a last-bit difference
before an activation's quantization can move a value to the next int8 step, so a text's vector
moves by up to ~1e-2. Measured (docs/deploy/SCALE.md, "Vectors and the CPU"): the default
embedder on this AVX-512 VNNI machine against the same code under QEMU as an AVX2 CPU
(EPYC-Milan); `reduce_range` weights and `session.x64quantprecision` change nothing there.

So on one machine, or on nodes of one family, shards and reruns give the same bytes; across
families they do not. `embed_shard` reports its family and `commit_embeddings` warns when a
day's shards ran on more than one (pin the pods to one node family: docs/deploy/README.md).
"""

from __future__ import annotations

import platform
from collections.abc import Mapping


def kernel_family(features: Mapping[str, bool], machine: str) -> str:
    """The family name for a CPU's reported features (numpy's names) and machine type.

    Levels follow MLAS' dispatch on x86-64: AVX-512 (F, BW, DQ, VL, CD: x86-64-v4), with VNNI
    for int8 products, else AVX2 with FMA (x86-64-v3), else SSE; other machines by their name,
    with the int8 dot-product extension on Arm.
    """
    machine = machine.lower()
    if machine in {"x86_64", "amd64", "i386", "i686", "x86"}:
        if features.get("X86_V4") or all(
            features.get(f) for f in ("AVX512F", "AVX512BW", "AVX512DQ", "AVX512VL", "AVX512CD")
        ):
            return "x86-64-v4" + ("+vnni" if features.get("AVX512VNNI") else "")
        if features.get("X86_V3") or (features.get("AVX2") and features.get("FMA3")):
            return "x86-64-v3"
        return "x86-64"
    if machine in {"aarch64", "arm64"}:
        return "aarch64" + ("+dotprod" if features.get("ASIMDDP") else "")
    return machine or "unknown"


def cpu_kernels() -> str:
    """This process's family (`kernel_family` of what the CPU reports through CPUID)."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:  # a numpy that moved it: the machine type alone
        features = {}
    return kernel_family(features, platform.machine())
