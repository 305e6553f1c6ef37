"""Issue 17 on three real runs of the whole daily job: what the written reports say is true.

* **FeedbackQA** (the real public set, spread over two days): no user ids and no sessions.
* **A preference-style set without user ids** (the generator's output with every user_id
  removed, as in hh-rlhf): people cannot be counted.
* **The generated week** (user ids, a planted regression released mid-week): the story over
  time, from "new today" to "day 3, since ...", the index marks, the Monday roll-up.

Each run is the project's own job (`daily_pipeline`, every asset) on its own data directory;
the tests read the files it wrote (report.html, report.md, report.json, index.html) and check
them against the warehouse. Input files get explicit modification times (one late file per
run) so "arrived late" does not depend on the machine's clock.
"""

from __future__ import annotations

import gzip
import html as html_lib
import json
import os
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from feedback_pipelines_tests.fixtures.pipeline import (
    TEST_DATA,
    WEEK_DAYS,
    WEEK_END,
    PipelineEnv,
    make_env,
    run_day,
    week_days,
)

pytestmark = [pytest.mark.slow]

SESSION_COMMAND = re.compile(r"feedback-pipelines session ([A-Za-z0-9_:.\-]+)")


@dataclass
class Run:
    """One pipeline run over some days, and the file that was made late."""

    env: PipelineEnv
    days: list[str]
    late_file: str  # relative to the landing zone

    def page(self, ds: str) -> str:
        return (self.env.data / "reports" / f"dt={ds}" / "report.html").read_text()

    def text(self, ds: str) -> str:
        page = re.sub(r"<style.*?</style>", " ", self.page(ds), flags=re.S)
        return re.sub(r"\s+", " ", html_lib.unescape(re.sub(r"<[^>]+>", " ", page)))

    def markdown(self, ds: str) -> str:
        return (self.env.data / "reports" / f"dt={ds}" / "report.md").read_text()

    def entry(self, key: str) -> dict:
        return json.loads((self.env.data / "reports" / key / "report.json").read_text())

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        with self.env.connect() as conn:
            return conn.execute(sql, params or []).fetchall()


def _arrived(landing: Path, late: str) -> None:
    """Every file written an hour into its day, except `late`: three days after its day."""
    for path in landing.rglob("dt=*/*"):
        day = datetime.fromisoformat(path.parent.name.removeprefix("dt="))
        when = day + (timedelta(days=3) if str(path.relative_to(landing)) == late else
                      timedelta(hours=1))  # fmt: skip
        os.utime(path, (when.timestamp(), when.timestamp()))


def _run(root: Path, days: list[str], fill, late: str) -> Run:
    with pytest.MonkeyPatch.context() as mp:
        env = make_env(root, mp)
        fill(env.landing)
        _arrived(env.landing, late)
        for ds in days:
            result = run_day(ds)
            assert result.success, ds
    return Run(env, days, late)


def _strip_user_ids(landing: Path) -> None:
    """Remove user_id from every JSON line of the landing zone (gzipped or not).

    Lines that are not JSON objects, or hold bytes that are not UTF-8 (the generator plants
    both), are kept byte for byte: they still go to quarantine.
    """
    for path in landing.rglob("dt=*/*.jsonl*"):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as fh:
            lines = fh.read().split(b"\n")
        out = []
        for raw in lines:
            try:
                record = json.loads(raw.decode("utf-8"))
            except ValueError:
                out.append(raw)
                continue
            if isinstance(record, dict) and "user_id" in record:
                record.pop("user_id")
                raw = json.dumps(record, ensure_ascii=False).encode("utf-8")
            out.append(raw)
        with opener(path, "wb") as fh:
            fh.write(b"\n".join(out))


FQA_END = date(2026, 11, 20)
FQA_DAYS = [(FQA_END - timedelta(days=1)).isoformat(), FQA_END.isoformat()]


@pytest.fixture(scope="module")
def feedbackqa(tmp_path_factory) -> Run:
    from feedback_pipelines.sources.public_sets import import_public_set

    def fill(landing: Path) -> None:
        import_public_set("feedbackqa", TEST_DATA / "real" / "feedbackqa", landing, FQA_END, days=2)

    late = f"feedback/dt={FQA_DAYS[-1]}/feedbackqa.jsonl"
    return _run(tmp_path_factory.mktemp("fqa"), FQA_DAYS, fill, late)


NOUSER_END = date(2026, 11, 20)
NOUSER_DAYS = [(NOUSER_END - timedelta(days=2 - i)).isoformat() for i in range(3)]


@pytest.fixture(scope="module")
def no_user_ids(tmp_path_factory) -> Run:
    from feedback_pipelines.sources.synthetic import generate

    def fill(landing: Path) -> None:
        generate(landing, 3, NOUSER_END, seed=3, events_per_day=300)
        _strip_user_ids(landing)

    late = f"feedback/dt={NOUSER_DAYS[-1]}/api-00.jsonl"
    return _run(tmp_path_factory.mktemp("nouser"), NOUSER_DAYS, fill, late)


@pytest.fixture(scope="module")
def week(tmp_path_factory, generated_landing) -> tuple[Run, dict]:
    import shutil

    landing, truth = generated_landing
    late = f"traces/dt={WEEK_END.isoformat()}/gateway-01.jsonl"
    run = _run(
        tmp_path_factory.mktemp("week"),
        week_days(),
        lambda target: shutil.copytree(landing, target, dirs_exist_ok=True),
        late,
    )
    return run, truth


def _late_file_truth(run: Run) -> None:
    ds = run.days[-1]
    rows = run.query("SELECT file FROM ingest_files WHERE ds = ? AND late", [ds])
    assert [r[0] for r in rows] == [run.late_file]
    text = run.text(ds)
    assert "1 input file arrived late (written after the day's scheduled run)" in text
    assert run.late_file in text  # as ingest recorded it: source folder once
    source = run.late_file.split("/")[0]
    assert f"{source}/{source}/" not in text
    assert "sensor" not in text and "sensor" not in run.markdown(ds)
    for ds in run.days[:-1]:
        assert "arrived late" not in run.text(ds)


def _quotes_are_followable(run: Run, ds: str) -> list[str]:
    page = run.page(ds)
    ids = SESSION_COMMAND.findall(html_lib.unescape(re.sub(r"<[^>]+>", " ", page)))
    assert ids, "quotes carry the command to see their conversation"
    known = {r[0] for r in run.query("SELECT feedback_id FROM feedback_events")}
    assert set(ids) <= known
    assert "Asked:" in page and ("negative (" in page or "positive (" in page)
    return ids


def _every_topic_listed(run: Run, ds: str) -> None:
    (n,) = run.query(
        "SELECT count(*) FROM feedback_clusters WHERE ds = ? AND cluster_id >= 0", [ds]
    )[0]
    page = run.page(ds)
    table = page[page.index('class="all-topics"') :]
    table = table[: table.index("</details>")]
    assert table.count("<tr>") == n + 1  # header + every topic
    assert "Topics are ranked by negative feedback" in run.text(ds)


def _statuses_as_written(run: Run, ds: str) -> None:
    from feedback_pipelines.reporting.views import STATUS_TEXT

    written = {
        str(s) for (s,) in run.query("SELECT DISTINCT status FROM feedback_clusters WHERE ds = ?",
                                     [ds]) if s
    }  # fmt: skip
    page = run.page(ds)
    table = page[page.index('class="all-topics"') :]
    shown = set(re.findall(r"<td>(New|Growing|Stable|Faded|[A-Z][a-z]+)(?: \([^<]*\))?</td>",
                           table))  # fmt: skip
    assert shown <= {STATUS_TEXT.get(s, s.capitalize()) for s in written}


def _tuning_counts_scoped(run: Run, ds: str) -> None:
    text = run.text(ds)
    assert "examples exported for tuning" not in text
    rows = run.query(
        "SELECT dataset, count(*) FROM tuning_candidates WHERE ds = ? GROUP BY 1", [ds]
    )
    if not rows:
        return
    assert "the 14-day export" in text
    assert "New today" in run.page(ds)  # the column of what is new today, apart
    total = sum(n for _, n in rows)
    if len(rows) > 1:
        assert f"{total:,} " not in text.split("Tuning and review")[1].split("Data quality")[0]
        assert "so they are not added up" in text


def _no_verdict_without_comparison(run: Run) -> None:
    for ds in run.days:
        for text in (run.text(ds), run.markdown(ds)):
            assert "Not tested against" not in text
            assert "(unknown version): not compared" not in text


# ------------------------------------------------------------------ FeedbackQA


def test_feedbackqa_counts_conversations_not_people(feedbackqa):
    run = feedbackqa
    ds = run.days[-1]
    (with_user,) = run.query("SELECT count(user_id) FROM feedback_events")[0]
    assert with_user == 0  # the real set has no user ids
    text = run.text(ds)
    assert "from 0 people" not in text and "0 people" not in text
    assert re.search(r"[\d,]+ feedback events in [\d,]+ conversations on \d+ model versions", text)
    assert "This feedback carries no user ids, so people cannot be counted" in text
    _quotes_are_followable(run, ds)
    hidden = re.findall(r"fewer than 5 (\w+)", text)
    assert set(hidden) <= {"conversations"}


def test_feedbackqa_says_only_what_is_true(feedbackqa):
    _late_file_truth(feedbackqa)
    _no_verdict_without_comparison(feedbackqa)
    for ds in feedbackqa.days:
        _every_topic_listed(feedbackqa, ds)
        _statuses_as_written(feedbackqa, ds)
        _tuning_counts_scoped(feedbackqa, ds)


def test_feedbackqa_tiles_compare_with_yesterday(feedbackqa):
    first, last = feedbackqa.days
    assert "no feedback yesterday" in feedbackqa.text(first)
    assert re.search(r"[+−±]\d+% vs yesterday", feedbackqa.text(last))


# ------------------------------------------------------------------ no user ids


def test_set_without_user_ids_gates_quotes_on_conversations(no_user_ids):
    run = no_user_ids
    ds = run.days[-1]
    (with_user,) = run.query("SELECT count(user_id) FROM feedback_events")[0]
    assert with_user == 0
    text = run.text(ds)
    assert "people cannot be counted" in text and "0 people" not in text
    assert re.search(r"[\d,]+ conversations \(no user ids\)", text)
    ids = _quotes_are_followable(run, ds)
    from feedback_pipelines.recall.sessions import load_session

    with run.env.connect() as conn:
        assert load_session(conn, ids[0]) is not None  # the command shows a conversation


def test_set_without_user_ids_says_only_what_is_true(no_user_ids):
    _late_file_truth(no_user_ids)
    _no_verdict_without_comparison(no_user_ids)
    ds = no_user_ids.days[-1]
    _every_topic_listed(no_user_ids, ds)
    _statuses_as_written(no_user_ids, ds)
    _tuning_counts_scoped(no_user_ids, ds)


# ------------------------------------------------------------------ the generated week


def _planted(truth: dict) -> tuple[str, str]:
    expected = truth["expected_regressions"][0]
    return expected["candidate"], expected["baseline"]


def test_week_tells_the_regression_over_time(week):
    run, truth = week
    candidate, baseline = _planted(truth)
    # Named by its theme (or subtopic), once a day.
    pattern = re.compile(
        rf"{re.escape(candidate)} is worse on (?:the theme )?“[^”]+”: [^—]+ on {baseline} "
    )
    flagged = [ds for ds in run.days if pattern.search(run.text(ds))]
    assert flagged, "the planted regression is reported"
    first = flagged[0]
    assert flagged == run.days[run.days.index(first) :]  # flagged every day from then on
    first_day = date.fromisoformat(first)
    assert "— new today; flagged on day " in run.entry(f"dt={first}")["headline"]
    assert run.entry(f"dt={first}")["new"] >= 1
    for ds in flagged[1:]:
        n = (date.fromisoformat(ds) - first_day).days + 1
        since = f"day {n}, since {first_day.strftime('%a')} {first_day.day} {first_day:%b}"
        assert since in run.text(ds), ds
        assert run.entry(f"dt={ds}")["ongoing"] >= 1
        assert re.search(r"(growing|shrinking|steady): [+−]", run.text(ds))
    index = (run.env.data / "reports" / "index.html").read_text()
    assert "1 new" in index and "ongoing" in index


def test_week_regression_reaches_the_eval_set_and_the_review_queue(week):
    """Where the report flags the planted regression (on a subtopic or a whole theme), the
    export holds eval cases to measure a fix and a person gets a sample the first day."""
    run, _ = week
    rows = run.query(
        "SELECT ds, cluster_id, topic_id FROM version_regressions WHERE is_regression AND "
        "metric = 'negative_rate' AND (cluster_id IS NOT NULL OR topic_id IS NOT NULL)"
    )
    days = sorted({str(ds) for ds, _, _ in rows})
    assert days, "the planted regression is flagged on a topic"
    regressed_on = {}
    for ds in days:
        themes = {t for d, c, t in rows if str(d) == ds and c is None}
        members = {
            c: t
            for c, t in run.query(
                "SELECT cluster_id, topic_id FROM feedback_clusters WHERE ds = ?", [ds]
            )
            if t in themes
        }
        regressed = {c for d, c, _ in rows if str(d) == ds and c is not None} | members.keys()
        regressed_on[ds] = regressed
        export = run.env.data / "exports" / f"dt={ds}"
        cases = [json.loads(x) for x in (export / "eval.jsonl").read_text().splitlines()]
        assert cases, ds
        for case in cases:
            meta = case["metadata"]
            assert meta["regressed_cluster"] in regressed, ds
            assert meta["regressed_theme"] == members.get(meta["regressed_cluster"]), ds
        card = json.loads((export / "datacard.json").read_text())
        assert set(card["clusters"]["regressed"]) == regressed
        assert {t["topic_id"] for t in card["clusters"]["regressed_themes"]} == themes
    queue = run.env.data / "review" / f"dt={days[0]}" / "queue.jsonl"
    items = [json.loads(x) for x in queue.read_text().splitlines()]
    samples = [i for i in items if "new_regression_sample" in i["routing_reasons"]]
    assert samples and all(i["cluster_id"] in regressed_on[days[0]] for i in samples)


def test_week_order_tiles_and_truth(week):
    run, _ = week
    ds = run.days[-1]
    page = run.page(ds)
    assert page.index('id="regressions"') < page.index('id="versions"')
    assert re.findall(r"<details class=\"better-list\"[^>]*>", page) == [
        '<details class="better-list">'  # closed: no `open`
    ]
    text = run.text(ds)
    assert re.search(r"[+−±]\d+% vs yesterday", text)
    assert "no feedback last week" in text  # the week's data starts six days before
    assert re.search(r"\d+ feedback events from [\d,]+ people", text)
    _late_file_truth(run)
    _no_verdict_without_comparison(run)
    _every_topic_listed(run, ds)
    _statuses_as_written(run, ds)
    _tuning_counts_scoped(run, ds)
    _quotes_are_followable(run, ds)
    assert "<script" not in page.lower()


def test_week_monday_roll_up_compares_and_says_its_coverage(week):
    run, _ = week
    monday = next(d for d in run.days if date.fromisoformat(d).weekday() == 0)
    sunday = date.fromisoformat(monday) - timedelta(days=1)
    key = f"week={sunday.isocalendar().year}-W{sunday.isocalendar().week:02d}"
    page = (run.env.data / "reports" / key / "report.html").read_text()
    text = html_lib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))
    have = sum(1 for d in run.days if date.fromisoformat(d) <= sunday)
    assert f"This period's data covers {have} of 7 days" in text
    assert "Compared with the week before" in text
    assert "it has no feedback to compare with" in text  # the data starts this week
    assert WEEK_DAYS == len(run.days)
