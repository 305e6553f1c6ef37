"""Prompt-tuning candidate sets: a cluster's failing cases with their fixes, by impact.

Whoever tunes the prompt wants the clusters that cost the most first, and for each the cases
that failed, with the answer users wanted when one is known. Impact is volume x increase of
the negative rate, measured one way for all clusters of a day so ranks compare like with like:

- when `version_regressions` ran: the candidate version's events in the cluster times its
  negative-rate increase over the baseline, the largest over compared versions: the excess
  negative events a release caused. Each cluster's `basis` says what stands behind its number:
  `regression` (the comparison flagged a regression), `increase_not_significant` (the rate
  rose, but not enough to be called a regression), `no_increase` (compared, no rise: impact
  0), `not_compared` (no comparison of the cluster, e.g. too few events: impact 0);
- without regression results: the cluster's events times how far its negative rate sits above
  the whole window's (`cluster_vs_window`).

Ties (and zeros) fall back to the number of negative events.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

import pandas as pd

from feedback_pipelines import privacy
from feedback_pipelines.routing.tuning import gates
from feedback_pipelines.routing.tuning.events import Event
from feedback_pipelines.routing.tuning.examples import VOTED, Example
from feedback_pipelines.routing.tuning.settings import TuningSettings
from feedback_pipelines.routing.tuning.sft import event_gate


def _num(value: object) -> float | None:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) else out


def safe_label(value: object) -> str:
    """A cluster label fit to publish: redacted, and blank if anything PII-like survives."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    label = privacy.redact_pii(str(value)) or ""
    return "" if gates.pii_hits(label) else label


def rank_clusters(
    events: Sequence[Event],
    clusters: pd.DataFrame | None = None,
    regressions: pd.DataFrame | None = None,
    in_regressed_theme: frozenset[int] = frozenset(),
) -> list[dict]:
    """Every cluster with events in the window, ranked by impact (highest first).

    Args:
        events: The window's events, with cluster ids.
        clusters: `feedback_clusters` rows of the partition (labels), optional.
        regressions: `version_regressions` rows of the partition's window, optional; rows
            with metric `negative_rate` and a cluster id give the measured increase.
        in_regressed_theme: Subtopics of a theme flagged as a whole: a rise of their own that
            is not flagged has the basis `theme_regression`.

    Returns:
        Records: rank, cluster_id, label, events, negatives, negative_rate, volume, increase,
        impact, basis (`regression`, `theme_regression`, `increase_not_significant`,
        `no_increase`, `not_compared` or `cluster_vs_window`), and the compared versions.
    """
    clustered = [e for e in events if e.cluster_id is not None and e.cluster_id >= 0]
    if not clustered:
        return []
    total = len([e for e in events if e.cluster_id is not None])
    window_rate = sum(e.is_negative for e in events if e.cluster_id is not None) / max(total, 1)
    labels: dict[int, str] = {}
    if clusters is not None and len(clusters):
        for row in clusters.to_dict("records"):
            labels[int(row["cluster_id"])] = safe_label(row.get("label"))
    best: dict[int, dict] = {}
    compared: set[int] = set()
    measured = regressions is not None and "metric" in regressions
    if measured and len(regressions):
        rows = regressions[
            (regressions["metric"] == "negative_rate") & regressions["cluster_id"].notna()
        ]
        for row in rows.to_dict("records"):
            compared.add(int(row["cluster_id"]))
            delta, n = _num(row.get("delta")), _num(row.get("n_candidate"))
            if delta is None or n is None or delta <= 0:
                continue
            c = int(row["cluster_id"])
            if c < 0:
                continue
            flagged = bool(row.get("is_regression"))
            if c not in best or (flagged, n * delta) > (
                best[c]["is_regression"],
                best[c]["impact"],
            ):
                best[c] = {
                    "impact": n * delta,
                    "volume": int(n),
                    "increase": delta,
                    "candidate_version": row.get("candidate_version"),
                    "baseline_version": row.get("baseline_version"),
                    "is_regression": flagged,
                }
    stats: dict[int, list[int]] = {}
    for e in clustered:
        s = stats.setdefault(e.cluster_id, [0, 0])
        s[0] += 1
        s[1] += int(e.is_negative)
    out = []
    for c, (n, neg) in stats.items():
        rate = neg / n
        record = {
            "cluster_id": c,
            "label": labels.get(c, ""),
            "events": n,
            "negatives": neg,
            "negative_rate": round(rate, 4),
        }
        if c in best:
            b = best[c]
            basis = "increase_not_significant"
            if b["is_regression"]:
                basis = "regression"
            elif c in in_regressed_theme:
                basis = "theme_regression"
            record.update(
                volume=b["volume"],
                increase=round(b["increase"], 4),
                impact=round(b["impact"], 3),
                basis=basis,
                candidate_version=b["candidate_version"],
                baseline_version=b["baseline_version"],
                is_regression=b["is_regression"],
            )
        elif measured:
            record.update(
                volume=n,
                increase=0.0,
                impact=0.0,
                basis="no_increase" if c in compared else "not_compared",
                candidate_version=None,
                baseline_version=None,
                is_regression=False,
            )
        else:
            increase = max(0.0, rate - window_rate)
            record.update(
                volume=n,
                increase=round(increase, 4),
                impact=round(n * increase, 3),
                basis="cluster_vs_window",
                candidate_version=None,
                baseline_version=None,
                is_regression=False,
            )
        out.append(record)
    out.sort(key=lambda r: (-r["impact"], -r["negatives"], r["cluster_id"]))
    for rank, record in enumerate(out, 1):
        record["rank"] = rank
    return out


def failing_events(events: Sequence[Event], settings: TuningSettings) -> list[Event]:
    """Negative events in a cluster: the universe of candidate cases (before gates)."""
    return [e for e in events if e.is_negative and e.cluster_id is not None and e.cluster_id >= 0]


def build_candidates(
    failing: Sequence[Event],
    examples: Sequence[Example],
    ranking: Sequence[dict],
    split_of: dict[str, str],
    settings: TuningSettings,
    log: gates.GateLog,
    beaten: Collection[str] = (),
) -> list[dict]:
    """The candidate rows of every cluster: failing cases, their fix when known, by rank.

    A case is left out when it is unsafe (review), has no prompt, holds PII, or belongs to a
    held-out eval group (tuning a prompt on eval cases would make the eval meaningless). Its
    fix is its own correction (when that passed the SFT gates), a correction of the same trace,
    the liked answer it was paired with, or the answer a side-by-side vote preferred over it
    (one no vote beat first: `beaten` holds the trace ids of answers that lost one); cases
    with a fix come first, then the most recent.
    """
    by_feedback: dict[str, tuple[str, str]] = {}
    by_trace: dict[str, tuple[str, str]] = {}
    for x in examples:
        if x.split == "test":
            continue
        if x.dataset == "sft":
            by_feedback[x.event.feedback_id] = (x.completion, "correction")
            if x.event.trace_id:
                by_trace.setdefault(x.event.trace_id, (x.completion, "correction"))
        elif x.dataset == "preference" and x.source == "liked_vs_disliked":
            by_feedback.setdefault(x.event.feedback_id, (x.completion, "liked_response"))
    # A voted answer's cases (every vote it lost, not only a pair's own) get an answer
    # preferred over it: one no vote beat, when there is one.
    voted = [x for x in examples if x.source in VOTED and x.split != "test"]
    for x in sorted(voted, key=lambda x: x.paired is not None and x.paired.trace_id in beaten):
        if x.event.trace_id:
            by_trace.setdefault(x.event.trace_id, (x.completion, "preferred_response"))
    rank_of = {r["cluster_id"]: r for r in ranking}
    rows: dict[int, list[dict]] = {}
    for e in failing:
        if e.cluster_id not in rank_of:
            continue
        reason = event_gate(e, settings)
        if reason is None and gates.has_pii([e.response, e.comment]):
            reason = "pii"
        if reason is None and split_of.get(e.feedback_id) == "test":
            continue
        if reason:
            log.drop(reason, "candidates", e.feedback_id)
            continue
        fix, fix_source = (
            by_feedback.get(e.feedback_id)
            or by_trace.get(e.trace_id or "")
            or (
                None,
                None,
            )
        )
        r = rank_of[e.cluster_id]
        rows.setdefault(e.cluster_id, []).append(
            {
                "rank": r["rank"],
                "cluster_id": e.cluster_id,
                "cluster_label": r["label"],
                "impact": r["impact"],
                "feedback_id": e.feedback_id,
                "trace_id": e.trace_id,
                "session_id": e.session_id,
                "timestamp": e.timestamp,
                "model_version": e.model_version,
                "prompt_version": e.prompt_version,
                "kind": e.kind,
                "reason": e.reason,
                "comment": e.comment,
                "messages": e.prompt,
                "response": e.response,
                "fix": fix,
                "fix_source": fix_source,
            }
        )
    out = []
    for c in sorted(rows, key=lambda c: rank_of[c]["rank"]):
        cases = sorted(rows[c], key=lambda x: x["feedback_id"])
        cases.sort(key=lambda x: x["timestamp"], reverse=True)
        cases.sort(key=lambda x: x["fix"] is None)
        out.extend(cases[: settings.max_candidates_per_cluster])
    return out
