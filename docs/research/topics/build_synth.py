"""Build the project's synthetic 14-day base window (bench/cluster.py's build_base) into our cache."""
import sys, time
from pathlib import Path
sys.path.insert(0, "/work/before/bench")
sys.path.insert(0, "/work/before")
import cluster as bc
t = time.perf_counter()
out = bc.build_base(Path("/work/scratch/topics/cache/synth"), 1450, 7)
print(out, f"{time.perf_counter()-t:.0f}s")
