"""Importers for real public feedback sets: OpenAssistant, FeedbackQA, LAMP and llmfao.

A pipeline proven only on data we generated ourselves is not yet proven; these sets hold real
answers and real human judgements of them (sources and licenses: the tests' copies,
feedback_pipelines_tests/data/README.md). None of them carries timestamps, so each record is
placed on a day of the range `end - days + 1 .. end` chosen by a hash of its group (a
conversation tree, an item, a prompt): a trace and the feedback on it always share a day, and
an import is deterministic.

- OpenAssistant trees: every assistant message is a trace (the path to it as `messages`, its
  text as `response`, `model_name` as `model_version` or `oasst-human` for volunteers' answers,
  the tree as the session, its `rank` among siblings in `metadata`); each `+1` emoji is a
  thumbs-up, each `-1` a thumbs-down, each `red_flag` a thumbs-down with reason `unsafe`.
- FeedbackQA: question -> retrieved passage, the domain (`feedbackqa-cdc`, ...) as the version;
  each rater's rating is a `rating` (Excellent 5, Acceptable 4, Could be Improved 2, Bad 1) with
  the rater's explanation as the comment.
- LAMP: instruction -> the model's paragraph (`preedit`), the model as the version; each
  writer's edit is a `correction` (`postedit`), the most frequent edit category its reason.
- llmfao: the 70 models' answers to 19 prompts, `api_id` as the version, `duration` as the
  latency; each crowd vote is a preference: a thumbs-up on the winner and a thumbs-down on the
  loser, linked by `metadata.preference`; a tie is a neutral rating 3 on both.

OpenAssistant ranks are comparisons between siblings, not judgements of one answer, so they stay
in `metadata` (`rank`, `rank_of`, `sibling_group`) rather than becoming thumbs that would skew
each version's negative rate; routing reads them as votes, each answer over each one ranked
below it (`routing.day.read_rankings`), and makes preference pairs of them.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from feedback_pipelines.sources.common import (
    ImportResult,
    rfc3339,
    spread_timestamp,
    stable_id,
    with_error,
    write_landing,
)

KINDS = ("oasst", "feedbackqa", "lamp", "llmfao")
OASST_HUMAN_VERSION = "oasst-human"
FEEDBACKQA_SCORES = {"Excellent": 5.0, "Acceptable": 4.0, "Could be Improved": 2.0, "Bad": 1.0}
# LAMP edit categories -> contract reasons (matched on lower-cased keywords, first match wins).
LAMP_REASONS = (
    ("redundant", "too_long"),
    ("purple prose", "too_long"),
    ("cliche", "tone"),
    ("word choice", "tone"),
    ("specificity", "incomplete"),
    ("punctuation", "formatting"),
)


def _ts(group: str, start: date, days: int, offset_s: float) -> str:
    return rfc3339(spread_timestamp(group, start, days, offset_s))


def _first_day(end: date, days: int) -> date:
    return end - timedelta(days=max(days, 1) - 1)


# --- OpenAssistant ---------------------------------------------------------------------------


def convert_oasst(
    path: Path, end: date, days: int = 1, result: ImportResult | None = None
) -> tuple[list[Any], list[Any], ImportResult]:
    """OpenAssistant message trees (JSONL, one tree per line) -> traces and thumbs."""
    result = result or ImportResult(kind="oasst")
    start = _first_day(end, days)
    traces: list[Any] = []
    feedback: list[Any] = []
    for file in _files(path, ("*.jsonl",)):
        result.read["files"] += 1
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                tree = json.loads(line)
            except json.JSONDecodeError:
                traces.append(line)
                result.passed_through["lines that are not JSON"] += 1
                continue
            result.read["trees"] += 1
            tree_id = str(tree.get("message_tree_id"))
            origin = {"format": "oasst", "file": file.name, "line": number}
            _walk_oasst(tree.get("prompt") or {}, [], tree_id, 0, start, days, origin, result,
                        traces, feedback)  # fmt: skip
    return traces, feedback, result


def _walk_oasst(
    message: Mapping[str, Any],
    history: list[dict[str, str]],
    tree_id: str,
    depth: int,
    start: date,
    days: int,
    origin: dict[str, Any],
    result: ImportResult,
    traces: list[Any],
    feedback: list[Any],
    sibling_index: int = 0,
    rank_of: int = 0,
) -> None:
    result.read["messages"] += 1
    role = "assistant" if message.get("role") == "assistant" else "user"
    text = message.get("text") or ""
    emojis = message.get("emojis") or {}
    offset = depth * 300 + sibling_index * 11
    timestamp = _ts(tree_id, start, days, offset)
    if message.get("deleted"):
        result.skipped["deleted messages"] += 1
    elif role == "assistant":
        trace_id = stable_id("oasst", message.get("message_id"))
        trace = {
            "trace_id": trace_id,
            "session_id": tree_id,
            "timestamp": timestamp,
            "model_version": message.get("model_name") or OASST_HUMAN_VERSION,
            "messages": list(history),
            "response": text,
            "metadata": {
                "source": "oasst",
                "message_id": message.get("message_id"),
                "parent_id": message.get("parent_id"),
                "sibling_group": message.get("parent_id"),
                "rank": message.get("rank"),
                "rank_of": rank_of if message.get("rank") is not None else None,
                "synthetic": message.get("synthetic"),
                "review_count": message.get("review_count"),
                "review_result": message.get("review_result"),
                "lang": message.get("lang"),
                "emojis": emojis or None,
                "import": origin,
            },
        }
        trace["metadata"] = {k: v for k, v in trace["metadata"].items() if v is not None}
        if not history:
            trace = with_error(trace, "assistant message without a prompt before it")
            result.passed_through["assistant messages without a prompt"] += 1
        traces.append(trace)
        result.read["assistant messages"] += 1
        if message.get("rank") is not None:  # routing makes preference pairs of these
            result.read["ranked answers"] += 1
        n = 0
        for emoji, kind, reason in (
            ("+1", "thumbs_up", None),
            ("-1", "thumbs_down", None),
            ("red_flag", "thumbs_down", "unsafe"),
        ):
            for i in range(int(emojis.get(emoji) or 0)):
                n += 1
                feedback.append(
                    {
                        "feedback_id": stable_id("oasst", message.get("message_id"), emoji, i),
                        "trace_id": trace_id,
                        "session_id": tree_id,
                        "timestamp": _ts(tree_id, start, days, offset + 30 + n),
                        "kind": kind,
                        "reason": reason,
                        "metadata": {"source": "oasst", "signal": "emoji", "emoji": emoji},
                    }
                )
                result.read[f"emoji {emoji}"] += 1
    else:
        votes = sum(int(emojis.get(e) or 0) for e in ("+1", "-1", "red_flag"))
        if votes:
            result.skipped["emoji votes on user prompts (not on an answer)"] += votes
    turn = {"role": role, "content": text}
    replies = [r for r in message.get("replies") or [] if isinstance(r, Mapping)]
    ranked = sum(1 for r in replies if r.get("rank") is not None)
    for i, reply in enumerate(replies):
        _walk_oasst(reply, [*history, turn], tree_id, depth + 1, start, days, origin, result,
                    traces, feedback, i, ranked)  # fmt: skip


# --- FeedbackQA ------------------------------------------------------------------------------


def _passage_text(passage: Mapping[str, Any]) -> str:
    ref = passage.get("reference") or {}
    headers = [h for h in ref.get("section_headers") or [] if isinstance(h, str) and h.strip()]
    content = ref.get("section_content") or ""
    return (" > ".join(headers) + "\n\n" + content) if headers else content


def convert_feedbackqa(
    path: Path, end: date, days: int = 1, result: ImportResult | None = None
) -> tuple[list[Any], list[Any], ImportResult]:
    """FeedbackQA items (question, passage, ratings, explanations) -> traces and ratings."""
    result = result or ImportResult(kind="feedbackqa")
    start = _first_day(end, days)
    traces: list[Any] = []
    feedback: list[Any] = []
    for file in _files(path, ("*_feedback_*.json", "*.json")):
        result.read["files"] += 1
        items = json.loads(file.read_text(encoding="utf-8"))
        stem = file.stem
        for index, item in enumerate(items, start=1):
            result.read["items"] += 1
            passage = item.get("passage") or {}
            domain = str(passage.get("source") or stem.split("_")[0])
            group = f"feedbackqa:{stem}:{index}"
            trace_id = stable_id("feedbackqa", stem, index)
            origin = {"format": "feedbackqa", "file": file.name, "line": index}
            ref = passage.get("reference") or {}
            traces.append(
                {
                    "trace_id": trace_id,
                    "timestamp": _ts(group, start, days, 0),
                    "model_version": f"feedbackqa-{domain.lower()}",
                    "messages": [{"role": "user", "content": item.get("question") or ""}],
                    "response": _passage_text(passage),
                    "metadata": {
                        "source": "feedbackqa",
                        "domain": domain,
                        "passage_id": passage.get("passage_id"),
                        "uri": passage.get("uri"),
                        "page_title": ref.get("page_title"),
                        "reference_type": passage.get("reference_type"),
                        "import": origin,
                    },
                }
            )
            ratings = item.get("rating") or []
            comments = item.get("feedback") or []
            for i, label in enumerate(ratings):
                result.read["ratings"] += 1
                comment = comments[i] if i < len(comments) else None
                record = {
                    "feedback_id": stable_id("feedbackqa", stem, index, i),
                    "trace_id": trace_id,
                    "timestamp": _ts(group, start, days, 60 + i),
                    "kind": "rating",
                    "score": FEEDBACKQA_SCORES.get(label),
                    "comment": comment.strip() if isinstance(comment, str) else None,
                    "metadata": {"source": "feedbackqa", "rating_label": label, "rater": i},
                }
                if record["score"] is None:
                    record = with_error(record, f"unknown FeedbackQA rating {label!r}")
                    result.passed_through["ratings with an unknown label"] += 1
                feedback.append(record)
    return traces, feedback, result


# --- LAMP ------------------------------------------------------------------------------------


def lamp_reason(categories: Iterable[str]) -> str:
    """The contract reason of a LAMP edit: the one most of its fine-grained edits map to."""
    counts: Counter = Counter()
    for category in categories:
        low = str(category).lower()
        counts[next((r for key, r in LAMP_REASONS if key in low), "other")] += 1
    return counts.most_common(1)[0][0] if counts else "other"


def convert_lamp(
    path: Path, end: date, days: int = 1, result: ImportResult | None = None
) -> tuple[list[Any], list[Any], ImportResult]:
    """LAMP writers' edits -> one trace per model paragraph, one correction per edit."""
    result = result or ImportResult(kind="lamp")
    start = _first_day(end, days)
    traces: dict[str, dict[str, Any]] = {}
    feedback: list[Any] = []
    for file in _files(path, ("W*_edits.json", "*.json")):
        result.read["files"] += 1
        items = json.loads(file.read_text(encoding="utf-8"))
        for index, item in enumerate(items, start=1):
            result.read["edits"] += 1
            digest = hashlib.sha1(
                f"{item.get('instruction')}\n{item.get('preedit')}".encode()
            ).hexdigest()
            model = item.get("source")
            trace_id = stable_id("lamp", digest, model)
            group = f"lamp:{digest}:{model}"
            origin = {"format": "lamp", "file": file.name, "line": index}
            if trace_id not in traces:
                traces[trace_id] = {
                    "trace_id": trace_id,
                    "timestamp": _ts(group, start, days, 0),
                    "model_version": model,
                    "messages": [{"role": "user", "content": item.get("instruction") or ""}],
                    "response": item.get("preedit"),
                    "metadata": {
                        "source": "lamp",
                        "genre": item.get("type"),
                        "url": item.get("url"),
                        "import": origin,
                    },
                }
            writer = str(item.get("id") or f"W?_{index}").split("_")[0]
            categories = [
                e.get("categorization") for e in item.get("fine_grained_edits") or [] if e
            ]
            feedback.append(
                {
                    "feedback_id": stable_id("lamp", item.get("id") or f"{file.name}:{index}"),
                    "trace_id": trace_id,
                    "user_id": f"lamp-writer-{writer}",
                    "timestamp": _ts(group, start, days, 120 + index % 60),
                    "kind": "correction",
                    "reason": lamp_reason(categories),
                    "correction": item.get("postedit"),
                    "metadata": {
                        "source": "lamp",
                        "item": item.get("id"),
                        "writer": writer,
                        "edit_categories": dict(Counter(map(str, categories))),
                        "creativity_scores": item.get("creativity_scores"),
                        "split": item.get("split"),
                    },
                }
            )
    return list(traces.values()), feedback, result


# --- llmfao ----------------------------------------------------------------------------------


def convert_llmfao(
    path: Path, end: date, days: int = 1, result: ImportResult | None = None
) -> tuple[list[Any], list[Any], ImportResult]:
    """The llmfao answers (70 models x 19 prompts) and crowd pairwise votes -> traces, votes."""
    result = result or ImportResult(kind="llmfao")
    start = _first_day(end, days)
    folder = path if path.is_dir() else path.parent
    prompts = {p["id"]: p for p in _jsonl(folder / "prompts.jsonl")}
    traces: list[Any] = []
    by_key: dict[tuple[int, int], str] = {}
    for line, res in enumerate(_jsonl(folder / "results.jsonl"), start=1):
        result.read["responses"] += 1
        prompt = prompts.get(res.get("prompt")) or {}
        trace_id = stable_id("llmfao", "result", res.get("id"))
        by_key[(res.get("prompt"), res.get("model"))] = trace_id
        record = {
            "trace_id": trace_id,
            "timestamp": _ts(f"llmfao:prompt:{res.get('prompt')}", start, days, res.get("model")),
            "model_version": res.get("api_id"),
            "messages": [{"role": "user", "content": prompt.get("text")}],
            "response": res.get("result"),
            "latency_ms": res.get("duration"),
            "metadata": {
                "source": "llmfao",
                "model_name": res.get("name"),
                "org": res.get("org"),
                "api": res.get("api"),
                "prompt_slug": prompt.get("slug") or res.get("slug"),
                "prompt_type": prompt.get("type"),
                "import": {"format": "llmfao", "file": "results.jsonl", "line": line},
            },
        }
        if not prompt:
            record = with_error(record, f"prompt {res.get('prompt')} is not in prompts.jsonl")
            result.passed_through["responses to unknown prompts"] += 1
        traces.append(record)
    feedback: list[Any] = []
    per_prompt: Counter = Counter()
    with (folder / "crowd-comparisons.csv").open(newline="", encoding="utf-8") as fh:
        for row_number, row in enumerate(csv.DictReader(fh), start=2):
            result.read["votes"] += 1
            prompt_id, x, y = int(row["prompt"]), int(row["model_x"]), int(row["model_y"])
            per_prompt[prompt_id] += 1
            group = f"llmfao:prompt:{prompt_id}"
            when = _ts(group, start, days, 3600 + per_prompt[prompt_id] * 2)
            left = by_key.get((prompt_id, x)) or stable_id("llmfao", "missing", prompt_id, x)
            right = by_key.get((prompt_id, y)) or stable_id("llmfao", "missing", prompt_id, y)
            winner = row.get("winner")
            result.read[f"votes {winner}"] += 1
            sides = {"left": (left, right), "right": (right, left)}
            preference = {
                "id": f"{row.get('id')}:{row_number}",
                "outcome": winner,
                "chosen_trace_id": sides[winner][0] if winner in sides else None,
                "rejected_trace_id": sides[winner][1] if winner in sides else None,
                "pair": [left, right],
            }
            for side, trace_id in (("left", left), ("right", right)):
                if winner == "tie":
                    kind, score = "rating", 3.0
                elif winner in sides:
                    kind, score = ("thumbs_up" if winner == side else "thumbs_down"), None
                else:
                    kind, score = None, None
                record = {
                    "feedback_id": stable_id("llmfao", "vote", row_number, side),
                    "trace_id": trace_id,
                    "user_id": f"llmfao-worker-{row.get('worker')}",
                    "timestamp": when,
                    "kind": kind,
                    "score": score,
                    "metadata": {
                        "source": "llmfao",
                        "signal": "pairwise_vote",
                        "preference": {k: v for k, v in preference.items() if v is not None},
                        "import": {
                            "format": "llmfao",
                            "file": "crowd-comparisons.csv",
                            "line": row_number,
                        },
                    },
                }
                if kind is None:
                    record = with_error(record, f"vote with unknown winner {winner!r}")
                    result.passed_through["votes with an unknown winner"] += 1
                feedback.append(record)
    return traces, feedback, result


# --- shared ----------------------------------------------------------------------------------


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _files(path: Path, patterns: tuple[str, ...]) -> list[Path]:
    if not path.is_dir():
        return [path]
    for pattern in patterns:
        found = sorted(p for p in path.glob(pattern) if p.is_file())
        if found:
            return found
    return []


CONVERTERS: dict[str, Callable[..., tuple[list[Any], list[Any], ImportResult]]] = {
    "oasst": convert_oasst,
    "feedbackqa": convert_feedbackqa,
    "lamp": convert_lamp,
    "llmfao": convert_llmfao,
}


def import_public_set(
    kind: str,
    path: Path,
    landing: Path,
    end: date | None = None,
    days: int = 1,
    name: str | None = None,
) -> ImportResult:
    """Convert one public set into the landing zone, spread over the days ending at `end`.

    `end` defaults to yesterday (UTC), the latest complete daily partition.
    """
    if kind not in CONVERTERS:
        raise ValueError(f"unknown public set {kind!r}: expected one of {', '.join(KINDS)}")
    end = end or (datetime.now(UTC).date() - timedelta(days=1))
    traces, feedback, result = CONVERTERS[kind](path, end, days)
    return write_landing(landing, name or kind, traces, feedback, end.isoformat(), result)
