"""End to end on the real public sets: import -> ingest -> the later stages that exist.

What can be known about real data is asserted, not what we wish: the warehouse holds exactly
what the importer read, nothing is quarantined, OpenAssistant's thumbs give each model version
that has any a negative rate equal to the one counted in the file, FeedbackQA's explanations
form clusters with readable labels, LAMP's edits become SFT and preference examples that pass
the export rules, and llmfao's models each get a loss rate from the votes.
"""

from __future__ import annotations

import csv
import html
import json
import re
from collections import Counter
from datetime import date, timedelta

import dagster as dg
import pandas as pd
import pytest

from feedback_pipelines.defs.ingest import landing_ingest
from feedback_pipelines.reporting.build import build_report
from feedback_pipelines.reporting.load import load_report_inputs
from feedback_pipelines.reporting.render import render_html, render_markdown
from feedback_pipelines.resources.settings import PipelineConfig
from feedback_pipelines.resources.warehouse import WarehouseResource
from feedback_pipelines.routing.day import read_events
from feedback_pipelines.routing.tuning.validate import validate_export
from feedback_pipelines.sources.public_sets import OASST_HUMAN_VERSION, import_public_set
from feedback_pipelines_tests.fixtures.pipeline import TEST_DATA, PipelineEnv

pytestmark = [pytest.mark.slow]

REAL = TEST_DATA / "real"
END = date(2026, 11, 20)
DS = END.isoformat()


def import_and_ingest(kind: str, env: PipelineEnv, path=None):
    result = import_public_set(kind, path or REAL / kind, env.landing, END, days=1)
    assert result.days == [DS]
    run = dg.materialize(
        [landing_ingest],
        partition_key=DS,
        resources={"settings": PipelineConfig(), "warehouse": WarehouseResource()},
    )
    assert run.success
    con = env.connect()
    try:
        counts = con.execute(
            "SELECT (SELECT count(*) FROM traces WHERE ds = ?), "
            "(SELECT count(*) FROM feedback_events WHERE ds = ?), "
            "(SELECT count(*) FROM feedback_events WHERE ds = ? AND NOT trace_found), "
            "(SELECT count(*) FROM quarantine WHERE ds = ?)",
            [DS] * 4,
        ).fetchone()
        events = read_events(con, DS, DS, columns="*")
    finally:
        con.close()
    assert counts == (result.traces, result.feedback, 0, 0), kind
    return result, events


@pytest.fixture(scope="module")
def embedder():
    from feedback_pipelines.embedding import DEFAULT_EMBEDDER, get_embedder

    return get_embedder(DEFAULT_EMBEDDER)


def test_oasst(pipeline_env: PipelineEnv):
    result, events = import_and_ingest("oasst", pipeline_env)
    assert (result.traces, result.feedback) == (687, 1232)
    # The negative rate each version's thumbs give, against the emoji counts in the file.
    expected: dict[str, Counter] = {}
    for line in (REAL / "oasst" / "en_100_tree.jsonl").read_text().splitlines():
        stack = [json.loads(line)["prompt"]]
        while stack:
            m = stack.pop()
            stack.extend(m.get("replies") or [])
            if m["role"] == "assistant":
                c = expected.setdefault(m.get("model_name") or OASST_HUMAN_VERSION, Counter())
                e = m.get("emojis") or {}
                c["neg"] += e.get("-1", 0) + e.get("red_flag", 0)
                c["all"] += e.get("+1", 0) + e.get("-1", 0) + e.get("red_flag", 0)
    rates = events.groupby("model_version")["is_negative"].mean().to_dict()
    with_thumbs = {v: c["neg"] / c["all"] for v, c in expected.items() if c["all"]}
    assert rates == pytest.approx(with_thumbs)
    assert 0.2 < rates[OASST_HUMAN_VERSION] < 0.4
    # chip20b's 17 synthetic answers carry ranks but no emoji votes: no thumbs, no rate.
    assert expected["chip20b"]["all"] == 0 and "chip20b" not in rates
    con = pipeline_env.connect()
    try:
        versions = dict(
            con.execute(
                "SELECT model_version, count(*) FROM traces WHERE ds = ? GROUP BY 1", [DS]
            ).fetchall()
        )
        sessions = con.execute(
            "SELECT count(DISTINCT session_id), max(turn_index) FROM traces WHERE ds = ?", [DS]
        ).fetchone()
    finally:
        con.close()
    assert versions == {OASST_HUMAN_VERSION: 670, "chip20b": 17}
    assert sessions[0] == 100 and sessions[1] > 1  # trees as sessions, turns ordered in them


def test_feedbackqa_explanations_cluster_with_readable_labels(pipeline_env: PipelineEnv, embedder):
    from feedback_pipelines.clustering.pipeline import cluster_window
    from feedback_pipelines.embedding import interaction_text

    result, events = import_and_ingest("feedbackqa", pipeline_env)
    assert (result.traces, result.feedback) == (870, 1740)
    labels = Counter(json.loads(m)["rating_label"] for m in events["metadata"])
    assert events["is_negative"].sum() == labels["Bad"] + labels["Could be Improved"]
    # Cluster one domain's explanations (a slice keeps the test fast).
    who = events[events["model_version"] == "feedbackqa-who"].reset_index(drop=True)
    assert len(who) == 2 * 129
    texts = [interaction_text(r, c) for r, c in zip(who["request"], who["comment"], strict=True)]
    vectors = embedder.embed(texts)
    window = pd.DataFrame(
        {
            "feedback_id": who["feedback_id"],
            "text": texts,
            "user_id": who["user_id"].fillna("unknown"),
            "is_negative": who["is_negative"],
            "timestamp": who["timestamp"],
        }
    )
    clusters = cluster_window(window, vectors, DS)
    found = clusters.clusters[clusters.clusters["size"] > 0]
    assert len(found) >= 2
    assert len(clusters.assignments) == len(who)
    for label in found["label"]:
        words = re.findall(r"[A-Za-z]{3,}", str(label))
        assert words, label  # keyphrases of the explanations, not an id
    assigned = clusters.assignments[clusters.assignments["cluster_id"] >= 0]
    assert len(assigned) >= len(who) // 2  # most explanations land in a topic


def test_lamp_yields_valid_sft_and_preference_examples(
    pipeline_env: PipelineEnv, embedder, tmp_path
):
    from feedback_pipelines.routing.tuning.pipeline import build_tuning_sets
    from feedback_pipelines.routing.tuning.similarity import TextVectorCache, exact_neighbours
    from feedback_pipelines.routing.tuning.writer import write_export

    # One writer's file (50 edits) keeps the embedding of long paragraphs short.
    path = REAL / "lamp" / "W3_edits.json"
    edits = json.loads(path.read_text())
    result, events = import_and_ingest("lamp", pipeline_env, path)
    paragraphs = {(e["instruction"], e["preedit"], e["source"]) for e in edits}
    assert (result.traces, result.feedback) == (len(paragraphs), len(edits)) == (50, 50)
    assert set(events["kind"]) == {"correction"} and events["is_negative"].all()
    sets = build_tuning_sets(
        events,
        vectors=TextVectorCache(embedder.embed),
        neighbours=exact_neighbours,
        ds=DS,
        window_start=(END - timedelta(days=13)).isoformat(),
    )
    sft, preference = sets.of("sft"), sets.of("preference")
    assert sft and preference
    postedits = {e["postedit"].strip() for e in edits}
    assert all(x.completion.strip() in postedits for x in sft)
    folder = tmp_path / "exports" / f"dt={DS}"
    write_export(sets, folder)
    _, problems = validate_export(folder)
    assert problems == []
    card = json.loads((folder / "datacard.json").read_text())
    assert card["counts"]["sft"] > 0 and card["counts"]["preference"] > 0


def test_llmfao_versions_and_votes(pipeline_env: PipelineEnv):
    result, events = import_and_ingest("llmfao", pipeline_env)
    assert (result.traces, result.feedback) == (1133, 2 * 8931)
    models = [json.loads(x) for x in (REAL / "llmfao" / "models.jsonl").read_text().splitlines()]
    with (REAL / "llmfao" / "crowd-comparisons.csv").open() as fh:
        voted = {name for row in csv.DictReader(fh) for name in (row["left"], row["right"])}
    con = pipeline_env.connect()
    try:
        versions = con.execute(
            "SELECT count(DISTINCT model_version) FROM traces WHERE ds = ?", [DS]
        ).fetchone()[0]
    finally:
        con.close()
    assert versions == len(models) == 70  # every model is a version ...
    names = {m["api_id"]: m["name"] for m in models}
    # ... and the crowd compared 59 of them.
    assert {names[v] for v in events["model_version"]} == voted and len(voted) == 59
    votes = Counter(events["kind"])
    ties = result.read["votes tie"]
    assert (
        votes["rating"] == 2 * ties and events.loc[events["kind"] == "rating", "score"].eq(3).all()
    )
    assert events["is_negative"].sum() == votes["thumbs_down"] == 8931 - ties
    # Each model's share of lost comparisons: a per-version negative rate from real votes.
    loss = events.groupby("model_version")["is_negative"].mean()
    assert len(loss) == 59 and loss.between(0, 1).all() and loss.std() > 0.05
    # Voters are distinct pseudonymous users (the report's k-users rule can apply).
    assert events["user_id"].nunique() == 124
    # The report says what "negative" means here: a comparison lost (ties are no vote).
    with pipeline_env.connect() as con:
        view = build_report(load_report_inputs(con, "daily", END, END))
    assert view.votes_note.startswith(
        f"{2 * (8931 - ties):,} of the {2 * 8931:,} feedback events are side-by-side votes"
    )
    assert view.votes_note in re.sub(r"\s+", " ", html.unescape(render_html(view)))
    assert view.votes_note in render_markdown(view)
