"""Review routing: who goes to people, why, in what order, and the files they open."""

from __future__ import annotations

import csv
import hashlib
import json

from feedback_pipelines.routing import review
from feedback_pipelines.routing.tuning.events import prepare_events
from feedback_pipelines.routing.tuning.pipeline import RegressedTheme
from feedback_pipelines.routing.tuning.sft import Conflict
from feedback_pipelines_tests.fixtures import tuning as td

YESTERDAY = "2026-11-19"


def window():
    e = td.event
    rows = [
        e("unsafe-today", "thumbs_down", td.R_TWICE, reason="unsafe"),
        e("unsafe-old", "thumbs_down", td.R_TWICE, reason="unsafe", ds=YESTERDAY),
        e("noise-neg", "thumbs_down", td.R_PDF, cluster=-1),
        e("noise-unsafe", "comment", td.R_PDF, reason="unsafe", comment="bad", cluster=-1),
        e("noise-pos", "thumbs_up", td.R_PDF, cluster=-1),
        e("noise-neg-old", "thumbs_down", td.R_PDF, cluster=-1, ds=YESTERDAY),
        e("placed-neg", "thumbs_down", td.R_PDF, cluster=1),
        e("conf-a", "correction", td.R_JOIN, correction=td.FIX_JOIN, cluster=2, ds=YESTERDAY),
        e("conf-b", "correction", td.R_JOIN, correction=td.FIX_JOIN_OTHER, cluster=2),
        e("old-a", "correction", td.R_JOIN, correction="a", cluster=2, ds=YESTERDAY),
        e("old-b", "correction", td.R_JOIN, correction="b", cluster=2, ds=YESTERDAY),
        e("leaky", "thumbs_down", td.R_PDF, comment="mail me: jane.doe@example.com", cluster=-1),
    ]
    rows += [e(f"reg-{i}", "thumbs_down", td.R_COUNT, cluster=5) for i in range(6)]
    rows += [e("reg-pos", "thumbs_up", td.R_COUNT, cluster=5)]
    return prepare_events(td.frame(rows))


CONFLICTS = [Conflict("conf-a", "conf-b", 1.0, 0.31), Conflict("old-a", "old-b", 1.0, 0.2)]


def route(events=None, **kwargs):
    options = {"conflicts": CONFLICTS, "new_regressions": [5], "labels": {5: "sql counting"},
               "sample_per_cluster": 2}  # fmt: skip
    options.update(kwargs)
    return review.route_for_review(events or window(), td.DS, **options)


def test_each_route_takes_exactly_its_events():
    queue = route()
    by_id = queue.set_index("feedback_id")
    assert set(by_id.index[by_id["routing_reason"] == "unsafe"]) == {"unsafe-today", "noise-unsafe"}
    assert set(queue.loc[queue["routing_reasons"].map(lambda r: "unclustered_negative" in r),
                         "feedback_id"]) == {"noise-neg", "noise-unsafe", "leaky"}  # fmt: skip
    conflicts = by_id[by_id["routing_reason"] == "conflicting_corrections"]
    assert set(conflicts.index) == {"conf-a", "conf-b"}  # old conflicts were queued before
    assert by_id.loc["conf-a", "related_feedback_ids"] == ["conf-b"]
    assert "conf-b" in by_id.loc["conf-a", "detail"] and "0.31" in by_id.loc["conf-a", "detail"]
    samples = by_id[by_id["routing_reason"] == "new_regression_sample"]
    assert len(samples) == 2 and all(f.startswith("reg-") and f != "reg-pos" for f in samples.index)
    assert all("sql counting" in d for d in samples["detail"])
    for absent in ("unsafe-old", "noise-pos", "noise-neg-old", "placed-neg", "old-a", "reg-pos"):
        assert absent not in by_id.index


def test_a_newly_regressed_theme_is_sampled_over_its_subtopics():
    theme = RegressedTheme(4, "sql and pdfs", (1, 5))
    queue = route(new_regressions=[], new_theme_regressions=[theme], sample_per_cluster=20)
    samples = queue[queue["routing_reasons"].map(lambda r: "new_regression_sample" in r)]
    samples = samples.set_index("feedback_id")
    # Every negative of the window in the theme's subtopics (1 and 5), no positive, no other.
    expected = {e.feedback_id for e in window() if e.cluster_id in (1, 5) and e.is_negative}
    assert set(samples.index) == expected and {"reg-0", "placed-neg"} <= expected
    assert all("sample of theme 4 (sql and pdfs), regressed since " + td.DS in d
               for d in samples["detail"])  # fmt: skip
    assert len(route(new_regressions=[], new_theme_regressions=[theme], sample_per_cluster=3)
               .query("routing_reason == 'new_regression_sample'")) == 3  # fmt: skip


def test_items_merge_reasons_and_sort_by_priority():
    queue = route()
    assert list(queue["priority"]) == sorted(queue["priority"])
    both = queue.set_index("feedback_id").loc["noise-unsafe"]
    assert both["priority"] == 1 and both["routing_reasons"] == ["unsafe", "unclustered_negative"]
    assert not queue["feedback_id"].duplicated().any()
    assert queue["trace_id"].notna().all() and queue["session_id"].notna().all()


def test_sample_is_deterministic_and_seeded():
    events = window()
    a = route(events)
    b = route(list(reversed(events)))
    assert a.equals(b)  # input order changes nothing
    seeds = {frozenset(route(events, seed=s)["feedback_id"]) for s in range(6)}
    assert len(seeds) > 1


def test_without_clustering_there_is_no_noise_route():
    queue = route(clustering=False, new_regressions=[])
    assert "unclustered_negative" not in set(queue["routing_reason"])
    assert set(queue["routing_reason"]) == {"unsafe", "conflicting_corrections"}


def test_newly_regressed_is_today_minus_yesterday():
    assert review.newly_regressed([3, 5, 7], [5]) == [3, 7]
    assert review.newly_regressed([3], None) == [3]
    assert review.newly_regressed([], [1]) == []


def test_files_are_redacted_deterministic_and_agree(tmp_path):
    events = window()
    queue = route(events)
    folder = tmp_path / "review" / f"dt={td.DS}"
    counts = review.write_review(queue, folder)
    first = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    review.write_review(route(events), folder)
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()} == first
    lines = [json.loads(x) for x in (folder / "queue.jsonl").read_text().splitlines()]
    with (folder / "queue.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert counts == {"queue.jsonl": len(lines), "queue.csv": len(rows)} and len(rows) == len(queue)
    assert [r["feedback_id"] for r in rows] == [r["feedback_id"] for r in lines]
    text = (folder / "queue.jsonl").read_text() + (folder / "queue.csv").read_text()
    assert "jane.doe@example.com" not in text and "<EMAIL>" in text
    leaky = next(r for r in lines if r["feedback_id"] == "leaky")
    assert leaky["messages"][-1] == {"role": "user", "content": td.R_PDF}
    table = review.table_frame(queue)
    assert list(table.columns) == review.REVIEW_COLUMNS
    assert json.loads(table.loc[0, "routing_reasons"]) == queue.loc[0, "routing_reasons"]
