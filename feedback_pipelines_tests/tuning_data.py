"""Small hand-built feedback windows for the tuning and review tests (real schema, real text)."""

from __future__ import annotations

import itertools
import json

import pandas as pd

SYSTEM = "You are Nimbus, Acme's assistant. Answer accurately and concisely."
DS = "2026-11-20"

R_PDF = "How do I download a PDF copy of my October invoice?"
R_PDF_HI = "Hi, how do I download a PDF copy of my October invoice? thanks"  # cosine 0.99
R_PDF_SEPT = "How do I download a PDF copy of my September invoice?"  # 0.90: same group only
R_TWICE = "Why was I charged twice for November?"
R_JOIN = "How do I write a left join in SQL between orders and customers?"
R_COUNT = "How do I count the orders of each customer in SQL?"

FIX_PDF = "Go to Settings, then Billing, then Invoice history, and choose Download PDF."
FIX_PDF_PARA = "Open Settings > Billing > Invoice history and click Download PDF."  # 0.98
FIX_TWICE = "Open Billing, then Payments, select the duplicate charge and click Request refund."
FIX_JOIN = "Use LEFT JOIN customers c ON o.customer_id = c.id so every order is kept."
FIX_JOIN_OTHER = "You should cancel the subscription from the billing page."
FIX_COUNT = "SELECT customer_id, COUNT(*) FROM orders GROUP BY customer_id;"

_clock = itertools.count()


def event(
    fid: str,
    kind: str,
    request: str | None,
    response: str | None = "I am not sure.",
    *,
    correction: str | None = None,
    reason: str | None = None,
    score: float | None = None,
    comment: str | None = None,
    cluster: int | None = 1,
    trace: str | None = None,
    ds: str = DS,
    system: str = SYSTEM,
    history: list[dict] | None = None,
    model_version: str = "nimbus-2026-11",
    prompt_version: str = "support-v13",
) -> dict:
    """One `feedback_events` row (plus `cluster_id`), with its trace's messages."""
    tick = next(_clock)
    if request is None:
        messages = None
    else:
        messages = [{"role": "system", "content": system}, *(history or [])]
        messages.append({"role": "user", "content": request})
    negative = (
        kind in ("thumbs_down", "correction", "regenerate")
        or (kind == "rating" and score is not None and score <= 2)
        or (kind == "comment" and reason is not None)
    )
    return {
        "ds": ds,
        "feedback_id": fid,
        "trace_id": trace or f"t-{fid}",
        "session_id": f"s-{trace or fid}",
        "timestamp": pd.Timestamp(f"{ds}T08:00:00") + pd.Timedelta(seconds=tick),
        "kind": kind,
        "reason": reason,
        "score": score,
        "comment": comment,
        "correction": correction,
        "user_role": "customer",
        "model_version": model_version,
        "prompt_version": prompt_version,
        "request": request,
        "response": response if request is not None else None,
        "messages": json.dumps(messages) if messages is not None else None,
        "trace_found": request is not None,
        "is_negative": negative,
        "cluster_id": cluster,
    }


def frame(rows: list[dict]) -> pd.DataFrame:
    """Rows as a feedback_events frame (cluster_id as a nullable integer)."""
    out = pd.DataFrame(rows)
    out["cluster_id"] = pd.array(out["cluster_id"], dtype="Int64")
    return out


def corrections_window() -> pd.DataFrame:
    """Corrections covering every SFT gate, each planted once (see test_tuning)."""
    return frame(corrections_rows())


def signals_window() -> pd.DataFrame:
    """Plain thumbs and ratings for pairs and unpaired examples (see test_tuning)."""
    return frame(signals_rows())


def full_window() -> pd.DataFrame:
    """Corrections and plain signals together."""
    return frame(corrections_rows() + signals_rows())


def corrections_rows() -> list[dict]:
    """Rows of `corrections_window`."""
    return (
        [
            event("c-ok-pdf", "correction", R_PDF, "Invoices can't be downloaded.",
                  correction=FIX_PDF),
            event("c-near-dup", "correction", R_PDF_HI, "Invoices are emailed only.",
                  correction=FIX_PDF_PARA),
            event("c-exact-dup", "correction", R_PDF, "Invoices can't be downloaded.",
                  correction="  go to settings, then billing, then invoice history, and choose "
                  "download pdf. "),
            event("c-ok-twice", "correction", R_TWICE, "Refunds are never possible.",
                  correction=FIX_TWICE),
            event("c-empty", "correction", R_TWICE, "Refunds are never possible.",
                  correction="   "),
            event("c-equal", "correction", R_TWICE, "Refunds are never possible.",
                  correction="refunds are  never possible."),
            event("c-short", "correction", R_TWICE, "Refunds are never possible.",
                  correction="no"),
            event("c-long", "correction", R_TWICE, "Refunds are never possible.",
                  correction="Refund steps. " * 1500),
            event("c-pii", "correction", R_TWICE, "Refunds are never possible.",
                  correction="Call our billing line at +1 415 555 0132 for a refund."),
            event("c-unsafe", "correction", R_TWICE, "Refunds are never possible.",
                  correction=FIX_TWICE + " Really.", reason="unsafe"),
            event("c-no-trace", "correction", None, None, correction=FIX_TWICE),
            event("c-join-a", "correction", R_JOIN, "Use a cross join.", correction=FIX_JOIN,
                  cluster=2),
            event("c-join-b", "correction", R_JOIN, "Use a cross join.",
                  correction=FIX_JOIN_OTHER, cluster=2),
            event("c-count", "correction", R_COUNT, "Use COUNT(DISTINCT *).",
                  correction=FIX_COUNT, cluster=2),
        ]
    )  # fmt: skip


# What the gates must decide for `corrections_window`, event by event.
EXPECTED_SFT = {"c-ok-pdf", "c-ok-twice", "c-count"}
EXPECTED_DROPS = {
    "c-near-dup": "near_duplicate",
    "c-exact-dup": "exact_duplicate",
    "c-empty": "empty_correction",
    "c-equal": "correction_equals_response",
    "c-short": "too_short",
    "c-long": "too_long",
    "c-pii": "pii",
    "c-unsafe": "unsafe",
    "c-no-trace": "no_trace",
    "c-join-a": "conflicting_corrections",
    "c-join-b": "conflicting_corrections",
}


def signals_rows() -> list[dict]:
    """Plain thumbs and ratings for pairs and unpaired examples (see test_tuning)."""
    good = "Settings → Billing → Invoice history → Download PDF."
    bad = "Invoices are only sent by email."
    return (
        [
            event("up-pdf", "thumbs_up", R_PDF_HI, good),
            event("down-pdf", "thumbs_down", R_PDF, bad),
            event("down-pdf-2", "thumbs_down", R_PDF, "Ask your bank."),  # no liked left
            event("down-other-cluster", "thumbs_down", R_PDF, "No idea.", cluster=3),
            event("up-same-trace", "thumbs_up", R_TWICE, "Use Payments.", trace="t-shared"),
            event("down-same-trace", "thumbs_down", R_TWICE, "Use Payments.", trace="t-shared"),
            event("rate-5", "rating", R_COUNT, "GROUP BY customer_id with COUNT(*).",
                  score=5, cluster=2),
            event("rate-1", "rating", R_COUNT, "You cannot count in SQL.", score=1, cluster=2),
            event("rate-3", "rating", R_COUNT, "Maybe COUNT.", score=3, cluster=2),
            event("copy", "copy", R_COUNT, "GROUP BY customer_id.", cluster=2),
            event("mixed-up", "thumbs_up", R_JOIN, "LEFT JOIN keeps all orders.", cluster=2),
            event("mixed-down", "thumbs_down", R_JOIN, "LEFT JOIN keeps all orders.", cluster=2,
                  prompt_version="support-v13"),
        ]
    )  # fmt: skip
