"""The data card says what an ML engineer needs, and every number in it has a file (issue 16, 4).

It lacked license, intended use, known limitations, label balance, loading snippets, the run
and package version; its `counts` listed `unpaired` and `candidates` with no JSONL file, its
splits an SFT test split with no file, and every cluster said "basis: regression" though only
one had regressed.
"""

from __future__ import annotations

import json
from importlib import metadata

import pandas as pd
import pyarrow.parquet as pq
import pytest

from feedback_pipelines.embedding.onnx import OnnxEmbedder
from feedback_pipelines.routing.tuning import TuningSettings, build_tuning_sets, write_export
from feedback_pipelines.routing.tuning.similarity import TextVectorCache
from feedback_pipelines.routing.tuning.validate import validate_export
from feedback_pipelines.vectorstore.neighbours import EdgeNeighbours
from feedback_pipelines_tests.fixtures import tuning as td

CLUSTERS = pd.DataFrame({"cluster_id": [1, 2, 3], "label": ["invoices", "sql", "misc"]})


@pytest.fixture(scope="module")
def vectors() -> TextVectorCache:
    return TextVectorCache(OnnxEmbedder().embed)


def regressions() -> pd.DataFrame:
    """Cluster 1 regressed; 2 rose a little (not flagged); 3 fell."""
    common = {
        "window_end": td.DS,
        "metric": "negative_rate",
        "n_candidate": 80,
        "candidate_version": "nimbus-2026-11",
        "baseline_version": "nimbus-2026-10",
    }
    return pd.DataFrame([
        {**common, "cluster_id": 1, "delta": 0.25, "is_regression": True},
        {**common, "cluster_id": 2, "delta": 0.02, "is_regression": False},
        {**common, "cluster_id": 3, "delta": -0.05, "is_regression": False},
    ])  # fmt: skip


@pytest.fixture(scope="module")
def exported(vectors, tmp_path_factory):
    settings = TuningSettings(license="CC-BY-4.0 (test data)", validation_fraction=0.3)
    sets = build_tuning_sets(
        td.full_window(), vectors=vectors, neighbours=EdgeNeighbours(), ds=td.DS,
        window_start="2026-11-07", settings=settings, regressions=regressions(),
        clusters=CLUSTERS,
    )  # fmt: skip
    folder = tmp_path_factory.mktemp("card") / "exports" / f"dt={td.DS}"
    write_export(sets, folder)
    return sets, folder, json.loads((folder / "datacard.json").read_text())


def test_license_use_limitations_version_and_run(exported):
    _, folder, card = exported
    assert card["license"] == "CC-BY-4.0 (test data)"  # from the setting
    assert card["intended_use"] and all(isinstance(u, str) and u for u in card["intended_use"])
    limits = " ".join(card["known_limitations"])
    assert "feedback" in limits and "personal data" in limits
    assert card["generator"] == {
        "package": "feedback_pipelines",
        "version": metadata.version("feedback_pipelines"),
        "run_id": None,  # outside an orchestrator run: neutral, so reruns compare equal
    }
    md = (folder / "datacard.md").read_text()
    for words in (
        "CC-BY-4.0 (test data)",
        "Known limitations",
        "Label balance",
        "load_dataset",
        "openai fine-tuning jobs create",
        card["generator"]["version"],
    ):
        assert words in md, words


def test_counts_are_the_jsonl_files_and_parquet_rows_are_named_as_such(exported):
    _, folder, card = exported
    on_disk = {
        p.stem: len(p.read_text().splitlines())
        for p in folder.glob("*.jsonl")
        if p.stem != "excluded"
    }
    assert card["counts"] == on_disk  # no `unpaired`, no `candidates`: they have no such file
    for dataset, splits in card["parquet_rows"].items():
        for split, n in splits.items():
            assert pq.read_metadata(folder / "parquet" / dataset / f"{split}.parquet").num_rows == n
    assert card["parquet_rows"]["unpaired"]
    assert card["candidates"]["cases"] == sum(
        len(p.read_text().splitlines()) for p in (folder / "candidates").glob("cluster=*.jsonl")
    )
    assert validate_export(folder)[1] == []


def test_every_split_in_the_card_has_a_file(exported):
    sets, _, card = exported
    for dataset, splits in card["splits"].items():
        for split, n in splits.items():
            assert any(
                f["dataset"] == dataset and f["split"] == split and f["rows"] == n
                for f in card["files"]
            ), (dataset, split)
    assert sets.of("sft", "test")  # held out: they are the eval cases' references ...
    assert "test" not in card["splits"]["sft"]  # ... not an SFT file
    assert card["held_out_as_eval"]["sft"] == len(sets.of("sft", "test"))


def test_label_balance_matches_the_unpaired_files(exported):
    _, folder, card = exported
    balance = card["label_balance"]["unpaired"]
    assert balance
    for split, counts in balance.items():
        labels = pq.read_table(folder / "parquet" / "unpaired" / f"{split}.parquet")["label"]
        values = labels.to_pylist()
        assert counts == {"true": values.count(True), "false": values.count(False)}


def test_the_basis_of_each_cluster_is_true(exported, vectors):
    sets, _, card = exported
    basis = {r["cluster_id"]: r["basis"] for r in card["clusters"]["ranking"]}
    assert sets.regressed == [1]
    assert basis == {1: "regression", 2: "increase_not_significant", 3: "no_increase"}
    plain = build_tuning_sets(
        td.full_window(), vectors=vectors, neighbours=EdgeNeighbours(), ds=td.DS,
        window_start="2026-11-07", regressions=regressions().iloc[:1], clusters=CLUSTERS,
    )  # fmt: skip
    assert {r["cluster_id"]: r["basis"] for r in plain.ranking} == {
        1: "regression", 2: "not_compared", 3: "not_compared"
    }  # fmt: skip
    assert {r["cluster_id"] for r in card["clusters"]["ranking"] if r["regressed"]} == {1}


def test_the_checker_rejects_counts_and_splits_without_a_file(exported, tmp_path):
    _, folder, card = exported
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    card = {**card, "counts": {**card["counts"], "unpaired": 10},
            "splits": {**card["splits"], "sft": {**card["splits"]["sft"], "test": 2}}}  # fmt: skip
    (copy / "datacard.json").write_text(json.dumps(card))
    problems = "\n".join(validate_export(copy)[1])
    assert "counts.unpaired has no unpaired.jsonl" in problems
    assert "splits.sft.test (2 rows) matches no file" in problems
