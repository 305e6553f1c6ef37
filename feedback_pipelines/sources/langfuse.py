"""Langfuse exports (traces, observations, scores) -> contract records.

Accepted input, in any mix of files (a file, or a folder of JSON, JSONL or CSV: the formats of
Langfuse's batch export): rows as the public API returns them (`Trace`, `Observation`,
`Score`; a page `{"data": [...], "meta": ...}` works too; CSV columns in snake_case or
camelCase, JSON cells parsed), a trace with
its `observations` and `scores` embedded (`GET /traces/{id}`), or ingestion batches
(`{"batch": [{"type": "trace-create" | "generation-create" | "score-create" | ..., "body"}]}`).
Each row is recognized by its shape, so the UI's batch export files need no renaming.

A Langfuse trace (or, when only observations were exported, the generations of one trace id)
becomes one contract trace: the last GENERATION gives `model_version`, the chat `messages`
(its input, else the trace's), the `response` (its output, else the trace's), the prompt
(`promptName:promptVersion`) and token usage; latency is the trace's, else the span of its
observations. Scores become feedback:

- `user-feedback` (the names in `thumb_names`), BOOLEAN or 0/1: a thumb; its comment the comment;
- CORRECTION: a correction, the corrected text from the score's value;
- CATEGORICAL: a label naming a reason ("hallucination", "too long", ...) sets `reason`, folded
  into the one thumbs-down of the same trace when there is one, else a `comment` with that
  reason; other labels are kept as a `comment` with the label in metadata;
- NUMERIC 1-5: a rating; TEXT: a comment.

Scores from automated evaluators (`source: EVAL`) and BOOLEAN scores not named as thumbs are
counted and skipped (they are not user feedback). A score on a session or dataset run (no
`traceId`), a trace without id or model, or a row of unknown shape is written through with an
`_import_error` note, so ingest quarantines it with a reason.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from feedback_pipelines.sources.common import (
    ImportResult,
    RawLine,
    chat_messages,
    clean_text,
    normalize_label,
    parse_time,
    read_json_records,
    reason_for,
    stable_id,
    with_error,
    write_landing,
)

FORMAT = "langfuse"
OBSERVATION_TYPES = frozenset(
    {"SPAN", "GENERATION", "EVENT", "AGENT", "TOOL", "CHAIN", "RETRIEVER", "EVALUATOR",
     "EMBEDDING", "GUARDRAIL"}
)  # fmt: skip
DEFAULT_THUMB_NAMES = ("user-feedback",)
_EVENT_KINDS = {
    "trace-create": "trace",
    "score-create": "score",
    "span-create": "observation",
    "span-update": "observation",
    "generation-create": "observation",
    "generation-update": "observation",
    "event-create": "observation",
    "observation-create": "observation",
    "observation-update": "observation",
}
_EVENT_TYPES = {"generation": "GENERATION", "span": "SPAN", "event": "EVENT"}


@dataclass
class LangfuseExport:
    """The rows of an export, sorted by kind, with where each came from."""

    traces: dict[str, dict[str, Any]] = field(default_factory=dict)
    observations: dict[str, dict[str, Any]] = field(default_factory=dict)
    scores: list[dict[str, Any]] = field(default_factory=list)
    unknown: list[Any] = field(default_factory=list)  # (origin, row) or RawLine

    def add(self, row: Any, origin: dict[str, Any], result: ImportResult) -> None:
        """File one row (or an ingestion batch / a trace with details) under its kind."""
        if not isinstance(row, Mapping):
            self.unknown.append((origin, row))
            return
        if isinstance(row.get("batch"), list):
            for event in row["batch"]:
                self.add(event, origin, result)
            return
        if row.get("type") in _EVENT_KINDS and isinstance(row.get("body"), Mapping):
            kind = _EVENT_KINDS[row["type"]]
            body = dict(row["body"])
            prefix = row["type"].split("-")[0]
            if kind == "observation" and "type" not in body:
                body["type"] = _EVENT_TYPES.get(prefix, "SPAN")
            # The envelope's time is when the client created the event: the fallback time.
            when = {"trace": "timestamp", "score": "timestamp"}.get(kind)
            if when and not body.get(when) and row.get("timestamp"):
                body[when] = row["timestamp"]
            self._file(kind, body, origin, result)
            return
        if row.get("type") in ("sdk-log",):
            result.skipped["SDK log events"] += 1
            return
        self._file(_kind_of(row), dict(row), origin, result)

    def _file(self, kind: str, row: dict[str, Any], origin: dict, result: ImportResult) -> None:
        row["_origin"] = origin
        if kind == "trace":
            result.read["traces"] += 1
            for obs in row.pop("observations", None) or []:
                if isinstance(obs, Mapping):
                    self._file("observation", {"traceId": row.get("id"), **obs}, origin, result)
            for score in row.pop("scores", None) or []:
                if isinstance(score, Mapping):
                    self._file("score", {"traceId": row.get("id"), **score}, origin, result)
            key = str(row.get("id") or stable_id(FORMAT, "trace-without-id", origin))
            self.traces[key] = {**self.traces.get(key, {}), **_non_null(row)}
        elif kind == "observation":
            result.read["observations"] += 1
            key = str(row.get("id") or stable_id(FORMAT, "observation", origin))
            # An update event carries only what changed: merge it into what came before.
            self.observations[key] = {**self.observations.get(key, {}), **_non_null(row)}
        elif kind == "score":
            result.read["scores"] += 1
            self.scores.append(row)
        else:
            self.unknown.append((origin, row))


def _non_null(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if v is not None}


def _kind_of(row: Mapping[str, Any]) -> str:
    """'trace', 'observation', 'score' or 'unknown', from the fields a row carries."""
    if "dataType" in row or ("value" in row and "name" in row and "startTime" not in row):
        return "score"
    if row.get("type") in OBSERVATION_TYPES or ("traceId" in row and "startTime" in row):
        return "observation"
    if "id" in row and ("timestamp" in row or "input" in row or "output" in row):
        return "trace"
    return "unknown"


def read_export(paths: Iterable[Path], result: ImportResult) -> LangfuseExport:
    """Every row of the files, sorted into traces, observations and scores."""
    export = LangfuseExport()
    for path in paths:
        result.read["files"] += 1
        rows = read_csv_records(path) if path.suffix == ".csv" else read_json_records(path)
        for line, row, raw in rows:
            origin = {"format": FORMAT, "file": path.name, "line": line}
            if raw is not None:
                export.unknown.append(RawLine.at(raw, line))
                continue
            export.add(row, origin, result)
    return export


_NUMERIC_COLUMNS = frozenset(
    {"latency", "totalCost", "promptVersion", "timeToFirstToken", "inputPrice", "outputPrice"}
)
_TEXT_VALUE_TYPES = frozenset({"CATEGORICAL", "TEXT", "CORRECTION"})


def _camel(key: str) -> str:
    head, *rest = key.strip().split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _cell(value: str) -> Any:
    """A CSV cell: empty as None, JSON objects and lists parsed, anything else as text."""
    if value == "":
        return None
    if value.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _number_or_text(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        number = float(value)
    except ValueError:
        return value
    return int(number) if number.is_integer() else number


def read_csv_records(path: Path) -> Iterator[tuple[int, Any, str | None]]:
    """Rows of a CSV export as `(line, row, None)`, keys in the API's camelCase.

    Column names may be snake_case (`trace_id`) or camelCase (`traceId`); cells holding JSON
    (input, output, metadata, usage) are parsed, and numbers are numbers where the API has
    numbers (a score's value unless it is a categorical, text or correction score).
    """
    with path.open(newline="", encoding="utf-8", errors="replace") as fh:
        for number, raw in enumerate(csv.DictReader(fh), start=2):
            row = {_camel(k): _cell(v or "") for k, v in raw.items() if k}
            for key in _NUMERIC_COLUMNS & set(row):
                row[key] = _number_or_text(row[key])
            if "value" in row and str(row.get("dataType") or "").upper() not in _TEXT_VALUE_TYPES:
                row["value"] = _number_or_text(row["value"])
            yield number, row, None


# --- traces ----------------------------------------------------------------------------------


def _output_text(value: Any) -> str | None:
    """A generation's or trace's output as the answer text."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        if isinstance(value.get("choices"), list) and value["choices"]:
            return _output_text(value["choices"][0])
        if isinstance(value.get("message"), Mapping):
            return _output_text(value["message"])
        for key in ("content", "output", "text", "completion", "answer", "response"):
            if key in value:
                text = value[key]
                return text if isinstance(text, str) else _output_text(text)
    if isinstance(value, list):
        messages = chat_messages(value)
        if messages:
            answers = [m["content"] for m in messages if m["role"] == "assistant"]
            return answers[-1] if answers else messages[-1]["content"]
        texts = [t for t in (_output_text(v) for v in value) if t]
        return "\n".join(texts) if texts else None
    return clean_text(value)


def _usage(obs: Mapping[str, Any], *keys: str) -> float | None:
    for holder in ("usageDetails", "usage"):
        usage = obs.get(holder)
        if isinstance(usage, Mapping):
            for key in keys:
                value = usage.get(key)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    return value
    return None


def _sum(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def build_trace(
    trace: Mapping[str, Any] | None,
    trace_id: str,
    observations: list[dict[str, Any]],
    default_model: str | None = None,
) -> dict[str, Any]:
    """One contract trace from a Langfuse trace row and its observations."""
    trace = trace or {}
    origin = trace.get("_origin") or (observations[0]["_origin"] if observations else {})
    gens = sorted(
        (o for o in observations if o.get("type") == "GENERATION"),
        key=lambda o: str(o.get("startTime") or ""),
    )
    last = gens[-1] if gens else {}
    messages = chat_messages(last.get("input")) or chat_messages(trace.get("input"))
    response = _output_text(last.get("output"))
    if response is None:
        response = _output_text(trace.get("output"))
    model = last.get("model") or default_model
    timestamp = trace.get("timestamp") or (gens[0].get("startTime") if gens else None)
    if timestamp is None and observations:
        timestamp = min(str(o.get("startTime") or "") for o in observations) or None
    latency = None
    if isinstance(trace.get("latency"), int | float) and trace["latency"] >= 0:
        latency = float(trace["latency"]) * 1000
    else:
        starts = [parse_time(o.get("startTime")) for o in observations]
        ends = [parse_time(o.get("endTime")) for o in observations]
        starts = [s for s in starts if s]
        ends = [e for e in ends if e]
        if starts and ends and max(ends) >= min(starts):
            latency = (max(ends) - min(starts)).total_seconds() * 1000
    prompt = None
    if last.get("promptName"):
        prompt = str(last["promptName"])
        if last.get("promptVersion") is not None:
            prompt += f":{last['promptVersion']}"
    lf_meta = trace.get("metadata")
    metadata = {
        "source": FORMAT,
        "name": trace.get("name"),
        "tags": trace.get("tags") or None,
        "release": trace.get("release"),
        "version": trace.get("version"),
        "environment": trace.get("environment") or last.get("environment"),
        "user_role": lf_meta.get("user_role") if isinstance(lf_meta, Mapping) else None,
        "langfuse_metadata": lf_meta if lf_meta not in (None, {}, "") else None,
        "generations": len(gens),
        "import": origin,
    }
    record = {
        "trace_id": str(trace.get("id") or trace_id) if (trace.get("id") or trace_id) else None,
        "session_id": trace.get("sessionId"),
        "user_id": trace.get("userId"),
        "timestamp": timestamp,
        "model_version": model,
        "prompt_version": prompt,
        "messages": messages,
        "response": response,
        "latency_ms": round(latency, 3) if latency is not None else None,
        "input_tokens": _sum(_usage(g, "input", "promptTokens", "prompt_tokens") for g in gens),
        "output_tokens": _sum(
            _usage(g, "output", "completionTokens", "completion_tokens") for g in gens
        ),
        "metadata": {k: v for k, v in metadata.items() if v is not None},
    }
    errors = []
    if not trace.get("id") and not trace_id:
        errors.append("trace has no id")
    if model is None:
        errors.append(
            "no GENERATION observation with a model for this trace (pass a default model "
            "version to import traces without one)"
        )
    if messages is None:
        errors.append("neither the generation's nor the trace's input is chat-like")
    if response is None:
        errors.append("neither the generation nor the trace has an output")
    return with_error(record, "; ".join(errors)) if errors else record


# --- scores -> feedback --------------------------------------------------------------------


def score_to_feedback(
    score: Mapping[str, Any],
    trace: Mapping[str, Any] | None,
    thumb_names: Iterable[str] = DEFAULT_THUMB_NAMES,
) -> dict[str, Any] | str:
    """One score as a contract feedback record, or a reason (str) to skip it."""
    name = score.get("name")
    data_type = str(score.get("dataType") or "").upper()
    value = score.get("value")
    string_value = score.get("stringValue")
    thumbs = {normalize_label(n) for n in thumb_names}
    is_thumb_name = name is not None and normalize_label(name) in thumbs
    if str(score.get("source") or "").upper() == "EVAL":
        return "scores from automated evaluators (source EVAL)"
    kind: str
    reason = None
    rating = None
    correction = None
    comment = score.get("comment")
    numeric = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if isinstance(value, bool):
        numeric = int(value)
    if data_type == "CORRECTION":
        kind = "correction"
        correction = value if isinstance(value, str) else string_value
    elif is_thumb_name and (data_type in ("BOOLEAN", "NUMERIC", "") and numeric in (0, 1)):
        kind = "thumbs_up" if numeric == 1 else "thumbs_down"
    elif (
        is_thumb_name
        and data_type in ("BOOLEAN", "")
        and normalize_label(value)
        in (
            "true",
            "false",
        )
    ):
        kind = "thumbs_up" if normalize_label(value) == "true" else "thumbs_down"
    elif data_type == "BOOLEAN":
        return f"BOOLEAN scores not named as a thumb (e.g. {name!r})"
    elif data_type == "CATEGORICAL" or (data_type == "" and isinstance(value, str)):
        label = string_value if string_value is not None else value
        reason = reason_for(label)
        kind = "comment"
    elif data_type == "TEXT":
        kind = "comment"
        comment = value if isinstance(value, str) else string_value
        if score.get("comment"):
            comment = f"{comment}\n{score['comment']}" if comment else score["comment"]
    else:  # NUMERIC
        kind, rating = "rating", numeric
    ts = score.get("timestamp") or score.get("createdAt")
    trace = trace or {}
    metadata = {
        "source": FORMAT,
        "score_name": name,
        "data_type": data_type or None,
        "label": string_value if data_type == "CATEGORICAL" else None,
        "value": value if kind == "comment" and data_type != "TEXT" else None,
        "score_source": score.get("source"),
        "observation_id": score.get("observationId"),
        "author_user_id": score.get("authorUserId"),
        "config_id": score.get("configId"),
        "queue_id": score.get("queueId"),
        "user_role": (trace.get("metadata") or {}).get("user_role")
        if isinstance(trace.get("metadata"), Mapping)
        else None,
        "import": score.get("_origin"),
    }
    record = {
        "feedback_id": str(score.get("id") or stable_id(FORMAT, "score", score.get("_origin"))),
        "trace_id": score.get("traceId"),
        "session_id": score.get("sessionId") or trace.get("sessionId"),
        "user_id": trace.get("userId"),
        "timestamp": ts,
        "kind": kind,
        "reason": reason,
        "score": rating,
        "comment": comment if isinstance(comment, str) and comment.strip() else None,
        "correction": correction,
        "metadata": {k: v for k, v in metadata.items() if v is not None},
    }
    if not score.get("traceId"):
        target = (
            f"session {score['sessionId']}"
            if score.get("sessionId")
            else f"dataset run {score['datasetRunId']}"
            if score.get("datasetRunId")
            else "nothing"
        )
        return with_error(record, f"score {name!r} is on {target}, not on a trace")
    if kind == "rating" and (rating is None or not 1 <= rating <= 5):
        return with_error(record, f"numeric score {name!r} = {value!r} is not a 1-5 rating")
    return record


def _fold_reasons(feedback: list[dict[str, Any]], result: ImportResult) -> list[dict[str, Any]]:
    """Give a trace's one reason-less thumbs-down the reason of its categorical score."""
    downs: dict[str, list[dict[str, Any]]] = {}
    for record in feedback:
        if record.get("kind") == "thumbs_down" and not record.get("reason"):
            downs.setdefault(str(record.get("trace_id")), []).append(record)
    out = []
    for record in feedback:
        target = downs.get(str(record.get("trace_id")), [])
        if (
            record.get("kind") == "comment"
            and record.get("reason")
            and not record.get("comment")
            and len(target) == 1
            and "_import_error" not in record
        ):
            thumb = target[0]
            thumb["reason"] = record["reason"]
            thumb["metadata"] = {
                **thumb.get("metadata", {}),
                "reason_score_id": record["feedback_id"],
                "reason_label": record["metadata"].get("label") or record["metadata"].get("value"),
            }
            downs[str(record.get("trace_id"))] = []  # one reason per thumb
            result.read["categorical scores folded into a thumbs-down"] += 1
            continue
        out.append(record)
    return out


# --- import ---------------------------------------------------------------------------------


def convert(
    export: LangfuseExport,
    result: ImportResult,
    thumb_names: Iterable[str] = DEFAULT_THUMB_NAMES,
    default_model: str | None = None,
) -> tuple[list[Any], list[Any]]:
    """The export's (trace records, feedback records)."""
    by_trace: dict[str, list[dict[str, Any]]] = {}
    orphans = []
    for obs in export.observations.values():
        if obs.get("traceId"):
            by_trace.setdefault(str(obs["traceId"]), []).append(obs)
        else:
            orphans.append(obs)
    traces: list[Any] = []
    for trace_id in sorted(set(export.traces) | set(by_trace)):
        observations = by_trace.get(trace_id, [])
        if trace_id not in export.traces and not any(
            o.get("type") == "GENERATION" for o in observations
        ):
            result.skipped["observations of traces with no generation and no trace row"] += len(
                observations
            )
            continue
        record = build_trace(export.traces.get(trace_id), trace_id, observations, default_model)
        traces.append(record)
        if "_import_error" in record:
            result.passed_through["traces that cannot be mapped"] += 1
    for obs in orphans:
        if obs.get("type") == "GENERATION":
            traces.append(build_trace(None, "", [obs], default_model))
            result.passed_through["generations without traceId"] += 1
        else:
            result.skipped["non-generation observations without traceId"] += 1
    for item in export.unknown:
        if isinstance(item, str):
            traces.append(item)
            result.passed_through["lines that are not JSON"] += 1
        else:
            origin, row = item
            keys = sorted(row)[:8] if isinstance(row, Mapping) else type(row).__name__
            traces.append(
                with_error(
                    {"metadata": {"import": origin}},
                    f"row is not a Langfuse trace, observation or score (fields: {keys})",
                )
            )
            result.passed_through["rows of unknown shape"] += 1
    feedback: list[dict[str, Any]] = []
    for score in export.scores:
        mapped = score_to_feedback(score, export.traces.get(str(score.get("traceId"))), thumb_names)
        if isinstance(mapped, str):
            result.skipped[mapped] += 1
            continue
        if "_import_error" in mapped:
            result.passed_through["scores that cannot be mapped"] += 1
        feedback.append(mapped)
    return traces, _fold_reasons(feedback, result)


def input_files(path: Path) -> list[Path]:
    """The export files of a path: the file itself, or a folder's JSON, JSONL and CSV files."""
    if path.is_dir():
        return sorted(
            p for p in path.rglob("*") if p.is_file() and p.suffix in (".json", ".jsonl", ".csv")
        )
    return [path]


def import_langfuse(
    path: Path,
    landing: Path,
    name: str | None = None,
    thumb_names: Iterable[str] = DEFAULT_THUMB_NAMES,
    default_model: str | None = None,
    fallback_day: str | None = None,
) -> ImportResult:
    """Convert a Langfuse export (a file or a folder of files) into the landing zone."""
    result = ImportResult(kind=FORMAT)
    export = read_export(input_files(path), result)
    traces, feedback = convert(export, result, thumb_names, default_model)
    out_name = name or f"langfuse-{path.name.split('.')[0]}"
    write_landing(landing, out_name, traces, feedback, fallback_day, result)
    return result
