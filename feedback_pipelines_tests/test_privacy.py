"""PII redaction: every shape is replaced the same way in Python, in DuckDB and in JSON text, the
export gate sees exactly what redaction replaces, and ids, versions and numbers are left alone.

Issue 15 ("Nothing lost, nothing leaked"): each shape below was found stored unredacted.
"""

from __future__ import annotations

import csv
import json
import random
import re
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from feedback_pipelines import privacy
from feedback_pipelines.ingest import day as ingest
from feedback_pipelines.routing import review
from feedback_pipelines.routing.tuning import gates
from feedback_pipelines_tests.fixtures.pii import SHAPES

# Surroundings: start, middle and end of a text, punctuation, quotes, brackets, other scripts.
TEMPLATES = [
    "{}",
    "{} is mine",
    "mine is {}",
    "mine is {}.",
    "({})",
    "[{}]",
    "'{}'",
    '"{}"',
    "«{}»",
    "<{}>",
    "first,{},last",
    "see: {}; thanks",
    "line one\n{}\nline three",
    "\t{}\t",
    "{}!",
    "{}?",
    "— {} —",
    "用户说：{}。",
    "Grüße, {} – Jörg",
]

# Look-alikes that are not personal data: nothing may replace or flag them.
CLEAN = [
    "20261120-000025",
    "sess_15887c544c418ee4",
    "3f2b9c1e-8d4a-4b6f-9e2d-7a1c5b8e0f43",
    "550e8400-e29b-41d4-a716-446655440000",
    "12345678-1234-5678-1234-567812345678",
    "2026-11-20T10:00:00Z",
    "2026-11-20T10:00:00.123+01:00",
    "2026-11-20 10:00:00",
    "01.02.2026 10:30",
    "20/11/2026",
    "10:30:15",
    "nimbus-2026-11",
    "prompt-v3.2.1",
    "order #A-10023",
    "ORD-2026-004812",
    "order 48213",
    "invoice INV-2026-0042",
    "tracking 1Z999AA10123456784",
    "$1,299.99",
    "€3.50",
    "12,000",
    "3.5",
    "1.5e-3",
    "-42",
    "+3 points",
    "100%",
    "2026",
    "1999",
    "1763632800",  # a Unix time, seconds
    "1763632800123",  # and milliseconds
    "4111 1111 1111 1112",  # card-shaped, fails Luhn
    "GB00WEST12345698765432",  # IBAN-shaped, fails mod 97
    "max_tokens=4096",
    "input_tokens: 1500",
    "std::vector<int>",
    "a[::2]",
    "Foo::bar()",
]


def planted() -> list[tuple[str, str, str]]:
    """(text, secret part, expected redaction) for every shape in every surrounding."""
    return [(t.format(s), secret, t.format(out)) for s, secret, out in SHAPES for t in TEMPLATES]


@pytest.fixture(scope="module")
def conn():
    """DuckDB with the redaction macros and UDFs, registered exactly as ingest does."""
    con = duckdb.connect()
    ingest._register_udfs(con)
    yield con
    con.close()


def sql(con: duckdb.DuckDBPyConnection, macro: str, texts: list[str]) -> list[str]:
    """`macro(x)` over texts in one query, in order."""
    con.register("texts", pd.DataFrame({"i": range(len(texts)), "x": texts}))
    try:
        return [r[0] for r in con.execute(f"SELECT {macro}(x) FROM texts ORDER BY i").fetchall()]
    finally:
        con.unregister("texts")


def test_every_shape_in_every_surrounding_is_replaced_exactly():
    for text, secret, expected in planted():
        out = privacy.redact_pii(text)
        assert out == expected, (text, out)
        assert secret not in out
        assert privacy.find_pii([out]) == [], (text, out)


def test_sql_macros_redact_exactly_like_python(conn):
    cases = planted()
    texts = [text for text, _, _ in cases]
    for (text, secret, expected), got in zip(cases, sql(conn, "redact", texts), strict=True):
        assert got == expected, (text, got)
        assert secret not in got
    # The one-scan test says yes to every shape, so no text skips redaction.
    assert all(sql(conn, "may_hold_pii", texts))


def test_redact_json_replaces_every_shape_in_strings_keys_and_escapes(conn):
    docs, wanted = [], []
    for text, _, expected in planted():
        for ascii_only in (False, True):  # "\u00f6" and "\n" escapes, or the characters
            doc = json.dumps(
                {"note": text, "list": ["x", text], text: 1, "n": {"deep": f"a\n{text}"}},
                ensure_ascii=ascii_only,
            )
            docs.append(doc)
            wanted.append(
                {
                    "note": expected,
                    "list": ["x", expected],
                    expected: 1,
                    "n": {"deep": f"a\n{expected}"},
                }
            )
    for doc, want, got_sql in zip(docs, wanted, sql(conn, "redact_json", docs), strict=True):
        got = privacy.redact_json(doc)
        assert json.loads(got) == want, (doc, got)
        assert got_sql == got
        assert privacy.find_pii([got]) == [], got


def test_secrets_given_as_json_key_and_value_are_replaced(conn):
    doc = json.dumps(
        {
            "password": "hunter22",
            "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "cfg": {"AccountKey": 123456789, "api_key": "k-9f8e7d6c5b4a3210"},
            "token": "short",
        }
    )
    assert privacy.find_pii([doc])  # the gate sees them in the flat text
    got = privacy.redact_json(doc)
    assert json.loads(got) == {
        "password": "<SECRET>",
        "aws_secret_access_key": "<SECRET>",
        "cfg": {"AccountKey": "<SECRET>", "api_key": "<SECRET>"},
        "token": "short",  # under 6 characters: too short to tell from a word
    }
    assert privacy.find_pii([got]) == []
    assert sql(conn, "redact_json", [doc]) == [got]


def test_the_gates_flag_every_raw_shape_and_no_clean_id():
    for text, secret, _ in planted():
        hits = privacy.find_pii([text])
        assert any(secret in hit or hit in secret for hit in hits), (text, hits)
        assert gates.pii_hits(text), text
    for clean in CLEAN:
        assert privacy.find_pii([clean, f"id {clean}.", json.dumps({"v": clean})]) == [], clean


def test_a_long_list_is_screened_first_and_finds_the_same():
    """Past `SCREEN_MIN` texts, clean ones are dropped by one RE2 scan before Python's patterns."""
    shapes = [text for text, _, _ in planted()]
    escaped = [json.dumps({"note": f"a\n{t}"}, ensure_ascii=False) for t in shapes]
    prose = [f"the refund for order {k} never arrived" for k in range(privacy.SCREEN_MIN)]
    texts = [*prose, *shapes, *CLEAN, *escaped, None, ""]
    one_by_one = [hit for text in texts for hit in privacy.find_pii([text])]
    assert privacy.find_pii(texts) == one_by_one
    assert len(one_by_one) >= len(shapes)
    screened = privacy.screened([t for t in texts if t])
    assert not set(prose) & set(screened)  # the screen ran, and let clean prose go
    assert set(shapes) | set(escaped) <= set(screened)
    # A lone surrogate cannot go to DuckDB: the list is then scanned in Python alone.
    assert privacy.find_pii(["\ud800 4111 1111 1111 1111", *prose]) == ["4111 1111 1111 1111"]


def test_a_long_list_is_redacted_as_one_text_at_a_time_would_be():
    """`redact_texts` screens past `SCREEN_MIN` texts and changes nothing in the result."""
    shapes = [text for text, _, _ in planted()]
    escaped = [json.dumps({"note": f"a\n{t}"}, ensure_ascii=False) for t in shapes]
    prose = [f"the refund for order {k} never arrived" for k in range(privacy.SCREEN_MIN)]
    texts = [*prose, *shapes, *CLEAN, *escaped, None, "", *shapes]
    redacted = privacy.redact_texts(texts)
    assert redacted == [privacy.redact_pii(t) for t in texts]
    assert sum(a != b for a, b in zip(texts, redacted, strict=True)) >= 2 * len(shapes)
    surrogate = ["\ud800 4111 1111 1111 1111", *prose]
    assert privacy.redact_texts(surrogate)[0] == "\ud800 <CARD>"


def test_the_gates_answer_the_same_after_a_screen_of_many_texts():
    """`gates.screen` lets `pii_hits` skip the redaction patterns, never the broader ones."""
    loose = "use pk_live_abcdefghijklmnopqrstu there"  # a key prefix redaction leaves alone
    texts = [*(t for t, _, _ in planted()), *CLEAN, loose, "the refund never arrived", None]
    gates._pii_hits.cache_clear()
    before = [gates.pii_hits(t) for t in texts]
    gates.screen(texts)
    gates._pii_hits.cache_clear()
    try:
        assert loose in gates._NO_STRICT and "the refund never arrived" in gates._NO_STRICT
        assert not {t for t, _, _ in planted()} & gates._NO_STRICT
        assert [gates.pii_hits(t) for t in texts] == before
        assert gates.pii_hits(loose) == ["pk_live_abcdefghijklmnopqrstu"]
    finally:
        gates.screen([])
        gates._pii_hits.cache_clear()


def test_ids_versions_timestamps_and_numbers_survive(conn):
    texts = [t.format(c) for c in CLEAN for t in ("{}", "ref {}, see", "({})", "x\n{}\n")]
    for text in texts:
        assert privacy.redact_pii(text) == text, text
        doc = json.dumps({"id": text, "v": [text]})
        assert privacy.redact_json(doc) is doc, text
    assert sql(conn, "redact", texts) == texts
    # The one-scan test lets them through too, but for candidates only a checksum rejects.
    maybe = [c for c, hit in zip(CLEAN, sql(conn, "may_hold_pii", CLEAN), strict=True) if hit]
    assert maybe == ["4111 1111 1111 1112", "GB00WEST12345698765432"]


def test_random_texts_with_planted_shapes(conn):
    """Property-style: shapes and clean ids mixed at random into prose; seeded, so repeatable."""
    rng = random.Random(15)
    words = ["the", "refund", "never", "arrived", "café", "naïve", "用户", "—", "ok", "x", "ça"]
    # Not a bare space: "0044 20 7946 0958 2026" may as well be one longer number.
    seps = [", ", "; ", "\n", " (", ") ", ": ", " — ", ". ", ' "', '" ', " '", " / "]
    cases = []
    for _ in range(400):
        parts: list[str] = []
        shapes = rng.sample(SHAPES, rng.randint(1, 3))
        cleans = rng.sample(CLEAN, 2)
        pieces = [*(s for s, _, _ in shapes), *cleans, *rng.sample(words, 4)]
        rng.shuffle(pieces)
        for piece in pieces:
            parts += [piece, rng.choice(seps)]
        text = "".join(parts[: -1 if rng.random() < 0.5 else None])
        cases.append((text, shapes, cleans))
    texts = [text for text, _, _ in cases]
    for (text, shapes, cleans), got_sql in zip(cases, sql(conn, "redact", texts), strict=True):
        out = privacy.redact_pii(text)
        assert got_sql == out, text
        for _, secret, expected in shapes:
            assert secret not in out, (text, out)
            assert re.sub(r"^.*?(<[A-Z_]+>).*$", r"\1", expected) in out, (text, out)
        for clean in cleans:
            assert out.count(clean) == text.count(clean), (text, out, clean)
        assert privacy.find_pii([out]) == [], (text, out)
        assert privacy.find_pii([text]), text
        doc = json.dumps({"t": text, "l": [text, 1]}, ensure_ascii=rng.random() < 0.5)
        assert json.loads(privacy.redact_json(doc)) == {"t": out, "l": [out, 1]}, text


def test_ingest_stores_no_shape_anywhere(tmp_path: Path):
    """A landing zone with every shape in request, response, comment, correction, metadata
    and a quarantined line: none survives in traces, feedback_events or quarantine."""
    day = "2026-11-20"
    shapes = [s for s, _, _ in SHAPES]
    text = "contact " + " | ".join(shapes) + " | ids " + " | ".join(CLEAN)
    landing = tmp_path / "landing"
    traces, feedback = [], []
    for i, ascii_only in enumerate((False, True)):  # escapes, or the characters themselves
        trace = {
            "trace_id": f"t{i}",
            "session_id": "s1",
            "user_id": "alice@corp.example",
            "timestamp": "2026-11-20T09:00:00Z",
            "model_version": "nimbus-2026-11",
            "prompt_version": "p1",
            "messages": [
                {"role": "system", "content": "be nice"},
                {"role": "user", "content": text},
            ],
            "response": f"noted: {text}",
            "metadata": {"user_role": "analyst", "note": text, "password": "hunter22"},
        }
        event = {
            "feedback_id": f"f{i}",
            "trace_id": f"t{i}",
            "timestamp": "2026-11-20T09:05:00Z",
            "kind": "correction",
            "comment": text,
            "correction": text,
            "metadata": {"source": text},
        }
        traces.append(json.dumps(trace, ensure_ascii=ascii_only))
        feedback.append(json.dumps(event, ensure_ascii=ascii_only))
    traces.append('{"trace_id": "broken", "messages": "' + text.replace("\n", "\\n"))
    feedback.append("not json " + text.replace("\n", " "))
    for source, lines in (("traces", traces), ("feedback", feedback)):
        folder = landing / source / f"dt={day}"
        folder.mkdir(parents=True)
        (folder / "a.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    try:
        stats = ingest.ingest_day(con, landing, day, "key")
        dump = "\n".join(
            str(value)
            for table in ("traces", "feedback_events", "quarantine")
            for row in con.execute(f"SELECT * FROM {table}").fetchall()
            for value in row
        )
    finally:
        con.close()
    assert stats.loaded["traces"] == 2 and stats.quarantined["traces"] == 1
    assert stats.quarantined["feedback"] == 1
    for _, secret, _ in SHAPES:
        assert secret not in dump, secret
    assert "hunter22" not in dump
    for placeholder in ("<EMAIL>", "<PHONE>", "<SECRET>", "<API_KEY>", "<IP>", "<IBAN>", "<SSN>"):
        assert placeholder in dump, placeholder
    for clean in CLEAN:
        assert clean in dump, clean


FORMULAS = ['=HYPERLINK("http://x")', "@SUM(A1)", "+cmd|' /C calc'!A0", "=1+1", "-2+3"]


def test_review_csv_neutralizes_formulas(tmp_path: Path):
    """OWASP CSV injection: a cell a spreadsheet would run as a formula starts with a quote."""
    row = dict.fromkeys(review.REVIEW_COLUMNS, "plain")
    row.update(
        priority=1,
        cluster_id=-1,
        score=-2.5,
        routing_reasons=["=1+1", "unsafe"],
        related_feedback_ids=["@SUM(A1)"],
        messages=[{"role": "user", "content": "=1+1"}],
        detail="\tTAB",
        cluster_label="\rCR",
    )
    rows = []
    for i, formula in enumerate(FORMULAS):
        rows.append(
            {
                **row,
                "feedback_id": f"f{i}",
                "request": formula,
                "response": formula,
                "comment": formula,
                "correction": formula,
                "user_role": formula,
            }
        )
    folder = tmp_path / "review" / "dt=2026-11-20"
    review.write_review(pd.DataFrame(rows, columns=review.REVIEW_COLUMNS), folder)
    with (folder / "queue.csv").open(newline="", encoding="utf-8") as handle:
        cells = list(csv.reader(handle))
    assert cells[0] == review.REVIEW_COLUMNS
    for values in cells[1:]:
        for value in values:
            # A number is a number, not a formula; any other text must not start like one.
            if re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", value):
                continue
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), value
    by_id = {
        r[review.REVIEW_COLUMNS.index("feedback_id")]: dict(zip(cells[0], r, strict=True))
        for r in cells[1:]
    }
    for i, formula in enumerate(FORMULAS):
        got = by_id[f"f{i}"]
        for column in ("request", "response", "comment", "correction", "user_role"):
            assert got[column] == "'" + formula
        assert got["routing_reasons"] == "'=1+1; unsafe"
        assert got["related_feedback_ids"] == "'@SUM(A1)"
        assert got["detail"] == "'\tTAB" and got["cluster_label"] == "'\rCR"
        assert got["cluster_id"] == "-1" and got["score"] == "-2.5" and got["priority"] == "1"
        assert json.loads(got["messages"]) == [{"role": "user", "content": "=1+1"}]
    # The JSON lines keep the text as it was: only the spreadsheet needs the quote.
    lines = [json.loads(x) for x in (folder / "queue.jsonl").read_text().splitlines()]
    assert [x["comment"] for x in lines] == FORMULAS
