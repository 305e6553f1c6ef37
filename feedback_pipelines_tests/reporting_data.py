"""Report inputs built by hand, with planted regressions, PII and script payloads.

Shared by test_reporting.py and test_report_browser.py. The numbers are shaped like the
regression and clustering stages' tables (CONTRACT.md section 3), so the view-model is tested on
what it will really read, including the hostile bits: payloads in labels, quotes and version
names, PII that a stage forgot to redact, a small cluster under the k-user threshold.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from feedback_pipelines.reporting.model import ReportInputs

END = date(2026, 11, 20)
PAYLOADS = (
    "<script>window.__pwned=1</script>",
    '<img src=x onerror="window.__pwned=1">',
    '<svg onload="window.__pwned=1"></svg>',
    '"><iframe src="https://evil.example.com/x"></iframe>',
    "[click me](javascript:window.__pwned=1)",
    "</textarea><script>window.__pwned=1</script>",
    '<iframe srcdoc="<script>parent.__pwned=1</script>"></iframe>',
    '<a href="javascript:window.__pwned=1">click me</a>',
)
PII = (
    "jane.doe@example.com",
    "+1 415 555 0134",
    "sk-proj-A1b2C3d4E5f6G7h8I9j0",
    "4111 1111 1111 1111",
)
CANDIDATE, BASELINE = "assistant-v7", "assistant-v6"
INVOICE, SMALL, HOSTILE, FADED = 3, 9, 4, 7
INVOICE_LABEL = "invoice, billing, refund"


def _days(n: int = 14) -> list[date]:
    return [END - timedelta(days=n - 1 - i) for i in range(n)]


def regression_rows() -> pd.DataFrame:
    """version_regressions for the window ending END: one planted regression per scope."""
    base = {
        "window_start": END - timedelta(days=13),
        "window_end": END,
        "dimension": "model_version",
        "model_version": None,
        "candidate_version": CANDIDATE,
        "baseline_version": BASELINE,
        "test": "z",
        "p_value_improvement": 0.99,
        "q_value_improvement": 0.99,
        "is_improvement": False,
        "note": "",
    }
    rows = [
        # The planted regression: invoice questions, 31% vs 14%.
        dict(
            base,
            metric="negative_rate",
            scope="cluster",
            cluster_id=INVOICE,
            n_candidate=420,
            n_baseline=510,
            rate_candidate=0.31,
            rate_baseline=0.14,
            delta=0.17,
            ci_low=0.12,
            ci_high=0.22,
            p_value=1e-7,
            q_value=2e-6,
            is_regression=True,
        ),
        # Overall, adjusted for topic mix: a smaller but real regression.
        dict(
            base,
            metric="negative_rate",
            scope="mix_adjusted",
            cluster_id=None,
            n_candidate=3100,
            n_baseline=3500,
            rate_candidate=0.21,
            rate_baseline=0.16,
            delta=0.05,
            ci_low=0.03,
            ci_high=0.07,
            test="cmh",
            p_value=1e-4,
            q_value=0.0021,
            is_regression=True,
        ),
        # Unadjusted overall row: reference only, never flagged.
        dict(
            base,
            metric="negative_rate",
            scope="overall",
            cluster_id=None,
            n_candidate=3100,
            n_baseline=3500,
            rate_candidate=0.21,
            rate_baseline=0.16,
            delta=0.05,
            ci_low=0.03,
            ci_high=0.07,
            p_value=np.nan,
            q_value=np.nan,
            is_regression=False,
            note="unadjusted for topic mix: reference only",
        ),
        # An improvement: fewer abandoned conversations about the hostile-label topic.
        dict(
            base,
            metric="abandonment_rate",
            scope="cluster",
            cluster_id=HOSTILE,
            n_candidate=300,
            n_baseline=280,
            rate_candidate=0.08,
            rate_baseline=0.19,
            delta=-0.11,
            ci_low=-0.16,
            ci_high=-0.06,
            p_value=0.99,
            q_value=0.99,
            p_value_improvement=1e-5,
            q_value_improvement=4e-4,
            is_regression=False,
            is_improvement=True,
        ),
        # Tested, not significant.
        dict(
            base,
            metric="correction_rate",
            scope="cluster",
            cluster_id=1,
            n_candidate=200,
            n_baseline=210,
            rate_candidate=0.05,
            rate_baseline=0.04,
            delta=0.01,
            ci_low=-0.03,
            ci_high=0.05,
            p_value=0.3,
            q_value=0.6,
            is_regression=False,
        ),
        # Latency regression: p95 in ms.
        dict(
            base,
            metric="latency_p95",
            scope="overall",
            cluster_id=None,
            n_candidate=3300,
            n_baseline=3600,
            rate_candidate=2400.0,
            rate_baseline=1800.0,
            delta=600.0,
            ci_low=420.0,
            ci_high=780.0,
            p_value=1e-5,
            q_value=3e-4,
            is_regression=True,
        ),
    ]
    frame = pd.DataFrame(rows)
    frame["cluster_id"] = frame["cluster_id"].astype("Int64")
    return frame


def cluster_rows() -> pd.DataFrame:
    """feedback_clusters of END: hostile text, PII, a small cluster, new / growing / faded."""
    first = END - timedelta(days=13)
    rows = [
        {
            "cluster_id": INVOICE,
            "label": INVOICE_LABEL,
            "keyphrases": ["invoice", "billing", "refund", "vat"],
            "quotes": [
                "The invoice total is wrong, it ignores the refund I got last week.",
                f"Why does it tell me to email {PII[0]} for billing? That is my address!",
                "It keeps adding VAT twice on the invoice.",
                "Fourth quote that should not be shown.",
            ],
            "size": 930,
            "distinct_users": 412,
            "negative_rate": 0.24,
            "first_seen": first,
            "last_seen": END,
            "status": "growing",
            "growth": 0.45,
        },
        {
            "cluster_id": HOSTILE,
            "label": f"{PAYLOADS[0]} export csv",
            "keyphrases": [PAYLOADS[1], "csv", "export"],
            "quotes": [PAYLOADS[0], PAYLOADS[1], f"{PAYLOADS[3]} call me at {PII[1]}"],
            "size": 580,
            "distinct_users": 230,
            "negative_rate": 0.18,
            "first_seen": first,
            "last_seen": END,
            "status": "stable",
            "growth": 0.02,
        },
        {
            "cluster_id": 1,
            "label": "password reset, login",
            "keyphrases": ["password", "reset", "login"],
            "quotes": [
                f"my key {PII[2]} stopped working",
                f"{PAYLOADS[4]} reset page {PAYLOADS[5]}",
                f"card {PII[3]} was charged {PAYLOADS[6]} {PAYLOADS[7]}",
            ],
            "size": 410,
            "distinct_users": 190,
            "negative_rate": 0.12,
            "first_seen": first,
            "last_seen": END,
            "status": "stable",
            "growth": 0.0,
        },
        {
            "cluster_id": SMALL,
            "label": "rare medical question",
            "keyphrases": ["dosage", "rare"],
            "quotes": ["SECRET-SMALL-CLUSTER-QUOTE about my own rare condition"],
            "size": 6,
            "distinct_users": 3,
            "negative_rate": 0.5,
            "first_seen": END,
            "last_seen": END,
            "status": "new",
            "growth": None,
        },
        {
            "cluster_id": 11,
            "label": "holiday opening hours",
            "keyphrases": ["holiday", "opening", "hours"],
            "quotes": ["Are you open on the 24th?", "Opening hours for Christmas week?"],
            "size": 75,
            "distinct_users": 60,
            "negative_rate": 0.3,
            "first_seen": END,
            "last_seen": END,
            "status": "new",
            "growth": None,
        },
        {
            "cluster_id": FADED,
            "label": "old outage complaints",
            "keyphrases": ["outage", "down"],
            "quotes": ["FADED-QUOTE the site is down"],
            "size": 12,
            "distinct_users": 11,
            "negative_rate": 0.8,
            "first_seen": first,
            "last_seen": END - timedelta(days=9),
            "status": "faded",
            "growth": -0.9,
        },
    ]
    frame = pd.DataFrame(rows)
    frame["ds"] = END
    return frame


def sample_inputs(kind: str = "daily") -> ReportInputs:
    """A full day (or week) of report inputs with everything planted."""
    days = _days()
    rng = np.random.default_rng(5)
    daily = []
    for i, d in enumerate(days):
        for version, n, rate in (
            (BASELINE, 300 - 10 * i, 0.15),
            (CANDIDATE, 60 + 25 * i if i >= 4 else 0, 0.21),
            ("assistant-v5", 80 if i < 5 else 0, 0.17),
            (None, 5, 0.4),
        ):
            if n:
                daily.append(
                    {
                        "ds": d,
                        "model_version": version,
                        "n_feedback": n,
                        "n_negative": int(rng.binomial(n, rate)),
                    }
                )
    daily_df = pd.DataFrame(daily)
    start = END if kind == "daily" else END - timedelta(days=6)
    period = daily_df[(daily_df["ds"] >= start) & (daily_df["ds"] <= END)]
    by_version = (
        period.groupby("model_version", dropna=False)[["n_feedback", "n_negative"]]
        .sum()
        .reset_index()
    )
    by_version["n_corrections"] = (by_version["n_feedback"] * 0.04).astype(int)
    by_version["n_users"] = (by_version["n_feedback"] * 0.7).astype(int)
    metrics = []
    for d in days:
        for version in (BASELINE, CANDIDATE):
            metrics.append(
                {
                    "ds": d,
                    "dimension": "model_version",
                    "model_version": version,
                    "n_traces": 900,
                    "n_abandoned": 90 if version == BASELINE else 120,
                    "latency_p50_ms": 800.0,
                    "latency_p95_ms": 1800.0 if version == BASELINE else 2400.0,
                }
            )
    cluster_daily = pd.DataFrame(
        [
            {"cluster_id": c, "ds": d, "n": int(rng.integers(5, 80) * (1 + i / 10))}
            for c in (INVOICE, HOSTILE, 1, 11)
            for i, d in enumerate(days)
        ]
    )
    totals = {
        "n_feedback": int(by_version["n_feedback"].sum()),
        "n_negative": int(by_version["n_negative"].sum()),
        "n_users": int(by_version["n_users"].sum()),
        "n_traces": 1800,
        "n_sessions": 700,
        "n_unknown_trace": 5,
        "n_late_feedback": 31,
    }
    return ReportInputs(
        kind=kind,
        start=start,
        end=END,
        totals=totals,
        by_version=by_version,
        daily_by_version=daily_df,
        version_metrics=pd.DataFrame(metrics),
        regressions=regression_rows(),
        clusters=cluster_rows(),
        cluster_daily=cluster_daily,
        tuning=pd.DataFrame(
            [
                {"dataset": "sft", "split": "train", "n": 30},
                {"dataset": "sft", "split": "test", "n": 4},
                {"dataset": "preference", "split": "train", "n": 12},
                {"dataset": "eval", "split": None, "n": 8},
            ]
        ),
        review=pd.DataFrame(
            [
                {"reason": "unsafe", "n": 3},
                {"reason": "conflicting_corrections", "n": 2},
                {"reason": PAYLOADS[1], "n": 1},
                {"reason": "unclustered_negative", "n": 6},
            ]
        ),
        quarantine=pd.DataFrame(
            [
                {"source": "feedback", "reason": "bad JSON", "n": 7},
                {"source": "traces", "reason": "missing field", "n": 2},
                {"source": "feedback", "reason": "unknown kind", "n": 1},
            ]
        ),
        files=pd.DataFrame(
            [
                {"ds": END, "source": "feedback", "file": "part-000.jsonl", "late": False},
                {
                    "ds": END,
                    "source": "feedback",
                    "file": f"late-{PAYLOADS[0]}.jsonl",
                    "late": True,
                },
                {"ds": END, "source": "traces", "file": "part-000.jsonl.gz", "late": False},
            ]
        ),
        links={
            "exports": "../../exports/dt=2026-11-20/",
            "review": "../../review/dt=2026-11-20/queue.jsonl",
        },
    )


def empty_inputs() -> ReportInputs:
    """A day where nothing arrived: tables exist, no rows."""
    empty = pd.DataFrame(
        columns=["model_version", "n_feedback", "n_negative", "n_corrections", "n_users"]
    )
    return ReportInputs(
        kind="daily",
        start=END,
        end=END,
        totals={"n_feedback": 0, "n_negative": 0, "n_users": 0, "n_traces": 0},
        by_version=empty,
        daily_by_version=pd.DataFrame(columns=["ds", "model_version", "n_feedback", "n_negative"]),
        version_metrics=pd.DataFrame(),
        regressions=pd.DataFrame(),
        clusters=pd.DataFrame(),
        quarantine=pd.DataFrame(columns=["source", "reason", "n"]),
    )
