"""`feedback-pipelines search` and `feedback-pipelines session`: argparse wiring and printing.

The logic is in `feedback_pipelines.recall.search` and `.recall.sessions`; this module only
parses options, opens the stores read-side and prints (a table for people, `--json` for scripts).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

from feedback_pipelines import config
from feedback_pipelines.cli.common import HelpFormatter

SEARCH_EXAMPLES = """\
examples:
  feedback-pipelines search "the invoice total is wrong" --version nimbus-2026-11 --limit 10
  feedback-pipelines search "refund policy" --since 2026-11-01 --cluster 3 --json
  feedback-pipelines search "too long" --kind thumbs_down,correction --negative
  feedback-pipelines search "wrong visa" --complaint off_topic      # or a complaint id
  feedback-pipelines search - --since 2026-11-01 --json < queries.txt   # a JSON line each

Each hit shows where it sits: theme > subtopic > complaint (what the warehouse knows).

While a pipeline run holds the embedded store, search says so and exits with status 1; and
while search holds it (reading queries from stdin), a pipeline run must wait."""

SESSION_EXAMPLES = """\
examples:
  feedback-pipelines session sess_15887c544c418ee4      # a session id
  feedback-pipelines session tr_0c1d...                 # or a trace or feedback id
  feedback-pipelines session sess_15887c544c418ee4 --json --full"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add both subcommands (the hook `feedback_pipelines.cli.main` calls)."""
    add_search_parser(subparsers)
    add_session_parser(subparsers)


def add_search_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add `search "text" [filters] [--limit N] [--json]`."""
    parser = subparsers.add_parser(
        "search",
        help="find feedback by meaning, with metadata filters",
        description=(
            "Semantic recall of feedback: the events nearest in meaning to TEXT, from the "
            "vector store (QDRANT_URL, else the embedded store in $FEEDBACK_DATA_DIR/qdrant). "
            "Repeat a filter or separate values by commas to allow several values."
        ),
        epilog=SEARCH_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "text",
        help="what the feedback should be about, in your own words; - reads one query a line "
        "from stdin and answers each on the same open store (the store opens once: at the "
        "retention horizon's size that is most of a search's time)",
    )
    parser.add_argument("--version", action="append", help="model version(s)")
    parser.add_argument("--prompt-version", action="append", help="prompt version(s)")
    parser.add_argument("--kind", action="append", help="kind(s): thumbs_down, correction, ...")
    parser.add_argument("--reason", action="append", help="reason(s): factual_error, tone, ...")
    parser.add_argument("--since", type=date.fromisoformat, help="first day, YYYY-MM-DD")
    parser.add_argument("--until", type=date.fromisoformat, help="last day, YYYY-MM-DD")
    parser.add_argument("--cluster", type=int, action="append", help="cluster id(s)")
    parser.add_argument("--role", action="append", help="user role(s)")
    parser.add_argument(
        "--complaint",
        action="append",
        help="what went wrong: complaint id(s) or kind(s) (off_topic, incomplete, "
        "factual_error, outdated, too_long, formatting, refusal, unsafe, slow, style, other)",
    )
    polarity = parser.add_mutually_exclusive_group()
    polarity.add_argument("--negative", dest="negative", action="store_const", const=True)
    polarity.add_argument("--positive", dest="negative", action="store_const", const=False,
                          help="only feedback that is not negative")  # fmt: skip
    parser.add_argument("--limit", type=int, default=10, help="number of hits (default 10)")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.add_argument("--embedder", default=None, help="embedder name (FEEDBACK_EMBEDDER)")
    parser.add_argument("--store-path", type=Path, default=None, help="embedded store folder")
    parser.add_argument("--warehouse", type=Path, default=None, help="DuckDB file (labels)")
    parser.set_defaults(func=run_search)
    return parser


def add_session_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add `session ID [--json] [--full]`."""
    parser = subparsers.add_parser(
        "session",
        help="show a whole conversation with its feedback",
        description=(
            "The whole session that ID belongs to (a session, trace or feedback id), turn by "
            "turn from the warehouse: model and prompt versions, latencies, tokens, "
            "regenerations, abandonment and every feedback signal."
        ),
        epilog=SESSION_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("id", help="a session id, trace id or feedback id")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.add_argument("--full", action="store_true", help="print texts in full")
    parser.add_argument("--warehouse", type=Path, default=None, help="DuckDB file")
    parser.set_defaults(func=run_session)
    return parser


def _error(message: str, code: int = 2) -> int:
    print(f"feedback-pipelines: error: {message}", file=sys.stderr)
    return code


#: What the embedded stores say when another process holds them (Qdrant Edge: the WAL's lock;
#: qdrant-client's local mode: "already accessed by another instance").
_LOCKED = ("WouldBlock", "already accessed", "failed to open WAL", "Resource temporarily")


def store_in_use(exc: BaseException) -> bool:
    """Whether opening the embedded vector store failed because another process holds it."""
    text = str(exc)
    return any(marker in text for marker in _LOCKED)


def run_search(args: argparse.Namespace) -> int:
    """Handler of `search`: one query, or one per line of stdin (TEXT `-`) on one open store."""
    import os

    from feedback_pipelines.embedding import get_embedder
    from feedback_pipelines.recall.search import build_filter, check_request, search_feedback
    from feedback_pipelines.vectorstore import collection_name, open_store

    try:
        embedder = get_embedder(args.embedder)
    except (ValueError, ImportError) as exc:
        return _error(str(exc))
    path = args.store_path or (config.data_dir() / "qdrant")
    if not os.environ.get("QDRANT_URL"):
        shard = path / collection_name(embedder.model_id)
        if not shard.exists():
            return _error(
                f"no feedback indexed for {embedder.model_id} under {path}: run the pipeline "
                "first (feedback-pipelines run ...), or set QDRANT_URL"
            )
    conn, problem = _open_warehouse(args.warehouse)
    if args.complaint and conn is None:
        return _error(f"--complaint needs the warehouse: {problem}", 1)
    filters = dict(
        version=args.version, prompt_version=args.prompt_version, kind=args.kind,
        reason=args.reason, since=args.since, until=args.until, cluster=args.cluster,
        negative=args.negative, user_role=args.role,
    )  # fmt: skip
    many = args.text == "-"
    store = None
    try:
        # A bad filter, query or limit fails before the store's (long) open; `-` (stdin) passes.
        build_filter(**filters)
        check_request(args.text, args.limit)
        store = open_store(embedder.model_id, embedder.dim, path=path)
        for query in _stdin_queries() if many else [args.text]:
            hits = search_feedback(
                query, **filters, complaint=args.complaint, limit=args.limit,
                embedder=embedder, store=store, warehouse=conn,
            )  # fmt: skip
            _print_hits(query if many else None, hits, args.json)
    except ValueError as exc:  # a filter, the limit, an empty query: the same for every query
        return _error(str(exc))
    except Exception as exc:  # Qdrant Edge raises a bare Exception when the store is locked
        if store_in_use(exc):
            return _error(
                f"the embedded vector store {path} is in use by another process (a pipeline "
                "run?): try again when it finishes, or use a Qdrant server (QDRANT_URL)",
                1,
            )
        raise
    finally:
        if store is not None:
            store.close()
        if conn is not None:
            conn.close()
    return 0


def _stdin_queries():
    """Queries from stdin, one a line (blank lines skipped), each read when the last is answered."""
    for line in sys.stdin:
        if line.strip():
            yield line.strip()


def _print_hits(query: str | None, hits: list, as_json: bool) -> None:
    """One query's hits: a table for people, JSON for scripts (a JSON line per query of many)."""
    if as_json:
        found = [h.to_dict() for h in hits]
        if query is None:
            print(json.dumps(found, indent=2, ensure_ascii=False))
        else:
            print(json.dumps({"query": query, "hits": found}, ensure_ascii=False), flush=True)
        return
    if query is not None:
        print(f"== {query}")
    if not hits:
        print("no matching feedback", flush=True)
        return
    for h in hits:
        flags = " ".join(
            x for x in (h.kind, f"({h.reason})" if h.reason else "",
                        f"cluster {h.cluster_id}" if h.cluster_id is not None else "") if x
        )  # fmt: skip
        print(
            f"{h.rank:>2}. {h.score:.3f}  {h.ds}  {h.model_version} / {h.prompt_version}  {flags}"
        )
        if h.path:
            print(f"    {h.path}")
        text = " | ".join(line.strip() for line in h.text.splitlines() if line.strip())
        print(f"    {text[:300]}{'…' if len(text) > 300 else ''}")
        print(f"    feedback {h.feedback_id}  trace {h.trace_id}  session {h.session_id}")
    sys.stdout.flush()


def _open_warehouse(path: Path | None):
    """A read-only warehouse connection for labels and complaint filters, or (None, why)."""
    import duckdb

    path = Path(path or config.warehouse_path())
    if not path.exists():
        return None, f"no warehouse at {path}: run the pipeline first"
    try:
        return duckdb.connect(str(path), read_only=True), None
    except duckdb.Error as exc:
        return None, f"cannot open the warehouse ({exc}); is a pipeline run writing to it?"


def run_session(args: argparse.Namespace) -> int:
    """Handler of `session`."""
    import duckdb

    from feedback_pipelines.recall.sessions import load_session, render_session, session_json

    path = args.warehouse or config.warehouse_path()
    if not Path(path).exists():
        return _error(f"no warehouse at {path}: run the pipeline first")
    try:
        conn = duckdb.connect(str(path), read_only=True)
    except duckdb.IOException as exc:
        return _error(f"cannot open the warehouse ({exc}); is a pipeline run writing to it?")
    try:
        session = load_session(conn, args.id)
    finally:
        conn.close()
    if session is None:
        return _error(f"no session, trace or feedback with id {args.id!r}")
    print(
        session_json(session) if args.json else render_session(session, None if args.full else 160)
    )
    return 0
