"""Side-by-side votes become preference pairs by majority, not thumbs that cancel out.

A vote ("which of these two answers is better?") arrives as a thumbs-up on the chosen answer
and a thumbs-down on the other, linked by `metadata.preference`. Read as plain thumbs, every
answer that won one comparison and lost another was "both liked and disliked" and dropped:
llmfao's 5,460 decisive votes gave 57 pairs. Read as votes, each pair of answers the crowd
compared gives one pair, the way most of its votes went.
"""

from __future__ import annotations

import csv
import itertools
import json
import shutil
from collections import Counter
from datetime import date

import pandas as pd
import pytest

from feedback_pipelines.embedding.onnx import OnnxEmbedder
from feedback_pipelines.routing.tuning import TuningSettings, build_tuning_sets, write_export
from feedback_pipelines.routing.tuning.messages import normalize_text
from feedback_pipelines.routing.tuning.similarity import TextVectorCache, exact_neighbours
from feedback_pipelines.routing.tuning.validate import validate_export
from feedback_pipelines_tests.fixtures import tuning as td

Q = "Which planets of the solar system have rings?"
OTHER_Q = "How do I reset my password?"
A = "Jupiter, Saturn, Uranus and Neptune all have ring systems; Saturn's are the brightest."
B = "Only Saturn has rings."
C = "Saturn and Uranus."
D = "All four giant planets: Jupiter, Saturn, Uranus, Neptune."
E = "Click 'Forgot password' on the sign-in page."
F = "  saturn AND uranus. "  # C after folding


@pytest.fixture(scope="module")
def vectors() -> TextVectorCache:
    return TextVectorCache(OnnxEmbedder().embed)


def vote(
    vid: str | None, chosen: tuple[str, str, str], rejected: tuple[str, str, str], ds: str = td.DS
) -> list[dict]:
    """A vote's two events, at one time (as llmfao's): (trace, request, answer) of each side."""
    link = {"vote_id": vid, "chosen_trace_id": chosen[0], "rejected_trace_id": rejected[0]}
    name = vid or f"{chosen[0]}-{rejected[0]}-{next(_names)}"
    up = td.event(f"{name}-up", "thumbs_up", chosen[1], chosen[2], trace=chosen[0], ds=ds)
    down = td.event(f"{name}-down", "thumbs_down", rejected[1], rejected[2], trace=rejected[0],
                    ds=ds)  # fmt: skip
    return [{**up, **link}, {**down, **link, "timestamp": up["timestamp"]}]


_names = itertools.count()


def window() -> pd.DataFrame:
    a, b, c, d = ("tA", Q, A), ("tB", Q, B), ("tC", Q, C), ("tD", Q, D)
    e, f = ("tE", OTHER_Q, E), ("tF", Q, F)
    return td.frame(
        [
            *vote("v1", a, b),
            *vote("v2", b, a),  # outvoted by v1 and v3
            *vote("v3", a, b),
            *vote("v4", c, d),
            *vote("v5", d, c),  # C and D: one vote each way
            *vote("v6", a, e),  # answers to different prompts
            *vote("v7", c, f),  # the same answer twice
            *vote("v8", d, b),
            # a plain judgement of an answer that also lost a vote: still an unpaired example
            td.event("plain-down", "thumbs_down", Q, D, trace="tD2"),
        ]
    )


def build(events: pd.DataFrame, vectors):
    return build_tuning_sets(
        events, vectors=vectors, neighbours=exact_neighbours, ds=td.DS, window_start=td.DS,
        settings=TuningSettings(),
    )  # fmt: skip


def test_votes_make_pairs_by_majority_and_say_what_they_came_to(vectors, tmp_path):
    sets = build(window(), vectors)
    pairs = [x for x in sets.of("preference") if x.source == "pairwise_vote"]
    got = {(x.completion, x.rejected, x.event.feedback_id, x.paired.feedback_id) for x in pairs}
    # A over B 2-1 (its lineage the vote from which A has led: v3, after v2 tied v1), D over B.
    assert got == {(A, B, "v3-down", "v3-up"), (D, B, "v8-down", "v8-up")}
    assert sets.votes == {
        "votes": 8, "ranked": 0, "compared": 5, "single": 3, "unanimous": 0, "split": 1,
        "outvoted": 1, "pairs": 2,
    }  # fmt: skip
    removed = {r["filter"]: r["removed"] for r in sets.log.as_records()}
    for name in ("split_vote", "different_prompts", "identical_answers"):
        assert removed[name] == {"preference": 1}, name
    # Votes are comparisons, not judgements of one answer: none is an unpaired example, and
    # no answer is "both liked and disliked" for having won one vote and lost another.
    unpaired = sets.of("unpaired")
    assert [x.event.feedback_id for x in unpaired] == ["plain-down"]
    assert not removed["conflicting_labels"]
    # The input's order changes nothing.
    shuffled = build(window().sample(frac=1.0, random_state=3), vectors)
    assert [(x.example_id, x.completion) for x in shuffled.of("preference")] == [
        (x.example_id, x.completion) for x in sets.of("preference")
    ]

    folder = tmp_path / "export"
    write_export(sets, folder)
    assert validate_export(folder)[1] == []
    card = json.loads((folder / "datacard.json").read_text())
    assert card["sources"]["votes"] == sets.votes
    assert card["label_balance"]["preference_by_source"]["train"]["pairwise_vote"] >= 1
    md = (folder / "datacard.md").read_text()
    assert (
        "Side-by-side votes: 8 votes on 5 pairs of answers; 4 decided by majority (3 by a single "
        "vote, 0 unanimous over several, 1 vote outvoted), 1 split evenly and left out; 2 passed "
        "the pair gates" in md
    )
    excluded = [json.loads(x) for x in (folder / "excluded.jsonl").read_text().splitlines()]
    assert {x["filter"] for x in excluded} >= {"split_vote", "different_prompts"}


def test_without_votes_the_card_says_nothing_of_them(vectors, tmp_path):
    sets = build(td.signals_window(), vectors)
    assert sets.votes["votes"] == 0
    assert all(x.source != "pairwise_vote" for x in sets.examples)
    write_export(sets, tmp_path / "export")
    assert "Side-by-side votes" not in (tmp_path / "export" / "datacard.md").read_text()
    assert "a ranking of k answers" not in (tmp_path / "export" / "datacard.md").read_text()


def test_votes_without_an_id_are_one_vote_each(vectors):
    a, b = ("tA", Q, A), ("tB", Q, B)
    sets = build(td.frame([*vote(None, a, b), *vote(None, b, a), *vote(None, a, b)]), vectors)
    assert (sets.votes["votes"], sets.votes["outvoted"]) == (3, 1)  # not 6 and 2
    assert [(x.completion, x.rejected) for x in sets.of("preference")] == [(A, B)]


def test_incremental_exports_give_a_pair_once_and_a_reversal_to_people(vectors, tmp_path):
    """Each day exported as the pipeline does (files, then `tuning_candidates`), and the next
    day reads what the earlier ones exported (`read_exported_votes`): whoever concatenates the
    daily exports never gets a pair twice, nor both ways."""
    import duckdb

    from feedback_pipelines.routing.day import read_exported_votes, tuning_frame
    from feedback_pipelines.routing.review import route_for_review
    from feedback_pipelines.routing.tuning.votes import pair_key
    from feedback_pipelines.schema import TUNING_DDL
    from feedback_pipelines.tables import write_partition

    a, b = ("tA", Q, A), ("tB", Q, B)
    day1, day2, day3, day4 = "2026-11-17", "2026-11-18", "2026-11-19", "2026-11-20"
    rows = [
        *vote("v1", a, b, day1), *vote("v2", b, a, day1),  # tied on day 1
        *vote("v3", a, b, day2),  # A leads from day 2
        *vote("v4", b, a, day3), *vote("v5", b, a, day3),  # B from day 3
        *vote("v6", a, b, day4), *vote("v7", a, b, day4),  # A again from day 4
    ]  # fmt: skip
    events = td.frame(rows)
    settings = TuningSettings(export_mode="incremental")
    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    days = {}
    for ds in (day1, day2, day3, day4):
        sets = build_tuning_sets(
            events[events["ds"] <= ds], vectors=vectors, neighbours=exact_neighbours, ds=ds,
            window_start=day1, settings=settings, exported_votes=read_exported_votes(conn, ds),
        )  # fmt: skip
        export = write_export(sets, tmp_path / f"dt={ds}")
        write_partition(conn, "tuning_candidates", TUNING_DDL, tuning_frame(export), ds)
        days[ds] = sets

    def exported(ds: str) -> list[tuple[str, str, str]]:
        return [(x.completion, x.rejected, x.event.feedback_id) for x in days[ds].of("preference")]

    assert exported(day1) == []
    assert exported(day2) == [(A, B, "v3-down")]  # not lost for its first vote's day
    (first,) = days[day2].of("preference")
    (where,) = read_exported_votes(conn, day3).values()
    assert read_exported_votes(conn, day3) == {pair_key(first.prompt, A, B): where}
    assert (where.day, where.example_id) == (day2, first.example_id)
    lines = (tmp_path / f"dt={day2}" / where.file).read_text().splitlines()
    assert json.loads(lines[where.line - 1])["preferred_output"][0]["content"] == A
    assert read_exported_votes(conn, day2) == {}  # only earlier days count
    # B now leads: the pair the other way is not exported, but queued for people.
    assert exported(day3) == []
    assert days[day3].log.reason("preference", "v5-down") == "reversed_after_export"
    ((held, held_where),) = days[day3].reversed_votes
    assert (held.completion, held.rejected, held_where) == (B, A, where)
    queue = route_for_review(days[day3].events, day3, reversed_votes=days[day3].reversed_votes)
    items = queue[queue["routing_reason"] == "vote_reversed"].set_index("feedback_id")
    assert set(items.index) == {"v5-up", "v5-down"} and set(items["priority"]) == {3}
    assert list(items.loc["v5-up", "related_feedback_ids"]) == ["v5-down"]
    detail = items.loc["v5-up", "detail"]
    assert first.example_id in detail and f"exports/dt={day2}/{where.file} line" in detail
    # A leads again: the way day 2 exported, which is not exported twice.
    assert exported(day4) == []
    assert days[day4].log.reason("preference", "v7-down") == "exported_earlier"
    assert days[day4].reversed_votes == []
    card = json.loads((tmp_path / f"dt={day3}" / "datacard.json").read_text())
    removed = {f["filter"]: f["total"] for f in card["filters"]}
    assert removed["reversed_after_export"] == 1 and removed["exported_earlier"] == 0
    lines = [
        json.loads(line)
        for ds in days
        for line in (tmp_path / f"dt={ds}" / "preference.jsonl").read_text().splitlines()
    ] + [
        json.loads(line)
        for ds in days
        for line in (tmp_path / f"dt={ds}" / "preference_validation.jsonl").read_text().splitlines()
    ]
    assert len(lines) == 1  # concatenated, the days hold the pair once, one way
    # The cumulative mode exports the window's majority every day, whatever came before.
    snapshot = build_tuning_sets(
        events, vectors=vectors, neighbours=exact_neighbours, ds=day4, window_start=day1,
        settings=TuningSettings(), exported_votes=read_exported_votes(conn, day4),
    )  # fmt: skip
    assert [(x.completion, x.rejected) for x in snapshot.of("preference")] == [(A, B)]


def test_a_prompt_tuning_case_gets_an_answer_no_vote_beat_as_its_fix(vectors):
    a, b, c, d = ("tA", Q, A), ("tB", Q, B), ("tC", Q, C), ("tD", Q, D)
    # C lost to B first, then to D; B itself lost to A.
    sets = build(td.frame([*vote("v1", b, c), *vote("v2", a, b), *vote("v3", d, c)]), vectors)
    fixes = {(r["feedback_id"], r["fix"], r["fix_source"]) for r in sets.candidates}
    assert ("v1-down", D, "preferred_response") in fixes  # not B
    assert ("v2-down", A, "preferred_response") in fixes


def test_a_tie_goes_to_people_on_the_day_of_its_latest_vote(vectors):
    from feedback_pipelines.routing.review import route_for_review

    f, g = ("tF", Q, F), ("tG", Q, C.upper())
    # C and D: v4 one way, v5 the other; F and G (the same text) too, which is no comparison.
    sets = build(td.frame([*window().to_dict("records"), *vote("v9", f, g), *vote("v10", g, f)]),
                 vectors)  # fmt: skip
    assert sets.votes["split"] == 2
    queue = route_for_review(sets.events, td.DS, contested=sets.contested)
    ties = queue[queue["routing_reason"] == "split_vote"].set_index("feedback_id")
    assert set(ties.index) == {"v5-up", "v5-down"}
    assert list(ties.loc["v5-up", "related_feedback_ids"]) == ["v5-down"]
    assert "1 votes each" not in ties.loc["v5-up", "detail"]  # "1 vote each"
    assert ties.loc["v5-up", "priority"] == 3
    # None on another day, and none beyond the day's cap.
    assert "split_vote" not in set(
        route_for_review(sets.events, "2026-11-21", contested=sets.contested)["routing_reason"]
    )
    assert "split_vote" not in set(
        route_for_review(sets.events, td.DS, contested=sets.contested, split_votes=0)[
            "routing_reason"
        ]
    )


def test_a_regressed_cluster_is_measured_on_answers_no_vote_beat(vectors):
    """Voted pairs hold a regressed cluster's requests out; an unbeaten answer is the reference."""
    a, b, c = ("tA", Q, A), ("tB", Q, B), ("tC", Q, C)
    events = td.frame([*vote("v1", a, b), *vote("v2", b, c)])
    events["cluster_id"] = pd.array([5] * len(events), dtype="Int64")
    regressions = pd.DataFrame({"cluster_id": [5], "topic_id": [None], "is_regression": [True]})
    sets = build_tuning_sets(
        events, vectors=vectors, neighbours=exact_neighbours, ds=td.DS, window_start=td.DS,
        regressions=regressions,
    )  # fmt: skip
    assert {x.split for x in sets.of("preference")} == {"test"}  # held out, not trained on
    # B beat C but lost to A: only A is a reference answer.
    assert [(x.source, x.completion) for x in sets.of("eval")] == [("preferred_response", A)]


@pytest.mark.slow
def test_llmfao_votes_become_pairs_the_crowd_agrees_with(vectors, pipeline_env, tmp_path):
    """The real set: every pair is the crowd's majority for its two answers, none is lost."""
    import dagster as dg

    from feedback_pipelines.defs.ingest import landing_ingest
    from feedback_pipelines.resources.settings import PipelineConfig
    from feedback_pipelines.resources.warehouse import WarehouseResource
    from feedback_pipelines.routing.day import read_events, read_window_events
    from feedback_pipelines.routing.tuning.events import prepare_events
    from feedback_pipelines.sources.public_sets import import_public_set
    from feedback_pipelines_tests.fixtures.pipeline import TEST_DATA

    # The votes on the five prompts with the shortest answers (the duplicate gate embeds
    # every answer of a prompt: all 13 cost ~16 s), the rest of the set as it is.
    folder = tmp_path / "llmfao"
    shutil.copytree(TEST_DATA / "real" / "llmfao", folder)
    votes_file = folder / "crowd-comparisons.csv"
    lines = votes_file.read_text().splitlines(keepends=True)
    kept = [line for line in lines[1:] if line.split(",")[1] in {"2", "4", "6", "11", "13"}]
    votes_file.write_text(lines[0] + "".join(kept))
    end = date(2026, 11, 20)
    import_public_set("llmfao", folder, pipeline_env.landing, end)
    resources = {"settings": PipelineConfig(), "warehouse": WarehouseResource()}
    assert dg.materialize([landing_ingest], partition_key=end.isoformat(), resources=resources)
    with pipeline_env.connect() as conn:
        events = read_events(conn, end.isoformat(), end.isoformat(), columns="*")
        lean = read_window_events(conn, end.isoformat(), end.isoformat())  # the asset's read
        answer_of = {  # trace -> (prompt slug, model)
            t: (slug, model)
            for t, slug, model in conn.execute(
                "SELECT trace_id, json_extract_string(metadata, '$.prompt_slug'), model_version "
                "FROM traces"
            ).fetchall()
        }
    sets = build_tuning_sets(
        events, vectors=vectors, neighbours=exact_neighbours, ds=end.isoformat(),
        window_start=end.isoformat(),
    )  # fmt: skip

    # The crowd's votes counted straight from the file: (prompt, winner, loser) -> votes.
    def jsonl(name: str) -> list[dict]:
        return [json.loads(line) for line in (folder / name).read_text().splitlines()]

    api_of = {int(m["id"]): m["api_id"] for m in jsonl("models.jsonl")}
    slug_of = {int(p["id"]): p["slug"] for p in jsonl("prompts.jsonl")}
    tally: Counter = Counter()
    with (folder / "crowd-comparisons.csv").open() as fh:
        for row in csv.DictReader(fh):
            if row["winner"] in ("left", "right"):
                x, y = api_of[int(row["model_x"])], api_of[int(row["model_y"])]
                won, lost = (x, y) if row["winner"] == "left" else (y, x)
                tally[(slug_of[int(row["prompt"])], won, lost)] += 1
    majority = {k for k, n in tally.items() if n > tally[(k[0], k[2], k[1])]}
    split = {k for k, n in tally.items() if n == tally[(k[0], k[2], k[1])] and k[1] < k[2]}
    assert sets.votes["votes"] == sum(tally.values()) == 1779
    assert sum(e.vote is not None for e in sets.events) == 2 * 1779  # both sides of each
    assert [e.vote for e in prepare_events(lean)] == [e.vote for e in sets.events]
    assert sets.votes["split"] == len(split)
    assert sets.votes["compared"] == len(majority) + len(split)

    pairs = [x for x in sets.of("preference") if x.source == "pairwise_vote"]
    for x in pairs:
        (slug, won), (also, lost) = answer_of[x.paired.trace_id], answer_of[x.event.trace_id]
        assert slug == also and (slug, won, lost) in majority, (slug, won, lost)
    # Every decided pair is accounted for: an answer empty in the file, the same text twice,
    # or a pair made (then the export's duplicate gate).
    text_of = {
        (slug_of[r["prompt"]], r["api_id"]): r["result"] or "" for r in jsonl("results.jsonl")
    }
    empty = sum(not text_of[(p, a)].strip() or not text_of[(p, b)].strip() for p, a, b in majority)
    same = sum(
        normalize_text(text_of[(p, a)]) == normalize_text(text_of[(p, b)]) != ""
        for p, a, b in majority
    )
    removed = Counter({k[0]: n for k, n in sets.log.counts.items() if k[1] == "preference"})
    assert (removed["missing_response"], removed["identical_answers"]) == (empty, same)

    # Two models can give one text: pairs of the same two texts that went opposite ways keep
    # the way with more votes over them all (neither on a tie), counted here from the file.
    def texts(p: str, a: str, b: str) -> tuple[str, str, str]:
        return p, normalize_text(text_of[(p, a)]), normalize_text(text_of[(p, b)])

    made = [
        k for k in majority
        if text_of[(k[0], k[1])].strip() and text_of[(k[0], k[2])].strip()
        and normalize_text(text_of[(k[0], k[1])]) != normalize_text(text_of[(k[0], k[2])])
    ]  # fmt: skip
    support: Counter = Counter()
    for p, a, b in made:
        support[texts(p, a, b)] += tally[(p, a, b)]
        support[texts(p, b, a)] += tally[(p, b, a)]
    present = {texts(*k) for k in made}
    both_ways = [k for k in made if texts(k[0], k[2], k[1]) in present]
    lost = [k for k in both_ways if support[texts(*k)] <= support[texts(k[0], k[2], k[1])]]
    assert both_ways and len(made) == len(majority) - empty - same
    assert sets.votes["pairs"] == len(made) - len(lost)  # 8 lost here
    deduplicated = removed["exact_duplicate"] + removed["near_duplicate"]
    assert len(pairs) == sets.votes["pairs"] - deduplicated
    # 335 of 616 here (short answers repeat: "Positive"); on all 13 prompts 1,161 pairs, where
    # reading the votes as thumbs gave 57.
    assert len(pairs) > len(majority) / 2
    export = tmp_path / "export"
    write_export(sets, export)
    assert validate_export(export)[1] == []


def test_a_vote_outweighs_a_liked_and_a_disliked_answer_judged_apart(vectors):
    liked = td.event("liked", "thumbs_up", Q, B, trace="tB")
    disliked = td.event("disliked", "thumbs_down", Q + " ", A, trace="tA")
    alone = build(td.frame([liked, disliked]), vectors)
    assert [(x.source, x.completion) for x in alone.of("preference")] == [("liked_vs_disliked", B)]
    both = build(td.frame([liked, disliked, *vote("v", ("tA", Q, A), ("tB", Q, B))]), vectors)
    assert [(x.source, x.completion) for x in both.of("preference")] == [("pairwise_vote", A)]
    assert both.log.reason("preference", "disliked") == "contradicted_pair"
    # The same texts on other traces (another model gave them): still the vote's way only.
    elsewhere = build(td.frame([liked, disliked, *vote("v", ("tA2", Q, A), ("tB2", Q, B))]),
                      vectors)  # fmt: skip
    assert [(x.source, x.completion) for x in elsewhere.of("preference")] == [("pairwise_vote", A)]
    assert elsewhere.log.reason("preference", "disliked") == "contradicted_pair"
