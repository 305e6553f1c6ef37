"""Every shape of personal data, planted in every text field, survives nowhere after a whole day.

One day of input whose requests, responses, comments, corrections and metadata each carry the
shapes of `fixtures.pii`, run through the real daily job (ingest, embeddings, Qdrant, clustering,
regressions, routing, report). Then every place a person or a model could read is searched for
the secret part of each shape: every text column of every warehouse table, the Qdrant payloads,
the exports, the review queue files and the report files.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from feedback_pipelines_tests.fixtures.landing import feedback, trace, write
from feedback_pipelines_tests.fixtures.pii import SHAPES
from feedback_pipelines_tests.fixtures.pipeline import run_day

pytestmark = pytest.mark.slow
DAY = "2026-11-20"


def plant(env) -> None:
    traces, events = [], []
    for i, (shape, _, _) in enumerate(SHAPES):
        tid = f"t{i:03d}"
        ts = f"2026-11-20T{8 + i // 60:02d}:{i % 60:02d}:00Z"
        version = "nimbus-2" if i % 2 else "nimbus-1"
        traces.append(
            trace(
                tid,
                session=f"s{i % 7}",
                ts=ts,
                model_version=version,
                messages=[
                    {"role": "system", "content": "You help with invoices."},
                    {"role": "user", "content": f"my invoice is wrong, reach me at {shape}"},
                ],
                response=f"Sure, I noted {shape} for the invoice total.",
                metadata={"user_role": "analyst", "note": f"contact {shape}"},
            )
        )
        events.append(
            feedback(f"f{i:03d}", tid, timestamp=ts, comment=f"still wrong, I wrote {shape}")
        )
        events.append(
            feedback(
                f"c{i:03d}",
                tid,
                kind="correction",
                timestamp=ts,
                correction=f"The invoice total is 120 EUR; do not repeat {shape}.",
            )
        )
    write(env, "traces", DAY, "a.jsonl", traces)
    write(env, "feedback", DAY, "a.jsonl", events)


def warehouse_texts(env) -> list[str]:
    with env.connect() as conn:
        columns = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE data_type LIKE 'VARCHAR%' OR data_type LIKE '%[]'"
        ).fetchall()
        return [
            str(value)
            for table, column in columns
            for (value,) in conn.execute(f'SELECT "{column}"::VARCHAR FROM "{table}"').fetchall()
            if value is not None
        ]


def payload_texts(env) -> list[str]:
    from feedback_pipelines.embedding import get_embedder
    from feedback_pipelines.vectorstore import open_store

    model = get_embedder()
    store = open_store(model.model_id, model.dim, path=env.data / "qdrant")
    try:
        ids = store.ids({})
        assert ids, "the day's points are in the store"
        return [
            str(v) for payload in store.retrieve_payloads(ids).values() for v in payload.values()
        ]
    finally:
        store.close()


def file_texts(root: Path) -> list[str]:
    return [
        p.read_text(encoding="utf-8", errors="replace")
        if p.suffix != ".parquet"
        else p.read_bytes().decode("utf-8", errors="replace")
        for p in sorted(root.rglob("*"))
        if p.is_file()
    ]


def test_no_planted_shape_survives_in_any_table_payload_export_queue_or_report(pipeline_env):
    env = pipeline_env
    plant(env)
    result = run_day(DAY)
    assert result.success
    places = {
        "warehouse": warehouse_texts(env),
        "qdrant payloads": payload_texts(env),
        "exports": file_texts(env.data / "exports"),
        "review": file_texts(env.data / "review"),
        "reports": file_texts(env.data / "reports"),
    }
    assert all(places.values()), {k: len(v) for k, v in places.items()}
    leaks = [
        (place, secret)
        for place, texts in places.items()
        for _, secret, _ in SHAPES
        if any(secret in text for text in texts)
    ]
    assert leaks == []
    stored = " ".join(places["warehouse"])  # redacted in place, not dropped
    kinds = ("<EMAIL>", "<PHONE>", "<SECRET>", "<API_KEY>", "<IP>", "<IBAN>", "<SSN>", "<CARD>")
    assert [k for k in kinds if k not in stored] == []
