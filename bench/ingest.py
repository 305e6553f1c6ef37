"""Ingest throughput and peak memory on generated data (default 1,000,000 feedback events).

Usage: python bench/ingest.py [--events 1000000] [--workdir /tmp/fp-bench-ingest] [--floor]

Prints, for one day of landing data: lines read, events loaded, seconds, events/s and peak RSS of
the ingest (run in a child process, so generation does not count), and, as a baseline in the
same process, a row-at-a-time Python parse + validation of a slice of the same lines, with the
ratio between the two. Events/s is also given at CPU seconds / cores: on a shared machine that
is the figure to compare, since wall time also measures whoever else is running. With
`--floor`, also what DuckDB needs for the same lines with none of ingest's work (see `FLOOR`).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import subprocess
import sys
import time
from datetime import date, datetime
from pathlib import Path

DAY = date(2026, 11, 20)
CORES = os.cpu_count() or 1

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
import duckdb
from feedback_pipelines.ingest.day import ingest_day
landing, db, ds = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
conn = duckdb.connect(db)
t, c = time.perf_counter(), time.process_time()
stats = ingest_day(conn, landing, ds, "bench-key")
seconds = time.perf_counter() - t
conn.close()
cpu = time.process_time() - c
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": seconds, "cpu_seconds": ru.ru_utime + ru.ru_stime, "cpu_ingest": cpu,
                  "lines": stats.lines, "loaded": stats.loaded,
                  "quarantined": stats.quarantined, "duplicates": stats.duplicates,
                  "phases": stats.phases,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "load": open("/proc/loadavg").read().split()[0]}))
"""

# The floor: what DuckDB needs just to read these lines, parse each once into typed fields and
# store them (long texts zstd-compressed, as ingest stores them), and to scan the redacted
# texts for PII once: no validation, dedup, sessions, redaction or joins. Whatever ingest does
# costs at least this much. The last step reads with DuckDB's own parallel JSON reader, which
# cannot say which line of a file is bad and why (ingest must), as the lowest floor there is.
FLOOR = r"""
import json, sys, time
from pathlib import Path
import duckdb, pyarrow as pa
from feedback_pipelines.ingest import day as ingest
from feedback_pipelines.ingest import landing
from feedback_pipelines.ingest.records import FEEDBACK_FIELDS, TRACE_FIELDS
root, db, ds = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
conn = duckdb.connect(db)
conn.execute(f"SET memory_limit = '{ingest.MEMORY_LIMIT}'; SET preserve_insertion_order = false")
ingest._register_udfs(conn)
out = {}
READ_JSON = "read_json, scan for PII and store"
for step in ("read", "parse and store", "parse, scan for PII and store", READ_JSON):
    cpu = 0.0
    for source, fields in (("traces", TRACE_FIELDS), ("feedback", FEEDBACK_FIELDS)):
        spec = ingest.parse_spec(fields)
        texts = [n for n in ingest.REDACTED[source] if n in fields]
        columns = ", ".join(f"{n} {'VARCHAR USING COMPRESSION zstd' if n in texts else k}"
                            for n, k in spec.items() if k != "JSON" or n in texts)
        values = ", ".join(f"v.{n}::{k}" if k == "JSON" else f"v.{n}" for n, k in spec.items()
                           if k != "JSON" or n in texts)
        scans = ""
        if "scan" in step:
            columns += ", pii BOOLEAN"
            scans = ", " + " OR ".join(f"may_hold_pii(v.{n}::VARCHAR)" for n in texts)
        spec_sql = json.dumps(spec, separators=(",", ":"))
        if step != READ_JSON:
            lines = (b for p in landing.list_files(root, source, ds)
                     for block in landing.iter_line_batches(p, root, source=source)
                     for b in block.to_batches(max_chunksize=ingest.CHUNK_ROWS))
            stream = ingest._read_ahead(lines)
            conn.register("raw_lines", pa.RecordBatchReader.from_batches(landing.LINES_SCHEMA,
                                                                          stream))
        conn.execute(f"CREATE OR REPLACE TABLE floor_{source} ({columns})")
        started = time.process_time()
        if step == "read":
            conn.execute("SELECT count(*), sum(strlen(text)) FROM raw_lines").fetchall()
        elif step == READ_JSON:  # DuckDB's own parallel reader, straight from the files
            files = [str(p) for p in landing.list_files(root, source, ds)]
            conn.execute(f"INSERT INTO floor_{source} SELECT {values}{scans} FROM read_json("
                         f"{files!r}, format='newline_delimited', columns={spec!r}) AS v")
            conn.execute("CHECKPOINT")
        else:
            conn.execute(f"INSERT INTO floor_{source} SELECT {values}{scans} FROM "
                         f"(SELECT json_transform(text, '{spec_sql}') AS v FROM raw_lines)")
            conn.execute("CHECKPOINT")
        cpu += time.process_time() - started
        if step != READ_JSON:
            stream.close()
            conn.unregister("raw_lines")
    out[step] = cpu
print(json.dumps(out))
"""

REQUIRED = {"feedback_id": str, "trace_id": str, "timestamp": str, "kind": str}


def python_baseline(paths: list[Path], limit: int) -> tuple[int, float]:
    """Row-at-a-time: json.loads, type checks, timestamp parse, dedup in a dict."""
    seen: dict[str, dict] = {}
    n = 0
    started = time.perf_counter()
    for path in paths:
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                n += 1
                try:
                    rec = json.loads(line)
                    ok = all(isinstance(rec.get(k), t) for k, t in REQUIRED.items())
                    if ok:
                        datetime.fromisoformat(rec["timestamp"].replace("Z", "+00:00"))
                        seen.setdefault(rec["feedback_id"], rec)
                except ValueError:
                    pass
                if n >= limit:
                    return n, time.perf_counter() - started
    return n, time.perf_counter() - started


def in_child(script: str, landing: Path, db: Path) -> dict:
    """Run a measuring script in a fresh process on a fresh database; its last line, parsed."""
    db.unlink(missing_ok=True)
    out = subprocess.run(
        [sys.executable, "-c", script, str(landing), str(db), DAY.isoformat()],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/fp-bench-ingest"))
    parser.add_argument(
        "--floor", action="store_true", help="also measure the floor (see FLOOR) on the same lines"
    )
    args = parser.parse_args()

    from feedback_pipelines.sources.synthetic import generate

    landing = args.workdir / f"landing-{args.events}"
    if not (landing / "truth.json").exists():
        started = time.perf_counter()
        generate(landing, 1, DAY, seed=1, events_per_day=args.events, malformed=False)
        print(f"generated {args.events:,} events in {time.perf_counter() - started:.1f}s")
    db = args.workdir / "bench.duckdb"
    r = in_child(CHILD, landing, db)
    lines = sum(r["lines"].values())
    events = r["loaded"]["feedback"]
    # On a shared machine wall time measures the neighbours too; process CPU time over the
    # cores is what the ingest would take with the machine to itself.
    quiet = r["cpu_ingest"] / CORES
    print(f"lines read:          {lines:>12,} ({r['lines']})")
    print(f"loaded:              {r['loaded']}  duplicates dropped: {r['duplicates']}")
    print(
        f"ingest seconds:      {r['seconds']:>12.2f}  (CPU {r['cpu_ingest']:.1f}s, all threads; "
        f"{r['cpu_seconds']:.1f}s with start-up; {CORES} cores, load average {r['load']})"
    )
    print(f"feedback events/s:   {events / r['seconds']:>12,.0f}   (target >= 100,000)")
    print(
        f"  at CPU-s/{CORES}:        {events / quiet:>12,.0f}   "
        f"({quiet:.1f}s: the estimate for {CORES} otherwise idle cores)"
    )
    print(f"lines/s:             {lines / r['seconds']:>12,.0f}")
    print(f"peak RSS:            {r['peak_rss_mb']:>12,.0f} MB (target < 2,048 MB)")
    print("wall seconds by step:", ", ".join(f"{k} {v:.1f}" for k, v in r["phases"].items()))
    if args.floor:
        floor = in_child(FLOOR, landing, db)
        print("floor, the same lines with no validation, dedup, redaction or joins:")
        for step, cpu in floor.items():
            print(
                f"  {step + ':':35s} CPU {cpu:5.1f}s = {events / (cpu / CORES):>9,.0f} events/s "
                f"at CPU-s/{CORES}; ingest costs {r['cpu_ingest'] / cpu:.1f}x this"
            )

    feedback_files = sorted((landing / "feedback" / f"dt={DAY}").iterdir())
    n, seconds = python_baseline(feedback_files, limit=200_000)
    print(
        f"baseline (row-at-a-time Python parse+validate only, {n:,} feedback lines): "
        f"{n / seconds:,.0f} lines/s"
    )
    print(
        "ratio, end-to-end ingest lines/s vs baseline parse-only lines/s: "
        f"{(lines / r['seconds']) / (n / seconds):.1f}x"
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"this process peak RSS: {peak:,.0f} MB")


if __name__ == "__main__":
    main()
