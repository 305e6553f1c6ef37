"""How a collection is stored and searched, the same for Qdrant Edge and a Qdrant server.

Chosen by measurement at the retention horizon's size (docs/deploy/SCALE.md): segments of up
to ~100k points, no HNSW graph, each full segment quantized to 4-bit TurboQuant codes kept in
RAM, and searches that scan the codes and rescore the best 4 x limit with the original vectors.
On the same 9M points (90 days of 100k, real dates), one encoding after the other, 4-bit codes
were faster than int8 on every filter: 14 days 17.7 against 22.1 ms, a version's negatives of
7 days 6.5 against 6.8, one day 2.7 against 3.0, a version 62.3 against 77.7, none 64.8
against 104.8; recall@10 1.000 for both. So they were at 1M, 1.4M and 3M points. (Stop 28's
9M run, which chose int8, named most of its days with dates that do not exist.) 4-bit codes
also take half the RAM of int8 and open faster. (A version alone: 29-32 ms once the model
version is a tenant index, `PAYLOAD_INDEXES`; a shard per version gave 17.9 ms but doubled the
14-day window to 39.3: not taken, SCALE.md.) A graph lost recall on queries unlike the
stored texts (0.73-0.84 at the default beam over 200k of the pipeline's own points) and costs
25-45 s of building per day of 100k.
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
#: Candidates rescored with the original vectors, as a multiple of the limit: recall@10 1.000
#: on real text at 9M points, where 8 x was slower and found no more (clustered Gaussian
#: vectors, the worst case: 0.965 at 4 x, 1.000 at 8 x).
OVERSAMPLING = 4.0
#: HNSW build parameters (Qdrant's defaults), used only where a graph is asked for (m > 0).
EF_CONSTRUCT = 100
FULL_SCAN_KB = 10_000


def segment_kb(dim: int) -> tuple[int, int]:
    """(indexing_threshold, max_segment_size) for `dim`-float vectors, in Qdrant's kilobytes."""
    kb = dim * 4 / 1024  # one float32 vector
    return int(INDEX_POINTS * kb), int(SEGMENT_POINTS * kb)
