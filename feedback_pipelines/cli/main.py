"""`feedback-pipelines`: generate data, run the daily pipeline, search feedback, show a session."""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
import time
import traceback
from datetime import timedelta
from pathlib import Path

from feedback_pipelines.cli.common import (
    CLIError,
    HelpFormatter,
    Parser,
    day_arg,
    fail,
    positive_int,
)
from feedback_pipelines.cli.run import add_run_parser, ensure_dagster_home, run_command

__all__ = ["ensure_dagster_home", "main", "run_command"]

# Stage modules that add subcommands: each exposes `register(subparsers)`.
_PLUGINS = ("feedback_pipelines.cli.semantic", "feedback_pipelines.cli.importing")

DESCRIPTION = """\
Daily pipelines that turn what users of an LLM product say and do into topics, per-version
regressions, tuning datasets, a review queue and a daily report, on Dagster.

Data lives under FEEDBACK_DATA_DIR (default ./data): input in landing/, the DuckDB warehouse,
the vector store, exports/, reports/ and review/. Dagster records runs in DAGSTER_HOME
(default ./.dagster_home)."""

EXAMPLES = """\
a first week, end to end:
  feedback-pipelines generate --days 7 --end 2026-11-20
  feedback-pipelines run --start 2026-11-14 --end 2026-11-20
  feedback-pipelines summary --end 2026-11-20
  feedback-pipelines search "the invoice total is wrong" --reason factual_error

`feedback-pipelines COMMAND --help` explains each command, with examples."""

GENERATE_EXAMPLES = """\
examples:
  feedback-pipelines generate --days 7 --end 2026-11-20
  feedback-pipelines generate --days 1 --end 2026-11-20 --events-per-day 50 --out /tmp/landing

Writes traces/dt=DAY/ and feedback/dt=DAY/ files (JSONL, gzipped JSONL) and truth.json, the
planted truth (topics, the regressing version, malformed lines). Same arguments, same bytes."""

SUMMARY_EXAMPLES = """\
examples:
  feedback-pipelines summary
  feedback-pipelines summary --end 2026-11-20     # that day's report, exports and review queue"""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    def of(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "?"

    return f"feedback-pipelines {of('feedback_pipelines')} (dagster {of('dagster')})"


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, every subcommand with its help and examples."""
    parser = Parser(
        prog="feedback-pipelines",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=_version())
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="show Dagster's own log (DEBUG) and full tracebacks",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    gen = sub.add_parser(
        "generate",
        help="write a synthetic landing zone with planted truth",
        description=(
            "Writes realistic synthetic input for --days days ending on --end: traces and "
            "feedback with topics, model and prompt versions (one regressing on one topic), "
            "PII, malformed lines, duplicates and late files."
        ),
        epilog=GENERATE_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    gen.add_argument("--days", type=positive_int, required=True, help="number of days (>= 1)")
    gen.add_argument("--end", type=day_arg, required=True, help="last day, YYYY-MM-DD")
    gen.add_argument(
        "--out", type=Path, default=None, help="landing dir (default: $FEEDBACK_LANDING_DIR)"
    )
    gen.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    gen.add_argument(
        "--events-per-day",
        type=positive_int,
        default=1200,
        help="valid feedback events per day, at least 20 (default 1200)",
    )
    gen.set_defaults(func=_generate)

    add_run_parser(sub)

    summary = sub.add_parser(
        "summary",
        help="what the pipeline produced, and where",
        description=(
            "Lists the warehouse tables with their row counts, and the reports, exports and "
            "review queues under FEEDBACK_DATA_DIR."
        ),
        epilog=SUMMARY_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    summary.add_argument("--end", type=day_arg, default=None, help="the day to show, YYYY-MM-DD")
    summary.set_defaults(func=_summary)

    for name in _PLUGINS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `feedback-pipelines` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, signal.default_int_handler)  # as on Ctrl-C
    try:
        return int(args.func(args) or 0)
    except CLIError as exc:
        return fail(str(exc), exc.code)
    except KeyboardInterrupt:
        return fail("interrupted", 130)
    except Exception as exc:
        if args.verbose:
            traceback.print_exc()
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = "" if args.verbose else " (run with -v for the traceback)"
        return fail(f"{detail}{hint}", 1)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _generate(args: argparse.Namespace) -> int:
    from feedback_pipelines import config
    from feedback_pipelines.sources.synthetic import generate

    if args.events_per_day < 20:
        raise CLIError(f"--events-per-day must be at least 20, got {args.events_per_day}", 2)
    out = args.out or config.landing_dir()
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out} is a file, not a folder", 2)
    start = args.end - timedelta(days=args.days - 1)
    print(f"writing {args.days} day(s) ({start} .. {args.end}) to {out} …", flush=True)
    started = time.perf_counter()
    truth = generate(out, args.days, args.end, seed=args.seed, events_per_day=args.events_per_day)
    n = sum(c.get("feedback_valid_unique", 0) for c in truth.get("counts", {}).values())
    print(
        f"wrote {args.days} days ({truth.get('start')} .. {truth.get('end')}) to {out} "
        f"in {time.perf_counter() - started:.1f}s: {n:,} valid feedback events; "
        f"ground truth in {out / 'truth.json'}"
    )
    print(f"next: feedback-pipelines run --start {start} --end {args.end}")
    return 0


def _summary(args: argparse.Namespace) -> int:
    import duckdb

    from feedback_pipelines import config

    data = config.data_dir()
    if not data.is_dir():
        raise CLIError(
            f"no data directory at {data} (FEEDBACK_DATA_DIR): nothing has run here yet. "
            "Run `make demo`, or `feedback-pipelines run --start DAY --end DAY`"
        )
    db = config.warehouse_path()
    if not db.exists():
        raise CLIError(
            f"no warehouse in {data} ({db.name} is missing): run the pipeline first "
            "(feedback-pipelines run --start DAY --end DAY)"
        )
    print(f"data directory: {data}")
    try:
        con = duckdb.connect(str(db), read_only=True)
    except duckdb.Error as exc:
        raise CLIError(f"cannot open the warehouse {db}: is a run writing to it? ({exc})") from exc
    try:
        tables = [t for (t,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
        print(f"warehouse: {db}")
        for table in sorted(tables):
            n = con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
            print(f"  {table:<24} {n:>10,} rows")
    finally:
        con.close()
    day = f"dt={args.end.isoformat()}" if args.end else "dt=*"
    found = 0
    for label, pattern in (
        ("report", f"reports/{day}/report.html"),
        ("report index", "reports/index.html"),
        ("exports", f"exports/{day}/*"),
        ("review queue", f"review/{day}/queue.jsonl"),
    ):
        for path in sorted(data.glob(pattern))[-8:]:
            found += label != "report index"
            print(f"{label:<14} {path}")
    print(
        f"Dagster runs are recorded in {os.environ.get('DAGSTER_HOME', '(DAGSTER_HOME unset)')}; "
        "browse them with `make dev` (dagster dev)."
    )
    if args.end and not found:
        raise CLIError(f"nothing was produced for {args.end} under {data}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
