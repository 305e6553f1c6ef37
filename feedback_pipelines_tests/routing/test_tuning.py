"""The tuning core on hand-built windows: gates, pairs, splits, eval, candidates, files.

Real embedder (MiniLM ONNX), real Qdrant Edge search; no Dagster.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from feedback_pipelines.embedding.onnx import OnnxEmbedder
from feedback_pipelines.routing.tuning import TuningSettings, build_tuning_sets, gates, write_export
from feedback_pipelines.routing.tuning.messages import last_request, normalize_text, parse_messages
from feedback_pipelines.routing.tuning.similarity import TextVectorCache, exact_neighbours
from feedback_pipelines.routing.tuning.validate import validate_export
from feedback_pipelines.vectorstore.neighbours import ClientNeighbours, EdgeNeighbours
from feedback_pipelines_tests.fixtures import tuning as td


@pytest.fixture(scope="module")
def vectors() -> TextVectorCache:
    return TextVectorCache(OnnxEmbedder().embed)


def build(events: pd.DataFrame, vectors, regressions=None, clusters=None, **settings):
    return build_tuning_sets(
        events,
        vectors=vectors,
        neighbours=EdgeNeighbours(),
        ds=td.DS,
        window_start="2026-11-07",
        settings=TuningSettings(**settings),
        regressions=regressions,
        clusters=clusters,
    )


def fids(examples) -> set[str]:
    return {x.event.feedback_id for x in examples}


def test_sft_example_for_each_valid_correction_and_each_gate_counted(vectors):
    sets = build(td.corrections_window(), vectors)
    assert fids(sets.of("sft")) == td.EXPECTED_SFT
    for fid, reason in td.EXPECTED_DROPS.items():
        assert sets.log.reason("sft", fid) == reason, fid
    counts = {r["filter"]: r["removed"].get("sft", 0) for r in sets.log.as_records()}
    expected = pd.Series(td.EXPECTED_DROPS).value_counts().to_dict()
    assert {k: v for k, v in counts.items() if v} == expected
    # The assistant turn is the correction, after the trace's messages.
    ok = next(x for x in sets.of("sft") if x.event.feedback_id == "c-ok-pdf")
    assert [m["role"] for m in ok.prompt] == ["system", "user"]
    assert ok.completion == td.FIX_PDF
    # The conflict is reported for review, with both ids.
    assert [(c.a, c.b) for c in sets.conflicts] == [("c-join-a", "c-join-b")]
    assert sets.conflicts[0].correction_similarity < 0.6


def test_correction_pairs_prefer_the_correction(vectors):
    sets = build(td.corrections_window(), vectors)
    pairs = [x for x in sets.of("preference") if x.source == "correction"]
    assert fids(pairs) == td.EXPECTED_SFT
    for x in pairs:
        assert x.completion == x.event.correction and x.rejected == x.event.response


def test_liked_disliked_pairs_need_same_cluster_context_and_other_trace(vectors):
    sets = build(td.signals_window(), vectors)
    pairs = {
        (x.event.feedback_id, x.paired.feedback_id)
        for x in sets.of("preference")
        if x.source == "liked_vs_disliked"
    }
    # down-pdf is the earliest disliked answer to a near-identical request (0.99) in cluster 1;
    # down-pdf-2 finds the liked answer taken; cluster 3 has no liked answer; same-trace and
    # identical answers never pair.
    assert pairs == {("down-pdf", "up-pdf"), ("rate-1", "rate-5")}
    pdf = next(x for x in sets.of("preference") if x.event.feedback_id == "down-pdf")
    assert pdf.prompt[-1]["content"] == td.R_PDF  # the disliked event's prompt
    assert pdf.completion.startswith("Settings") and pdf.rejected.startswith("Invoices")


def test_unpaired_examples_from_plain_signals(vectors):
    sets = build(td.signals_window(), vectors)
    labels = {x.event.feedback_id: x.label for x in sets.of("unpaired")}
    assert labels == {
        "up-pdf": True,
        "down-pdf": False,
        "down-pdf-2": False,
        "down-other-cluster": False,
        "rate-5": True,
        "rate-1": False,
    }
    dropped = {fid for (d, fid), r in sets.log.dropped.items() if r == "conflicting_labels"}
    assert dropped == {"mixed-up", "mixed-down", "up-same-trace", "down-same-trace"}


def test_splits_keep_near_identical_requests_together_and_are_seeded(vectors):
    rows = []
    for i in range(40):
        request = [td.R_PDF, td.R_PDF_HI, td.R_PDF_SEPT, td.R_TWICE, td.R_COUNT][i % 5]
        rows.append(
            td.event(f"u{i:02d}", "thumbs_up", f"{request}" if i < 5 else f"{request} ({i})",
                     f"answer {i}")
        )  # fmt: skip
    events = td.frame(rows)
    a = build(events, vectors, validation_fraction=0.5, seed=1)
    b = build(events.sample(frac=1, random_state=3), vectors, validation_fraction=0.5, seed=1)
    c = build(events, vectors, validation_fraction=0.5, seed=2)
    split = {x.event.feedback_id: x.split for x in a.of("unpaired")}
    assert split == {x.event.feedback_id: x.split for x in b.of("unpaired")}  # order-free
    assert split != {x.event.feedback_id: x.split for x in c.of("unpaired")}  # seed matters
    assert set(split.values()) == {"train", "validation"}
    # No two requests at or above the grouping cosine sit on different sides.
    examples = a.of("unpaired")
    texts = [last_request(x.prompt) for x in examples]
    vecs = vectors(texts)
    for i, j, _ in exact_neighbours(vecs, a.settings.group_similarity):
        assert examples[i].split == examples[j].split, (texts[i], texts[j])


def test_eval_cases_come_from_regressed_clusters_and_never_train(vectors):
    window = td.full_window()
    sets = build(window, vectors, regressions=td.regression(2))
    assert sets.regressed == [2]
    cases = sets.of("eval")
    assert cases and all(x.event.cluster_id == 2 and x.split == "test" for x in cases)
    assert {x.source for x in cases} <= {"correction", "liked_response"}
    for x in cases:
        assert x.completion in (x.event.correction, x.event.response)
    # Nothing of a held-out group is trained on, and no held-out request is trained on.
    test_groups = {x.group for x in cases}
    trained = [x for x in sets.examples if x.split in ("train", "validation")]
    assert not test_groups & {x.group for x in trained}
    held = {normalize_text(last_request(x.prompt)) for x in cases}
    assert not held & {normalize_text(last_request(x.prompt)) for x in trained}
    train_vecs = vectors([last_request(x.prompt) for x in trained])
    eval_vecs = vectors([last_request(x.prompt) for x in cases])
    assert float((eval_vecs @ train_vecs.T).max()) < sets.settings.group_similarity


def test_a_regressed_theme_holds_out_eval_cases_of_its_subtopics(vectors, tmp_path):
    # The theme row of `version_regressions` (topic_id set, no cluster_id) is all that is
    # flagged: its subtopics are each too small to show the change.
    theme = td.regression(2).assign(cluster_id=None, topic_id=7)
    risen = td.regression(2, delta=0.1).assign(is_regression=False, topic_id=None)
    faded = theme.assign(topic_id=9)  # a theme with no subtopic today: nothing to hold out
    rows = pd.concat([theme, faded, risen, risen.assign(cluster_id=3)], ignore_index=True)
    clusters = pd.DataFrame({"cluster_id": [1, 2, 3], "topic_id": [7, 7, 8],
                             "label": ["invoices", "sql", "misc"]})  # fmt: skip
    themes = pd.DataFrame({"topic_id": [7, 8], "label": ["billing and sql", "other"]})
    sets = build_tuning_sets(
        td.full_window(), vectors=vectors, neighbours=EdgeNeighbours(), ds=td.DS,
        window_start="2026-11-07", regressions=rows, clusters=clusters, themes=themes,
    )  # fmt: skip
    assert sets.regressed == [1, 2]
    # A rise of its own, not flagged: in the flagged theme it is the theme's regression.
    basis = {r["cluster_id"]: r["basis"] for r in sets.ranking}
    assert basis[2] == "theme_regression" and basis[3] == "increase_not_significant"
    assert [(t.topic_id, t.label, t.clusters) for t in sets.regressed_themes] == [
        (7, "billing and sql", (1, 2))
    ]
    held = set(sets.splits.held_out_for.values())
    assert 2 in held and held <= {1, 2}
    # Without the theme's membership nothing is known to have regressed (the old behaviour).
    assert build(td.full_window(), vectors, regressions=theme).regressed == []
    folder = tmp_path / "export"
    write_export(sets, folder)
    cases = [json.loads(x) for x in (folder / "eval.jsonl").read_text().splitlines()]
    assert cases
    assert {(c["metadata"]["regressed_theme"], c["metadata"]["regressed_theme_label"])
            for c in cases} == {(7, "billing and sql")}  # fmt: skip
    card = json.loads((folder / "datacard.json").read_text())
    assert card["clusters"]["regressed_themes"] == [
        {"topic_id": 7, "label": "billing and sql", "clusters": [1, 2]}
    ]
    assert "2 subtopics of the theme “billing and sql”" in (folder / "datacard.md").read_text()


def test_candidates_ranked_by_impact_with_fixes(vectors):
    window = td.full_window()
    clusters = pd.DataFrame({"cluster_id": [1, 2, 3], "label": ["invoices", "sql", "misc"]})
    sets = build(window, vectors, regressions=td.regression(1, delta=0.2, n=100), clusters=clusters,
                 eval_fraction=0.0)  # fmt: skip
    ranking = {r["cluster_id"]: r for r in sets.ranking}
    assert ranking[1]["rank"] == 1 and ranking[1]["basis"] == "regression"
    assert ranking[1]["impact"] == pytest.approx(100 * 0.2)
    # No comparison of cluster 2 in the regression results: impact 0, and the basis says so.
    assert ranking[2]["basis"] == "not_compared" and ranking[2]["impact"] == 0
    assert [r["rank"] for r in sets.ranking] == list(range(1, len(sets.ranking) + 1))
    # Without regression results, clusters compare with the window's negative rate.
    plain = {r["cluster_id"]: r for r in build(window, vectors, clusters=clusters).ranking}
    assert {r["basis"] for r in plain.values()} == {"cluster_vs_window"}
    rates = {c: r["negative_rate"] for c, r in plain.items()}
    top = max(rates, key=lambda c: (plain[c]["impact"], plain[c]["negatives"]))
    assert plain[top]["rank"] == 1 and plain[top]["increase"] > 0
    cases = [r for r in sets.candidates if r["cluster_id"] == 1]
    assert all(r["cluster_label"] == "invoices" for r in cases)
    by_id = {r["feedback_id"]: r for r in cases}
    assert by_id["c-ok-pdf"]["fix"] == td.FIX_PDF
    assert by_id["down-pdf"]["fix_source"] == "liked_response"
    assert "c-unsafe" not in by_id  # unsafe goes to people, not to prompt tuning
    assert by_id["c-pii"]["fix"] is None  # a correction holding PII is never shown as a fix
    assert not gates.has_pii(json.dumps(r, ensure_ascii=False) for r in sets.candidates)
    with_fix = [r["fix"] is not None for r in cases]
    assert with_fix == sorted(with_fix, reverse=True)  # cases with a fix first


def test_pii_gate_is_broader_than_redaction():
    assert gates.pii_hits("call +1 (415) 555-0132 today")
    assert gates.pii_hits("card 4111 1111 1111 1111")
    assert gates.pii_hits("id x4111111111111111")  # no word boundary: redaction misses it
    assert gates.pii_hits("key sk_live_abcdefghijklmnop1234")
    assert not gates.pii_hits("invoice INV-2026-0412 of 2026-11-20, 4,000 miles, ref 48235841")
    assert not gates.pii_hits("order 1234567890123")  # fails Luhn


def test_messages_are_cleaned_for_the_upload_rules():
    raw = json.dumps(
        [
            {"role": "system", "content": ""},
            {"role": "human", "content": [{"type": "text", "text": "hi"}]},
            {"role": "tool", "content": "{}"},
            {"role": "ai", "content": "hello"},
            {"role": "user", "content": "and?", "extra": 1},
        ]
    )
    assert parse_messages(raw) == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "and?"},
    ]


@pytest.mark.filterwarnings("ignore:Local mode performs exact")
@pytest.mark.parametrize("backend", ["edge", "client"])
def test_qdrant_neighbours_agree_with_exact_search(backend):
    from qdrant_client import QdrantClient

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(12, 32))
    x = np.repeat(centres, 25, axis=0) + 0.3 * rng.normal(size=(300, 32))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    search = EdgeNeighbours(limit=4) if backend == "edge" else ClientNeighbours(
        QdrantClient(":memory:"), limit=4
    )  # fmt: skip
    got = search(x, 0.8)
    want = exact_neighbours(x, 0.8)
    assert len(want) > 300  # groups larger than the first limit: the refill path ran
    assert [(i, j) for i, j, _ in got] == [(i, j) for i, j, _ in want]
    assert max(abs(a[2] - b[2]) for a, b in zip(got, want, strict=True)) < 1e-4


def digest(folder) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_export_files_validate_load_and_rewrite_identically(vectors, tmp_path):
    import datasets

    window = td.full_window()
    clusters = pd.DataFrame({"cluster_id": [1, 2, 3], "label": ["invoices", "sql", "misc"]})
    options = {"regressions": td.regression(2), "clusters": clusters}
    sets = build(window, vectors, **options)
    folder = tmp_path / "exports" / f"dt={td.DS}"
    export = write_export(sets, folder)
    first = digest(folder)
    write_export(build(window, vectors, **options), folder)
    assert digest(folder) == first  # a rerun writes the same bytes, and nothing else
    _, problems = validate_export(folder)
    assert problems == []
    card = json.loads((folder / "datacard.json").read_text())
    for entry in card["files"]:
        path = folder / entry["path"]
        if entry["format"] == "jsonl":
            n = len(path.read_text().splitlines())
        else:
            n = len(pd.read_parquet(path))
        assert n == entry["rows"], entry
    assert card["counts"]["sft"] == len((folder / "sft.jsonl").read_text().splitlines())
    assert card["counts"]["eval"] >= 1
    # No feedback id twice in a file, every row traceable to its feedback and trace.
    table = pd.DataFrame(export.table)
    assert not table.duplicated(["file", "feedback_id"]).any()
    assert table["feedback_id"].notna().all() and table["trace_id"].notna().all()
    # TRL shapes load as they are.
    loaded = {}
    for name in ("sft", "preference", "unpaired", "eval"):
        written = {f["split"] for f in card["files"] if f["path"].startswith(f"parquet/{name}/")}
        loaded[name] = datasets.load_dataset("parquet", data_dir=str(folder / "parquet" / name))
        assert set(loaded[name]) == written and written
    assert loaded["sft"]["train"][0]["messages"][-1]["role"] == "assistant"
    assert {"prompt", "chosen", "rejected"} <= set(loaded["preference"]["train"].column_names)
    assert {"prompt", "completion"} <= set(loaded["eval"]["test"].column_names)
    unpaired = pd.read_parquet(folder / "parquet" / "unpaired" / "train.parquet")
    assert unpaired["label"].dtype == bool and {"prompt", "completion"} <= set(unpaired)
    eval_rows = [json.loads(line) for line in (folder / "eval.jsonl").read_text().splitlines()]
    assert all(r["ideal"] and r["input"][-1]["role"] == "user" for r in eval_rows)
    # The card explains the size: every filter with its count, and the sources.
    assert {f["filter"] for f in card["filters"]} >= {"pii", "near_duplicate", "exact_duplicate"}
    assert card["sources"]["input"]["corrections"] == 14
    assert (folder / "datacard.md").read_text().startswith("# feedback_pipelines tuning export")
