"""`feedback-pipelines import KIND PATH --out LANDING`: other formats into the landing zone."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from feedback_pipelines.cli.common import HelpFormatter, day_arg, positive_int

FORMATS = ("otlp", "langfuse")
PUBLIC_SETS = ("oasst", "feedbackqa", "lamp", "llmfao")


IMPORT_EXAMPLES = """\
examples:
  feedback-pipelines import otlp collector-export.json --out data/landing
  feedback-pipelines import langfuse langfuse-export/ --out data/landing --model-version v3
  feedback-pipelines import feedbackqa path/to/feedbackqa --end 2026-11-20 --days 7"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `import` subcommand to the `feedback-pipelines` parser."""
    p = subparsers.add_parser(
        "import",
        help="convert OTLP GenAI spans, a Langfuse export or a public feedback set into the "
        "landing zone",
        description=(
            "Converts another format into contract records in the landing zone "
            "(<out>/traces|feedback/dt=YYYY-MM-DD/<name>.jsonl), where the daily ingest "
            "validates, quarantines, deduplicates and redacts them like any other input. "
            "Re-importing the same input replaces the files it wrote."
        ),
        epilog=IMPORT_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    p.add_argument("kind", choices=(*FORMATS, *PUBLIC_SETS), help="the input format or set")
    p.add_argument("path", type=Path, help="input file or folder")
    p.add_argument(
        "--out", type=Path, default=None, help="landing dir (default: $FEEDBACK_LANDING_DIR)"
    )
    p.add_argument("--name", default=None, help="output file name in each day folder")
    p.add_argument(
        "--trace-ids",
        choices=("span", "trace", "response"),
        default="span",
        help="otlp: contract trace id = <traceId>-<spanId> (default), the OTel trace id, or "
        "gen_ai.response.id",
    )
    p.add_argument(
        "--thumb-name",
        action="append",
        default=None,
        help="langfuse: score name that is a thumb (repeatable; default user-feedback)",
    )
    p.add_argument(
        "--model-version",
        default=None,
        help="langfuse: model version for traces that have no generation with a model",
    )
    p.add_argument(
        "--end",
        type=day_arg,
        default=None,
        help="public sets (no timestamps): last day to place records on (default: yesterday)",
    )
    p.add_argument(
        "--days",
        type=positive_int,
        default=1,
        help="public sets: spread records over this many days",
    )
    p.set_defaults(func=run_import)


def run_import(args: argparse.Namespace) -> int:
    """Run one import and print what it read, wrote, passed through and skipped."""
    from feedback_pipelines import config

    if not args.path.exists():
        print(f"feedback-pipelines: error: no such file or folder: {args.path}", file=sys.stderr)
        return 2
    out = args.out or config.landing_dir()
    started = time.perf_counter()
    if args.kind == "otlp":
        from feedback_pipelines.sources.otlp import import_otlp

        result = import_otlp(args.path, out, name=args.name, trace_ids=args.trace_ids)
    elif args.kind == "langfuse":
        from feedback_pipelines.sources.langfuse import DEFAULT_THUMB_NAMES, import_langfuse

        result = import_langfuse(
            args.path,
            out,
            name=args.name,
            thumb_names=args.thumb_name or DEFAULT_THUMB_NAMES,
            default_model=args.model_version,
        )
    else:
        from feedback_pipelines.sources.public_sets import import_public_set

        result = import_public_set(
            args.kind, args.path, out, end=args.end, days=args.days, name=args.name
        )
    print(result.summary())
    days = f"{result.days[0]} .. {result.days[-1]}" if result.days else "no days"
    print(f"landing zone: {out} ({days}) in {time.perf_counter() - started:.1f}s")
    if result.days:
        print(
            "next: feedback-pipelines run --start "
            f"{result.days[0]} --end {result.days[-1]}  (or let the landing sensor pick it up)"
        )
    return 0
