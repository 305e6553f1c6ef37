"""Time the routing step (tuning exports + review queue) on an existing warehouse.

Calls the pure `routing.day` functions as the `routing` asset does, but writes the files under
`--out` (not the data directory) and the two tables into an in-memory DuckDB, then prints per
sub-stage wall and CPU seconds, the resident memory after it and the peak so far (VmRSS,
VmHWM), and a sha256 of every file and table written, so two code versions can be compared
for speed, memory and byte-identical outputs:

    PYTHONPATH=. .venv/bin/python bench/routing_window.py --root /tmp/routing900k/data \\
        --ds 2026-11-15 --out /tmp/rw/after --hashes /tmp/rw/after.json
    # --window-days 3 for a smaller window; --inputs FILE caches what is read (pickle: a
    # cache written by another code version may hold another shape of inputs, e.g. before
    # `read_window_events` parsed prompts at reading); --profile FILE: cProfile of run_day.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import json
import pickle
import shutil
import sys
import time
from pathlib import Path


def _hashes(out: Path, tables: dict) -> dict[str, str]:
    found = {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }
    return found | tables


def _table_hashes(result) -> dict[str, str]:
    """sha256 of each table's rows as DuckDB stores them (written as the asset writes them)."""
    import duckdb

    from feedback_pipelines.routing import review
    from feedback_pipelines.routing.day import tuning_frame
    from feedback_pipelines.schema import REVIEW_DDL, TUNING_DDL
    from feedback_pipelines.tables import write_partition

    conn = duckdb.connect()
    write_partition(conn, "tuning_candidates", TUNING_DDL, tuning_frame(result.export), result.ds)
    write_partition(conn, "review_queue", REVIEW_DDL, review.table_frame(result.queue), result.ds)
    out = {}
    for table in ("tuning_candidates", "review_queue"):
        digest = hashlib.sha256()
        rows = conn.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
        for row in rows:
            digest.update(repr(row).encode())
        out[f"table:{table}"] = f"{len(rows)}:{digest.hexdigest()}"
    embedded = hashlib.sha256()
    for text in sorted(result.embedded):
        embedded.update(text.encode() + result.embedded[text].tobytes())
    out["text_vectors_added"] = f"{len(result.embedded)}:{embedded.hexdigest()}"
    return out


def _rss() -> tuple[float, float]:
    """(current, peak) resident set size in GB, from /proc/self/status."""
    found = {}
    for line in open("/proc/self/status"):
        if line.startswith(("VmRSS", "VmHWM")):
            found[line.split(":")[0]] = int(line.split()[1]) / 2**20
    return found.get("VmRSS", 0.0), found.get("VmHWM", 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", required=True, help="data directory holding warehouse.duckdb")
    parser.add_argument("--ds", required=True)
    parser.add_argument("--window-days", type=int, default=14)
    parser.add_argument("--out", required=True, help="folder for the files (emptied first)")
    parser.add_argument("--hashes", default="", help="write the hashes here (JSON)")
    parser.add_argument("--inputs", default="", help="pickle of the inputs (read once, reused)")
    parser.add_argument("--profile", default="", help="write a cProfile of run_day here")
    args = parser.parse_args()

    import duckdb

    from feedback_pipelines.embedding import get_embedder
    from feedback_pipelines.routing.day import read_inputs, run_day
    from feedback_pipelines.routing.tuning.similarity import BlockNeighbours

    model = get_embedder(None)
    wall, cpu = time.perf_counter(), time.process_time()
    cache = Path(args.inputs) if args.inputs else None
    if cache and cache.exists():
        inputs = pickle.loads(cache.read_bytes())
    else:
        path = Path(args.root) / "warehouse.duckdb"
        with duckdb.connect(str(path), read_only=True) as conn:
            # Should DuckDB spill while reading, it spills under --out, never beside the
            # warehouse (which this bench only reads).
            spill = Path(args.out).with_name(Path(args.out).name + ".duckdb_tmp")
            conn.execute(f"SET temp_directory = '{spill}'")
            inputs = read_inputs(conn, args.ds, args.window_days, model.model_id)
        if cache:
            cache.write_bytes(pickle.dumps(inputs))
    rss, peak = _rss()
    print(
        f"read: {time.perf_counter() - wall:.1f}s wall, {time.process_time() - cpu:.1f}s CPU; "
        f"RSS {rss:.2f} GB, peak {peak:.2f} GB"
    )

    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    marks: list[tuple[str, float, float, float]] = []
    marks_rss: list[tuple[float, float]] = []

    def log(line: str) -> None:
        marks.append((line, time.perf_counter(), time.process_time(), time.thread_time()))
        rss, peak = _rss()
        marks_rss.append((rss, peak))
        print(f"  {line} [RSS {rss:.2f} GB, peak {peak:.2f} GB]", flush=True)

    wall, cpu, own = time.perf_counter(), time.process_time(), time.thread_time()
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    result = run_day(
        inputs,
        args.ds,
        out,
        embed=model.embed,
        model_id=model.model_id,
        neighbours=BlockNeighbours(log=log),
        window_days=args.window_days,
        log=log,
    )
    if profiler:
        profiler.disable()
        profiler.dump_stats(args.profile)
    totals = (time.perf_counter() - wall, time.process_time() - cpu, time.thread_time() - own)
    # CPU: every thread of the process (BLAS and onnxruntime threads too, spinning included);
    # main: the calling thread only (the Python work).
    previous = (wall, cpu, own)
    for (line, *now), (rss, peak) in zip(marks, marks_rss, strict=True):
        if line.startswith("tuning "):
            w, c, t = (a - b for a, b in zip(now, previous, strict=True))
            print(
                f"{line.split(':')[0]:28s} {w:7.1f}s wall {c:7.1f}s CPU {t:7.1f}s main "
                f"RSS {rss:5.2f} GB peak {peak:5.2f} GB"
            )
            previous = tuple(now)
    w, c, t = totals
    print(f"{'run_day':28s} {w:7.1f}s wall {c:7.1f}s CPU {t:7.1f}s main")
    peak = next(
        (line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM")), "?"
    )
    print(f"peak RSS {int(peak) / 2**20:.1f} GB" if peak != "?" else "peak RSS unknown")
    result.ds = args.ds
    hashes = _hashes(out, _table_hashes(result))
    if args.hashes:
        Path(args.hashes).write_text(json.dumps(hashes, indent=1, sort_keys=True))
    print(f"{len(hashes)} outputs hashed", file=sys.stderr)


if __name__ == "__main__":
    main()
