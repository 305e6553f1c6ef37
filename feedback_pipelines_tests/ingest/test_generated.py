"""Ingest of a generated week, checked against the generator's planted truth."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def week(ingested_week):
    env, truth = ingested_week
    con = env.connect()
    yield con, truth
    con.close()


def per_day(con, sql: str) -> dict[str, int]:
    return {str(ds): n for ds, n in con.execute(sql).fetchall()}


def test_counts_match_the_planted_truth_exactly(week):
    con, truth = week
    counts = truth["counts"]
    traces = per_day(con, "SELECT ds, count(*) FROM traces GROUP BY 1")
    events = per_day(con, "SELECT ds, count(*) FROM feedback_events GROUP BY 1")
    unknown = per_day(
        con, "SELECT ds, count(*) FILTER (WHERE NOT trace_found) FROM feedback_events GROUP BY 1"
    )
    late = per_day(
        con, "SELECT ds, count(*) FILTER (WHERE trace_ds < ds) FROM feedback_events GROUP BY 1"
    )
    abandoned = per_day(con, "SELECT ds, count(*) FILTER (WHERE abandoned) FROM traces GROUP BY 1")
    for ds, c in counts.items():
        assert traces[ds] == c["traces_valid_unique"], ds
        assert events[ds] == c["feedback_valid_unique"], ds
        assert unknown[ds] == c["feedback_unknown_trace"], ds
        assert late[ds] == c["feedback_late"], ds
        assert abandoned[ds] == c["abandoned"], ds
        for source, reasons in c["quarantined_by_source"].items():
            n = con.execute(
                "SELECT count(*) FROM quarantine WHERE ds = ? AND source = ?", [ds, source]
            ).fetchone()[0]
            assert n == sum(reasons.values()), (ds, source)


def test_every_planted_quarantine_reason_is_named(week):
    con, truth = week
    planted = {r for c in truth["counts"].values() for r in c["quarantined"]}
    from feedback_pipelines.ingest.records import quarantine_category_sql

    found = {
        r
        for (r,) in con.execute(
            f"SELECT DISTINCT {quarantine_category_sql()} FROM quarantine"
        ).fetchall()
    }
    assert "other" not in found
    # generator reason -> our category
    mapping = {
        "not_json": "not JSON",
        "not_object": "not an object",
        "missing_field": "missing field",
        "wrong_type": "wrong type",
        "unknown_kind": "unknown kind",
        "bad_timestamp": "bad timestamp",
        "invalid_utf8": "invalid UTF-8",
        "oversize": "oversize text",
    }
    assert {mapping[r] for r in planted} <= found


def test_no_planted_pii_or_raw_user_id_in_any_table(week):
    con, truth = week
    tables = [t for (t,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
    secrets = truth["pii"] + truth["raw_user_ids"]
    assert secrets
    for table in tables:
        cols = [
            c
            for (c, ty) in con.execute(
                f"SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = '{table}'"
            ).fetchall()
            if ty == "VARCHAR"
        ]
        if not cols:
            continue
        blob = " ".join(cols)
        concat = " || ' ' || ".join(f"coalesce({c}, '')" for c in cols)
        for secret in secrets:
            n = con.execute(
                f"SELECT count(*) FROM {table} WHERE contains({concat}, ?)", [secret]
            ).fetchone()[0]
            assert n == 0, (table, secret, blob)
    kept = truth.get("not_pii", [])
    joined = " ".join(
        r
        for (r,) in con.execute(
            "SELECT string_agg(coalesce(comment, '') || request, ' ') FROM feedback_events"
        ).fetchall()
    )
    assert any(k in joined for k in kept)  # look-alikes (Luhn-invalid digits) survive
