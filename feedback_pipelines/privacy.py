r"""PII redaction and pseudonymization.

One list of patterns serves two engines: Python's `re` for record-at-a-time callers, and DuckDB's
RE2 (`regexp_replace`) for bulk ingest, so a text is redacted the same way wherever it enters.
The patterns therefore stay in the syntax both share (no look-around, no back-references).

Payment card numbers need a checksum, which no regex can express: SQL only finds candidates and
`redact_pii` (Luhn-checked) finishes those rows; digit strings that fail Luhn (order numbers,
tracking ids) are kept.

JSON text (a message list, metadata, a raw input line) is redacted by `redact_json`, string by
string in decoded form, never as one flat text: there, an escape such as `\n` puts a letter
right before the next word, so a card or key at the start of a line ("\n4111 ...") has no word
boundary and is missed, and an e-mail pattern can swallow the escape's letter and leave invalid
JSON ("\<EMAIL>").
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
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


# A JSON string token (unrolled, so long strings do not backtrack), and one JSON escape.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_JSON_ESCAPE = re.compile(r"(\\(?:u[0-9a-fA-F]{4}|.))", re.DOTALL)
_PLACEHOLDER = re.compile("|".join(re.escape(p) for p in PLACEHOLDERS))


def redact_json(text: str | None) -> str | None:
    """`redact_pii` for JSON text, or a fragment of it (a truncated or broken line).

    Each string (keys too) is decoded, redacted and re-encoded only if it changed; everything
    between strings (numbers, punctuation, or the rest of a broken line) is redacted piece by
    piece between escapes. In a valid document a placeholder standing where a bare number was
    (a card number sent as a JSON number) is quoted, so valid JSON stays valid. Returns `text`
    itself when nothing changed.
    """
    if not text:
        return text
    strings = list(_JSON_STRING.finditer(text))
    gaps = [text[a.end() if a else 0 : b.start() if b else len(text)] for a, b in _pairs(strings)]
    between = [_redact_between_strings(gap, quote=False) for gap in gaps]
    if any(new != old for new, old in zip(between, gaps, strict=True)):
        try:
            json.loads(text)
        except ValueError:
            pass  # a broken line: nothing to keep valid
        else:
            between = [_redact_between_strings(gap, quote=True) for gap in gaps]
    out = [between[0]]
    for match, gap in zip(strings, between[1:], strict=True):
        out += [_redact_json_string(match.group(0)), gap]
    result = "".join(out)
    return text if result == text else result


def _pairs(matches: list[re.Match[str]]) -> list[tuple[re.Match[str] | None, re.Match[str] | None]]:
    """(previous, next) string match around each gap: before the first, between, after the last."""
    bounds: list[re.Match[str] | None] = [None, *matches, None]
    return list(itertools.pairwise(bounds))


def _redact_json_string(token: str) -> str:
    try:
        value = json.loads(token)
    except ValueError:  # a bad escape: treat the token as plain text
        return _redact_between_strings(token, quote=False)
    redacted = redact_pii(value)
    if redacted == value:
        return token
    encoded = json.dumps(redacted, ensure_ascii=False)
    try:
        encoded.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a \ud800-style escape
        encoded = json.dumps(redacted)
    return encoded


def _redact_between_strings(segment: str, quote: bool) -> str:
    if not segment:
        return segment
    pieces = _JSON_ESCAPE.split(segment)  # odd positions hold the escapes, kept as they are
    changed = False
    for i in range(0, len(pieces), 2):
        redacted = redact_pii(pieces[i])
        if redacted != pieces[i]:
            if quote:
                redacted = _PLACEHOLDER.sub(lambda m: f'"{m.group(0)}"', redacted)
            pieces[i] = redacted
            changed = True
    return "".join(pieces) if changed else segment


def find_pii(texts: Iterable[str | None]) -> list[str]:
    r"""The PII-looking substrings still present in texts (a gate for exports and tests).

    Text holding JSON escapes is also searched string by string, decoded: there an escape
    such as `\n` hides the word boundary before a card or key (see the module's docstring).
    """
    found: list[str] = []
    for text in texts:
        if not text:
            continue
        for piece in _searched_pieces(text):
            for _, pattern in _COMPILED:
                found.extend(m.group(0) for m in pattern.finditer(piece))
            found.extend(m.group(0) for m in _CARD.finditer(piece) if _card(m) == CARD_PLACEHOLDER)
    return found


def _searched_pieces(text: str) -> Iterable[str]:
    yield text
    if "\\" not in text:
        return
    for match in _JSON_STRING.finditer(text):
        token = match.group(0)
        if "\\" in token:
            try:
                yield json.loads(token)
            except ValueError:
                continue


def sql_redact(expr: str) -> str:
    """A DuckDB SQL expression applying every regex of `PII_PATTERNS` to `expr` (not cards)."""
    out = expr
    for placeholder, pattern in PII_PATTERNS:
        out = f"regexp_replace({out}, {_sql_str(pattern)}, '{placeholder}', 'g')"
    return out


def sql_redact_macros(card_function: str, json_function: str | None = None) -> list[str]:
    """SQL defining a `redact(x)` macro: one scan for clean text, the full redaction otherwise.

    Also `may_hold_pii(x)`, that one scan. `card_function` names a scalar function (a Python
    UDF of `redact_cards`) applied only to texts holding a Luhn-valid card-like run. With
    `json_function` (a UDF of `redact_json`), also `redact_json(x)` for JSON text: text without
    escapes holds its strings verbatim, so one scan clears it; text with an escape or a hit
    goes to the UDF.
    """
    digit = "(ord(d[length(d) - i]) - 48)"
    macros = [
        f"CREATE OR REPLACE TEMP MACRO may_hold_pii(x) AS regexp_matches(x, {_sql_str(ANY_PII)})",
        f"CREATE OR REPLACE TEMP MACRO redact_regex(x) AS {sql_redact('x')}",
        # `luhn_ok` in SQL, so only texts with a card that passes it reach Python.
        "CREATE OR REPLACE TEMP MACRO luhn_ok(d) AS list_sum(list_transform(range(length(d)), "
        f"lambda i: CASE WHEN i % 2 = 0 THEN {digit} "
        f"ELSE {digit} * 2 - CASE WHEN {digit} > 4 THEN 9 ELSE 0 END END)) % 10 = 0",
        "CREATE OR REPLACE TEMP MACRO has_card(x) AS list_bool_or(list_transform("
        f"regexp_extract_all(x, {_sql_str(CARD_CANDIDATE)}), "
        "lambda c: luhn_ok(regexp_replace(c, '[ \\-]', '', 'g'))))",
        "CREATE OR REPLACE TEMP MACRO redact(x) AS CASE "
        f"WHEN NOT regexp_matches(x, {_sql_str(ANY_PII)}) THEN x "
        f"WHEN regexp_matches(x, {_sql_str(CARD_CANDIDATE)}) AND has_card(x) "
        f"THEN {card_function}(redact_regex(x)) "
        "ELSE redact_regex(x) END",
    ]
    if json_function:
        macros.append(
            "CREATE OR REPLACE TEMP MACRO redact_json(x) AS CASE "
            f"WHEN contains(x, '\\') OR regexp_matches(x, {_sql_str(ANY_PII)}) "
            f"THEN {json_function}(x) ELSE x END"
        )
    return macros


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def pseudonymize(user_id: str | None, key: str) -> str | None:
    """A stable keyed hash of a user id (HMAC-SHA256), so raw ids never reach storage."""
    if user_id is None:
        return None
    digest = hmac.new(key.encode(), user_id.encode(), hashlib.sha256).hexdigest()
    return "u_" + digest[:20]
