"""The report in a real browser: headless Chromium (Debian's package), network features off.

One browser serves every test of the module (DevTools protocol over a pipe, see chromium.py).
It asserts what a reader would notice: the page renders with no console error, every section is
there, the charts are visible SVG, printing works, and no planted script payload runs, neither
with the page's Content-Security-Policy nor with it stripped (so escaping alone is tested too).
A positive control shows the payload detector does fire on a page that really runs the payload.
Screenshots (desktop and phone) are saved in the test's tmp dir.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from feedback_pipelines.reporting.build import build_report
from feedback_pipelines.reporting.render import rebuild_index, write_report
from feedback_pipelines_tests.fixtures import reporting as rd
from feedback_pipelines_tests.fixtures.chromium import Chromium, chromium_path

pytestmark = [pytest.mark.chromium]

SECTIONS = ("summary", "versions", "regressions", "topics", "actions", "quality")

# Each visible chart: an <svg class="chart"> with a size, shown, with drawn marks in it.
CHARTS_JS = """
JSON.stringify([...document.querySelectorAll('svg.chart')].map(svg => {
  const r = svg.getBoundingClientRect(), s = getComputedStyle(svg);
  return {cls: svg.getAttribute('class'), w: r.width, h: r.height, display: s.display,
          visibility: s.visibility,
          marks: svg.querySelectorAll('polyline,polygon,circle,rect,line').length,
          title: (svg.querySelector('title') || {}).textContent || ''};
}))
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    assert chromium_path(), "chromium missing: run scripts/system-deps.sh (make test does)"
    with Chromium(timeout=30) as chrome:
        chrome.open_page(1280, 900)
        yield chrome


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    reports = tmp_path_factory.mktemp("browser") / "reports"
    daily = write_report(build_report(rd.sample_inputs()), reports).html
    weekly = write_report(build_report(rd.sample_inputs("weekly")), reports).html
    empty_inputs = rd.empty_inputs()
    empty_inputs.start = empty_inputs.end = rd.END.replace(day=21)
    empty = write_report(build_report(empty_inputs), reports).html
    story = rd.story_inputs()
    story.start = story.end = rd.END.replace(day=19)
    story.regressions = pd.concat(
        [story.regressions, rd.latency_topic_rows(14, "better")], ignore_index=True
    )
    folded = write_report(build_report(story), reports).html
    # Flagged for days since a release: the longest "since" words a finding gets.
    flagged = rd.sample_inputs()
    flagged.regressions = flagged.regressions.assign(
        flag_since=rd.END - timedelta(days=2), release_day=rd.END - timedelta(days=4)
    )
    since = write_report(build_report(flagged), tmp_path_factory.mktemp("flagged")).html
    index = rebuild_index(reports)
    # The same page without its CSP: if escaping failed, payloads would run here.
    html = daily.read_text()
    stripped, n = re.subn(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html)
    assert n == 1
    no_csp = daily.with_name("no-csp.html")
    no_csp.write_text(stripped)
    return {
        "daily": daily,
        "weekly": weekly,
        "empty": empty,
        "index": index,
        "no_csp": no_csp,
        "folded": folded,
        "flagged": since,
    }


def load(browser: Chromium, path: Path) -> list[str]:
    """Navigate, and return the problems (console errors, exceptions) this page caused."""
    mark = len(browser.events)
    browser.navigate(path.as_uri())
    before = browser.events
    browser.events = before[mark:]
    try:
        return browser.problems()
    finally:
        browser.events = before


def test_report_renders_cleanly_with_every_section_and_visible_charts(browser, pages, tmp_path):
    browser.set_viewport(1280, 900)
    assert load(browser, pages["daily"]) == []
    assert browser.evaluate("typeof window.__pwned") == "undefined"
    present = browser.evaluate(
        f"JSON.stringify({json.dumps(list(SECTIONS))}.map(id => {{"
        " const e = document.getElementById(id);"
        " return e && e.getBoundingClientRect().height > 0 && e.querySelector('h2') !== null; }))"
    )
    assert present == "[" + ",".join(["true"] * len(SECTIONS)) + "]"
    charts = json.loads(browser.evaluate(CHARTS_JS))
    shown = [c for c in charts if c["display"] != "none"]
    for chart in shown:
        assert chart["w"] > 20 and chart["h"] > 8, chart
        assert chart["visibility"] == "visible" and chart["marks"] > 0 and chart["title"], chart
    kinds = {c["cls"].split()[1] for c in shown}
    assert {"trend", "spark", "meter", "effect", "bars"} <= kinds
    # On a desktop the wide trend shows, the narrow one is hidden (and the reverse on a phone).
    assert {c["cls"] for c in charts if "trend" in c["cls"] and c["display"] != "none"} == {
        "chart trend wide"
    }
    # The payloads are on the page as text.
    text = browser.evaluate("document.body.innerText")
    assert "<script>window.__pwned=1</script>" in text
    assert "Quotes hidden to protect privacy" in text
    assert "SECRET-SMALL-CLUSTER-QUOTE" not in text
    shot = browser.screenshot(tmp_path / "report-desktop.png")
    assert shot.stat().st_size > 20_000
    pdf = browser.print_pdf(tmp_path / "report.pdf")
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 10_000


def test_findings_tables_fit_a_desktop(browser, pages, tmp_path):
    # A chip that never wrapped pushed the 100k first day's table 167 px past the page's
    # column: the "since" words cut off mid-word and the sample column scrolled out of sight.
    browser.set_viewport(1280, 900)
    assert load(browser, pages["flagged"]) == []
    assert "flagged on day 3 of the release" in browser.evaluate("document.body.innerText")
    sideways = json.loads(
        browser.evaluate(
            "JSON.stringify([...document.querySelectorAll('.table-wrap')]"
            ".map(w => w.scrollWidth - w.clientWidth))"
        )
    )
    assert len(sideways) >= 3 and max(sideways) <= 1, sideways
    browser.screenshot(tmp_path / "report-flagged-desktop.png")


def test_report_fits_a_phone(browser, pages, tmp_path):
    browser.set_viewport(390, 844, mobile=True)
    try:
        assert load(browser, pages["daily"]) == []
        overflow = browser.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 1, "the page scrolls sideways on a phone"
        narrow = browser.evaluate(
            "getComputedStyle(document.querySelector('svg.trend.narrow')).display"
        )
        assert narrow == "block"
        browser.screenshot(tmp_path / "report-phone.png")
    finally:
        browser.set_viewport(1280, 900)


def test_improvements_and_latency_rows_are_folded_on_a_phone(browser, pages, tmp_path):
    browser.set_viewport(390, 844, mobile=True)
    try:
        assert load(browser, pages["folded"]) == []
        state = json.loads(
            browser.evaluate(
                "JSON.stringify({better: document.querySelector('details.better-list').open,"
                " rows: [...document.querySelectorAll('tr.better')]"
                ".filter(r => r.checkVisibility()).length,"
                " worse: [...document.querySelectorAll('tr.worse')]"
                ".filter(r => r.checkVisibility()).length,"
                " height: document.documentElement.scrollHeight,"
                " overflow: document.documentElement.scrollWidth"
                " - document.documentElement.clientWidth})"
            )
        )
        # The 15 improvements (14 of them per-topic latency) are closed; the 3 regressions show.
        assert state["better"] is False and state["rows"] == 0 and state["worse"] == 3
        assert state["overflow"] <= 1
        opened = browser.evaluate(
            "document.querySelectorAll('details').forEach(d => d.open = true);"
            "document.documentElement.scrollHeight"
        )
        assert opened > state["height"] + 2000  # what the closed lists keep off the phone
        browser.screenshot(tmp_path / "report-folded-phone.png")
    finally:
        browser.set_viewport(1280, 900)


def test_payloads_do_not_run_even_without_the_csp(browser, pages):
    assert load(browser, pages["no_csp"]) == []
    assert browser.evaluate("typeof window.__pwned") == "undefined"
    assert browser.evaluate("document.querySelectorAll('script,img,iframe').length") == 0


def test_payload_detector_fires_on_a_live_payload(browser, tmp_path):
    # Positive control: the same check on a page that does run the payload.
    live = tmp_path / "live.html"
    live.write_text(f"<!DOCTYPE html><html><body>{rd.PAYLOADS[0]}</body></html>")
    load(browser, live)
    assert browser.evaluate("window.__pwned") == 1
    broken = tmp_path / "broken.html"
    broken.write_text("<!DOCTYPE html><html><body><script>undefinedFn()</script></body></html>")
    assert any("undefinedFn" in p for p in load(browser, broken))


def test_weekly_empty_and_index_pages_render(browser, pages, tmp_path):
    for name in ("weekly", "empty", "index"):
        assert load(browser, pages[name]) == [], name
        assert browser.evaluate("typeof window.__pwned") == "undefined"
    load(browser, pages["empty"])
    assert "No feedback for this day" in browser.evaluate("document.body.innerText")
    browser.screenshot(tmp_path / "report-empty.png")
    load(browser, pages["index"])
    links = browser.evaluate(
        "JSON.stringify([...document.querySelectorAll('ol.reports a')]"
        ".map(a => a.getAttribute('href')))"
    )
    assert links == (
        '["week=2026-W47/report.html","dt=2026-11-21/report.html","dt=2026-11-20/report.html",'
        '"dt=2026-11-19/report.html"]'
    )
