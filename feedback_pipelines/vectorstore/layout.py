"""How a collection is stored and searched, the same for Qdrant Edge and a Qdrant server.

Chosen by measurement (docs/deploy/SCALE.md): at 1.4M real points int8 scalar quantization kept
in RAM, no HNSW graph, segments of up to ~100k points, and searches that rescore the int8
candidates with the original vectors gave filtered top-10 in 4-14 ms at recall@10 1.000. A
graph gave recall 0.63-0.93 at 200k, as a third of the points share their vector with another.
"""

from __future__ import annotations

#: Segments under this many points stay plain (scanned exactly: a few ms); larger ones are
#: quantized, and merged up to SEGMENT_POINTS, so each day adds a segment and the older ones
#: are left as they are.
INDEX_POINTS = 10_000
SEGMENT_POINTS = 100_000
#: int8 scalar quantization clips each vector component at this quantile.
QUANTILE = 0.99
#: Candidates rescored with the original vectors, as a multiple of the limit.
OVERSAMPLING = 4.0
#: HNSW build parameters (Qdrant's defaults), used only where a graph is asked for (m > 0).
EF_CONSTRUCT = 100
FULL_SCAN_KB = 10_000


def segment_kb(dim: int) -> tuple[int, int]:
    """(indexing_threshold, max_segment_size) for `dim`-float vectors, in Qdrant's kilobytes."""
    kb = dim * 4 / 1024  # one float32 vector
    return int(INDEX_POINTS * kb), int(SEGMENT_POINTS * kb)
