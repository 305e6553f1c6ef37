"""PII redaction and pseudonymization.

One list of patterns serves two engines: Python's `re` for record-at-a-time callers, and DuckDB's
RE2 (`regexp_replace`) for bulk ingest, so a text is redacted the same way wherever it enters.
The patterns therefore stay in the syntax both share (no look-around, no back-references).

Payment card numbers need a checksum, which no regex can express: SQL only finds candidates and
`redact_pii` (Luhn-checked) finishes those rows; digit strings that fail Luhn (order numbers,
tracking ids) are kept.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable

import pandas as pd

# (placeholder, pattern), applied in this order: keys and emails before phones and IPs, so a
# token that contains digits is replaced whole.
PII_PATTERNS: list[tuple[str, str]] = [
    ("<EMAIL>", r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"),
    (
        "<API_KEY>",
        r"(?:\bsk-(?:proj-|ant-)?[A-Za-z0-9_\-]{16,}"
        r"|\bgh[pousr]_[A-Za-z0-9]{20,}"
        r"|\bgithub_pat_[A-Za-z0-9_]{20,}"
        r"|\bAKIA[0-9A-Z]{16}\b"
        r"|\bxox[abprs]-[A-Za-z0-9\-]{10,}"
        r"|\bAIza[0-9A-Za-z_\-]{35}"
        r"|\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"
        r"|\b[Bb]earer\s+[A-Za-z0-9._~+/\-]{16,}=*)",
    ),
    (
        "<IP>",
        r"\b(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
        r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\b",
    ),
    (
        "<PHONE>",
        r"(?:\+[0-9]{1,3}[ .\-]?(?:\([0-9]{1,4}\)[ .\-]?)?[0-9]{1,4}(?:[ .\-]?[0-9]{2,4}){2,4}\b"
        r"|\([0-9]{3}\)[ .\-]?[0-9]{3}[ .\-][0-9]{4}\b"
        r"|\b[0-9]{3}[.\-][0-9]{3}[.\-][0-9]{4}\b"
        r"|\b0[0-9]{2,4} [0-9]{3,4} [0-9]{3,4}\b)",
    ),
]
# 13 to 19 digits, optionally grouped by spaces or dashes: a card number if Luhn agrees.
CARD_CANDIDATE = r"\b[0-9](?:[ \-]?[0-9]){12,18}\b"
CARD_PLACEHOLDER = "<CARD>"
PLACEHOLDERS = (*(p for p, _ in PII_PATTERNS), CARD_PLACEHOLDER)

_COMPILED = [(placeholder, re.compile(pattern)) for placeholder, pattern in PII_PATTERNS]
_CARD = re.compile(CARD_CANDIDATE)
# Any PII at all, cards included (as candidates): the cheap test before the replacements.
ANY_PII = "|".join(f"(?:{p})" for _, p in PII_PATTERNS) + f"|(?:{CARD_CANDIDATE})"


def luhn_ok(digits: str) -> bool:
    """True when a digit string passes the Luhn checksum used by payment cards."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"[ \-]", "", match.group(0))
    return CARD_PLACEHOLDER if 13 <= len(digits) <= 19 and luhn_ok(digits) else match.group(0)


def redact_cards(text: str) -> str:
    """Replace Luhn-valid card numbers; keep other long digit strings."""
    return _CARD.sub(_card, text)


def redact_pii(text: str | None) -> str | None:
    """Replace emails, API keys, IPs, phone and card numbers with typed placeholders."""
    if not text:
        return text
    text = redact_cards(text)
    for placeholder, pattern in _COMPILED:
        text = pattern.sub(placeholder, text)
    return text


def redact_series(values: pd.Series) -> pd.Series:
    """`redact_pii` over a column, touching only the rows that may hold PII."""
    mask = values.notna() & values.astype("string").str.contains(ANY_PII, regex=True, na=False)
    if not mask.any():
        return values
    out = values.copy()
    out[mask] = [redact_pii(v) for v in values[mask]]
    return out


def find_pii(texts: Iterable[str | None]) -> list[str]:
    """The PII-looking substrings still present in texts (a gate for exports and tests)."""
    found: list[str] = []
    for text in texts:
        if not text:
            continue
        for _, pattern in _COMPILED:
            found.extend(m.group(0) for m in pattern.finditer(text))
        found.extend(m.group(0) for m in _CARD.finditer(text) if _card(m) == CARD_PLACEHOLDER)
    return found


def sql_redact(expr: str) -> str:
    """A DuckDB SQL expression applying every regex of `PII_PATTERNS` to `expr` (not cards)."""
    out = expr
    for placeholder, pattern in PII_PATTERNS:
        out = f"regexp_replace({out}, {_sql_str(pattern)}, '{placeholder}', 'g')"
    return out


def sql_redact_macros(card_function: str) -> list[str]:
    """SQL defining a `redact(x)` macro: one scan for clean text, the full redaction otherwise.

    `card_function` names a scalar function (a Python UDF of `redact_cards`) applied only to
    texts holding a card-like digit run.
    """
    return [
        f"CREATE OR REPLACE TEMP MACRO redact_regex(x) AS {sql_redact('x')}",
        "CREATE OR REPLACE TEMP MACRO redact(x) AS CASE "
        f"WHEN NOT regexp_matches(x, {_sql_str(ANY_PII)}) THEN x "
        f"WHEN regexp_matches(x, {_sql_str(CARD_CANDIDATE)}) THEN {card_function}(redact_regex(x)) "
        "ELSE redact_regex(x) END",
    ]


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def pseudonymize(user_id: str | None, key: str) -> str | None:
    """A stable keyed hash of a user id (HMAC-SHA256), so raw ids never reach storage."""
    if user_id is None:
        return None
    digest = hmac.new(key.encode(), user_id.encode(), hashlib.sha256).hexdigest()
    return "u_" + digest[:20]
