"""Both folders of an export load with the real `datasets` library (issue 16, 5).

`load_dataset("json", data_dir=<export>)` failed: it reads every file below the folder, the
Parquet copies included, as one dataset. The export root now carries a dataset card whose
`configs` name each JSONL dataset's files (the contract's file names stay at the root), and
`parquet/` one for the Parquet files; each `parquet/<dataset>/` still loads on its own.
"""

from __future__ import annotations

import json

import datasets  # locked in the dev extra: the ML engineers' loader, for real
import pandas as pd
import pytest

from feedback_pipelines.embedding.onnx import OnnxEmbedder
from feedback_pipelines.routing.tuning import TuningSettings, build_tuning_sets, write_export
from feedback_pipelines.routing.tuning.similarity import TextVectorCache
from feedback_pipelines.vectorstore.neighbours import EdgeNeighbours
from feedback_pipelines_tests.fixtures import tuning as td


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    sets = build_tuning_sets(
        td.full_window(), vectors=TextVectorCache(OnnxEmbedder().embed),
        neighbours=EdgeNeighbours(), ds=td.DS, window_start="2026-11-07",
        settings=TuningSettings(validation_fraction=0.3), regressions=td.regression(2),
        clusters=pd.DataFrame({"cluster_id": [1, 2, 3], "label": ["a", "b", "c"]}),
    )  # fmt: skip
    root = tmp_path_factory.mktemp("loading")
    folder = root / "exports" / f"dt={td.DS}"
    write_export(sets, folder)
    return root, folder, json.loads((folder / "datacard.json").read_text())


def rows(folder, path: str) -> int:
    return len((folder / path).read_text().splitlines())


def test_the_export_root_loads_each_jsonl_dataset_by_name(export):
    _, folder, card = export
    names = {"sft": "sft", "preference": "preference", "eval": "eval"}
    for config, stem in names.items():
        loaded = datasets.load_dataset(str(folder), config)
        for split, ds in loaded.items():
            name = stem if split in ("train", "test") else f"{stem}_{split}"
            assert len(ds) == card["counts"][name] == rows(folder, f"{name}.jsonl"), name
    default = datasets.load_dataset(str(folder))  # SFT, the first dataset
    assert default["train"].column_names == ["messages"]
    assert default["train"][0]["messages"][-1]["role"] == "assistant"
    pairs = datasets.load_dataset(str(folder), "preference")["train"]
    assert {"input", "preferred_output", "non_preferred_output"} <= set(pairs.column_names)


def test_the_parquet_folder_loads_each_dataset_by_name_and_alone(export):
    _, folder, card = export
    assert set(card["parquet_rows"]) == {"sft", "preference", "unpaired", "eval"}
    for name, splits in card["parquet_rows"].items():
        by_config = datasets.load_dataset(str(folder / "parquet"), name)
        alone = datasets.load_dataset("parquet", data_dir=str(folder / "parquet" / name))
        for loaded in (by_config, alone):
            assert {s: len(d) for s, d in loaded.items()} == splits, name
    trl = datasets.load_dataset(str(folder / "parquet"), "preference")["train"]
    assert {"prompt", "chosen", "rejected"} <= set(trl.column_names)


def test_the_data_card_snippet_runs_as_written(export, monkeypatch):
    root, folder, card = export
    monkeypatch.chdir(root)  # the snippet's paths start at the data directory
    scope: dict = {}
    exec(card["loading"]["datasets"], scope)
    assert len(scope["sft"]["train"]) == card["counts"]["sft"]
    assert len(scope["cases"]["test"]) == card["counts"]["eval"]
    assert len(scope["trl_unpaired"]["test"]) == card["parquet_rows"]["unpaired"]["test"]
    assert "openai files upload sft.jsonl --purpose fine-tune" in card["loading"]["openai_cli"]
    assert "--method.type dpo" in card["loading"]["openai_cli"]
    readme = (folder / "README.md").read_text()
    assert readme.startswith("---\nconfigs:\n") and (folder / "datacard.md").read_text() in readme
