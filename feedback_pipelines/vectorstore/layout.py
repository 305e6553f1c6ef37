"""How a collection is stored and searched, the same for Qdrant Edge and a Qdrant server.

Chosen by measurement at the retention horizon's size (docs/deploy/SCALE.md): segments of up
to ~100k points, no HNSW graph, each full segment quantized to int8 codes kept in RAM, and
searches that scan the codes and rescore the best 4 x limit with the original vectors. On the
same 9M points (90 days of 100k), back to back, int8 answered the time-window filters faster
than 4-bit TurboQuant codes (7 days 11.5 against 20.0 ms, 14 days 20.7 against 30.2, a
version's negatives of 7 days 7.4 against 9.8, one day 2.9 against 3.5), which only won
unfiltered (91 against 109 ms); recall@10 was 1.000 for both. At 1M, 1.4M and 3M points
4-bit was faster on every filter, so it stays a measured alternative for smaller stores
(bench/vectorstore.py --codes, --recode). A graph lost recall on queries unlike the stored
texts (0.73-0.84 at the default beam over 200k of the pipeline's own points) and costs 25-45 s
of building per day of 100k.
"""

from __future__ import annotations

#: Segments under this many points stay plain (scanned exactly: a few ms); larger ones are
#: quantized, and merged up to SEGMENT_POINTS, so each day adds a segment and the older ones
#: are left as they are.
INDEX_POINTS = 10_000
SEGMENT_POINTS = 100_000
#: int8 scalar quantization clips each vector component at this quantile.
QUANTILE = 0.99
#: Candidates rescored with the original vectors, as a multiple of the limit (recall@10 1.000
#: at 9M points; 8 x was slower and found no more).
OVERSAMPLING = 4.0
#: HNSW build parameters (Qdrant's defaults), used only where a graph is asked for (m > 0).
EF_CONSTRUCT = 100
FULL_SCAN_KB = 10_000


def segment_kb(dim: int) -> tuple[int, int]:
    """(indexing_threshold, max_segment_size) for `dim`-float vectors, in Qdrant's kilobytes."""
    kb = dim * 4 / 1024  # one float32 vector
    return int(INDEX_POINTS * kb), int(SEGMENT_POINTS * kb)
