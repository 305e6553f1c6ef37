"""The canonical trace and feedback records (CONTRACT.md section 2) and their validation rules.

Validation runs in bulk inside DuckDB (see `ingest.py`); this module holds the rules as data so
the SQL, the adapters and the docs share one definition.
"""

from __future__ import annotations

FEEDBACK_KINDS = (
    "thumbs_up",
    "thumbs_down",
    "rating",
    "correction",
    "comment",
    "regenerate",
    "copy",
)
FEEDBACK_REASONS = (
    "factual_error",
    "incomplete",
    "irrelevant",
    "tone",
    "too_long",
    "formatting",
    "refusal",
    "unsafe",
    "other",
)
# A line longer than this is quarantined before it is parsed; a text field longer than
# MAX_TEXT_CHARS is quarantined as oversize (nobody writes a 50,000-character comment).
MAX_LINE_BYTES = 2_000_000
MAX_TEXT_CHARS = 50_000
# How much of a bad line the quarantine keeps (redacted): enough to see what went wrong.
RAW_KEEP_CHARS = 2_000

# field -> (JSON types accepted, required). JSON types as DuckDB's json_type() names them.
_STR = ("VARCHAR",)
_NUM = ("BIGINT", "UBIGINT", "DOUBLE")
_OBJ = ("OBJECT",)

TRACE_FIELDS: dict[str, tuple[tuple[str, ...], bool]] = {
    "trace_id": (_STR, True),
    "session_id": (_STR, False),
    "user_id": (_STR, False),
    "timestamp": (_STR, True),
    "model_version": (_STR, True),
    "prompt_version": (_STR, False),
    "messages": (("ARRAY",), True),
    "response": (_STR, True),
    "latency_ms": (_NUM, False),
    "input_tokens": (_NUM, False),
    "output_tokens": (_NUM, False),
    "metadata": (_OBJ, False),
}
FEEDBACK_FIELDS: dict[str, tuple[tuple[str, ...], bool]] = {
    "feedback_id": (_STR, True),
    "trace_id": (_STR, True),
    "session_id": (_STR, False),
    "user_id": (_STR, False),
    "timestamp": (_STR, True),
    "kind": (_STR, True),
    "reason": (_STR, False),
    "score": (_NUM, False),
    "comment": (_STR, False),
    "correction": (_STR, False),
    "metadata": (_OBJ, False),
}
# Free-text fields checked for size.
TRACE_TEXT_FIELDS = ("response",)
FEEDBACK_TEXT_FIELDS = ("comment", "correction")


def negative_sql(kind: str = "kind", score: str = "score", reason: str = "reason") -> str:
    """What counts as a negative signal (`is_negative`), as a SQL predicate."""
    return (
        f"({kind} IN ('thumbs_down', 'correction', 'regenerate')"
        f" OR ({kind} = 'rating' AND {score} <= 2)"
        f" OR ({kind} = 'comment' AND {reason} IS NOT NULL))"
    )


def positive_sql(kind: str = "kind", score: str = "score") -> str:
    """A positive signal, as a SQL predicate: a session ending on one was not abandoned."""
    return f"({kind} IN ('thumbs_up', 'copy') OR ({kind} = 'rating' AND {score} >= 4))"


# Quarantine errors grouped for people: (category, SQL LIKE pattern on the error text).
QUARANTINE_CATEGORIES = (
    ("unreadable file", "unreadable file%"),
    ("refused file", "refused file%"),
    ("invalid UTF-8", "invalid UTF-8%"),
    ("line too long", "line longer than%"),
    ("not JSON", "not valid JSON%"),
    ("not an object", "line is %, not a JSON object"),
    ("missing field", "missing required field%"),
    ("wrong type", "field % must be %"),
    ("unknown kind", "unknown kind%"),
    ("unknown reason", "unknown reason%"),
    ("bad timestamp", "unparseable timestamp%"),
    ("bad messages", "messages must be%"),
    ("bad rating", "a rating needs%"),
    ("empty correction", "a correction needs%"),
    ("oversize text", "oversize text%"),
)


def quarantine_category_sql(column: str = "error") -> str:
    """A SQL CASE naming the category of a quarantine error."""
    whens = " ".join(
        f"WHEN {column} LIKE '{pattern}' THEN '{name}'" for name, pattern in QUARANTINE_CATEGORIES
    )
    return f"CASE {whens} ELSE 'other' END"
