"""`feedback-pipelines`: generate data, run the daily pipeline, search feedback, show a session."""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
import time
from datetime import date, timedelta
from pathlib import Path

# Stage modules that add subcommands: each exposes `register(subparsers)`.
_PLUGINS = ("feedback_pipelines.cli.semantic", "feedback_pipelines.cli.importing")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `feedback-pipelines` command."""
    parser = argparse.ArgumentParser(prog="feedback-pipelines", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="write synthetic landing data with planted truth")
    gen.add_argument("--days", type=int, required=True)
    gen.add_argument("--end", type=date.fromisoformat, required=True, help="last day, YYYY-MM-DD")
    gen.add_argument("--out", type=Path, default=None, help="landing dir (default: data/landing)")
    gen.add_argument("--seed", type=int, default=7)
    gen.add_argument("--events-per-day", type=int, default=1200)
    gen.set_defaults(func=_generate)

    run = sub.add_parser("run", help="materialize every asset for a range of daily partitions")
    run.add_argument("--start", type=date.fromisoformat, required=True)
    run.add_argument("--end", type=date.fromisoformat, required=True)
    run.set_defaults(func=_run)

    summary = sub.add_parser("summary", help="what the pipeline produced, and where")
    summary.add_argument("--end", type=date.fromisoformat, default=None, help="the day to show")
    summary.set_defaults(func=_summary)

    for name in _PLUGINS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)

    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


def _generate(args: argparse.Namespace) -> int:
    from feedback_pipelines import config
    from feedback_pipelines.sources.synthetic import generate

    out = args.out or config.landing_dir()
    started = time.perf_counter()
    truth = generate(out, args.days, args.end, seed=args.seed, events_per_day=args.events_per_day)
    n = sum(c.get("feedback_valid_unique", 0) for c in truth.get("counts", {}).values())
    print(
        f"wrote {args.days} days ({truth.get('start')} .. {truth.get('end')}) to {out} "
        f"in {time.perf_counter() - started:.1f}s: {n:,} valid feedback events; "
        f"ground truth in {out / 'truth.json'}"
    )
    return 0


def ensure_dagster_home() -> Path:
    """DAGSTER_HOME, defaulting to ./.dagster_home with the repo's dagster.yaml in it."""
    home = Path(os.environ.get("DAGSTER_HOME") or ".dagster_home").absolute()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    target = home / "dagster.yaml"
    source = Path(__file__).resolve().parent.parent / "dagster.yaml"
    if not target.exists() and source.exists():
        shutil.copyfile(source, target)
    return home


def run_partitions(start: date, end: date, log=print) -> list[tuple[str, bool]]:
    """Run the daily job for each day from start to end, in order, recorded in DAGSTER_HOME."""
    import dagster as dg

    from feedback_pipelines.definitions import defs

    ensure_dagster_home()
    job = defs().resolve_job_def("daily_pipeline")
    results = []
    days = (end - start).days + 1
    with dg.DagsterInstance.get() as instance:
        for i in range(days):
            ds = (start + timedelta(days=i)).isoformat()
            started = time.perf_counter()
            result = job.execute_in_process(
                partition_key=ds, instance=instance, raise_on_error=False
            )
            status = "ok" if result.success else "FAILED"
            log(
                f"[{i + 1}/{days}] {ds}: {status} in {time.perf_counter() - started:.1f}s "
                f"(run {result.run_id[:8]})"
            )
            if not result.success:
                for event in result.all_events:
                    if event.is_failure and event.step_key:
                        log(f"    step {event.step_key} failed: {event.message}")
            results.append((ds, result.success))
    return results


def _run(args: argparse.Namespace) -> int:
    results = run_partitions(args.start, args.end)
    failed = [ds for ds, ok in results if not ok]
    if failed:
        print(f"{len(failed)} of {len(results)} days failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _summary(args: argparse.Namespace) -> int:
    import duckdb

    from feedback_pipelines import config

    data = config.data_dir()
    print(f"data directory: {data}")
    db = config.warehouse_path()
    if db.exists():
        con = duckdb.connect(str(db), read_only=True)
        try:
            tables = [
                t for (t,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
            ]
            print(f"warehouse: {db}")
            for table in sorted(tables):
                n = con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
                print(f"  {table:<24} {n:>10,} rows")
        finally:
            con.close()
    day = f"dt={args.end.isoformat()}" if args.end else "dt=*"
    for label, pattern in (
        ("report", f"reports/{day}/report.html"),
        ("report index", "reports/index.html"),
        ("exports", f"exports/{day}/*"),
        ("review queue", f"review/{day}/queue.jsonl"),
    ):
        for path in sorted(data.glob(pattern))[-8:]:
            print(f"{label:<14} {path}")
    print(
        f"Dagster runs are recorded in {os.environ.get('DAGSTER_HOME', '(DAGSTER_HOME unset)')}; "
        "browse them with `dagster dev`."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
