"""Issue 17: a report that tells the story over time, and says only what is true.

Built from hand-made inputs (fixtures/reporting.py) shaped like the warehouse's tables: since
when each regression is flagged and whether it grew, changes against yesterday and last week,
resolved findings, the weekly comparison and coverage, the order of the page, every topic
reachable, quotes a person can follow up, and the truth rules (late files, people without user
ids, no verdict without a comparison, the clustering's own status, tuning counts per set).
"""

from __future__ import annotations

import html
import json
import re
from datetime import timedelta
from html.parser import HTMLParser

import pandas as pd
import pytest

from feedback_pipelines.reporting.build import build_exports, build_report, card_sets
from feedback_pipelines.reporting.render import (
    read_index_entries,
    rebuild_index,
    render_html,
    render_markdown,
    write_report,
)
from feedback_pipelines.reporting.views import ReportInputs, ReportSettings
from feedback_pipelines_tests.fixtures import reporting as rd


class _Details(HTMLParser):
    """Every <details> with its `open` attribute and the text inside it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[dict] = []
        self.found: list[dict] = []

    def handle_starttag(self, tag, attrs):
        if tag == "details":
            self.stack.append({"open": "open" in dict(attrs), "cls": dict(attrs).get("class", ""),
                               "text": []})  # fmt: skip

    def handle_endtag(self, tag):
        if tag == "details" and self.stack:
            self.found.append(self.stack.pop())

    def handle_data(self, data):
        for d in self.stack:
            d["text"].append(data)


def details_of(html: str) -> list[dict]:
    parser = _Details()
    parser.feed(html)
    return [{**d, "text": " ".join(d["text"])} for d in parser.found]


def text_of(page: str) -> str:
    text = re.sub(r"<style.*?</style>", " ", page, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", text)))


@pytest.fixture(scope="module")
def story():
    view = build_report(rd.story_inputs())
    return view, render_html(view), render_markdown(view)


# ------------------------------------------------------------------ time


def test_each_regression_says_since_when_and_whether_it_grew(story):
    view, html, md = story
    by = {(f.metric, f.scope): f for f in view.regressions}
    invoice = by[("negative_rate", "topic")]
    # Not flagged on the 17th, flagged on the 18th and 19th: day 3 of its run.
    assert (invoice.age, invoice.since) == ("ongoing", "day 3, since Wed 18 Nov")
    assert invoice.trend == "growing: +17 points, was +12 points on Thu 19 Nov"
    overall = by[("negative_rate", "mix_adjusted")]
    assert (overall.age, overall.since) == ("new", "new today")
    assert overall.trend == "growing: +5.0 points, was +3.0 points (not flagged) on Thu 19 Nov"
    # Flagged on the 15th; the stage did not run on the 16th (no break), ran on the 17th
    # without flagging it (a break): new today, not "day 6".
    assert by[("latency_p95", "overall")].since == "new today"
    assert view.summary[0].endswith(
        "— day 3, since Wed 18 Nov; growing: +17 points, was +12 points on Thu 19 Nov."
    )
    assert "day 3, since Wed 18 Nov" in text_of(html) and "day 3, since Wed 18 Nov" in md


def test_flag_since_from_the_stage_wins_over_the_derived_streak():
    inputs = rd.story_inputs()
    inputs.regressions = inputs.regressions.assign(flag_since=rd.END - timedelta(days=9))
    view = build_report(inputs)
    assert {f.since for f in view.regressions} == {"day 10, since Wed 11 Nov"}
    assert all(f.age == "ongoing" for f in view.regressions)


def test_always_valid_rows_alert_say_the_release_day_and_state_the_guarantee():
    inputs = rd.story_inputs()
    window = inputs.regressions.assign(test="cmh")
    release = rd.END - timedelta(days=5)
    # The stage's two kinds of rows: the window's (descriptive, never flagged) and the
    # always-valid ones since the release, one of which flagged a regression on day 4.
    av = inputs.regressions.assign(
        test="always_valid",
        release_day=release,
        days_since_release=5,
        flag_since=[release + timedelta(days=3) if f else None for f in window["is_regression"]],
    )
    inputs.regressions = pd.concat(
        [window.assign(is_regression=False, is_improvement=False), av], ignore_index=True
    )
    view = build_report(inputs)
    flagged = int(av["is_regression"].sum())
    assert flagged and len(view.regressions) == flagged  # window rows never add a finding
    for f in view.regressions:
        assert f.since.endswith("; flagged on day 4 of the release (released Sun 15 Nov)"), f.since
    html, md = render_html(view), render_markdown(view)
    promise = (
        "For a release that changes nothing, the chance that it is ever flagged as a regression "
        "on any day is at most 2.5% (and 2.5% for an improvement), however often this report is "
        "read."
    )
    assert promise in text_of(html) and promise in md
    assert f"{len(av):,} always-valid comparisons" in view.comparisons
    # Yesterday's flags came from window rows (the day before the always-valid verdict took
    # over): not "resolved" today, since window rows no longer alert.
    assert view.resolved == []
    inputs.regression_history = inputs.regression_history.assign(test="always_valid")
    resolved = build_report(inputs).resolved
    assert len(resolved) == 2 and all("no longer flagged" in r.sentence for r in resolved)


def test_without_any_history_every_finding_is_new_today():
    view = build_report(rd.sample_inputs())
    assert {f.since for f in view.regressions} == {"new today"}
    assert {f.trend for f in view.regressions} == {""}
    assert view.resolved == []


def test_resolved_findings_are_listed_and_counted(story):
    view, html, _ = story
    sentences = [r.sentence for r in view.resolved]
    assert sentences == [
        "assistant-v7 overall, abandoned conversations vs assistant-v6: no longer flagged (was "
        "+5.0 points on Thu 19 Nov; not compared today).",
        "assistant-v7 on “password reset, login”, corrections vs assistant-v6: no longer flagged "
        "(was +6.0 points on Thu 19 Nov; now +1.0 points, q = 0.60).",
    ]
    assert "2 regressions flagged the day before are no longer flagged" in " ".join(view.summary)
    assert "No longer flagged" in html
    entry = view.index_entry()
    assert (entry["new"], entry["ongoing"], entry["resolved"]) == (2, 1, 2)


def test_tiles_compare_with_yesterday_and_last_week(story):
    view, html, _ = story
    tiles = {t.label: t for t in view.tiles}
    # 560 events today, 300 yesterday (10% negative), none a week ago.
    assert tiles["Feedback events"].changes == ["+87% vs yesterday", "no feedback last week"]
    assert tiles["Negative"].changes == ["+11 points vs yesterday"]
    assert tiles["Regressions"].detail == "2 new · 1 ongoing"
    assert tiles["Regressions"].changes[0] == "2 resolved since the day before"
    assert "+87% vs yesterday" in html


def test_index_marks_new_ongoing_and_resolved_per_day(tmp_path):
    reports = tmp_path / "reports"
    write_report(build_report(rd.story_inputs()), reports)
    quiet = rd.sample_inputs()
    quiet.start = quiet.end = rd.END - timedelta(days=1)
    quiet.regressions = quiet.regressions.assign(is_regression=False)
    write_report(build_report(quiet), reports)
    index = rebuild_index(reports).read_text()
    assert "2 new" in index and "1 ongoing" in index and "2 resolved" in index
    entries = {e["key"]: e for e in read_index_entries(reports)}
    assert entries["dt=2026-11-20"]["resolved"] == 2
    assert entries["dt=2026-11-19"]["new"] == 0


def test_weekly_roll_up_compares_with_the_week_before_and_says_its_coverage():
    view = build_report(rd.story_inputs("weekly"))
    html = render_html(view)
    assert view.coverage == (
        "This period's data covers 5 of 7 days (no feedback on Sat 14 Nov, Tue 17 Nov)."
    )
    assert view.comparison.startswith(
        "Compared with the week before (Sat 7 Nov – Fri 13 Nov, 6 days of data): "
    )
    assert "vs 2,000 (+" in view.comparison and "negative vs 15% (" in view.comparison
    for sentence in (view.coverage, view.comparison):
        assert sentence in view.summary and sentence in text_of(html)
    assert (
        {t.label: t for t in view.tiles}["Feedback events"]
        .changes[0]
        .endswith("vs the week before")
    )


# ------------------------------------------------------------------ order


def test_regressions_come_first_and_improvements_are_collapsed(story):
    _, html, _ = story
    assert html.index('id="regressions"') < html.index('id="versions"') < html.index('id="topics"')
    better = [d for d in details_of(html) if "better-list" in d["cls"]]
    assert len(better) == 1 and not better[0]["open"]
    assert "8.0% vs 19%" in better[0]["text"]  # the improvement, inside the closed list
    assert "<script" not in html.lower()


def test_per_topic_latency_rows_are_folded_into_one(story):
    inputs = rd.story_inputs()
    inputs.regressions = pd.concat(
        [
            inputs.regressions,
            rd.latency_topic_rows(14, "better"),
            rd.latency_topic_rows(2, "worse"),
        ],
        ignore_index=True,
    )
    view = build_report(inputs)
    html = render_html(view)
    assert [g.title for g in view.improvement_groups] == ["p95 latency on 14 topics"]
    assert [g.title for g in view.regression_groups] == ["p95 latency on 2 topics"]
    assert "the largest change is −430 ms" in view.improvement_groups[0].summary
    # The one rate regression is still the headline; the latency rows do not bury it.
    assert view.headline.startswith("assistant-v7 is worse on “invoice, billing, refund”")
    rows = re.findall(r"<tr class=\"better\">", html)
    groups = [d for d in details_of(html) if "group" in d["cls"].split()]
    assert len(groups) == 2 and not any(d["open"] for d in groups)
    assert len(rows) == 1 + 14  # one improvement row, 14 inside the closed latency group
    assert sum(1 for f in view.regressions if not f.grouped) == 3


# ------------------------------------------------------------------ topics


def test_ranking_rule_is_stated_and_every_topic_is_reachable(story):
    view, html, md = story
    assert view.ranking_rule.startswith("Topics are ranked by negative feedback")
    assert view.ranking_rule in text_of(html) and "Topics are ranked by negative" in md
    small = build_report(rd.story_inputs(), ReportSettings(max_clusters=2))
    html = render_html(small)
    assert len(small.clusters) == 2
    # Every non-faded and faded topic is a row of the table of all topics.
    assert len(small.topic_rows) == len(rd.cluster_rows())
    table = next(d for d in details_of(html) if "all-topics" in d["cls"])
    for label in ("holiday opening hours", "rare medical question", "old outage complaints"):
        assert label in table["text"]
    # Rows of topics with a card link to it.
    assert f'href="#topic-{rd.INVOICE}"' in html and f'id="topic-{rd.INVOICE}"' in html


def test_quotes_are_marked_split_and_carry_the_session_command(story):
    view, html, md = story
    invoice = {c.cluster_id: c for c in view.clusters}[rd.INVOICE]
    kinds = [q.polarity for q in invoice.quotes]
    assert kinds == ["negative", "negative", "positive"]
    first = invoice.quotes[0]
    assert first.request == "Why is my invoice total higher than last month?"
    assert first.comment.startswith("The invoice total is wrong")
    assert (first.feedback_id, first.command) == (
        "fb_inv_neg_1",
        "feedback-pipelines session fb_inv_neg_1",
    )
    assert invoice.quotes[1].request == "Send the invoice to <EMAIL> please"  # redacted
    assert "feedback-pipelines session fb_inv_neg_1" in text_of(html)
    assert "Asked:" in html and "Said:" in html and "positive (rating 5/5)" in html
    assert "feedback-pipelines session fb\\_inv\\_neg\\_1" in md
    # An id that looks like personal data is not printed, nor a command built from it.
    hostile = {c.cluster_id: c for c in view.clusters}[rd.HOSTILE]
    assert [q.command for q in hostile.quotes][1] == ""
    assert rd.PII[0] not in html and rd.PII[0] not in md


def test_subtopic_cards_are_grouped_under_their_theme_and_findings_name_it():
    view = build_report(rd.with_themes(rd.story_inputs()))
    html = render_html(view)
    assert [t.label for t in view.themes] == ["billing and payments", "account access", "health"]
    billing = view.themes[0]
    assert [c.cluster_id for c in billing.clusters] == [rd.INVOICE, 11]
    assert (billing.status_text, billing.subtopics) == ("Growing", 2)
    assert view.headline.startswith(
        "assistant-v7 is worse on “invoice, billing, refund” (theme “billing and payments”)"
    )
    assert "Theme: billing and payments" in html
    assert "billing and payments" in [r.theme for r in view.topic_rows]


def test_each_theme_lists_what_went_wrong_from_the_complaint_groups():
    inputs = rd.with_themes(rd.story_inputs())
    # complaint_clusters rows as the complaints stage writes them (per-theme counts as JSON).
    inputs.complaints = pd.DataFrame(
        [
            {"complaint_id": 1, "label": "does not answer the question", "size": 40,
             "topic_counts": '{"50": 12, "51": 28}'},
            {"complaint_id": 3, "label": "factually wrong", "size": 30,
             "topic_counts": '{"50": 25, "-1": 5}'},
            {"complaint_id": 0, "label": "other <script>", "size": 3, "topic_counts": None},
            # a data-driven group is labelled from a member's words: held to the k rule
            {"complaint_id": 101, "label": "Says nothing about my flight", "size": 4,
             "distinct_users": 2, "topic_counts": '{"51": 4}'},
        ]
    )  # fmt: skip
    view = build_report(inputs)
    by = {t.label: t.complaints for t in view.themes}
    assert by["billing and payments"] == [
        ("factually wrong", 25),
        ("does not answer the question", 12),
    ]
    assert by["account access"] == [
        ("does not answer the question", 28),
        ("a smaller group (its words hidden: fewer than 5 people)", 4),
    ]
    assert by["health"] == []
    html, md = render_html(view), render_markdown(view)
    assert "What went wrong: factually wrong (25); does not answer the question (12)" in text_of(
        html
    )
    assert (
        "- **billing and payments**: factually wrong (25); does not answer the question (12)" in md
    )
    assert "<script>" not in html and "my flight" not in html + md
    # Without user ids a group's people cannot be counted: its words stay hidden, said so.
    inputs.totals = {**inputs.totals, "n_with_user": 0}
    account = {t.label: t.complaints for t in build_report(inputs).themes}["account access"]
    assert account[1] == ("a group of its own (its words hidden: people cannot be counted)", 4)


def test_theme_level_regression_rows_are_named_by_their_theme():
    inputs = rd.with_themes(rd.story_inputs())
    base = inputs.regressions
    frame = pd.concat([base, rd.regression_rows().iloc[[0]]], ignore_index=True)
    frame.loc[len(base), "cluster_id"] = pd.NA  # a theme row: no subtopic, its theme's id
    frame["topic_id"] = pd.array([pd.NA] * len(base) + [50], dtype="Int64")
    inputs.regressions = frame
    view = build_report(inputs)
    assert any(
        f.sentence.startswith("assistant-v7 is worse on the theme “billing and payments”")
        for f in view.regressions
    )


def test_a_flagged_themes_flagged_subtopics_are_folded_under_it():
    # The 100k first day listed 18 subtopics of the SQL theme as rows beside the theme's own.
    inputs = rd.with_themes(rd.story_inputs())
    base = inputs.regressions
    frame = pd.concat([base, rd.regression_rows().iloc[[0]]], ignore_index=True)
    frame.loc[len(base), "cluster_id"] = pd.NA  # "billing and payments" itself is flagged
    frame["topic_id"] = pd.array([pd.NA] * len(base) + [50], dtype="Int64")
    inputs.regressions = frame
    view = build_report(inputs)
    folded = [f.topic for f in view.regressions if f.grouped]
    assert folded == [rd.INVOICE_LABEL]
    assert view.summary[0].startswith("assistant-v7 is worse on the theme “billing and payments”")
    (group,) = view.regression_groups
    assert group.title == "1 finding on subtopics of the theme “billing and payments”"
    assert group.summary == (
        "assistant-v7 is worse on 1 of its subtopics; the largest change is +17 points on "
        f"“{rd.INVOICE_LABEL}” (31% vs 14%, negative feedback)."
    )
    html, md = render_html(view), render_markdown(view)
    assert text_of(html).count(f"“{rd.INVOICE_LABEL}”") >= 1
    assert "<summary><strong>1 finding on subtopics of the theme “billing and payments”" in html
    assert "- **Worse:** 1 finding on subtopics of the theme “billing and payments”:" in md
    # No worse overall, the version's card names the theme, not the theme and its subtopic.
    mix = (frame["scope"] == "mix_adjusted") & (frame["metric"] == "negative_rate")
    frame.loc[mix, ["is_regression", "q_value"]] = [False, 0.4]
    card = {c.version: c for c in build_report(inputs).scorecards}["assistant-v7"]
    assert card.verdict_text.endswith(
        " Worse on the theme “billing and payments” (see Regressions)."
    )
    # Unflagged, the theme leaves its subtopic's row where it was.
    plain = build_report(rd.with_themes(rd.story_inputs()))
    assert not any(f.grouped for f in plain.regressions if f.metric != "latency_p95")
    assert plain.regression_groups == []


def test_a_theme_level_regression_ranks_its_theme_with_the_regressed_ones():
    inputs = rd.with_themes(rd.story_inputs())
    base = inputs.regressions
    frame = pd.concat([base, rd.regression_rows().iloc[[0]]], ignore_index=True)
    frame.loc[len(base), ["cluster_id", "is_regression"]] = [pd.NA, True]
    frame["topic_id"] = pd.array([pd.NA] * len(base) + [52], dtype="Int64")  # "health"
    inputs.regressions = frame
    order = [t.label for t in build_report(inputs).themes]
    assert order.index("health") < order.index("account access")  # next to billing's regression
    before = [t.label for t in build_report(rd.with_themes(rd.story_inputs())).themes]
    assert before.index("health") > before.index("account access")


def test_a_theme_of_one_subtopic_is_not_named_twice_in_the_markdown():
    inputs = rd.with_themes(rd.story_inputs())
    inputs.topics.loc[inputs.topics["topic_id"] == 50, "label"] = rd.INVOICE_LABEL
    md = render_markdown(build_report(inputs))
    assert f"| {rd.INVOICE_LABEL} |" in md  # the topics table: no "(theme: <the same>)"
    assert "| account access" not in md and "(theme: account access)" in md


def test_without_themes_the_page_has_no_theme_words(story):
    view, html, _ = story
    assert view.themes == [] and "Theme:" not in html


# ------------------------------------------------------------------ truth


def test_late_files_are_said_late_never_picked_up_by_a_sensor(story):
    view, html, md = story
    assert view.quality.late_files == [f"{rd.LANDED}/late-{rd.PAYLOADS[0]}.jsonl"]
    assert "feedback/feedback/" not in html and "feedback/feedback/" not in md
    assert "1 input file arrived late (written after the day's scheduled run)" in (
        view.quality.sentence
    )
    for text in (html, md):
        assert "sensor" not in text
    on_time = rd.story_inputs()
    on_time.files = on_time.files.assign(late=False)
    quiet = build_report(on_time)
    assert "late" not in quiet.quality.sentence and quiet.quality.late_files == []


def test_no_verdict_line_when_nothing_was_compared():
    inputs = rd.story_inputs()
    # What the regression stage writes when a version has nothing to be compared with.
    lonely = (
        rd.regression_rows()
        .iloc[[2]]
        .assign(
            candidate_version="solo-1",
            baseline_version=None,
            p_value=float("nan"),
            q_value=float("nan"),
            note="not compared: only model_version in the window",
        )
    )
    inputs.regressions = pd.concat([inputs.regressions, lonely], ignore_index=True)
    extra = inputs.by_version.iloc[[0]].assign(model_version="solo-1")
    inputs.by_version = pd.concat([inputs.by_version, extra], ignore_index=True)
    view = build_report(inputs)
    card = {c.version: c for c in view.scorecards}["solo-1"]
    assert (card.verdict, card.verdict_text) == ("untested", "")
    html, md = render_html(view), render_markdown(view)
    for text in (html, md):
        assert "Not tested against" not in text
        assert "(unknown version): not compared" not in text


def test_topic_status_is_the_one_the_clustering_wrote(story):
    inputs = rd.story_inputs()
    inputs.clusters = inputs.clusters.assign(status=[None, "split", "stable", "new", None, "faded"])
    view = build_report(inputs)
    by = {c.cluster_id: c for c in view.clusters}
    assert by[rd.INVOICE].status_text == ""  # nothing written: nothing shown, never "Stable"
    assert by[rd.HOSTILE].status_text == "Split"
    assert by[1].status_text == "Stable"
    html = render_html(view)
    card = html[html.index(f'data-cluster="{rd.INVOICE}"') :]
    card = card[: card.index("</h3>") + 200]
    assert "Stable" not in card


def test_people_without_user_ids_are_counted_as_conversations_and_said_so():
    view = build_report(rd.without_user_ids(rd.story_inputs()))
    html = render_html(view)
    volume = next(s for s in view.summary if "feedback events" in s)
    assert volume.startswith("560 feedback events in 640 conversations on 2 model versions")
    assert "from 0 people" not in html
    assert "no user ids" in view.people_note and "conversations" in view.people_note
    assert view.people_note in text_of(html)
    assert view.votes_note == "" and "side-by-side" not in html  # no votes here
    by = {c.cluster_id: c for c in view.clusters}
    # The k gate runs on distinct conversations: 500 in the invoice topic, 4 in the small one.
    assert by[rd.INVOICE].people_text == "500 conversations (no user ids)"
    assert len(by[rd.INVOICE].quotes) == 3
    assert by[rd.SMALL].quotes == []
    assert by[rd.SMALL].quotes_hidden == (
        "Quotes hidden to protect privacy: fewer than 5 conversations (no user ids) in this "
        "topic (4)."
    )
    assert "SECRET-SMALL-CLUSTER-QUOTE" not in html
    cards = {c.version: c for c in view.scorecards}
    assert cards[rd.CANDIDATE].users == "no user ids"


# ------------------------------------------------------------------ tuning counts


OLD_CARD = {  # main's shape: counts mixed JSONL files, Parquet-only rows and candidate cases
    "window": {"start": "2026-11-07", "end": "2026-11-20", "days": 14},
    "counts": {"sft": 30, "sft_validation": 4, "preference": 10, "preference_validation": 2,
               "eval": 8, "unpaired": 400, "candidates": 443},
    "splits": {"sft": {"train": 30, "validation": 4, "test": 8}, "preference": {"train": 10,
               "validation": 2}, "unpaired": {"train": 380, "validation": 20}, "eval": {"test": 8}},
}  # fmt: skip
NEW_CARD = {  # the exports branch's shape: root JSONL only, the rest under their own names
    "window": {"start": "2026-11-07", "end": "2026-11-20", "days": 14},
    "mode": {"export": "cumulative", "meaning": "..."},
    "export_mode": "cumulative",
    "counts": {"sft": 30, "sft_validation": 4, "preference": 10, "preference_validation": 2,
               "eval": 8},
    "parquet_rows": {"unpaired": {"train": 380, "validation": 20}, "preference": {"test": 1}},
    "splits": {"sft": {"train": 30, "validation": 4}, "preference": {"train": 10,
               "validation": 2, "test": 1}, "unpaired": {"train": 380, "validation": 20},
               "eval": {"test": 8}},
    "candidates": {"files": 3, "cases": 443},
}  # fmt: skip


@pytest.mark.parametrize(
    ("card", "expected"),
    [
        (OLD_CARD, {"sft": 34, "preference": 12, "eval": 8, "unpaired": 400, "candidates": 443}),
        (NEW_CARD, {"sft": 34, "preference": 13, "eval": 8, "unpaired": 400, "candidates": 443}),
        (
            {"counts": {"sft": 3, "eval": 1}, "parquet_rows": {"unpaired": {"train": 5}}},
            {"sft": 3, "eval": 1, "unpaired": 5},
        ),
        ({"counts": "garbage", "splits": [1, 2], "candidates": "x"}, {}),
    ],
)
def test_data_card_read_in_either_shape_without_double_counting(card, expected):
    totals, _ = card_sets(card)
    assert totals == expected


def _exports(card=None, tuning=None, kind="daily", feedback=None) -> tuple:
    inputs = ReportInputs(kind=kind, start=rd.END, end=rd.END, datacard=card, tuning=tuning)
    inputs.tuning_feedback = feedback or {}
    return build_exports(inputs), inputs


def test_exports_from_the_card_say_what_the_export_holds_never_a_sum():
    exports, _ = _exports(NEW_CARD)
    assert exports.scope == "the 14-day export (cumulative)"
    assert exports.new_counts is None  # a cumulative card cannot say what is new today
    assert exports.sentence.startswith(
        "The 14-day export (cumulative) holds 34 SFT examples, 13 preference pairs, 8 eval "
        "cases, 400 unpaired examples and 443 prompt-tuning candidates."
    )
    assert "1,074" not in exports.sentence and "898" not in exports.sentence
    incremental, _ = _exports({**NEW_CARD, "export_mode": "incremental", "mode": {}})
    assert incremental.new_counts == incremental.export_counts
    assert incremental.sentence.startswith("Exported today (incremental export")


def test_exports_from_the_warehouse_keep_today_and_the_window_apart():
    tuning = pd.DataFrame(
        [
            {"dataset": "preference", "split": "train", "n": 2000, "n_new": 150},
            {"dataset": "unpaired", "split": "train", "n": 3900, "n_new": 290},
            {"dataset": "unpaired", "split": "validation", "n": 100, "n_new": 10},
            {"dataset": "candidates", "split": None, "n": 377, "n_new": 20},
        ]
    )
    exports, inputs = _exports(
        NEW_CARD, tuning, feedback={"feedback_export": 4000, "feedback_new": 300}
    )
    assert exports.rows == [
        ("preference pairs", "150", "2,000", "train 2,000"),
        ("unpaired examples (liked or disliked answers)", "300", "4,000",
         "train 3,900 / validation 100"),
        ("prompt-tuning candidates", "20", "377", ""),
    ]  # fmt: skip
    assert exports.sentence.startswith(
        "New today in the export: 150 preference pairs, 300 unpaired examples and 20 "
        "prompt-tuning candidates, from 300 feedback events. The 14-day export (cumulative) "
        "holds 2,000 preference pairs, 4,000 unpaired examples and 377 prompt-tuning "
        "candidates, made from 4,000 feedback events."
    )
    assert "6,377" not in exports.sentence  # the sets are never added up
    inputs.kind = "weekly"
    assert build_exports(inputs).new_label == "new this week"


def test_summary_names_tuning_sets_apart(story):
    view, html, _ = story
    sentence = next(s for s in view.summary if s.startswith("Tuning export"))
    assert sentence.startswith(
        "Tuning export (the 14-day export): 34 SFT examples, 12 preference pairs and 8 eval cases"
    )
    assert "examples exported for tuning" not in html
    assert json.dumps(view.index_entry())  # the index entry stays JSON


# ------------------------------------------------------------------ what the warehouse holds


def _warehouse(with_new_columns: bool):
    """A warehouse with every table the report reads; optionally the columns still to land."""
    import duckdb

    from feedback_pipelines.schema import INGEST_DDL

    con = duckdb.connect()
    con.execute(INGEST_DDL)
    day = rd.END
    events = [
        (day - timedelta(days=d), f"f{d}-{i}", f"t{d}-{i}", None if i % 2 else f"s{i}", None,
         "thumbs_down" if i % 3 else "thumbs_up", i % 3 != 0, "rd-v2" if i % 2 else "rd-v1",
         f"question {i}", f"comment {i}")
        for d in range(0, 9) for i in range(12)
    ]  # fmt: skip
    con.executemany(
        "INSERT INTO feedback_events (ds, feedback_id, trace_id, session_id, user_id, kind, "
        "is_negative, model_version, request, comment) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        events,
    )
    regressions = rd.regression_rows().assign(ds=day)
    history, _ = rd.history_rows()
    history = history.rename(columns={"day": "ds"})
    frame = pd.concat([regressions, history], ignore_index=True)
    if with_new_columns:
        frame["flag_since"] = pd.NaT
        frame.loc[frame["ds"] == day, "flag_since"] = pd.Timestamp(day - timedelta(days=4))
        frame["topic_id"] = pd.array([pd.NA] * len(frame), dtype="Int64")
    con.register("r", frame)
    con.execute("CREATE TABLE version_regressions AS SELECT * FROM r")
    clusters = rd.cluster_rows()
    if with_new_columns:
        clusters = rd.with_themes(rd.sample_inputs()).clusters
    con.register("c", clusters)
    con.execute("CREATE TABLE feedback_clusters AS SELECT * FROM c")
    assignments = pd.DataFrame(
        {"ds": day, "feedback_id": [e[1] for e in events], "cluster_id": rd.INVOICE,
         "probability": 0.9}
    )  # fmt: skip
    con.register("a", assignments)
    con.execute("CREATE TABLE cluster_assignments AS SELECT * FROM a")
    if with_new_columns:
        topics = rd.with_themes(rd.sample_inputs()).topics
        con.register("t", topics)
        con.execute("CREATE TABLE feedback_topics AS SELECT * FROM t")
        con.execute(
            "CREATE TABLE complaint_clusters AS SELECT ?::DATE AS ds, 1 AS complaint_id, "
            "'charged twice for one invoice' AS label, 40 AS size UNION ALL "
            "SELECT ?::DATE, -1, 'noise', 99",
            [day, day],
        )
    return con


@pytest.mark.parametrize("with_new_columns", [False, True])
def test_load_reads_what_exists_and_lights_up_what_lands(with_new_columns, tmp_path):
    from feedback_pipelines.reporting.load import load_report_inputs

    con = _warehouse(with_new_columns)
    card = tmp_path / "exports" / f"dt={rd.END.isoformat()}" / "datacard.json"
    card.parent.mkdir(parents=True)
    card.write_text(json.dumps(NEW_CARD))
    inputs = load_report_inputs(con, "daily", rd.END, rd.END, data_dir=tmp_path)
    view = build_report(inputs)
    assert inputs.totals["n_with_user"] == 0 and inputs.totals["n_conversations"] == 12
    assert set(inputs.previous) == {"yesterday", "last week"}
    assert inputs.previous["yesterday"]["n_feedback"] == 12
    assert inputs.regression_days == [rd.END - timedelta(days=d) for d in (5, 3, 2, 1)]
    assert inputs.datacard == NEW_CARD  # the day's card, never summed over days
    invoice = next(f for f in view.regressions if f.topic == rd.INVOICE_LABEL)
    quotes = {c.cluster_id: c for c in view.clusters}[rd.INVOICE].quotes
    assert quotes and all(q.command.startswith("feedback-pipelines session f") for q in quotes)
    if with_new_columns:
        assert invoice.since == "day 5, since Mon 16 Nov"  # the stage's flag_since
        assert view.themes and invoice.theme == "billing and payments"
        assert view.complaints == [("charged twice for one invoice", 40)]
        assert "charged twice for one invoice" in render_html(view)
    else:
        assert invoice.since == "day 3, since Wed 18 Nov"  # derived from earlier days
        assert inputs.topics is None and inputs.complaints is None
        assert view.themes == [] and view.complaints == []


def test_version_cards_go_newest_release_first_whatever_the_volume():
    # Release day: the new version has a tenth of its baseline's feedback so far.
    inputs = rd.story_inputs()
    bv = inputs.by_version
    inputs.by_version = bv.assign(
        n_feedback=[10 if v == rd.CANDIDATE else 1000 for v in bv["model_version"]]
    )
    order = [c.version for c in build_report(inputs).scorecards]
    assert order.index(rd.CANDIDATE) < order.index(rd.BASELINE)
    assert order[0] == rd.CANDIDATE
    # With no comparison to say which is newer, the busiest goes first.
    inputs.regressions = None
    order = [c.version for c in build_report(inputs).scorecards]
    assert order.index(rd.BASELINE) < order.index(rd.CANDIDATE)


def test_a_regression_on_a_topic_that_has_faded_is_named_by_its_last_label():
    # A release's verdict counts each event under its own day's topic, so a flag can outlive
    # the topic: today's tables no longer have it ("theme #0" in LLMFAO's report).
    from feedback_pipelines.reporting.load import load_report_inputs

    con = _warehouse(True)
    day, before = rd.END, rd.END - timedelta(days=3)
    rows = con.execute("SELECT * FROM version_regressions WHERE ds = ? AND is_regression",
                       [day]).df().head(1)  # fmt: skip
    gone = pd.concat([rows.assign(cluster_id=77, topic_id=pd.NA),
                      rows.assign(cluster_id=pd.NA, topic_id=99)])  # fmt: skip
    con.register("g", gone)
    con.execute("INSERT INTO version_regressions BY NAME SELECT * FROM g")
    con.execute(
        "INSERT INTO feedback_clusters (ds, cluster_id, label) VALUES (?, 77, 'refund delays'), "
        "(?, 77, 'late refunds')", [before - timedelta(days=1), before]
    )  # fmt: skip
    con.execute("INSERT INTO feedback_topics (ds, topic_id, label) VALUES (?, 99, 'payments')",
                [before])  # fmt: skip
    view = build_report(load_report_inputs(con, "daily", day, day))
    words = " ".join(f.sentence for f in view.regressions)
    assert "on “late refunds (faded)”" in words  # the last label, not an earlier one
    assert "on the theme “payments (faded)”" in words
    assert "theme #" not in words and "topic #" not in words


def test_a_flag_that_todays_numbers_no_longer_confirm_is_worded_so():
    # A flag stays raised until its confidence sequence rules the change out; today's q can
    # drift back to 1.00 meanwhile (LLMFAO's "luminous-base is better overall: 41% negative vs
    # 42% (q = 1.00, no evidence of a change)").
    inputs = rd.story_inputs()
    view = build_report(inputs)
    mix = next(f for f in view.regressions if f.scope == "mix_adjusted")
    assert f"{rd.CANDIDATE} is worse overall" in mix.sentence and "confirm" not in mix.sentence
    assert {c.version: c for c in view.scorecards}[rd.CANDIDATE].confirmed
    regressions = inputs.regressions.copy()
    regressions.loc[regressions["scope"] == "mix_adjusted", "q_value"] = 1.0
    # An always-valid row counts the release's days, not the card's period: its verdict says so.
    regressions["release_day"] = pd.Timestamp(rd.END - timedelta(days=4))
    inputs.regressions = regressions
    view = build_report(inputs)
    mix = next(f for f in view.regressions if f.scope == "mix_adjusted")
    assert mix.sentence.startswith(
        f"{rd.CANDIDATE} was flagged as worse overall, and today's numbers no longer confirm it: "
    )
    assert "(q = 1.00, no evidence of a change)" in mix.sentence
    card = {c.version: c for c in view.scorecards}[rd.CANDIDATE]
    released = (rd.END - timedelta(days=4)).strftime("%a %-d %b")
    assert card.verdict_text.startswith(
        f"Flagged worse than {rd.BASELINE} since its release ({released}), not confirmed today: "
    )
    assert card.verdict == "worse" and not card.confirmed
    assert '<span class="chip worse">worse, not confirmed</span>' in render_html(view)


def test_a_version_not_compared_says_why_on_its_card():
    # LLMFAO's mythalion-13b: its baseline had no feedback in the window, and its card's
    # verdict was blank (an always-valid latency row hid the rate's window row).
    inputs = rd.story_inputs()
    frame = inputs.regressions.copy()
    mix = (frame["scope"] == "mix_adjusted") & (frame["metric"] == "negative_rate")
    frame.loc[mix, ["p_value", "q_value", "is_regression"]] = [float("nan"), float("nan"), False]
    frame.loc[mix, "note"] = "stratified by cluster; not tested: no cluster has both versions"
    latency = frame[frame["metric"] == "latency_p95"].head(1).assign(test="always_valid")
    inputs.regressions = pd.concat([frame, latency], ignore_index=True)
    card = {c.version: c for c in build_report(inputs).scorecards}[rd.CANDIDATE]
    assert card.verdict == "untested"
    assert card.verdict_text == f"Not compared with {rd.BASELINE}: no topic has both versions."
    frame.loc[mix, "note"] = "not tested: baseline has 3 events < min 30"
    inputs.regressions = frame
    card = {c.version: c for c in build_report(inputs).scorecards}[rd.CANDIDATE]
    needed = "baseline has 3 events (30 needed)"
    assert card.verdict_text == f"Not compared with {rd.BASELINE}: {needed}."
    frame.loc[mix, "note"] = "always-valid; not tested: n=20/28 < min 30 per side"  # LAMP
    card = {c.version: c for c in build_report(inputs).scorecards}[rd.CANDIDATE]
    needed = "20 and 28 events (30 needed on each side)"
    assert card.verdict_text == f"Not compared with {rd.BASELINE}: {needed}."


def test_what_went_wrong_per_theme_is_one_markdown_line_per_theme():
    # OASST's report ran two themes into one line ("...unsafe or rude (1)- **ai, ...").
    view = build_report(rd.with_themes(rd.story_inputs()))
    assert len(view.themes) >= 2
    view.themes[0].complaints = [("factually wrong", 3), ("too long", 1)]
    view.themes[1].complaints = [("unsafe or rude", 2)]
    lines = render_markdown(view).splitlines()
    first, second = (f"- **{t.label}**: " for t in view.themes[:2])
    assert f"{first}factually wrong (3); too long (1)" in lines
    assert f"{second}unsafe or rude (2)" in lines


def test_many_versions_get_cards_for_the_flagged_ones_and_a_table_for_all():
    # LLMFAO: 59 versions, 59 cards, over half the page.
    from feedback_pipelines.reporting.views import ReportSettings

    inputs = rd.story_inputs()
    view = build_report(inputs, ReportSettings(max_version_cards=1))
    versions = [c.version for c in view.scorecards]
    assert len(versions) >= 2
    assert [c.version for c in view.version_cards] == [rd.CANDIDATE]  # the flagged one
    html = render_html(view)
    assert html.count('class="card scorecard"') == 1
    table = html[html.index('<details class="all-versions">') :]
    table = table[: table.index("</details>")]
    assert f"All {len(versions)} versions" in table
    assert all(f"<td>{v}</td>" in table for v in versions)
    default = render_html(build_report(inputs))
    assert default.count('class="card scorecard"') == len(versions)
    assert "all-versions" not in default
