"""How a collection is stored and searched, the same for Qdrant Edge and a Qdrant server.

Chosen by measurement (docs/deploy/SCALE.md): segments of up to ~100k points, no HNSW graph,
each full segment quantized to 4-bit TurboQuant codes kept in RAM, and searches that scan the
codes and rescore the best 8 x limit with the original vectors. At 1M real points that gave
filtered top-10 in 2.6-12.1 ms at recall@10 1.000, against 3.3-15.2 ms for int8 codes, with
half their RAM (bench/vectorstore.py --codes). 2-bit codes were a little faster on real text
but ranked clustered Gaussian vectors badly (recall@10 0.65-0.70 at 8 x), where 4-bit codes
kept 0.998. At the 90-day horizon's 9M points, though, 4-bit measured slower than int8 had
in another session (SCALE.md); to be settled back to back. A graph gave recall 0.63-0.93 at
200k, as a third of the points share their vector with another, and costs 25-45 s of building
per day of 100k points.
"""

from __future__ import annotations

#: Segments under this many points stay plain (scanned exactly: a few ms); larger ones are
#: quantized, and merged up to SEGMENT_POINTS, so each day adds a segment and the older ones
#: are left as they are.
INDEX_POINTS = 10_000
SEGMENT_POINTS = 100_000
#: Bits per vector component in a quantized segment (TurboQuant; 4 bits: 192 bytes a point
#: at 384 dimensions).
TURBO_BITS = 4
#: Candidates rescored with the original vectors, as a multiple of the limit: at 4, recall@10
#: on clustered Gaussian vectors was 0.965; at 8, 1.000.
OVERSAMPLING = 8.0
#: HNSW build parameters (Qdrant's defaults), used only where a graph is asked for (m > 0).
EF_CONSTRUCT = 100
FULL_SCAN_KB = 10_000


def segment_kb(dim: int) -> tuple[int, int]:
    """(indexing_threshold, max_segment_size) for `dim`-float vectors, in Qdrant's kilobytes."""
    kb = dim * 4 / 1024  # one float32 vector
    return int(INDEX_POINTS * kb), int(SEGMENT_POINTS * kb)
