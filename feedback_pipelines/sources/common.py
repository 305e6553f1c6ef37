"""What every adapter shares: stable ids, UTC timestamps, chat messages, and the landing writer.

An adapter's only job is to turn a foreign format into the contract's trace and feedback records
(CONTRACT.md section 2) and write them into the landing zone, so the one ingest path (validation,
quarantine, dedup, redaction) applies to every source. A record an adapter cannot map is not
dropped: it is written through, missing the field it lacks, with an `_import_error` note first,
and ingest quarantines it with a reason a person can read.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from feedback_pipelines.files import write_atomic

# Namespace of every id an adapter derives: uuid5(NAMESPACE, "<format>:<source id>").
NAMESPACE = uuid.UUID("5d0b7c3e-4f57-4d1b-9a57-62a1f1b2c0de")
ERROR_KEY = "_import_error"


def stable_id(*parts: object) -> str:
    """A deterministic UUID from the source's own identifiers, so re-imports deduplicate."""
    return str(uuid.uuid5(NAMESPACE, ":".join(str(p) for p in parts)))


def rfc3339(value: datetime) -> str:
    """A datetime as an RFC 3339 UTC string (naive values are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    text = value.isoformat(timespec="microseconds" if value.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def parse_time(value: object) -> datetime | None:
    """An ISO 8601 / RFC 3339 string (or datetime) as an aware UTC datetime; None if not one."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def day_of(value: object) -> str | None:
    """The UTC day (`YYYY-MM-DD`) of a timestamp, or None when it does not parse."""
    parsed = parse_time(value)
    return parsed.astimezone(UTC).date().isoformat() if parsed else None


def spread_timestamp(group_key: str, start: date, days: int, offset_s: float = 0.0) -> datetime:
    """A deterministic time for a set without timestamps: one day of `days` chosen by the group.

    Records of one group (a conversation, a prompt) land on the same day so a feedback event and
    its trace meet in one partition; the time inside the day also comes from the key, then
    `offset_s` orders the group's own records.
    """
    h = int(uuid.uuid5(NAMESPACE, group_key).hex[:12], 16)
    day = start + timedelta(days=h % max(days, 1))
    seconds = (h // max(days, 1)) % (20 * 3600)  # 00:00..20:00, leaving room for offsets
    base = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return base + timedelta(seconds=seconds + offset_s)


def clean_text(value: object) -> str | None:
    """A value as text: strings as they are, structures as JSON, None as None."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def openai_content(content: object) -> str | None:
    """Text of an OpenAI-style `content`: a string, or a list of parts with `text`."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, Mapping):
                text = part.get("text", part.get("content"))
                if isinstance(text, str):
                    texts.append(text)
        return "\n".join(texts)
    return clean_text(content)


def chat_messages(value: object) -> list[dict[str, str]] | None:
    """A chat input in the common shapes as `[{role, content}]`; None when it is not chat-like.

    Accepts a plain string (one user turn), a list of `{role, content}` messages (content a
    string or a list of text parts), or an object holding such a list under `messages`.
    """
    if isinstance(value, str):
        return [{"role": "user", "content": value}] if value.strip() else None
    if isinstance(value, Mapping):
        for key in ("messages", "input", "prompt", "query", "question"):
            if key in value:
                return chat_messages(value[key])
        return None
    if isinstance(value, list) and value and all(isinstance(m, Mapping) for m in value):
        out = []
        for m in value:
            role = m.get("role")
            content = openai_content(m.get("content"))
            if not isinstance(role, str) or content is None:
                return None
            out.append({"role": role, "content": content})
        return out
    return None


@dataclass
class ImportResult:
    """What an import read and wrote: the counts its tests compare with the input files."""

    kind: str
    read: Counter = field(default_factory=Counter)
    traces: int = 0
    feedback: int = 0
    passed_through: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    files: list[Path] = field(default_factory=list)
    days: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One readable paragraph for the command line and the asset's log."""
        parts = [
            f"{self.kind}: read " + ", ".join(f"{n:,} {what}" for what, n in self.read.items()),
            f"wrote {self.traces:,} traces and {self.feedback:,} feedback records "
            f"into {len(self.files)} files for {len(self.days)} "
            + ("day" if len(self.days) == 1 else "days"),
        ]
        if self.passed_through:
            parts.append(
                "passed through for quarantine (ingest says why): "
                + ", ".join(f"{n:,} {why}" for why, n in self.passed_through.most_common())
            )
        if self.skipped:
            parts.append(
                "skipped: " + ", ".join(f"{n:,} {why}" for why, n in self.skipped.most_common())
            )
        return "; ".join(parts) + "".join(f"\n  note: {n}" for n in self.notes)


class RawLine(str):
    """An input line the adapter could not parse, written through as it is for quarantine."""

    line: int = 0

    @classmethod
    def at(cls, text: str, line: int) -> RawLine:
        """The raw text, remembering its line number in the input file."""
        raw = cls(text)
        raw.line = line
        return raw


def with_error(record: Mapping[str, Any], error: str) -> dict[str, Any]:
    """The record with the adapter's explanation first, so the quarantine's raw text shows it."""
    return {ERROR_KEY: error, **{k: v for k, v in record.items() if k != ERROR_KEY}}


def _dump(record: Mapping[str, Any] | str) -> str:
    if isinstance(record, str):  # a raw line the adapter could not parse: ingest says why
        return record.replace("\r", " ").replace("\n", " ")
    return json.dumps(
        {k: v for k, v in record.items() if v is not None},
        ensure_ascii=False,
        separators=(",", ":"),
        default=str,
    )


def write_landing(
    landing: Path,
    name: str,
    traces: Iterable[Mapping[str, Any] | str],
    feedback: Iterable[Mapping[str, Any] | str],
    fallback_day: str | None = None,
    result: ImportResult | None = None,
) -> ImportResult:
    """Write records into `<landing>/traces|feedback/dt=YYYY-MM-DD/<name>.jsonl`, by UTC day.

    A record goes to the day of its `timestamp`. One that cannot be dated (no parseable
    timestamp, or a raw line that is not JSON) goes to `fallback_day`, by default the day most
    of the input's records fall on, so its quarantine row sits beside its neighbours. Each file
    is replaced atomically, so importing the same input again gives the same files and no
    duplicates.
    """
    result = result or ImportResult(kind=name)
    dated: dict[str, list[tuple[str | None, str]]] = {}
    days: Counter = Counter()
    for source, records in (("traces", traces), ("feedback", feedback)):
        rows = dated.setdefault(source, [])
        for record in records:
            day = None if isinstance(record, str) else day_of(record.get("timestamp"))
            rows.append((day, _dump(record)))
            if day:
                days[day] += 1
    fallback = (
        fallback_day
        or (days.most_common(1)[0][0] if days else None)
        or datetime.now(UTC).date().isoformat()
    )
    written_days: set[str] = set()
    for source, rows in dated.items():
        by_day: dict[str, list[str]] = {}
        for day, text in rows:
            by_day.setdefault(day or fallback, []).append(text)
        for day, lines in sorted(by_day.items()):
            path = landing / source / f"dt={day}" / f"{name}.jsonl"
            replace_file(path, "".join(f"{line}\n" for line in lines).encode("utf-8"))
            result.files.append(path)
            written_days.add(day)
            if source == "traces":
                result.traces += len(lines)
            else:
                result.feedback += len(lines)
    result.days = sorted(set(result.days) | written_days)
    return result


def replace_file(path: Path, data: bytes) -> bool:
    """Write bytes atomically (temp file + rename); False when the file already held them.

    Unchanged files keep their mtime, so the landing sensor does not rerun a day for nothing.
    """
    if path.exists() and path.read_bytes() == data:
        return False
    write_atomic(path, data)
    return True


def read_json_records(path: Path) -> Iterable[tuple[int, Any, str | None]]:
    """Records of a JSON or JSONL file as `(line, value, raw_text_if_unparseable)`.

    A JSON file holding a list (or an object with a `data` list, as API pages are) yields its
    items with line 0-based index + 1; a JSONL file yields each line. A line that is not JSON
    yields `(line, None, text)` so the caller can pass it through for quarantine.
    """
    text = path.read_text(encoding="utf-8", errors="replace")
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            whole = json.loads(text)
        except json.JSONDecodeError:
            whole = None
        if isinstance(whole, list):
            for i, item in enumerate(whole, start=1):
                yield i, item, None
            return
    if stripped.startswith("{") and "\n{" not in stripped:
        try:
            whole = json.loads(text)
        except json.JSONDecodeError:
            whole = None
        if isinstance(whole, dict):
            items = whole.get("data") if isinstance(whole.get("data"), list) else None
            if items is not None:
                for i, item in enumerate(items, start=1):
                    yield i, item, None
            else:
                yield 1, whole, None
            return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line), None
        except json.JSONDecodeError:
            yield number, None, line


# Labels people and tools give the "why" of a bad answer, mapped onto the contract's reasons.
_REASON_SYNONYMS = {
    "factual_error": (
        "factual_error", "factually_incorrect", "incorrect", "wrong", "wrong_answer",
        "hallucination", "hallucinated", "inaccurate", "not_factual", "false_information",
    ),
    "incomplete": (
        "incomplete", "partially_correct", "partial", "missing_information", "too_short",
        "not_detailed_enough", "lacks_detail",
    ),
    "irrelevant": ("irrelevant", "not_relevant", "off_topic", "unrelated", "did_not_answer"),
    "tone": ("tone", "rude", "unfriendly", "condescending", "bad_tone", "impolite"),
    "too_long": ("too_long", "verbose", "too_verbose", "wordy", "rambling"),
    "formatting": ("formatting", "format", "bad_formatting", "broken_formatting"),
    "refusal": ("refusal", "refused", "unnecessary_refusal", "over_refusal"),
    "unsafe": ("unsafe", "harmful", "toxic", "offensive", "inappropriate", "red_flag"),
    "other": ("other",),
}  # fmt: skip
_REASON_BY_LABEL = {label: reason for reason, names in _REASON_SYNONYMS.items() for label in names}


def normalize_label(label: object) -> str:
    """A label lower-cased with spaces and hyphens as underscores: "Too long" -> "too_long"."""
    return "_".join(str(label).strip().lower().replace("-", " ").split())


def reason_for(label: object) -> str | None:
    """The contract reason a label names (exactly or by a common synonym), else None."""
    if label is None:
        return None
    return _REASON_BY_LABEL.get(normalize_label(label))
