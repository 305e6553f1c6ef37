"""OpenTelemetry GenAI spans (OTLP JSON, as the Collector's file exporter writes them) -> records.

The file exporter (`format: json`) writes one `ExportTraceServiceRequest` or
`ExportLogsServiceRequest` per line: `{"resourceSpans": [{"resource", "scopeSpans": [{"scope",
"spans": [...]}]}]}`. OTLP JSON spells ids as hex strings, 64-bit integers as decimal strings and
attributes as `[{"key", "value": {"stringValue" | "intValue" | ...}}]`.

A model-call span (`gen_ai.operation.name` chat / text_completion / generate_content) becomes one
trace:

- trace_id: `<traceId>-<spanId>` (or the bare OTel trace id, or `gen_ai.response.id`: see
  `trace_ids`);
- timestamp, latency_ms: `startTimeUnixNano`; `endTimeUnixNano - startTimeUnixNano`;
- model_version: `gen_ai.response.model`, else `gen_ai.request.model`;
- session_id: `gen_ai.conversation.id` (else `session.id`); user_id: `user.id` (else
  `enduser.id`), on the span or its resource;
- messages: `gen_ai.system_instructions` + `gen_ai.input.messages`; older instrumentations:
  `gen_ai.prompt` (JSON, as an attribute or on a `gen_ai.content.prompt` event) or the flattened
  `gen_ai.prompt.N.role` / `.content`;
- response: `gen_ai.output.messages` (first assistant message); older: `gen_ai.completion`
  likewise;
- input_tokens / output_tokens: `gen_ai.usage.input_tokens` / `output_tokens`; older
  `gen_ai.usage.prompt_tokens` / `completion_tokens`.

A `gen_ai.evaluation.result` event (on the span, or a log record with that event name) becomes a
feedback event: a pass/fail-like label or a 0/1 score is a thumb, a 1-5 score a rating, a label
that names a contract reason sets `reason`, the explanation is the comment.

Spans of other kinds (HTTP, embeddings, tools, agents) are counted and skipped. A model-call span
that cannot be mapped (no captured content, no model, broken timestamps) is written through with
an `_import_error` note so ingest quarantines it with a reason; a line that is not JSON is
written through as it is ("not valid JSON").
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from feedback_pipelines.sources.common import (
    ImportResult,
    RawLine,
    normalize_label,
    reason_for,
    rfc3339,
    stable_id,
    with_error,
    write_landing,
)

FORMAT = "otlp"
MODEL_CALL_OPERATIONS = frozenset({"chat", "text_completion", "generate_content"})
EVALUATION_EVENT = "gen_ai.evaluation.result"
TRACE_ID_MODES = ("span", "trace", "response")
# Labels an evaluator or a feedback widget uses for a positive / negative judgement.
POSITIVE_LABELS = frozenset(
    {"pass", "passed", "correct", "relevant", "good", "positive", "helpful", "like", "liked",
     "thumbs_up", "thumbsup", "up", "yes", "true", "accept", "accepted"}
)  # fmt: skip
NEGATIVE_LABELS = frozenset(
    {"fail", "failed", "incorrect", "not_relevant", "irrelevant", "bad", "negative",
     "unhelpful", "not_helpful", "dislike", "disliked", "thumbs_down", "thumbsdown", "down",
     "no", "false", "reject", "rejected"}
)  # fmt: skip
# Older instrumentations set no gen_ai.operation.name: one of these marks a model call.
_MODEL_CALL_HINTS = (
    "gen_ai.request.model",
    "gen_ai.response.model",
    "gen_ai.system",
    "gen_ai.provider.name",
)
PROMPT_VERSION_KEYS = ("gen_ai.prompt.version", "gen_ai.prompt_template.version", "prompt.version")


# --- OTLP JSON values ---------------------------------------------------------------------


def any_value(value: Mapping[str, Any] | None) -> Any:
    """An OTLP JSON `AnyValue` as a Python value (ints from their decimal strings)."""
    if not isinstance(value, Mapping):
        return None
    if "stringValue" in value:
        return value["stringValue"]
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "intValue" in value:
        try:
            return int(value["intValue"])
        except (TypeError, ValueError):
            return value["intValue"]
    if "doubleValue" in value:
        try:
            return float(value["doubleValue"])
        except (TypeError, ValueError):
            return value["doubleValue"]
    if "arrayValue" in value:
        return [any_value(v) for v in (value["arrayValue"] or {}).get("values") or []]
    if "kvlistValue" in value:
        return attributes((value["kvlistValue"] or {}).get("values"))
    if "bytesValue" in value:
        try:
            return base64.b64decode(value["bytesValue"]).hex()
        except (ValueError, TypeError):
            return value["bytesValue"]
    return None


def attributes(items: Iterable[Mapping[str, Any]] | None) -> dict[str, Any]:
    """OTLP `[{key, value}]` attributes as a dict."""
    out: dict[str, Any] = {}
    for item in items or []:
        if isinstance(item, Mapping) and isinstance(item.get("key"), str):
            out[item["key"]] = any_value(item.get("value"))
    return out


def _hex(value: object) -> str | None:
    return value.lower() if isinstance(value, str) and value else None


def nanos_to_time(value: object) -> datetime | None:
    """`*UnixNano` (a decimal string or an int) as an aware UTC datetime; None when absent/0."""
    if value in (None, "", 0, "0"):
        return None
    nanos = int(value)  # ValueError for a non-number: the caller reports it
    return datetime.fromtimestamp(nanos // 1_000_000_000, UTC).replace(
        microsecond=(nanos % 1_000_000_000) // 1000
    )


# --- GenAI messages ------------------------------------------------------------------------


def _json_attr(value: Any, name: str) -> Any:
    """An attribute that holds JSON: parsed when a string, as it is when already structured."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{name} is not valid JSON ({exc.msg} at char {exc.pos})") from None
    return value


def part_text(part: Mapping[str, Any]) -> str | None:
    """Readable text of one GenAI message part (text, tool call, tool result, ...)."""
    kind = part.get("type")
    if kind in ("text", "reasoning") and isinstance(part.get("content"), str):
        return part["content"] if kind == "text" else None
    if kind == "tool_call":
        args = part.get("arguments")
        args_text = args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)
        return f"[tool call] {part.get('name')}({args_text if args is not None else ''})"
    if kind == "tool_call_response":
        response = part.get("response")
        text = response if isinstance(response, str) else json.dumps(response, ensure_ascii=False)
        return f"[tool result] {text}"
    if kind in ("uri", "file", "blob"):
        return f"[{part.get('modality') or kind}]"
    return None


def genai_messages(value: Any, name: str) -> list[dict[str, str]]:
    """GenAI `[{role, parts: [...]}]` messages as contract `[{role, content}]`.

    Raises ValueError with a readable reason when the value is not that shape.
    """
    data = _json_attr(value, name)
    if not isinstance(data, list) or not data:
        raise ValueError(f"{name} must be a non-empty list of messages")
    out = []
    for i, message in enumerate(data):
        if not isinstance(message, Mapping) or not isinstance(message.get("role"), str):
            raise ValueError(f"{name}[{i}] has no role")
        parts = message.get("parts")
        if not isinstance(parts, list):
            # Some instrumentations still write OpenAI-style {role, content}.
            if isinstance(message.get("content"), str):
                out.append({"role": message["role"], "content": message["content"]})
                continue
            raise ValueError(f"{name}[{i}] has no parts")
        texts = [t for p in parts if isinstance(p, Mapping) and (t := part_text(p)) is not None]
        out.append({"role": message["role"], "content": "\n".join(texts)})
    return out


def system_message(value: Any) -> dict[str, str] | None:
    """`gen_ai.system_instructions` (a list of parts, or a string) as one system message."""
    data = _json_attr(value, "gen_ai.system_instructions")
    if isinstance(data, str):
        return {"role": "system", "content": data}
    if isinstance(data, list):
        texts = [t for p in data if isinstance(p, Mapping) and (t := part_text(p)) is not None]
        return {"role": "system", "content": "\n".join(texts)}
    raise ValueError("gen_ai.system_instructions must be a list of parts")


def legacy_messages(value: Any, name: str) -> list[dict[str, str]]:
    """Older `gen_ai.prompt` / `gen_ai.completion`: JSON `[{role, content}]` or plain text."""
    if isinstance(value, str):
        try:
            data = json.loads(value)
        except json.JSONDecodeError:
            role = "assistant" if name == "gen_ai.completion" else "user"
            return [{"role": role, "content": value}]
    else:
        data = value
    if isinstance(data, Mapping):
        data = [data]
    if not isinstance(data, list) or not data:
        raise ValueError(f"{name} must be a list of messages")
    out = []
    for i, message in enumerate(data):
        if not isinstance(message, Mapping):
            raise ValueError(f"{name}[{i}] is not a message")
        content = message.get("content")
        if isinstance(content, list):
            content = "\n".join(
                str(p.get("text", p.get("content", ""))) for p in content if isinstance(p, Mapping)
            )
        if not isinstance(content, str):
            content = "" if content is None else json.dumps(content, ensure_ascii=False)
        out.append({"role": str(message.get("role") or "user"), "content": content})
    return out


def flattened_messages(attrs: Mapping[str, Any], prefix: str) -> list[dict[str, str]] | None:
    """OpenLLMetry's flattened `gen_ai.prompt.0.role` / `gen_ai.prompt.0.content` attributes."""
    found: dict[int, dict[str, str]] = {}
    for key, value in attrs.items():
        if not key.startswith(prefix + "."):
            continue
        index, _, field = key[len(prefix) + 1 :].partition(".")
        if index.isdigit() and field in ("role", "content"):
            found.setdefault(int(index), {})[field] = "" if value is None else str(value)
    if not found:
        return None
    default = "assistant" if prefix == "gen_ai.completion" else "user"
    return [
        {"role": found[i].get("role") or default, "content": found[i].get("content", "")}
        for i in sorted(found)
    ]


def _response_text(messages: list[dict[str, str]]) -> str:
    for message in messages:
        if message["role"] == "assistant":
            return message["content"]
    return messages[0]["content"]


# --- spans -> traces -----------------------------------------------------------------------


def _first(attrs: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        value = attrs.get(key)
        if value not in (None, ""):
            return value
    return None


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def our_trace_id(trace_id: str | None, span_id: str | None, response_id: Any, mode: str) -> str:
    """The contract trace id of a span under the chosen mode (see module docstring)."""
    if mode == "response" and response_id:
        return str(response_id)
    if mode == "trace" and trace_id:
        return trace_id
    if trace_id and span_id:
        return f"{trace_id}-{span_id}"
    return trace_id or span_id or ""


def span_to_trace(
    span: Mapping[str, Any],
    resource: Mapping[str, Any],
    scope: Mapping[str, Any],
    origin: dict[str, Any],
    trace_ids: str = "span",
) -> dict[str, Any]:
    """One GenAI model-call span as a contract trace (with `_import_error` if not mappable)."""
    attrs = attributes(span.get("attributes"))
    events = [e for e in span.get("events") or [] if isinstance(e, Mapping)]
    otel_trace, span_id = _hex(span.get("traceId")), _hex(span.get("spanId"))
    response_id = attrs.get("gen_ai.response.id")
    errors: list[str] = []

    start = end = None
    try:
        start = nanos_to_time(span.get("startTimeUnixNano"))
        end = nanos_to_time(span.get("endTimeUnixNano"))
    except (TypeError, ValueError, OverflowError):
        errors.append("startTimeUnixNano/endTimeUnixNano are not integers")
    timestamp: Any = rfc3339(start) if start else None
    if errors:
        timestamp = str(span.get("startTimeUnixNano"))  # ingest: "unparseable timestamp ..."
    elif start is None:
        errors.append("span has no startTimeUnixNano")
    latency = (end - start).total_seconds() * 1000 if start and end and end >= start else None

    messages: list[dict[str, str]] | None = None
    response: str | None = None
    try:
        messages, response = _span_content(attrs, events)
    except ValueError as exc:
        errors.append(str(exc))
    if messages is None and not errors:
        errors.append(
            "span has no captured input messages (gen_ai.input.messages): content capture is "
            "probably off in the instrumentation"
        )
    if response is None and not errors:
        errors.append("span has no captured output (gen_ai.output.messages)")

    model = _first(attrs, "gen_ai.response.model", "gen_ai.request.model")
    if model is None:
        errors.append("span has no gen_ai.response.model or gen_ai.request.model")
    finish = attrs.get("gen_ai.response.finish_reasons")
    roles = _first(attrs, "user.roles", "user.role")
    metadata = {
        "source": FORMAT,
        "provider": _first(attrs, "gen_ai.provider.name", "gen_ai.system"),
        "operation": attrs.get("gen_ai.operation.name"),
        "request_model": attrs.get("gen_ai.request.model"),
        "response_id": response_id,
        "finish_reasons": finish if isinstance(finish, list) else None,
        "user_role": roles[0] if isinstance(roles, list) and roles else roles,
        "service": resource.get("service.name"),
        "otel": {
            "trace_id": otel_trace,
            "span_id": span_id,
            "parent_span_id": _hex(span.get("parentSpanId")),
            "span_name": span.get("name"),
            "scope": scope.get("name"),
            "status": (span.get("status") or {}).get("code"),
        },
        "import": origin,
    }
    record = {
        "trace_id": our_trace_id(otel_trace, span_id, response_id, trace_ids) or None,
        "session_id": _str(_first(attrs, "gen_ai.conversation.id", "session.id")),
        "user_id": _str(
            _first(attrs, "user.id", "enduser.id") or _first(resource, "user.id", "enduser.id")
        ),
        "timestamp": timestamp,
        "model_version": _str(model),
        "prompt_version": _str(_first(attrs, *PROMPT_VERSION_KEYS)),
        "messages": messages,
        "response": response,
        "latency_ms": round(latency, 3) if latency is not None else None,
        "input_tokens": _number(
            _first(attrs, "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")
        ),
        "output_tokens": _number(
            _first(attrs, "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")
        ),
        "metadata": {k: v for k, v in metadata.items() if v is not None},
    }
    if record["trace_id"] is None:
        errors.append("span has no traceId/spanId")
    return with_error(record, "; ".join(errors)) if errors else record


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _span_content(
    attrs: Mapping[str, Any], events: list[Mapping[str, Any]]
) -> tuple[list[dict[str, str]] | None, str | None]:
    """(messages, response) from the current attributes, else the older conventions."""
    event_attrs = {e.get("name"): attributes(e.get("attributes")) for e in events}
    messages: list[dict[str, str]] | None = None
    if attrs.get("gen_ai.input.messages") is not None:
        messages = genai_messages(attrs["gen_ai.input.messages"], "gen_ai.input.messages")
    elif attrs.get("gen_ai.prompt") is not None:
        messages = legacy_messages(attrs["gen_ai.prompt"], "gen_ai.prompt")
    elif (event_attrs.get("gen_ai.content.prompt") or {}).get("gen_ai.prompt") is not None:
        messages = legacy_messages(
            event_attrs["gen_ai.content.prompt"]["gen_ai.prompt"], "gen_ai.prompt"
        )
    else:
        messages = flattened_messages(attrs, "gen_ai.prompt")
    if messages is not None and attrs.get("gen_ai.system_instructions") is not None:
        messages = [system_message(attrs["gen_ai.system_instructions"]), *messages]

    output: list[dict[str, str]] | None = None
    if attrs.get("gen_ai.output.messages") is not None:
        output = genai_messages(attrs["gen_ai.output.messages"], "gen_ai.output.messages")
    elif attrs.get("gen_ai.completion") is not None:
        output = legacy_messages(attrs["gen_ai.completion"], "gen_ai.completion")
    elif (event_attrs.get("gen_ai.content.completion") or {}).get("gen_ai.completion") is not None:
        output = legacy_messages(
            event_attrs["gen_ai.content.completion"]["gen_ai.completion"], "gen_ai.completion"
        )
    else:
        output = flattened_messages(attrs, "gen_ai.completion")
    return messages, (_response_text(output) if output else None)


# --- evaluation events -> feedback ---------------------------------------------------------


def evaluation_to_feedback(
    attrs: Mapping[str, Any],
    trace_id: str | None,
    when: datetime | None,
    origin: dict[str, Any],
    span_id: str | None = None,
    user_id: Any = None,
) -> dict[str, Any]:
    """A `gen_ai.evaluation.result` (its attributes) as a contract feedback record."""
    name = attrs.get("gen_ai.evaluation.name")
    label = attrs.get("gen_ai.evaluation.score.label")
    value = _number(attrs.get("gen_ai.evaluation.score.value"))
    explanation = attrs.get("gen_ai.evaluation.explanation")
    norm = normalize_label(label) if label is not None else None
    kind: str | None
    score = None
    reason = reason_for(label)
    if norm in POSITIVE_LABELS:
        kind = "thumbs_up"
    elif norm in NEGATIVE_LABELS or reason is not None:
        kind = "thumbs_down"
    elif value in (0, 1):
        kind = "thumbs_up" if value == 1 else "thumbs_down"
    elif value is not None and 1 <= value <= 5:
        kind, score = "rating", float(value)
    elif value is not None and 0 < value < 1:
        # A 0..1 quality score on the contract's 1..5 rating scale; the original is kept.
        kind, score = "rating", round(1 + 4 * value, 3)
    elif explanation:
        kind = "comment"
    else:
        kind = f"evaluation {name or '(unnamed)'} with label {label!r} and score {value!r}"
    record = {
        "feedback_id": stable_id(
            FORMAT, "evaluation", trace_id, span_id, rfc3339(when) if when else "", name, label
        ),
        "trace_id": trace_id or None,
        "user_id": _str(user_id),
        "timestamp": rfc3339(when) if when else None,
        "kind": kind,
        "reason": reason,
        "score": score,
        "comment": explanation if isinstance(explanation, str) else None,
        "metadata": {
            k: v
            for k, v in {
                "source": FORMAT,
                "evaluation": name,
                "label": label,
                "score_value": attrs.get("gen_ai.evaluation.score.value"),
                "response_id": attrs.get("gen_ai.response.id"),
                "import": origin,
            }.items()
            if v is not None
        },
    }
    if not trace_id:
        return with_error(record, "evaluation is tied to no span and has no gen_ai.response.id")
    return record


# --- files ---------------------------------------------------------------------------------


def _is_genai(attrs: Mapping[str, Any]) -> bool:
    return any(k.startswith("gen_ai.") for k in attrs)


def convert_lines(
    lines: Iterable[tuple[int, str]],
    file_name: str,
    trace_ids: str = "span",
    result: ImportResult | None = None,
) -> tuple[list[Any], list[Any], ImportResult]:
    """OTLP JSON lines -> (trace records, feedback records, counts).

    Records are dicts; a line that is not JSON is returned as the raw text (a `str`), to be
    written through so ingest quarantines it as "not valid JSON".
    """
    if trace_ids not in TRACE_ID_MODES:
        raise ValueError(f"trace_ids must be one of {TRACE_ID_MODES}, got {trace_ids!r}")
    result = result or ImportResult(kind=FORMAT)
    traces: list[Any] = []
    feedback: list[Any] = []
    pending_logs: list[tuple[dict, dict, dict, dict]] = []
    response_ids: dict[str, str] = {}  # gen_ai.response.id -> our trace id
    span_ids: dict[tuple[str | None, str | None], str] = {}
    for number, text in lines:
        if not text.strip():
            continue
        result.read["lines"] += 1
        origin = {"format": FORMAT, "file": file_name, "line": number}
        try:
            obj = json.loads(text)
        except json.JSONDecodeError:
            traces.append(RawLine.at(text, number))
            result.passed_through["lines that are not JSON"] += 1
            continue
        if not isinstance(obj, Mapping) or not ("resourceSpans" in obj or "resourceLogs" in obj):
            traces.append(
                with_error(
                    {"metadata": {"import": origin}},
                    "line is JSON but no OTLP export (no resourceSpans or resourceLogs)",
                )
            )
            result.passed_through["lines that are not OTLP exports"] += 1
            continue
        for rs in obj.get("resourceSpans") or []:
            resource = attributes((rs.get("resource") or {}).get("attributes"))
            for ss in rs.get("scopeSpans") or []:
                scope = ss.get("scope") or {}
                for span in ss.get("spans") or []:
                    result.read["spans"] += 1
                    _convert_span(
                        span, resource, scope, origin, trace_ids, result, traces, feedback,
                        response_ids, span_ids,
                    )  # fmt: skip
        for rl in obj.get("resourceLogs") or []:
            resource = attributes((rl.get("resource") or {}).get("attributes"))
            for sl in rl.get("scopeLogs") or []:
                for log in sl.get("logRecords") or []:
                    result.read["log records"] += 1
                    attrs = attributes(log.get("attributes"))
                    event = log.get("eventName") or attrs.get("event.name")
                    if event != EVALUATION_EVENT:
                        result.skipped["log records that are not evaluation results"] += 1
                        continue
                    pending_logs.append((log, attrs, resource, origin))
    # Log records may refer to spans by id or by response id: resolve after every span is read.
    for log, attrs, resource, origin in pending_logs:
        otel_trace, span_id = _hex(log.get("traceId")), _hex(log.get("spanId"))
        response_id = attrs.get("gen_ai.response.id")
        trace_id = span_ids.get((otel_trace, span_id)) or response_ids.get(str(response_id))
        if trace_id is None and (otel_trace or response_id):
            trace_id = our_trace_id(otel_trace, span_id, response_id, trace_ids)
        try:
            when = nanos_to_time(log.get("timeUnixNano")) or nanos_to_time(
                log.get("observedTimeUnixNano")
            )
        except (TypeError, ValueError, OverflowError):
            when = None
        user = _first(attrs, "user.id", "enduser.id") or _first(resource, "user.id", "enduser.id")
        record = evaluation_to_feedback(attrs, trace_id, when, origin, span_id, user)
        feedback.append(record)
        result.read["evaluation results"] += 1
        if "_import_error" in record:
            result.passed_through["evaluation results tied to no span"] += 1
    return traces, feedback, result


def _convert_span(
    span, resource, scope, origin, trace_ids, result, traces, feedback, response_ids, span_ids
) -> None:
    if not isinstance(span, Mapping):
        result.skipped["spans that are not objects"] += 1
        return
    attrs = attributes(span.get("attributes"))
    otel_trace, span_id = _hex(span.get("traceId")), _hex(span.get("spanId"))
    our_id = our_trace_id(otel_trace, span_id, attrs.get("gen_ai.response.id"), trace_ids)
    span_ids[(otel_trace, span_id)] = our_id
    if attrs.get("gen_ai.response.id"):
        response_ids[str(attrs["gen_ai.response.id"])] = our_id
    operation = attrs.get("gen_ai.operation.name")
    if not _is_genai(attrs):
        result.skipped["spans without gen_ai attributes"] += 1
    elif operation is not None and operation not in MODEL_CALL_OPERATIONS:
        result.skipped[f"gen_ai spans that are not model calls ({operation})"] += 1
    elif operation is None and not any(k in attrs for k in _MODEL_CALL_HINTS):
        result.skipped["gen_ai spans with neither an operation nor a model"] += 1
    else:
        record = span_to_trace(span, resource, scope, origin, trace_ids)
        traces.append(record)
        if "content capture is probably off" in record.get("_import_error", ""):
            result.passed_through["model-call spans without captured content"] += 1
        elif "_import_error" in record:
            result.passed_through["model-call spans that cannot be mapped"] += 1
        else:
            result.read["model-call spans"] += 1
    user = _first(attrs, "user.id", "enduser.id") or _first(resource, "user.id", "enduser.id")
    for event in span.get("events") or []:
        if not isinstance(event, Mapping) or event.get("name") != EVALUATION_EVENT:
            continue
        try:
            when = nanos_to_time(event.get("timeUnixNano")) or nanos_to_time(
                span.get("endTimeUnixNano")
            )
        except (TypeError, ValueError, OverflowError):
            when = None
        feedback.append(
            evaluation_to_feedback(
                attributes(event.get("attributes")), our_id, when, origin, span_id, user
            )
        )
        result.read["evaluation results"] += 1


def _file_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Lines of an OTLP JSON file: one object per line, or one pretty-printed object."""
    text = path.read_text(encoding="utf-8", errors="replace")
    stripped = text.strip()
    if stripped.startswith("{") and "\n{" not in stripped:
        try:
            json.loads(stripped)
            yield 1, " ".join(stripped.split("\n"))
            return
        except json.JSONDecodeError:
            pass
    yield from enumerate(text.splitlines(), start=1)


def input_files(path: Path) -> list[Path]:
    """The OTLP files of a path: the file itself, or a folder's `*.json` / `*.jsonl` files."""
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in (".json", ".jsonl"))
    return [path]


def import_otlp(
    path: Path,
    landing: Path,
    name: str | None = None,
    trace_ids: str = "span",
    fallback_day: str | None = None,
) -> ImportResult:
    """Convert OTLP JSON files (a file or a folder) into the landing zone.

    Each input file becomes `<landing>/traces|feedback/dt=DAY/<name or otlp-STEM>.jsonl`, so
    re-importing a file replaces what it wrote before.
    """
    result = ImportResult(kind=FORMAT)
    for file in input_files(path):
        traces, feedback, _ = convert_lines(_file_lines(file), file.name, trace_ids, result)
        out_name = name or f"otlp-{file.name.split('.')[0]}"
        write_landing(landing, out_name, traces, feedback, fallback_day, result)
        result.read["files"] += 1
    _note_content_capture(result)
    return result


def _note_content_capture(result: ImportResult) -> None:
    if result.passed_through.get("model-call spans without captured content"):
        result.notes.append(
            "spans without captured messages cannot become traces: enable content capture "
            "(e.g. OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true); the quarantine "
            "table lists each span with the reason"
        )


def landing_lines(path: Path, source: str) -> list[tuple[int, str]]:
    """An `*.otlp.json` file found in the landing zone as contract JSON lines for `source`.

    For the landing reader: each converted record keeps the OTLP line number it came from, so
    quarantine rows point at the original file and line. `source` is "traces" or "feedback".
    """
    traces, feedback, _ = convert_lines(_file_lines(path), path.name)
    out: list[tuple[int, str]] = []
    for record in traces if source == "traces" else feedback:
        if isinstance(record, str):
            out.append((getattr(record, "line", 0), str(record)))
            continue
        line = int(((record.get("metadata") or {}).get("import") or {}).get("line") or 0)
        out.append(
            (line, json.dumps({k: v for k, v in record.items() if v is not None}, default=str))
        )
    return out
