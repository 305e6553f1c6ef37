"""Peak memory and time of `ingest_day` on a hostile landing day (issue 15).

Usage: python bench/landing_limits.py [--workdir /tmp/fp-bench-landing] [--line-mb 200]
       [--bomb-gib 2] [--good 50000]

One day of traces holds: good lines; a file with a 200 MB line between good lines; two gzip
bombs of 2 GiB each (zeros, and newline-free junk), written at gzip level 1 (about 9.4 MB, as
in the issue); a truncated `.gz` with 17 complete lines. `ingest_day` runs on it in a child
process on a fresh warehouse; the script prints its seconds, its peak memory and what each file
gave (lines loaded, quarantine rows). Peak memory is the child's VmHWM (its own pages only:
`ru_maxrss` of a child starts from its parent's peak on Linux) and, when `/usr/bin/time` is
there, its "Maximum resident set size".
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import shutil
import subprocess
import sys
import time
import zlib
from pathlib import Path

DAY = "2026-11-20"
CHILD = r"""
import json, resource, sys, time
from pathlib import Path
import duckdb
from feedback_pipelines.ingest.day import ingest_day
landing, db, ds = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
conn = duckdb.connect(db)
t, c = time.perf_counter(), time.process_time()
stats = ingest_day(conn, landing, ds, "bench-key")
seconds, cpu = time.perf_counter() - t, time.process_time() - c
loaded = dict(conn.execute("SELECT file, count(*) FROM traces GROUP BY 1").fetchall())
quarantine = conn.execute("SELECT file, line, error FROM quarantine ORDER BY 1, 2").fetchall()
conn.close()
status = open("/proc/self/status").read()
hwm = int(next(l.split()[1] for l in status.splitlines() if l.startswith("VmHWM")))
print(json.dumps({"seconds": seconds, "cpu": cpu, "vmhwm_mb": hwm / 1024, "loaded": loaded,
                  "quarantine": quarantine, "lines": stats.lines}))
"""


def trace(tid: str) -> bytes:
    return (
        json.dumps(
            {
                "trace_id": tid,
                "session_id": f"s-{tid}",
                "timestamp": f"{DAY}T09:00:00Z",
                "model_version": "nimbus-1",
                "messages": [{"role": "user", "content": f"question for {tid}"}],
                "response": f"answer {tid}",
            }
        ).encode()
        + b"\n"
    )


def gzip_stream(path: Path, parts, level: int = 1) -> None:
    """Write a gzip file from an iterable of byte strings, without holding them all."""
    z = zlib.compressobj(level, zlib.DEFLATED, 31)
    with open(path, "wb") as fh:
        for part in parts:
            fh.write(z.compress(part))
        fh.write(z.flush())


def build(folder: Path, line_mb: int, bomb_gib: int, good: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "good.jsonl").write_bytes(b"".join(trace(f"g{i}") for i in range(good)))
    with open(folder / "huge-line.jsonl", "wb") as fh:
        fh.write(trace("h1") + trace("h2") + b'{"trace_id": "huge", "response": "')
        chunk = b"x" * (1 << 20)
        for _ in range(line_mb):
            fh.write(chunk)
        fh.write(b'"}\n' + trace("h3"))
    block = 16 << 20
    blocks = (bomb_gib << 30) // block
    gzip_stream(folder / "bomb-zeros.jsonl.gz", [trace("z1")] + [b"\0" * block] * blocks)
    junk = (b'{"junk": "' + bytes(range(65, 91)) * 40)[:1024] * (block // 1024)
    gzip_stream(folder / "bomb-junk.jsonl.gz", [trace("j1")] + [junk] * blocks)
    lines = b"".join(trace(f"t{i:02d}") for i in range(1, 18))
    last = b'{"trace_id": "t18", "response": "' + random.Random(1).randbytes(50_000).hex().encode()
    whole = gzip.compress(lines + last)
    (folder / "truncated.jsonl.gz").write_bytes(whole[: len(whole) * 2 // 3])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/fp-bench-landing"))
    parser.add_argument("--line-mb", type=int, default=200)
    parser.add_argument("--bomb-gib", type=int, default=2)
    parser.add_argument("--good", type=int, default=50_000)
    args = parser.parse_args()

    landing = args.workdir / f"landing-{args.line_mb}mb-{args.bomb_gib}gib-{args.good}"
    folder = landing / "traces" / f"dt={DAY}"
    if not (folder / "truncated.jsonl.gz").exists():
        shutil.rmtree(landing, ignore_errors=True)
        started = time.perf_counter()
        build(folder, args.line_mb, args.bomb_gib, args.good)
        print(f"wrote the day in {time.perf_counter() - started:.1f}s:")
    for p in sorted(folder.iterdir()):
        print(f"  {p.name:22s} {p.stat().st_size:>15,} bytes")
    db = args.workdir / "bench.duckdb"
    db.unlink(missing_ok=True)
    command = [sys.executable, "-c", CHILD, str(landing), str(db), DAY]
    timer = shutil.which("time") or "/usr/bin/time"
    if Path(timer).exists():
        command = [timer, "-v", *command]
    out = subprocess.run(command, check=True, capture_output=True, text=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"ingest_day: {r['seconds']:.1f}s ({r['cpu']:.1f}s CPU), lines read {r['lines']}")
    print(f"peak memory: VmHWM {r['vmhwm_mb']:,.0f} MB", end="")
    if found := re.search(r"Maximum resident set size \(kbytes\): (\d+)", out.stderr):
        print(f", /usr/bin/time -v {int(found.group(1)) / 1024:,.0f} MB", end="")
    print(" (target < 2,048 MB)")
    print("loaded per file:", r["loaded"])
    print("quarantine:")
    for file, line, error in r["quarantine"]:
        print(f"  {file} line {line}: {error}")


if __name__ == "__main__":
    main()
