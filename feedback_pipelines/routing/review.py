"""The review queue: feedback people should see rather than automation, each item saying why.

Six routes, by priority (1 = first):

1. `unsafe` — feedback with reason `unsafe` that arrived on the day. Never trained on.
2. `new_regression_sample` — a deterministic sample of negative events from each cluster (or
   theme: of all its subtopics) that regressed on the day and had not on the day before: a
   person confirms what broke.
2. `conflicting_corrections` — corrections of near-identical requests in one cluster that
   disagree (see `tuning.sft.find_conflicts`), when at least one of them arrived on the day.
   Both sides are queued, each naming the other; neither is trained on until resolved.
3. `unclustered_negative` — negative feedback of the day that the clustering left as noise:
   nothing else will surface it.
3. `split_vote` — two answers people compared side by side as often one way as the other,
   when the latest vote on them arrived on the day: both are queued, each naming the other,
   the most-voted ties first (at most `split_votes` pairs a day); no pair is trained on.
3. `vote_reversed` — incremental exports: two answers whose votes changed side after an earlier
   day's export held their pair the other way; both are queued, each naming the other, with
   that export's example id: a person decides whether to retract it (the new way is not
   exported).

An event routed for several reasons is one item with every reason and the highest priority.
Text fields are the warehouse's redacted text, redacted once more before leaving.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from feedback_pipelines import privacy
from feedback_pipelines.files import staging_folder, swap_folder
from feedback_pipelines.routing.tuning.events import Event
from feedback_pipelines.routing.tuning.examples import Example
from feedback_pipelines.routing.tuning.pipeline import ExportedPair, RegressedTheme
from feedback_pipelines.routing.tuning.sft import Conflict
from feedback_pipelines.routing.tuning.splits import unit_hash
from feedback_pipelines.schema import REVIEW_COLUMNS

REVIEW_NAMESPACE = uuid.UUID("0c9b5f3e-7d21-5a4f-b6e8-91c2d3a4f5e6")

PRIORITY = {
    "unsafe": 1,
    "new_regression_sample": 2,
    "conflicting_corrections": 2,
    "unclustered_negative": 3,
    "split_vote": 3,
    "vote_reversed": 3,
}

_TEXT = ("request", "response", "comment", "correction", "detail", "cluster_label")


class _Items:
    """Routing decisions per feedback id, merged."""

    def __init__(self) -> None:
        self.reasons: dict[str, dict[str, list[str]]] = {}
        self.related: dict[str, set[str]] = {}

    def add(self, fid: str, reason: str, detail: str, related: Iterable[str] = ()) -> None:
        self.reasons.setdefault(fid, {}).setdefault(reason, []).append(detail)
        self.related.setdefault(fid, set()).update(related)


def newly_regressed(today: Iterable[int], before: Iterable[int] | None) -> list[int]:
    """Clusters regressed today that were not regressed on the previous partition."""
    return sorted(set(today) - set(before or ()))


def route_for_review(
    events: Sequence[Event],
    ds: str,
    *,
    conflicts: Sequence[Conflict] = (),
    clustering: bool = True,
    new_regressions: Sequence[int] = (),
    new_theme_regressions: Sequence[RegressedTheme] = (),
    labels: dict[int, str] | None = None,
    sample_per_cluster: int = 5,
    seed: int = 0,
    contested: Sequence[tuple[Event, Event, int]] = (),
    split_votes: int = 5,
    reversed_votes: Sequence[tuple[Example, ExportedPair]] = (),
) -> pd.DataFrame:
    """The day's review items, highest priority first.

    Args:
        events: The window's prepared events (with cluster ids when clustering ran).
        ds: The partition day; day-based routes take only events of this day.
        conflicts: Conflicting correction pairs found over the window.
        clustering: Whether cluster ids are known (no noise route otherwise).
        new_regressions: Clusters newly regressed on `ds`.
        new_theme_regressions: Themes newly regressed on `ds` (sampled over their subtopics).
        labels: Cluster labels, for the items.
        sample_per_cluster: Events sampled from each newly regressed cluster or theme.
        seed: Seeds the sample.
        contested: Pairs of answers whose votes split evenly (`TuningSets.contested`): the
            latest vote's two events and the votes cast.
        split_votes: At most this many of them queued a day, the most-voted first.
        reversed_votes: Voted pairs held back because an earlier export holds them the other
            way (`TuningSets.reversed_votes`): the pair, and where it was exported.

    Returns:
        A frame with `REVIEW_COLUMNS`, one row per feedback event.
    """
    labels = labels or {}
    by_id = {e.feedback_id: e for e in events}
    by_id.update((e.feedback_id, e) for t in contested for e in t[:2])  # a ranking's own
    by_id.update((e.feedback_id, e) for x, _ in reversed_votes for e in (x.event, x.paired))
    items = _Items()
    for e in events:
        if e.ds != ds:
            continue
        if e.reason == "unsafe":
            items.add(e.feedback_id, "unsafe", "reason `unsafe`: for a person, never trained on")
        if clustering and e.is_negative and e.cluster_id == -1:
            items.add(
                e.feedback_id,
                "unclustered_negative",
                "negative feedback the clustering could not place (noise)",
            )
    for c in conflicts:
        a, b = by_id.get(c.a), by_id.get(c.b)
        if a is None or b is None or ds not in (a.ds, b.ds):
            continue
        for this, other in ((a, b), (b, a)):
            items.add(
                this.feedback_id,
                "conflicting_corrections",
                f"disagrees with correction {other.feedback_id} of a near-identical request "
                f"(requests {c.request_similarity:.2f} alike, corrections "
                f"{c.correction_similarity:.2f})",
                related=[other.feedback_id],
            )
    ties = [t for t in contested if ds in (t[0].ds, t[1].ds)]
    ties.sort(key=lambda t: (-t[2], t[0].feedback_id, t[1].feedback_id))
    for a, b, n in ties[:split_votes]:
        for this, other in ((a, b), (b, a)):
            items.add(
                this.feedback_id,
                "split_vote",
                f"people preferred this answer and the one of {other.feedback_id} as often "
                f"({n // 2} vote{'s' if n > 2 else ''} each): a person decides",
                related=[other.feedback_id],
            )
    for x, where in reversed_votes:
        better, worse = x.paired, x.event
        for this, other, verdict in ((better, worse, "now beats"), (worse, better, "now loses to")):
            items.add(
                this.feedback_id,
                "vote_reversed",
                f"by the votes this answer {verdict} the one of {other.feedback_id}, the other "
                f"way round from the pair exported on {where.day} (example {where.example_id}, "
                f"exports/dt={where.day}/{where.file} line {where.line}): not exported again; a "
                "person decides whether to retract that one",
                related=[other.feedback_id],
            )
    regressed = [(f"cluster {c}", labels.get(c, ""), {c}) for c in new_regressions]
    regressed += [(f"theme {t.topic_id}", t.label, set(t.clusters)) for t in new_theme_regressions]
    for name, label, members in regressed:
        negatives = [e for e in events if e.cluster_id in members and e.is_negative]
        negatives.sort(key=lambda e: unit_hash(seed, f"review:{name}", e.feedback_id))
        named = f"{name} ({label})" if label else name
        for e in negatives[:sample_per_cluster]:
            items.add(
                e.feedback_id, "new_regression_sample", f"sample of {named}, regressed since {ds}"
            )
    rows = [
        _row(by_id[fid], ds, reasons, items.related[fid], labels)
        for fid, reasons in items.reasons.items()
    ]
    frame = pd.DataFrame(rows, columns=REVIEW_COLUMNS)
    if len(frame):
        frame = frame.sort_values(
            ["priority", "routing_reason", "timestamp", "feedback_id"],
            ascending=[True, True, False, True],
            kind="mergesort",
        ).reset_index(drop=True)
    return frame


def _row(e: Event, ds: str, reasons: dict[str, list[str]], related: set[str], labels: dict) -> dict:
    ordered = sorted(reasons, key=lambda r: (PRIORITY[r], r))
    row = {
        "ds": ds,
        "review_id": str(uuid.uuid5(REVIEW_NAMESPACE, f"{ds}:{e.feedback_id}")),
        "priority": PRIORITY[ordered[0]],
        "routing_reason": ordered[0],
        "routing_reasons": ordered,
        "detail": "; ".join(d for r in ordered for d in reasons[r]),
        "feedback_id": e.feedback_id,
        "trace_id": e.trace_id,
        "session_id": e.session_id,
        "related_feedback_ids": sorted(related),
        "cluster_id": e.cluster_id,
        "cluster_label": labels.get(e.cluster_id, "") if e.cluster_id is not None else "",
        "kind": e.kind,
        "reason": e.reason,
        "score": e.score,
        "model_version": e.model_version,
        "prompt_version": e.prompt_version,
        "user_role": e.user_role,
        "timestamp": e.timestamp,
        "request": e.request,
        "response": e.response,
        "comment": e.comment,
        "correction": e.correction,
        "messages": [
            {"role": m["role"], "content": privacy.redact_pii(m["content"])} for m in e.prompt
        ],
    }
    for key in _TEXT:
        row[key] = privacy.redact_pii(row[key]) if row[key] else row[key]
    return row


def _plain(value: object) -> object:
    if isinstance(value, float) and value != value:  # NaN
        return None
    return value


def write_review(queue: pd.DataFrame, folder: Path) -> dict[str, int]:
    """Write `queue.jsonl` and `queue.csv` into `folder` (replaced whole); rows per file.

    The CSV is for a spreadsheet: lists joined with '; ', the messages as JSON, text that would
    start a formula quoted (see `_csv_cell`).
    """
    folder = Path(folder)
    staging = staging_folder(folder)
    records = [{k: _plain(v) for k, v in r.items()} for r in queue.to_dict("records")]
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    (staging / "queue.jsonl").write_bytes(lines.encode("utf-8"))
    buffer = io.StringIO()
    # CRLF, as RFC 4180 has it: a cell holding a lone "\r" is then quoted, not a row break.
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(REVIEW_COLUMNS)
    for r in records:
        writer.writerow([_csv_cell(r[c]) for c in REVIEW_COLUMNS])
    (staging / "queue.csv").write_bytes(buffer.getvalue().encode("utf-8"))
    swap_folder(staging, folder)
    return {"queue.jsonl": len(records), "queue.csv": len(records)}


# What a spreadsheet reads as the start of a formula (OWASP, "CSV Injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: object) -> object:
    """A value as a spreadsheet cell: lists joined, and no text that starts like a formula.

    Text starting with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'`, as
    OWASP advises, so `=HYPERLINK(...)` from a user is shown, never run. Numbers stay numbers.
    """
    if value is None:
        return ""
    if isinstance(value, list):
        if value and isinstance(value[0], dict):
            value = json.dumps(value, ensure_ascii=False)
        else:
            value = "; ".join(str(v) for v in value)
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def table_frame(queue: pd.DataFrame) -> pd.DataFrame:
    """The queue as the `review_queue` table stores it (lists as JSON text)."""
    out = queue.copy()
    for column in ("routing_reasons", "related_feedback_ids", "messages"):
        out[column] = [json.dumps(v, ensure_ascii=False) for v in out[column]]
    out["ds"] = pd.to_datetime(out["ds"]).dt.date
    out["timestamp"] = pd.to_datetime(out["timestamp"], errors="coerce")
    out["cluster_id"] = pd.array(out["cluster_id"], dtype="Int64")
    out["priority"] = out["priority"].astype("int32")
    return out
