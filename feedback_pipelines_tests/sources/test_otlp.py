"""OTLP GenAI spans, as the Collector's file exporter writes them, through import and ingest.

The fixtures are built from the OTLP JSON example in data/formats/otel/ (its resource
and scope, its encoding: hex ids, decimal-string 64-bit integers, `[{key, value}]` attributes)
with GenAI spans following the semantic conventions; the message attributes are validated
against the GenAI JSON Schemas next to it.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import dagster as dg
import jsonschema
import pytest

from feedback_pipelines.cli.main import main
from feedback_pipelines.defs.ingest import landing_ingest
from feedback_pipelines.resources.settings import PipelineConfig
from feedback_pipelines.resources.warehouse import WarehouseResource
from feedback_pipelines.sources.otlp import (
    any_value,
    attributes,
    convert_lines,
    import_otlp,
    landing_lines,
)
from feedback_pipelines_tests.fixtures.pipeline import TEST_DATA, PipelineEnv

OTEL = TEST_DATA / "formats" / "otel"
DAY = "2026-11-20"
T0 = 1_795_154_400_000_000_000  # 2026-11-20T06:00:00Z in ns
TRACE_A = "5B8EFFF798038103D269B633813FC60C"  # the example's trace id (upper case, as there)


def schema(name: str) -> dict:
    return json.loads((OTEL / f"gen-ai-{name}.json").read_text())


def attr(key: str, value) -> dict:
    """One OTLP JSON attribute, typed as the proto's JSON mapping does it."""
    if isinstance(value, bool):
        v = {"boolValue": value}
    elif isinstance(value, int):
        v = {"intValue": str(value)}  # 64-bit integers are decimal strings
    elif isinstance(value, float):
        v = {"doubleValue": value}
    elif isinstance(value, list):
        v = {"arrayValue": {"values": [{"stringValue": x} for x in value]}}
    else:
        v = {"stringValue": value}
    return {"key": key, "value": v}


def export(spans: list[dict], resource_attrs: list[dict] | None = None) -> dict:
    """An ExportTraceServiceRequest shaped like the example, holding these spans."""
    example = json.loads((OTEL / "otlp-example-trace.json").read_text())
    rs = example["resourceSpans"][0]
    rs["resource"]["attributes"] += resource_attrs or []
    rs["scopeSpans"][0]["spans"] = spans
    return example


def chat_span(
    span_id: str,
    start_ns: int = T0,
    duration_ms: int = 1250,
    trace_id: str = TRACE_A,
    attrs: list[dict] | None = None,
    events: list[dict] | None = None,
    name: str = "chat gpt-4o",
) -> dict:
    return {
        "traceId": trace_id,
        "spanId": span_id,
        "parentSpanId": "EEE19B7EC3C1B173",
        "name": name,
        "kind": 3,  # CLIENT
        "startTimeUnixNano": str(start_ns),
        "endTimeUnixNano": str(start_ns + duration_ms * 1_000_000),
        "attributes": attrs or [],
        "events": events or [],
        "status": {"code": 1},
    }


SYSTEM = [{"type": "text", "content": "You are a helpful travel assistant."}]
INPUT = [
    {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]},
    {
        "role": "assistant",
        "parts": [
            {
                "type": "tool_call",
                "id": "call_1",
                "name": "get_weather",
                "arguments": {"c": "Paris"},
            }
        ],
    },
    {
        "role": "tool",
        "parts": [{"type": "tool_call_response", "id": "call_1", "response": "rainy"}],
    },
    {"role": "user", "parts": [{"type": "text", "content": "And should I take an umbrella?"}]},
]
OUTPUT = [
    {
        "role": "assistant",
        "parts": [{"type": "text", "content": "Yes: rain is forecast all day in Paris."}],
        "finish_reason": "stop",
    }
]


def current_span(span_id: str = "EEE19B7EC3C1B174", **kw) -> dict:
    """A chat span with the current GenAI attributes and an evaluation event."""
    attrs = [
        attr("gen_ai.operation.name", "chat"),
        attr("gen_ai.provider.name", "openai"),
        attr("gen_ai.request.model", "gpt-4o"),
        attr("gen_ai.response.model", "gpt-4o-2024-08-06"),
        attr("gen_ai.response.id", f"chatcmpl-{span_id.lower()}"),
        attr("gen_ai.response.finish_reasons", ["stop"]),
        attr("gen_ai.usage.input_tokens", 97),
        attr("gen_ai.usage.output_tokens", 12),
        attr("gen_ai.conversation.id", "conv-42"),
        attr("gen_ai.system_instructions", json.dumps(SYSTEM)),
        attr("gen_ai.input.messages", json.dumps(INPUT)),
        attr("gen_ai.output.messages", json.dumps(OUTPUT)),
        attr("user.id", "alice@example.com"),
    ]
    events = [
        {
            "timeUnixNano": str(T0 + 60_000_000_000),
            "name": "gen_ai.evaluation.result",
            "attributes": [
                attr("gen_ai.evaluation.name", "user_feedback"),
                attr("gen_ai.evaluation.score.label", "incorrect"),
                attr("gen_ai.evaluation.explanation", "It is sunny in Paris today."),
            ],
        }
    ]
    return chat_span(span_id, attrs=attrs, events=events, **kw)


def legacy_span(span_id: str) -> dict:
    """Older conventions: gen_ai.system, prompt/completion token names, gen_ai.prompt JSON."""
    return chat_span(
        span_id,
        start_ns=T0 + 3_600_000_000_000,
        attrs=[
            attr("gen_ai.system", "openai"),
            attr("gen_ai.request.model", "gpt-3.5-turbo"),
            attr("gen_ai.usage.prompt_tokens", 30),
            attr("gen_ai.usage.completion_tokens", 8),
            attr("gen_ai.prompt", json.dumps([{"role": "user", "content": "Hi there"}])),
            attr("gen_ai.completion", json.dumps([{"role": "assistant", "content": "Hello!"}])),
        ],
        name="chat gpt-3.5-turbo",
    )


def legacy_event_span(span_id: str) -> dict:
    """The 1.26-era shape: content on gen_ai.content.prompt / .completion span events."""
    return chat_span(
        span_id,
        start_ns=T0 + 2 * 3_600_000_000_000,
        attrs=[attr("gen_ai.system", "anthropic"), attr("gen_ai.request.model", "claude-3")],
        events=[
            {
                "timeUnixNano": str(T0),
                "name": "gen_ai.content.prompt",
                "attributes": [attr("gen_ai.prompt", '[{"role": "user", "content": "Bonjour"}]')],
            },
            {
                "timeUnixNano": str(T0),
                "name": "gen_ai.content.completion",
                "attributes": [
                    attr("gen_ai.completion", '[{"role": "assistant", "content": "Salut"}]')
                ],
            },
        ],
    )


def flattened_span(span_id: str) -> dict:
    """OpenLLMetry's flattened gen_ai.prompt.N.* / gen_ai.completion.N.* attributes."""
    return chat_span(
        span_id,
        start_ns=T0 + 3 * 3_600_000_000_000,
        attrs=[
            attr("gen_ai.system", "openai"),
            attr("gen_ai.request.model", "gpt-4o-mini"),
            attr("gen_ai.prompt.0.role", "system"),
            attr("gen_ai.prompt.0.content", "Be brief."),
            attr("gen_ai.prompt.1.role", "user"),
            attr("gen_ai.prompt.1.content", "2+2?"),
            attr("gen_ai.completion.0.role", "assistant"),
            attr("gen_ai.completion.0.content", "4"),
        ],
    )


def other_spans() -> list[dict]:
    http = chat_span("AAAAAAAAAAAAAAA1", attrs=[attr("http.request.method", "POST")], name="POST")
    embed = chat_span(
        "AAAAAAAAAAAAAAA2",
        attrs=[attr("gen_ai.operation.name", "embeddings"), attr("gen_ai.request.model", "e5")],
    )
    tool = chat_span("AAAAAAAAAAAAAAA3", attrs=[attr("gen_ai.operation.name", "execute_tool")])
    tagged = chat_span("AAAAAAAAAAAAAAA4", attrs=[attr("gen_ai.agent.name", "router")])
    return [http, embed, tool, tagged]


def bad_spans() -> list[dict]:
    base = [attr("gen_ai.operation.name", "chat"), attr("gen_ai.request.model", "gpt-4o")]
    no_content = chat_span("BBBBBBBBBBBBBBB1", attrs=base)  # content capture off
    no_model = chat_span(
        "BBBBBBBBBBBBBBB2",
        attrs=[
            attr("gen_ai.operation.name", "chat"),
            attr("gen_ai.input.messages", json.dumps(INPUT)),
            attr("gen_ai.output.messages", json.dumps(OUTPUT)),
        ],
    )
    bad_time = current_span("BBBBBBBBBBBBBBB3")
    bad_time["startTimeUnixNano"] = "yesterday"
    bad_time["events"] = []
    broken_json = chat_span(
        "BBBBBBBBBBBBBBB4",
        attrs=[*base, attr("gen_ai.input.messages", '[{"role": "user", "parts": [')],
    )
    return [no_content, no_model, bad_time, broken_json]


def logs_export() -> dict:
    """Evaluation results sent as log-based events (the current form)."""
    example = json.loads((OTEL / "otlp-example-logs.json").read_text())
    rl = example["resourceLogs"][0]

    def log(attrs, **ids):
        return {
            "timeUnixNano": str(T0 + 120_000_000_000),
            "observedTimeUnixNano": str(T0 + 120_000_000_000),
            "severityNumber": 9,
            "eventName": "gen_ai.evaluation.result",
            "body": {},
            "attributes": attrs,
            **ids,
        }

    rl["scopeLogs"][0]["logRecords"] = [
        # tied to the span by its context
        log(
            [
                attr("gen_ai.evaluation.name", "helpfulness"),
                attr("gen_ai.evaluation.score.value", 4.0),
            ],
            traceId=TRACE_A,
            spanId="EEE19B7EC3C1B175",
        ),
        # no span context: found through gen_ai.response.id
        log(
            [
                attr("gen_ai.evaluation.name", "thumbs"),
                attr("gen_ai.evaluation.score.value", 1.0),
                attr("gen_ai.response.id", "chatcmpl-eee19b7ec3c1b174"),
            ]
        ),
        # tied to nothing: quarantined (missing trace_id)
        log([attr("gen_ai.evaluation.name", "orphan"), attr("gen_ai.evaluation.score.value", 0.0)]),
        # an ordinary log line: skipped
        {**log([]), "eventName": "", "body": {"stringValue": "GET /health"}},
    ]
    return example


def write_file(tmp_path: Path) -> Path:
    lines = [
        json.dumps(export([current_span(), current_span("EEE19B7EC3C1B175")])),
        json.dumps(
            export(
                [legacy_span("CCCCCCCCCCCCCCC1"), legacy_event_span("CCCCCCCCCCCCCCC2")],
                [attr("enduser.id", "bob")],
            )
        ),
        json.dumps(export([flattened_span("CCCCCCCCCCCCCCC3"), *other_spans()])),
        json.dumps(export(bad_spans())),
        json.dumps(logs_export()),
        '{"resourceSpans": [ this is not json',
        json.dumps({"hello": "world"}),
    ]
    path = tmp_path / "genai-2026-11-20.json"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_fixture_messages_follow_the_genai_json_schemas():
    jsonschema.validate(INPUT, schema("input-messages"))
    jsonschema.validate(OUTPUT, schema("output-messages"))
    jsonschema.validate(SYSTEM, schema("system-instructions"))
    with pytest.raises(jsonschema.ValidationError):  # the schemas do reject a wrong shape
        jsonschema.validate([{"role": "user", "content": "flat"}], schema("input-messages"))


def test_any_value_decodes_the_otlp_json_encoding():
    example = json.loads((OTEL / "otlp-example-logs.json").read_text())
    record = example["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    attrs = attributes(record["attributes"])
    assert attrs["int.attribute"] == 10  # from the string "10"
    assert attrs["double.attribute"] == 637.704
    assert attrs["boolean.attribute"] is True
    assert attrs["array.attribute"] == ["many", "values"]
    assert isinstance(attrs["map.attribute"], dict)
    assert any_value({"bytesValue": "AQI="}) == "0102"


def test_current_conventions_map_onto_a_trace_and_feedback():
    lines = [(1, json.dumps(export([current_span()])))]
    traces, feedback, result = convert_lines(lines, "f.json")
    [trace] = traces
    assert trace["trace_id"] == "5b8efff798038103d269b633813fc60c-eee19b7ec3c1b174"
    assert trace["timestamp"] == "2026-11-20T06:00:00Z"
    assert trace["latency_ms"] == 1250.0
    assert trace["model_version"] == "gpt-4o-2024-08-06"
    assert trace["session_id"] == "conv-42"
    assert trace["user_id"] == "alice@example.com"
    assert (trace["input_tokens"], trace["output_tokens"]) == (97, 12)
    assert trace["messages"] == [
        {"role": "system", "content": "You are a helpful travel assistant."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": '[tool call] get_weather({"c": "Paris"})'},
        {"role": "tool", "content": "[tool result] rainy"},
        {"role": "user", "content": "And should I take an umbrella?"},
    ]
    assert trace["response"] == "Yes: rain is forecast all day in Paris."
    meta = trace["metadata"]
    assert meta["provider"] == "openai" and meta["finish_reasons"] == ["stop"]
    assert meta["service"] == "my.service" and meta["otel"]["scope"] == "my.library"
    [fb] = feedback
    assert fb["trace_id"] == trace["trace_id"]
    assert (fb["kind"], fb["reason"]) == ("thumbs_down", "factual_error")
    assert fb["comment"] == "It is sunny in Paris today."
    assert fb["timestamp"] == "2026-11-20T06:01:00Z"
    assert result.read["model-call spans"] == 1


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("trace", "5b8efff798038103d269b633813fc60c"), ("response", "chatcmpl-eee19b7ec3c1b174")],
)
def test_trace_id_modes(mode: str, expected: str):
    traces, feedback, _ = convert_lines([(1, json.dumps(export([current_span()])))], "f", mode)
    assert traces[0]["trace_id"] == expected == feedback[0]["trace_id"]


def test_older_conventions():
    lines = [
        (1, json.dumps(export([legacy_span("CCCCCCCCCCCCCCC1")], [attr("enduser.id", "bob")]))),
        (2, json.dumps(export([legacy_event_span("CCCCCCCCCCCCCCC2")]))),
        (3, json.dumps(export([flattened_span("CCCCCCCCCCCCCCC3")]))),
    ]
    traces, _, _ = convert_lines(lines, "f.json")
    legacy, events, flat = traces
    assert legacy["messages"] == [{"role": "user", "content": "Hi there"}]
    assert legacy["response"] == "Hello!"
    assert (legacy["input_tokens"], legacy["output_tokens"]) == (30, 8)
    assert legacy["model_version"] == "gpt-3.5-turbo" and legacy["user_id"] == "bob"
    assert legacy["metadata"]["provider"] == "openai"
    assert (events["messages"][0]["content"], events["response"]) == ("Bonjour", "Salut")
    assert flat["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "2+2?"},
    ]
    assert flat["response"] == "4"


def ingest(ds: str) -> dg.ExecuteInProcessResult:
    result = dg.materialize(
        [landing_ingest],
        partition_key=ds,
        resources={"settings": PipelineConfig(), "warehouse": WarehouseResource()},
    )
    assert result.success
    return result


def test_import_and_ingest_with_quarantine(pipeline_env: PipelineEnv, tmp_path: Path, capsys):
    path = write_file(tmp_path)
    assert main(["import", "otlp", str(path), "--out", str(pipeline_env.landing)]) == 0
    printed = capsys.readouterr().out
    assert "enable content capture" in printed
    assert (pipeline_env.landing / "traces" / f"dt={DAY}" / "otlp-genai-2026-11-20.jsonl").exists()
    ingest(DAY)
    con = pipeline_env.connect()
    try:
        traces = con.execute(
            "SELECT trace_id, model_version, user_id FROM traces WHERE ds = ? ORDER BY timestamp",
            [DAY],
        ).fetchall()
        feedback = con.execute(
            "SELECT kind, score, trace_found, comment FROM feedback_events WHERE ds = ? "
            "ORDER BY timestamp, kind",
            [DAY],
        ).fetchall()
        bad = con.execute(
            "SELECT source, line, error, raw FROM quarantine WHERE ds = ? ORDER BY source, line",
            [DAY],
        ).fetchall()
    finally:
        con.close()
    # 2 current + 2 legacy + 1 flattened model calls; HTTP, embeddings and tool spans skipped.
    assert len(traces) == 5
    assert {t[1] for t in traces} == {
        "gpt-4o-2024-08-06",
        "gpt-3.5-turbo",
        "claude-3",
        "gpt-4o-mini",
    }
    assert all(t[2] is None or "@" not in t[2] for t in traces)  # pseudonymized
    kinds = [(k, s, found) for k, s, found, _ in feedback]
    assert kinds == [
        ("thumbs_down", None, True),  # span event on span ...174
        ("thumbs_down", None, True),  # span event on span ...175
        ("rating", 4.0, True),  # log record tied to ...175 by span context
        ("thumbs_up", None, True),  # log record tied to ...174 by gen_ai.response.id
    ]
    errors = [(source, error) for source, _, error, _ in bad]
    assert ("feedback", 'missing required field "trace_id"') in errors
    trace_errors = [e for s, e in errors if s == "traces"]
    assert sum(e.startswith('missing required field "messages"') for e in trace_errors) == 2
    assert any(e.startswith('missing required field "model_version"') for e in trace_errors)
    assert any(e.startswith("unparseable timestamp") for e in trace_errors)
    assert any(e.startswith("not valid JSON") for e in trace_errors)
    assert any(e.startswith('missing required field "trace_id"') for e in trace_errors)
    assert len(trace_errors) == 6
    raws = " ".join(raw for *_, raw in bad)
    # The adapter's own explanation leads the raw text each quarantined row keeps.
    assert "content capture is probably off" in raws
    assert "gen_ai.input.messages is not valid JSON" in raws
    assert "no OTLP export" in raws


def test_reimport_replaces_instead_of_duplicating(pipeline_env: PipelineEnv, tmp_path: Path):
    path = write_file(tmp_path)
    lines = pipeline_env.landing / "traces" / f"dt={DAY}" / "otlp-genai-2026-11-20.jsonl"
    first = import_otlp(path, pipeline_env.landing)
    written = lines.stat().st_mtime_ns
    second = import_otlp(path, pipeline_env.landing)
    assert (first.traces, first.feedback) == (second.traces, second.feedback) == (11, 5)
    assert second.days == [DAY]  # undatable lines sit on the file's day, beside the rest
    assert len(lines.read_text().splitlines()) == 11
    assert lines.stat().st_mtime_ns == written  # unchanged files are not rewritten (sensor)
    assert second.skipped["spans without gen_ai attributes"] == 1
    assert second.skipped["gen_ai spans that are not model calls (embeddings)"] == 1
    assert second.skipped["log records that are not evaluation results"] == 1
    assert second.skipped["gen_ai spans with neither an operation nor a model"] == 1


def test_landing_lines_keep_the_otlp_line_numbers(tmp_path: Path):
    """For a landing reader that converts `*.otlp.json` in place (see the module docs)."""
    path = write_file(tmp_path)
    traces = landing_lines(path, "traces")
    feedback = landing_lines(path, "feedback")
    assert [n for n, _ in traces] == [1, 1, 2, 2, 3, 4, 4, 4, 4, 6, 7]
    assert [n for n, _ in feedback] == [1, 1, 5, 5, 5]
    assert json.loads(traces[0][1])["model_version"] == "gpt-4o-2024-08-06"
    assert traces[-2][1].startswith('{"resourceSpans": [ this')  # passed through as it is


def test_example_trace_file_without_genai_spans_yields_nothing(tmp_path: Path):
    """The plain OTLP example (pretty-printed, one server span) is read, and skipped."""
    example = copy.deepcopy(json.loads((OTEL / "otlp-example-trace.json").read_text()))
    path = tmp_path / "example.json"
    path.write_text(json.dumps(example, indent=2))
    result = import_otlp(path, tmp_path / "landing", fallback_day=DAY)
    assert result.read["spans"] == 1 and result.traces == 0
    assert result.skipped["spans without gen_ai attributes"] == 1


def test_otlp_file_dropped_in_the_landing_zone_is_ingested_like_an_import(
    pipeline_env: PipelineEnv, tmp_path: Path
):
    """`*.otlp.json` in landing/traces/dt=D is converted in place: the same rows as `import`."""
    path = write_file(tmp_path)
    folder = pipeline_env.landing / "traces" / f"dt={DAY}"
    folder.mkdir(parents=True)
    (folder / "collector.otlp.json").write_bytes(path.read_bytes())
    ingest(DAY)
    con = pipeline_env.connect()
    try:
        traces = con.execute("SELECT count(*) FROM traces WHERE ds = ?", [DAY]).fetchone()[0]
        (kinds,) = con.execute(
            "SELECT count(*) FROM feedback_events WHERE ds = ?", [DAY]
        ).fetchone()
        bad = con.execute(
            "SELECT source, file, line FROM quarantine WHERE ds = ? ORDER BY source, line", [DAY]
        ).fetchall()
    finally:
        con.close()
    expected_traces = [n for n, _ in landing_lines(path, "traces")]
    expected_feedback = [n for n, _ in landing_lines(path, "feedback")]
    assert traces + sum(1 for s, _, _ in bad if s == "traces") == len(expected_traces)
    assert kinds + sum(1 for s, _, _ in bad if s == "feedback") == len(expected_feedback)
    assert traces > 0 and kinds > 0
    # Quarantined records point at the original OTLP file and its line numbers.
    assert {f for _, f, _ in bad} == {f"traces/dt={DAY}/collector.otlp.json"}
    assert {line for _, _, line in bad} <= set(expected_traces) | set(expected_feedback)
