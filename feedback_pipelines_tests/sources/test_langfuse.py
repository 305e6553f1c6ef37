"""Langfuse exports (traces, observations, scores; API rows and ingestion batches) -> ingest.

Fixture rows follow the public API definitions in data/formats/langfuse/ (Trace,
Observation with usage, Score with dataType BOOLEAN / CATEGORICAL / NUMERIC / CORRECTION / TEXT,
IngestionEvent batches).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import dagster as dg
import pytest
import yaml

from feedback_pipelines.cli.main import main
from feedback_pipelines.defs.ingest import landing_ingest
from feedback_pipelines.resources.settings import PipelineConfig
from feedback_pipelines.resources.warehouse import WarehouseResource
from feedback_pipelines.sources.common import ImportResult
from feedback_pipelines.sources.langfuse import (
    LangfuseExport,
    convert,
    import_langfuse,
    score_to_feedback,
)
from feedback_pipelines_tests.fixtures.pipeline import TEST_DATA, PipelineEnv

FORMATS = TEST_DATA / "formats" / "langfuse"
DAY = "2026-11-20"


def trace(tid: str, hour: int, **kw) -> dict:
    return {
        "id": tid,
        "timestamp": f"{DAY}T{hour:02d}:00:00.000Z",
        "name": "support-chat",
        "input": {"question": f"question {tid}"},
        "output": f"trace-level answer {tid}",
        "sessionId": f"session-{tid[-1]}",
        "release": "2026.11.3",
        "version": "v7",
        "userId": f"user-{tid}@corp.example",
        "metadata": {"user_role": "agent", "locale": "en"},
        "tags": ["prod"],
        "public": False,
        "environment": "production",
        "htmlPath": f"/project/p/traces/{tid}",
        "latency": 1.5,
        "totalCost": 0.0021,
        "observations": [f"gen-{tid}"],
        "scores": [],
    } | kw


def generation(tid: str, hour: int, model: str = "gpt-4o-2024-08-06", **kw) -> dict:
    return {
        "id": f"gen-{tid}",
        "traceId": tid,
        "type": "GENERATION",
        "name": "llm-call",
        "startTime": f"{DAY}T{hour:02d}:00:00.100Z",
        "endTime": f"{DAY}T{hour:02d}:00:01.300Z",
        "completionStartTime": f"{DAY}T{hour:02d}:00:00.400Z",
        "model": model,
        "modelParameters": {"temperature": 0.2},
        "input": [
            {"role": "system", "content": "You are a support agent."},
            {"role": "user", "content": f"question {tid}"},
        ],
        "output": {"role": "assistant", "content": f"answer {tid}"},
        "usage": {"input": 40, "output": 12, "total": 52, "unit": "TOKENS"},
        "usageDetails": {"input": 40, "output": 12, "total": 52},
        "level": "DEFAULT",
        "promptName": "support-system",
        "promptVersion": 3,
    } | kw


def score(sid: str, tid: str | None, name: str, value, data_type: str, **kw) -> dict:
    row = {
        "id": sid,
        "traceId": tid,
        "name": name,
        "value": value,
        "dataType": data_type,
        "source": "API",
        "timestamp": f"{DAY}T12:00:00.000Z",
        "createdAt": f"{DAY}T12:00:00.000Z",
        "updatedAt": f"{DAY}T12:00:00.000Z",
        "comment": None,
    }
    if data_type == "BOOLEAN":
        row["stringValue"] = "True" if value else "False"
    return row | kw


def export_dir(root: Path) -> Path:
    folder = root / "export"
    folder.mkdir()
    traces = [trace(f"tr-{i}", 8 + i) for i in range(1, 6)]
    traces.append(trace("tr-6", 14, input="plain question six", output="plain answer six"))
    (folder / "traces.jsonl").write_text(
        "\n".join(json.dumps(t) for t in traces) + "\n" + "{ broken line\n"
    )
    observations = [generation(f"tr-{i}", 8 + i) for i in range(1, 5)]
    observations.append(
        generation("tr-5", 13, model="claude-3-5-sonnet", output="just text", usage=None)
    )
    observations.append(
        {
            "id": "span-1",
            "traceId": "tr-1",
            "type": "SPAN",
            "name": "retrieval",
            "startTime": f"{DAY}T09:00:00.000Z",
        }
    )
    # Observations of a trace that was not exported: the trace is built from them.
    observations.append(generation("tr-only-obs", 15, model="gpt-4o-mini"))
    (folder / "observations.json").write_text(json.dumps(observations))  # a JSON array file
    scores = [
        score("s1", "tr-1", "user-feedback", 0, "BOOLEAN", comment="Wrong city, I asked Lyon."),
        score("s2", "tr-1", "feedback-reason", None, "CATEGORICAL", stringValue="Hallucination"),
        score("s3", "tr-2", "user-feedback", 1, "BOOLEAN"),
        score("s4", "tr-3", "user-correction", "The office opens at 9.", "CORRECTION"),
        score("s5", "tr-4", "rating", 4, "NUMERIC"),
        score("s6", "tr-4", "topic", None, "CATEGORICAL", stringValue="billing"),
        score("s7", "tr-5", "note", "Formatting is off in the table", "TEXT"),
        score("s8", "tr-5", "novelty", 0.9, "NUMERIC"),  # not a 1-5 rating: quarantined
        score("s9", "tr-5", "faithfulness", 0.2, "NUMERIC", source="EVAL"),  # skipped
        score("s10", "tr-2", "hallucination", 1, "BOOLEAN"),  # not a thumb: skipped
        score("s11", None, "user-feedback", 0, "BOOLEAN", sessionId="session-9"),
        score("s12", "tr-6", "user-feedback", 0, "BOOLEAN"),
        score("s13", "tr-only-obs", "user-feedback", 1, "BOOLEAN"),
        {"foo": "bar"},  # unknown shape
    ]
    (folder / "scores.jsonl").write_text("\n".join(json.dumps(s) for s in scores) + "\n")
    return folder


def ingest(ds: str) -> None:
    result = dg.materialize(
        [landing_ingest],
        partition_key=ds,
        resources={"settings": PipelineConfig(), "warehouse": WarehouseResource()},
    )
    assert result.success


def test_fixture_rows_use_the_api_field_names():
    """The fields the fixtures rely on are those of the Langfuse API definitions."""
    ingestion = yaml.safe_load((FORMATS / "ingestion.yml").read_text())["types"]
    for name in ("id", "timestamp", "userId", "sessionId", "input", "output", "metadata"):
        assert name in ingestion["TraceBody"]["properties"]
    for name in ("traceId", "model", "usage", "startTime", "endTime", "input", "output"):
        assert name in ingestion["ObservationBody"]["properties"]
    assert "GENERATION" in ingestion["ObservationType"]["enum"]
    for name in ("traceId", "name", "value", "comment", "dataType", "sessionId"):
        assert name in ingestion["ScoreBody"]["properties"]
    scores = yaml.safe_load((FORMATS / "scores.yml").read_text())["types"]
    assert {"NUMERIC", "CATEGORICAL", "BOOLEAN", "CORRECTION", "TEXT"} == set(
        scores["GetScoresResponseData"]["union"]
    )


def test_export_through_ingest(pipeline_env: PipelineEnv, tmp_path: Path, capsys):
    folder = export_dir(tmp_path)
    assert main(["import", "langfuse", str(folder), "--out", str(pipeline_env.landing)]) == 0
    out = capsys.readouterr().out
    assert "1 scores from automated evaluators (source EVAL)" in out
    ingest(DAY)
    con = pipeline_env.connect()
    try:
        traces = {
            r[0]: r[1:]
            for r in con.execute(
                "SELECT trace_id, model_version, prompt_version, request, response, latency_ms, "
                "input_tokens, output_tokens, user_role, session_id FROM traces WHERE ds = ?",
                [DAY],
            ).fetchall()
        }
        feedback = {
            r[0]: r[1:]
            for r in con.execute(
                "SELECT feedback_id, kind, reason, score, comment, correction, trace_found, "
                "model_version, is_negative FROM feedback_events WHERE ds = ?",
                [DAY],
            ).fetchall()
        }
        bad = con.execute(
            "SELECT source, error, raw FROM quarantine WHERE ds = ? ORDER BY source, line", [DAY]
        ).fetchall()
    finally:
        con.close()

    assert set(traces) == {"tr-1", "tr-2", "tr-3", "tr-4", "tr-5", "tr-only-obs"}
    model, prompt, request, response, latency, tin, tout, role, session = traces["tr-1"]
    assert (model, prompt) == ("gpt-4o-2024-08-06", "support-system:3")
    assert (request, response) == (
        "question tr-1",
        "answer tr-1",
    )  # the generation's, not the trace's
    assert latency == 1500.0 and (tin, tout) == (40, 12)
    assert role == "agent" and session == "session-1"
    assert traces["tr-5"][0] == "claude-3-5-sonnet" and traces["tr-5"][3] == "just text"
    assert traces["tr-only-obs"][0] == "gpt-4o-mini"
    assert traces["tr-only-obs"][4] == pytest.approx(1200.0)  # from the observation's span

    assert feedback["s1"][:2] == ("thumbs_down", "factual_error")  # the reason folded in
    assert feedback["s1"][3] == "Wrong city, I asked Lyon."
    assert "s2" not in feedback  # folded, not a second negative event
    assert feedback["s3"][0] == "thumbs_up" and not feedback["s3"][7]
    assert feedback["s4"][0] == "correction" and feedback["s4"][4] == "The office opens at 9."
    assert feedback["s5"][0] == "rating" and feedback["s5"][2] == 4.0
    assert feedback["s6"][:2] == ("comment", None) and not feedback["s6"][7]
    assert feedback["s7"][0] == "comment" and feedback["s7"][3] == "Formatting is off in the table"
    assert feedback["s13"][0] == "thumbs_up" and feedback["s13"][5]  # trace built from obs
    assert all(f[5] for k, f in feedback.items() if k != "s12")  # traces found
    assert feedback["s12"] == ("thumbs_down", None, None, None, None, False, None, True)
    assert {"s8", "s9", "s10", "s11"}.isdisjoint(feedback)

    errors = [(source, error) for source, error, _ in bad]
    assert ("traces", "not valid JSON") in errors
    assert errors.count(("traces", 'missing required field "model_version"')) == 1  # tr-6
    assert errors.count(("traces", 'missing required field "trace_id"')) == 1  # {"foo": "bar"}
    assert ("feedback", 'missing required field "trace_id"') in errors  # the session score
    assert any(s == "feedback" and e.startswith("a rating needs a score") for s, e in errors)
    assert len(bad) == 5
    raws = " ".join(raw for *_, raw in bad)
    assert "score 'user-feedback' is on session session-9, not on a trace" in raws
    assert "numeric score 'novelty' = 0.9 is not a 1-5 rating" in raws
    assert "no GENERATION observation with a model" in raws


def test_default_model_version_imports_traces_without_generations(tmp_path: Path):
    folder = export_dir(tmp_path)
    landing = tmp_path / "landing"
    result = import_langfuse(folder, landing, default_model="support-bot-v7")
    assert result.passed_through["traces that cannot be mapped"] == 0
    lines = (landing / "traces" / f"dt={DAY}" / "langfuse-export.jsonl").read_text()
    six = [json.loads(x) for x in lines.splitlines() if '"tr-6"' in x]
    assert six[0]["model_version"] == "support-bot-v7"
    assert six[0]["messages"] == [{"role": "user", "content": "plain question six"}]


def test_ingestion_batch_events_with_updates(tmp_path: Path):
    batch = {
        "batch": [
            {
                "id": "ev1",
                "type": "trace-create",
                "timestamp": f"{DAY}T10:00:00.000Z",
                "body": {
                    "id": "t-batch",
                    "timestamp": f"{DAY}T10:00:00.000Z",
                    "userId": "u1",
                    "input": "hello?",
                },
            },
            {
                "id": "ev2",
                "type": "generation-create",
                "timestamp": f"{DAY}T10:00:00.000Z",
                "body": {
                    "id": "g-batch",
                    "traceId": "t-batch",
                    "startTime": f"{DAY}T10:00:00.000Z",
                    "model": "gpt-4o",
                    "input": [{"role": "user", "content": "hello?"}],
                },
            },
            {
                "id": "ev3",
                "type": "generation-update",
                "timestamp": f"{DAY}T10:00:02.000Z",
                "body": {
                    "id": "g-batch",
                    "endTime": f"{DAY}T10:00:02.000Z",
                    "output": {"role": "assistant", "content": "hi!"},
                    "usage": {"promptTokens": 5, "completionTokens": 2},
                },
            },
            {
                "id": "ev4",
                "type": "score-create",
                "timestamp": f"{DAY}T10:01:00.000Z",
                "body": {
                    "id": "sc-batch",
                    "traceId": "t-batch",
                    "name": "user-feedback",
                    "value": 0,
                    "dataType": "BOOLEAN",
                    "comment": "rude",
                },
            },
            {"id": "ev5", "type": "sdk-log", "timestamp": f"{DAY}T10:01:00Z", "body": {"log": 1}},
        ]
    }
    path = tmp_path / "batch.json"
    path.write_text(json.dumps(batch))
    landing = tmp_path / "landing"
    result = import_langfuse(path, landing)
    [t] = [json.loads(x) for x in (landing / "traces" / f"dt={DAY}" / "langfuse-batch.jsonl")
           .read_text().splitlines()]  # fmt: skip
    assert (t["response"], t["input_tokens"], t["output_tokens"]) == ("hi!", 5, 2)
    assert t["latency_ms"] == 2000.0
    [f] = [json.loads(x) for x in (landing / "feedback" / f"dt={DAY}" / "langfuse-batch.jsonl")
           .read_text().splitlines()]  # fmt: skip
    # The score body has no time: the ingestion event's envelope gives it.
    assert (f["kind"], f["comment"], f["timestamp"]) == (
        "thumbs_down",
        "rude",
        f"{DAY}T10:01:00.000Z",
    )
    assert result.skipped["SDK log events"] == 1


@pytest.mark.parametrize(
    ("row", "kind", "reason"),
    [
        ({"name": "user-feedback", "value": 1.0, "dataType": "NUMERIC"}, "thumbs_up", None),
        ({"name": "user-feedback", "value": "False", "dataType": "BOOLEAN"}, "thumbs_down", None),
        ({"name": "why", "stringValue": "too verbose", "dataType": "CATEGORICAL"}, "comment",
         "too_long"),
        ({"name": "why", "value": "Off-topic"}, "comment", "irrelevant"),
        ({"name": "stars", "value": 2, "dataType": "NUMERIC"}, "rating", None),
    ],
)  # fmt: skip
def test_score_mapping(row: dict, kind: str, reason: str | None):
    mapped = score_to_feedback({"id": "x", "traceId": "t", **row}, None)
    assert isinstance(mapped, dict)
    assert (mapped["kind"], mapped["reason"]) == (kind, reason)


def test_reason_fold_needs_exactly_one_thumbs_down():
    export = LangfuseExport()
    result = ImportResult(kind="langfuse")
    for row in (
        score("a", "t", "user-feedback", 0, "BOOLEAN"),
        score("b", "t", "user-feedback", 0, "BOOLEAN"),
        score("c", "t", "reason", None, "CATEGORICAL", stringValue="tone"),
    ):
        export.add(row, {"file": "f", "line": 1}, result)
    _, feedback = convert(export, result)
    assert [f["kind"] for f in feedback] == ["thumbs_down", "thumbs_down", "comment"]
    assert feedback[2]["reason"] == "tone"  # ambiguous: kept as its own event


def test_csv_export_with_snake_case_columns(tmp_path: Path):
    folder = tmp_path / "csv"
    folder.mkdir()
    rows = [trace("tr-1", 9), trace("tr-2", 10)]
    columns = ["id", "timestamp", "name", "input", "output", "session_id", "user_id", "metadata"]
    with (folder / "traces.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for t in rows:
            writer.writerow(
                [
                    t["id"],
                    t["timestamp"],
                    t["name"],
                    json.dumps({"messages": [{"role": "user", "content": "hi " + t["id"]}]}),
                    t["output"],
                    t["sessionId"],
                    t["userId"],
                    json.dumps(t["metadata"]),
                ]
            )
    with (folder / "observations.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "trace_id", "type", "start_time", "end_time", "model", "usage"])
        for t in rows:
            writer.writerow(
                [
                    f"gen-{t['id']}",
                    t["id"],
                    "GENERATION",
                    t["timestamp"],
                    t["timestamp"].replace(":00.000Z", ":02.000Z"),
                    "gpt-4o",
                    json.dumps({"input": 3, "output": 4}),
                ]
            )
    with (folder / "scores.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "trace_id", "name", "value", "string_value", "data_type", "source",
                         "comment", "timestamp"])  # fmt: skip
        writer.writerow(["c1", "tr-1", "user-feedback", "0", "False", "BOOLEAN", "API",
                         "nope", f"{DAY}T12:00:00Z"])  # fmt: skip
        writer.writerow(["c2", "tr-2", "user-correction", "Use 42.", "", "CORRECTION",
                         "ANNOTATION", "", f"{DAY}T12:00:00Z"])  # fmt: skip
    landing = tmp_path / "landing"
    result = import_langfuse(folder, landing)
    assert (result.traces, result.feedback) == (2, 2)
    traces = [
        json.loads(x)
        for x in (landing / "traces" / f"dt={DAY}" / "langfuse-csv.jsonl").read_text().splitlines()
    ]
    assert traces[0]["messages"] == [{"role": "user", "content": "hi tr-1"}]
    assert traces[0]["model_version"] == "gpt-4o"
    assert traces[0]["latency_ms"] == 2000.0  # no latency column: the generation's span
    assert (traces[0]["input_tokens"], traces[0]["output_tokens"]) == (3, 4)
    assert traces[0]["metadata"]["user_role"] == "agent"
    feedback = [
        json.loads(x)
        for x in (landing / "feedback" / f"dt={DAY}" / "langfuse-csv.jsonl")
        .read_text()
        .splitlines()
    ]
    assert [(f["kind"], f.get("comment"), f.get("correction")) for f in feedback] == [
        ("thumbs_down", "nope", None),
        ("correction", None, "Use 42."),
    ]
