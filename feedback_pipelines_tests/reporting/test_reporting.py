"""The review report: view-model, escaping, k-anonymity of quotes, no remote URLs, empty days,
and the Dagster asset on a real warehouse (daily, Monday weekly roll-up, index, metadata)."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from html.parser import HTMLParser
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from feedback_pipelines.formatting import fmt_pct_interval, q_words
from feedback_pipelines.privacy import find_pii
from feedback_pipelines.reporting import charts
from feedback_pipelines.reporting.build import build_report
from feedback_pipelines.reporting.render import (
    CONTENT_SECURITY_POLICY,
    md_text,
    read_index_entries,
    rebuild_index,
    render_html,
    render_markdown,
    write_report,
)
from feedback_pipelines.reporting.views import NOT_COMPUTED, ReportInputs, ReportSettings
from feedback_pipelines_tests.fixtures import reporting as rd
from feedback_pipelines_tests.fixtures.landing import feedback, trace, write

SECTIONS = ("summary", "versions", "regressions", "topics", "actions", "quality")
# Every element the templates and charts emit; anything else came from user text.
ALLOWED_TAGS = {
    "html", "head", "meta", "title", "style", "body", "header", "div", "h1", "h2", "h3", "nav",
    "a", "main", "section", "p", "ul", "ol", "li", "span", "figure", "figcaption", "svg", "line",
    "polyline", "polygon", "circle", "rect", "text", "strong", "dl", "dt", "dd", "table", "thead",
    "tbody", "tr", "th", "td", "blockquote", "footer", "details", "summary", "code", "caption",
}  # fmt: skip


class _Collector(HTMLParser):
    """Every start tag with its attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags_of(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Collector()
    parser.feed(html)
    return parser.tags


def visible_text(html: str) -> str:
    text = re.sub(r"<style.*?</style>", " ", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", text)


@pytest.fixture(scope="module")
def daily():
    view = build_report(rd.sample_inputs())
    return view, render_html(view), render_markdown(view)


# ------------------------------------------------------------------ view-model


def test_summary_names_the_planted_regression_first(daily):
    view, html, md = daily
    first = view.summary[0]
    assert first.startswith(f"{rd.CANDIDATE} is worse on “{rd.INVOICE_LABEL}”")
    assert "31% negative vs 14% on assistant-v6" in first
    assert "q < 0.001, very likely real" in first
    assert view.headline == first[:-1] + "; 2 more regressions."
    # The headline is the page's lead and the Markdown's bold line.
    assert "assistant-v7 is worse on “invoice, billing, refund”: 31% negative vs 14%" in html
    assert f"**{md_text(first)}**" in md


def test_findings_carry_effect_interval_and_q_in_words(daily):
    view, _, _ = daily
    worse = {(f.topic, f.metric): f for f in view.regressions}
    invoice = worse[(rd.INVOICE_LABEL, "negative_rate")]
    assert (invoice.effect, invoice.interval) == ("+17 points", "+12 to +22 points")
    assert (invoice.q_text, invoice.confidence) == ("q < 0.001", "very likely real")
    latency = worse[("", "latency_p95")]
    assert latency.sentence.startswith("assistant-v7 is slower overall: p95 latency 2.4 s vs 1.8 s")
    # The unadjusted overall row is reference only and not listed; the mix-adjusted one is.
    assert sum(1 for f in view.regressions if f.metric == "negative_rate" and not f.topic) == 1
    assert [f.metric for f in view.improvements] == ["abandonment_rate"]
    assert len(view.regressions) == 3


def test_a_mix_adjusted_finding_says_so_and_gives_the_rates_as_measured():
    # Weighted to one topic mix, a version can be worse topic for topic while its own rate,
    # the one the versions table shows, is the same: the 100k first day's report said "19%
    # negative vs 15%" overall beside a table of 16% and 16%, and did not say why.
    inputs = rd.sample_inputs()
    rows = inputs.regressions
    mix = (rows["scope"] == "mix_adjusted") & (rows["metric"] == "negative_rate")
    rows.loc[mix, ["x_candidate", "x_baseline"]] = [496, 560]  # 16% of 3,100 and of 3,500
    view = build_report(inputs)
    (overall,) = [f for f in view.regressions if f.scope == "mix_adjusted"]
    assert overall.sentence == (
        "assistant-v7 is worse overall: 21% negative vs 16% on assistant-v6 "
        "on the same mix of topics, 16% vs 16% as measured (q = 0.002, likely real)."
    )
    assert overall.sentence[:-1] + " — new today." in view.summary
    cards = {c.version: c for c in view.scorecards}
    assert cards[rd.CANDIDATE].verdict_text == (
        "Worse than assistant-v6: +5.0 points negative, topic for topic (q = 0.002, likely real)."
    )
    assert "on the same mix of topics, 16% vs 16% as measured" in visible_text(render_html(view))
    # Measured rates that read as the adjusted ones are not repeated.
    rows.loc[mix, ["x_candidate", "x_baseline"]] = [651, 560]  # 21% and 16%
    (overall,) = [f for f in build_report(inputs).regressions if f.scope == "mix_adjusted"]
    assert overall.mix == "on the same mix of topics"


def test_a_version_worse_only_on_a_topic_says_so_on_its_card():
    # The demo's last day: its headline named nimbus-2026-11 worse on a theme, and its card
    # said "no clear change" (overall, rightly) and nothing else.
    inputs = rd.sample_inputs()
    rows = inputs.regressions
    overall = (rows["scope"] == "mix_adjusted") & (rows["metric"] == "negative_rate")
    rows.loc[overall, ["is_regression", "q_value"]] = [False, 0.4]
    view = build_report(inputs)
    card = {c.version: c for c in view.scorecards}[rd.CANDIDATE]
    assert card.verdict == "topics"
    assert card.verdict_text == (
        "No clear change overall vs assistant-v6, topic for topic (+5.0 points, q = 0.40). "
        f"Worse on “{rd.INVOICE_LABEL}” (see Regressions)."
    )
    html = render_html(view)
    assert '<span class="chip topics">worse on a topic</span>' in html
    assert "Worse on “" + rd.INVOICE_LABEL in render_markdown(view).replace("\\", "")


def test_scorecards_have_intervals_and_verdicts(daily):
    view, _, _ = daily
    cards = {c.version: c for c in view.scorecards}
    assert cards[rd.CANDIDATE].verdict == "worse"
    assert cards[rd.BASELINE].verdict == "baseline"
    assert re.fullmatch(r"\d+% \(\d+–\d+%\)", cards[rd.CANDIDATE].negative)
    assert cards[rd.CANDIDATE].latency == "800 ms median · 2.4 s p95"
    assert "(unknown version)" in cards


def test_number_formats():
    assert fmt_pct_interval(0.31, 0.27, 0.35) == "31% (27–35%)"
    assert fmt_pct_interval(0.042, 0.031, 0.055) == "4.2% (3.1–5.5%)"
    assert q_words(0.0004) == ("q < 0.001", "very likely real")
    assert q_words(0.004) == ("q = 0.004", "likely real")
    assert q_words(0.03) == ("q = 0.03", "probably real")
    assert q_words(0.5)[1] == "no evidence of a change"
    assert q_words(None)[0] == "not tested"


def test_quotes_only_for_clusters_of_at_least_k_people(daily):
    view, html, md = daily
    by_id = {c.cluster_id: c for c in view.clusters}
    small = by_id[rd.SMALL]
    assert small.users == 3 and small.quotes == []
    assert "fewer than 5 people" in small.quotes_hidden
    assert len(by_id[rd.INVOICE].quotes) == 3  # at most three, of four stored
    for text in (html, md):
        assert "SECRET-SMALL-CLUSTER-QUOTE" not in text
        assert "Fourth quote" not in text
    # A small topic is not named in the summary either (its label alone could point at people).
    assert not any("rare medical question" in s for s in view.summary)
    # The threshold is a setting: lowered to 3 the quote shows, raised above every cluster none do.
    low = build_report(rd.sample_inputs(), ReportSettings(min_users_for_quotes=3))
    assert "SECRET-SMALL-CLUSTER-QUOTE" in render_html(low)
    high = build_report(rd.sample_inputs(), ReportSettings(min_users_for_quotes=10_000))
    assert all(not c.quotes for c in high.clusters)
    assert "The invoice total is wrong" not in render_html(high)


def test_unknown_user_count_hides_quotes():
    inputs = rd.sample_inputs()
    inputs.clusters = inputs.clusters.drop(columns=["distinct_users"])
    view = build_report(inputs)
    assert all(not c.quotes for c in view.clusters)
    assert "The invoice total is wrong" not in render_html(view)


def test_faded_topics_are_listed_without_quotes(daily):
    view, html, _ = daily
    assert [c.label for c in view.faded] == ["old outage complaints"]
    assert "FADED-QUOTE" not in html


# ------------------------------------------------------------------ safety of the output


def test_no_planted_pii_in_html_or_markdown(daily):
    _, html, md = daily
    for text in (html, md):
        for pii in rd.PII:
            assert pii not in text
        assert find_pii([visible_text(text)]) == []
    assert "&lt;EMAIL&gt;" in html  # redacted in place, and escaped


def test_payloads_are_escaped_text_never_markup(daily):
    _, html, _ = daily
    tags = tags_of(html)
    assert {t for t, _ in tags} <= ALLOWED_TAGS
    for tag, attrs in tags:
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
    assert not re.search(r"<\s*(script|img|iframe|object|embed)\b", html, re.I)
    # The payloads are shown, as text.
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=" in html


def test_no_remote_url_in_any_src_or_href(daily):
    _, html, _ = daily
    refs = [v for _, attrs in tags_of(html) for k, v in attrs.items() if k in ("src", "href")]
    assert refs, "the page has local links (index, exports, review)"
    for ref in refs:
        assert ref is not None
        assert not re.match(r"^\s*([a-z][a-z0-9+.\-]*:|//)", ref, re.I), ref
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    csp = [
        a["content"] for t, a in tags_of(html) if a.get("http-equiv") == "Content-Security-Policy"
    ]
    assert csp == [CONTENT_SECURITY_POLICY]
    assert "script-src" not in CONTENT_SECURITY_POLICY and "default-src 'none'" in (
        CONTENT_SECURITY_POLICY
    )
    assert "@import" not in html and "url(" not in html


def test_markdown_is_inert(daily):
    from markdown_it import MarkdownIt  # dagster's own dependency (via rich)

    view, _, md = daily
    assert "https://" not in md and "https[:]//evil.example.com" in md
    assert md_text("[x](javascript:alert(1)) *b* <i> q < 0.001") == (
        "\\[x\\](javascript:alert(1)) \\*b\\* \\<i> q < 0.001"
    )
    # Rendered by a real CommonMark renderer with raw HTML allowed, as a chat tool might: no
    # element comes from user text, no link at all, and the payloads are visible text.
    from feedback_pipelines.reporting.render import summary_markdown

    renderer = MarkdownIt("commonmark", {"html": True}).enable("table")
    for text in (md, summary_markdown(view, "/data/reports/dt=2026-11-20/report.html")):
        rendered = renderer.render(text)
        assert {t for t, _ in tags_of(rendered)} <= {
            "h1", "h2", "p", "ul", "li", "strong", "em", "table", "thead", "tbody", "tr", "th",
            "td", "blockquote", "code",
        }  # fmt: skip
        assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in rendered


def test_charts_escape_their_text():
    name = "<script>window.__pwned=1</script>"
    svg = charts.trend_chart(
        [date(2026, 11, 19), date(2026, 11, 20)],
        [charts.TrendSeries(name, [0.1, 0.2], [0.05, 0.1], [0.2, 0.3])],
        title=name,
    )
    bars = charts.bar_chart([(name, 3.0)], title=name)
    for out in (svg, bars, charts.sparkline([1, 2, None, 3], title=name)):
        assert "<script" not in str(out) and "&lt;script&gt;" in str(out)
        assert str(out).startswith("<svg") and str(out).endswith("</svg>")


def test_every_section_is_in_the_page(daily):
    _, html, md = daily
    for section in SECTIONS:
        assert f'id="{section}"' in html
    for heading in ("## Model versions", "## Regressions", "## Top topics", "## Tuning and review",
                    "## Data quality"):  # fmt: skip
        assert heading in md


# ------------------------------------------------------------------ empty and missing


def test_a_day_without_feedback_says_so():
    view = build_report(rd.empty_inputs())
    html, md = render_html(view), render_markdown(view)
    assert not view.has_data
    assert view.headline == "No feedback for this day."
    assert "No feedback for this day" in html and "No feedback for this day" in md
    for section in SECTIONS:
        assert f'id="{section}"' in html


def test_stages_not_run_yet_say_not_computed():
    inputs = ReportInputs(kind="daily", start=rd.END, end=rd.END, totals={"n_feedback": 3})
    inputs.by_version = pd.DataFrame(
        [{"model_version": "m1", "n_feedback": 3, "n_negative": 1, "n_corrections": 0,
          "n_users": 2}]
    )  # fmt: skip
    view = build_report(inputs)
    html = render_html(view)
    for message in ("Regression tests: ", "Topics (clusters): ", "Tuning exports: ",
                    "Review queue: "):  # fmt: skip
        assert f"{message}{NOT_COMPUTED}." in html
    assert view.scorecards[0].latency == NOT_COMPUTED


# ------------------------------------------------------------------ files and index


def test_a_crash_while_writing_leaves_the_previous_report_set_whole(tmp_path, monkeypatch):
    import stat

    from feedback_pipelines.reporting import render

    reports = tmp_path / "reports"
    first = write_report(build_report(rd.sample_inputs()), reports)
    before = {p.name: p.read_bytes() for p in first.html.parent.iterdir()}
    assert set(before) == {"report.html", "report.md", "report.json"}
    assert all(stat.S_IMODE(p.stat().st_mode) & 0o044 for p in first.html.parent.iterdir())

    def crash(view):
        raise KeyboardInterrupt  # the process is stopped while the Markdown is rendered

    monkeypatch.setattr(render, "render_markdown", crash)
    inputs = rd.sample_inputs()
    inputs.totals["n_feedback"] = 1
    with pytest.raises(KeyboardInterrupt):
        write_report(build_report(inputs), reports)
    after = {p.name: p.read_bytes() for p in first.html.parent.iterdir()}
    assert after == before  # the day's html, md and json are still the same set
    assert [e["key"] for e in read_index_entries(reports)] == [first.html.parent.name]


def test_index_lists_every_report_newest_first(tmp_path: Path):
    reports = tmp_path / "reports"
    for days_back in (2, 0, 1):
        inputs = rd.sample_inputs()
        inputs.start = inputs.end = rd.END - timedelta(days=days_back)
        write_report(build_report(inputs), reports)
    weekly = build_report(rd.sample_inputs("weekly"))
    write_report(weekly, reports)
    empty = rd.empty_inputs()
    empty.start = empty.end = date(2026, 11, 21)
    write_report(build_report(empty), reports)
    index = rebuild_index(reports).read_text()
    keys = [e["key"] for e in read_index_entries(reports)]
    assert keys == ["dt=2026-11-21", "week=2026-W47", "dt=2026-11-20", "dt=2026-11-19",
                    "dt=2026-11-18"]  # fmt: skip
    hrefs = [a["href"] for t, a in tags_of(index) if t == "a"]
    assert hrefs.index("week=2026-W47/report.html") < hrefs.index("dt=2026-11-20/report.html")
    assert hrefs.index("dt=2026-11-20/report.html") < hrefs.index("dt=2026-11-18/report.html")
    assert "No feedback for this day." in index
    assert "assistant-v7 is worse on “invoice, billing, refund”" in index
    entry = json.loads((reports / "dt=2026-11-20" / "report.json").read_text())
    assert entry["regressions"] == 3 and entry["kind"] == "daily"


# ------------------------------------------------------------------ the Dagster asset


MONDAY = "2026-11-16"


def _materialize(assets, ds: str) -> dg.ExecuteInProcessResult:
    from feedback_pipelines.resources.settings import PipelineConfig
    from feedback_pipelines.resources.warehouse import WarehouseResource

    return dg.materialize(
        assets,
        partition_key=ds,
        resources={"settings": PipelineConfig(), "warehouse": WarehouseResource()},
        raise_on_error=False,
    )


def test_asset_writes_daily_weekly_and_index_from_the_warehouse(pipeline_env):
    from feedback_pipelines.defs.ingest import landing_ingest
    from feedback_pipelines.defs.reporting import review_report

    env = pipeline_env
    for ds in ("2026-11-15", MONDAY):
        traces = [
            trace(f"{ds}-t{i}", session=f"s{i}", ts=f"{ds}T09:0{i % 10}:00Z",
                  model_version="nimbus-1" if i % 2 else "nimbus-2", user_id=f"user-{i}")
            for i in range(12)
        ]  # fmt: skip
        events = [
            feedback(f"{ds}-f{i}", f"{ds}-t{i}", kind="thumbs_down" if i % 3 else "thumbs_up",
                     timestamp=f"{ds}T09:3{i % 10}:00Z", user_id=f"user-{i}",
                     comment=f"{rd.PAYLOADS[0]} mail me at {rd.PII[0]}")
            for i in range(12)
        ]  # fmt: skip
        write(env, "traces", ds, "part-0.jsonl", traces)
        write(env, "feedback", ds, "part-0.jsonl", [*events, "{not json"])
    # The downstream stages' tables, as they will be written (real DuckDB types: lists, dates).
    con = env.connect(read_only=False)
    try:
        from feedback_pipelines.schema import INGEST_DDL

        con.execute(INGEST_DDL)
        regressions = rd.regression_rows().assign(window_end=date.fromisoformat(MONDAY))
        clusters = rd.cluster_rows().assign(ds=date.fromisoformat(MONDAY))
        con.register("r", regressions)
        con.register("c", clusters)
        con.execute("CREATE TABLE version_regressions AS SELECT * FROM r")
        con.execute("CREATE TABLE feedback_clusters AS SELECT * FROM c")
    finally:
        con.close()
    for ds in ("2026-11-15", MONDAY):
        assert _materialize([landing_ingest], ds).success
    result = _materialize([review_report], MONDAY)
    assert result.success
    reports = env.data / "reports"
    daily_html = (reports / f"dt={MONDAY}" / "report.html").read_text()
    weekly_html = (reports / "week=2026-W46" / "report.html").read_text()
    assert (reports / f"dt={MONDAY}" / "report.md").exists()
    assert "assistant-v7 is worse on “invoice, billing, refund”" in daily_html
    assert "12 feedback events from 12 people on 2 model versions" in daily_html
    assert "Mon 9 Nov – Sun 15 Nov 2026 (week 46)" in weekly_html
    assert "12 feedback events" in weekly_html  # only the Sunday of that week had data
    for html in (daily_html, weekly_html):
        assert rd.PII[0] not in html and "<script" not in html.lower()
    assert "1 input line could not be loaded" in daily_html
    assert f"Review queue: {NOT_COMPUTED}." in daily_html
    index = (reports / "index.html").read_text()
    assert f"dt={MONDAY}/report.html" in index and "week=2026-W46/report.html" in index

    mat = result.asset_materializations_for_node("review_report")[0]
    meta = mat.metadata
    assert meta["path"].value == str(reports / f"dt={MONDAY}" / "report.html")
    assert "assistant-v7 is worse" in meta["summary"].value
    assert meta["weekly_path"].value.endswith("week=2026-W46/report.html")
    checks = result.get_asset_check_evaluations()
    assert [(c.check_name, c.passed) for c in checks] == [("report_is_inert", True)]


def test_asset_on_an_empty_day_writes_a_clear_report(pipeline_env):
    from feedback_pipelines.defs.reporting import review_report

    result = _materialize([review_report], "2026-11-18")
    assert result.success
    html = (pipeline_env.data / "reports" / "dt=2026-11-18" / "report.html").read_text()
    assert "No feedback for this day" in html
    assert html.count(NOT_COMPUTED) >= 4  # nothing upstream exists in a fresh warehouse
    assert not (pipeline_env.data / "reports" / "week=2026-W47").exists()  # not a Monday
    # A Monday with no feedback on or before its week: no roll-up page of nothing (the demo's
    # first Monday wrote "No feedback for this week" for the week before its data began).
    monday = _materialize([review_report], "2026-11-23")
    assert monday.success
    assert (pipeline_env.data / "reports" / "dt=2026-11-23" / "report.html").exists()
    assert not (pipeline_env.data / "reports" / "week=2026-W47").exists()
    meta = monday.asset_materializations_for_node("review_report")[0].metadata
    assert meta["weekly_skipped"].value == "no feedback on or before 2026-11-22"
    assert "weekly_path" not in meta


# ------------------------------------------------------------------ on generated data


def _oracle_clusters(conn, truth: dict, end: date, window_start: date) -> None:
    """cluster_assignments + feedback_clusters from the generator's own topics (an oracle).

    The report is tested against the real regression stage on generated data without waiting on
    the clustering stage: each event's cluster is its true topic, labelled as the truth labels
    it. Quotes are the topic's stored (redacted) comments, payload-bearing ones first (and the
    most typical, so the report's own choice of quotes picks them too).
    """
    topics = [t["name"] for t in truth["topics"]] + [truth["new_topic"]["name"]]
    labels = {t["name"]: t.get("label", t["name"]) for t in truth["topics"]}
    labels.setdefault(truth["new_topic"]["name"], truth["new_topic"]["name"].replace("_", " "))
    mapping = pd.DataFrame(
        [(fid, topics.index(topic)) for fid, topic in truth["feedback_topic"].items()
         if topic in topics],
        columns=["feedback_id", "cluster_id"],
    )  # fmt: skip
    conn.register("oracle", mapping)
    conn.execute(
        # Payload-bearing comments are made the most typical, so they are the quotes shown.
        "CREATE OR REPLACE TABLE cluster_assignments AS SELECT ?::DATE AS ds, f.feedback_id, "
        "o.cluster_id, CASE WHEN f.comment LIKE '%pwned%' THEN 1.0 ELSE 0.5 END AS probability "
        "FROM feedback_events f JOIN oracle o USING (feedback_id) WHERE f.ds BETWEEN ? AND ?",
        [end, window_start, end],
    )
    stats = conn.execute(
        "SELECT a.cluster_id, count(*) AS size, count(DISTINCT f.user_id) AS distinct_users, "
        "avg(f.is_negative::INT) AS negative_rate, min(f.ds) AS first_seen, "
        "max(f.ds) AS last_seen, "
        "list(f.comment ORDER BY f.comment LIKE '%pwned%' DESC, length(f.comment), f.feedback_id) "
        "FILTER (WHERE f.comment IS NOT NULL)[1:4] AS quotes "
        "FROM cluster_assignments a JOIN feedback_events f USING (feedback_id) GROUP BY 1"
    ).df()
    stats["label"] = [labels[topics[c]] for c in stats["cluster_id"]]
    stats["keyphrases"] = [labels[topics[c]].lower().split()[:3] for c in stats["cluster_id"]]
    stats["status"] = ["new" if topics[c] == truth["new_topic"]["name"] else "stable"
                       for c in stats["cluster_id"]]  # fmt: skip
    stats["growth"] = 0.0
    stats["ds"] = end
    conn.register("clusters_df", stats)
    conn.execute("CREATE OR REPLACE TABLE feedback_clusters AS SELECT * FROM clusters_df")


def test_report_on_generated_week_names_the_planted_regression(
    ingested_week, tmp_path, monkeypatch
):
    import shutil

    from feedback_pipelines.defs.regressions import version_metrics, version_regressions
    from feedback_pipelines.defs.reporting import review_report
    from feedback_pipelines_tests.fixtures.pipeline import WEEK_DAYS, WEEK_END, make_env

    source, truth = ingested_week
    env = make_env(tmp_path, monkeypatch)
    shutil.rmtree(env.data)
    shutil.copytree(source.data, env.data)
    con = env.connect(read_only=False)
    try:
        _oracle_clusters(con, truth, WEEK_END, WEEK_END - timedelta(days=WEEK_DAYS - 1))
    finally:
        con.close()
    result = _materialize(
        [version_metrics, version_regressions, review_report], WEEK_END.isoformat()
    )
    assert result.success
    folder = env.data / "reports" / f"dt={WEEK_END.isoformat()}"
    html, md = (folder / "report.html").read_text(), (folder / "report.md").read_text()
    labels = {t["name"]: t.get("label", t["name"]) for t in truth["topics"]}
    planted = truth["expected_regressions"]
    assert planted
    entry = json.loads((folder / "report.json").read_text())
    for expected in planted:
        sentence = f"{expected['candidate']} is worse on “{labels[expected['topic']]}”"
        assert sentence in html and sentence in md
    # The headline (first sentence, index and Dagster metadata) names a planted regression.
    assert any(f"{e['candidate']} is worse on “{labels[e['topic']]}”" in entry["headline"]
               for e in planted)  # fmt: skip
    for text in (html, md):
        for pii in truth["pii"]:
            assert pii not in text
    assert "<script" not in html.lower()
    assert not re.search(r"(?<!\\)<[A-Za-z/!?]", md)  # every `<` of user text is escaped
    # Payloads from the generated comments reach the page, as escaped text.
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html
