"""No example twice in an export, exactly or nearly, whichever builders made it (issue 16, 1).

A correction and an answer other users liked can be the same text: the correction pair and
the liked-vs-disliked pair were then one line twice in preference.jsonl, because each builder
deduplicated only its own examples. The gate now runs over the whole export, and the project's
checker (`validate.py`) flags copies in every file and across the train/validation files.
"""

from __future__ import annotations

import itertools
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from feedback_pipelines.embedding.onnx import OnnxEmbedder
from feedback_pipelines.routing.tuning import TuningSettings, build_tuning_sets, write_export
from feedback_pipelines.routing.tuning.messages import last_request
from feedback_pipelines.routing.tuning.similarity import TextVectorCache
from feedback_pipelines.routing.tuning.validate import validate_export
from feedback_pipelines.vectorstore.neighbours import EdgeNeighbours
from feedback_pipelines_tests.fixtures import tuning as td

BAD = "Invoices can't be downloaded."


@pytest.fixture(scope="module")
def vectors() -> TextVectorCache:
    return TextVectorCache(OnnxEmbedder().embed)


def repeated_corrections():
    """A correction, and other users liking that very text (or a paraphrase) over BAD."""
    return td.frame(
        [
            td.event("c1", "correction", td.R_PDF, BAD, correction=td.FIX_PDF, trace="tc1"),
            td.event("down1", "thumbs_down", td.R_PDF, BAD, trace="td1"),
            td.event("up1", "thumbs_up", td.R_PDF, td.FIX_PDF, trace="tu1"),
            td.event("down2", "thumbs_down", td.R_PDF_HI, BAD, trace="td2"),
            td.event("up2", "thumbs_up", td.R_PDF_HI, td.FIX_PDF_PARA, trace="tu2"),
        ]
    )


def lines(folder, *names):
    return [(n, line) for n in names for line in (folder / n).read_text().splitlines()]


def test_one_copy_of_each_example_across_builders_and_files(vectors, tmp_path):
    settings = TuningSettings()
    sets = build_tuning_sets(
        repeated_corrections(), vectors=vectors, neighbours=EdgeNeighbours(), ds=td.DS,
        window_start=td.DS, settings=settings,
    )  # fmt: skip
    folder = tmp_path / "export"
    write_export(sets, folder)
    assert validate_export(folder)[1] == []
    # Exact: no line twice in any file, nor across a dataset's train and validation files.
    for dataset in ("sft", "preference"):
        names = (f"{dataset}.jsonl", f"{dataset}_validation.jsonl")
        rows = [line for _, line in lines(folder, *names)]
        assert len(rows) == len(set(rows)), dataset
    # Near: no two examples of a dataset whose request and targets all reach the threshold.
    for dataset in ("sft", "preference", "unpaired"):
        examples = sets.of(dataset)
        for a, b in itertools.combinations(examples, 2):
            texts = [last_request(a.prompt), last_request(b.prompt), a.completion, b.completion]
            if a.rejected is not None:
                texts += [a.rejected, b.rejected]
            v = vectors(texts)
            sims = [float(v[i] @ v[i + 1]) for i in range(0, len(texts), 2)]
            near = min(sims) >= settings.near_duplicate and a.label == b.label
            assert not near, (dataset, a.event.feedback_id, b.event.feedback_id, sims)
    # The correction's pair is the one kept (a user's own words); the copies are counted.
    assert [(x.source, x.event.feedback_id) for x in sets.of("preference")] == [
        ("correction", "c1")
    ]
    assert sets.log.reason("preference", "down1") == "exact_duplicate"
    assert sets.log.reason("preference", "down2") == "near_duplicate"
    assert {x.event.feedback_id for x in sets.of("unpaired")} == {"down1", "up1"}
    assert sets.log.reason("unpaired", "up2") == "near_duplicate"
    assert sets.log.reason("unpaired", "down2") == "near_duplicate"
    card = json.loads((folder / "datacard.json").read_text())
    removed = {f["filter"]: f["removed"] for f in card["filters"]}
    assert removed["exact_duplicate"].get("preference") == 1
    assert removed["near_duplicate"].get("preference") == 1
    assert removed["near_duplicate"].get("unpaired") == 2


def _chat(answer: str) -> dict:
    return {"messages": [{"role": "user", "content": td.R_PDF}, {"role": "assistant",
            "content": answer}]}  # fmt: skip


def _pair(chosen: str, rejected: str) -> dict:
    return {
        "input": {"messages": [{"role": "user", "content": td.R_PDF}]},
        "preferred_output": [{"role": "assistant", "content": chosen}],
        "non_preferred_output": [{"role": "assistant", "content": rejected}],
    }


def test_the_checker_flags_copies_in_every_file_and_across_splits(tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    files = {
        "sft.jsonl": [_chat(td.FIX_PDF), _chat(td.FIX_TWICE)],
        "sft_validation.jsonl": [_chat(td.FIX_PDF)],  # the same example in train and validation
        "preference.jsonl": [_pair(td.FIX_PDF, BAD)],
        "preference_validation.jsonl": [_pair(td.FIX_PDF, BAD), _pair(BAD, td.FIX_PDF)],
        "eval.jsonl": [  # an eval case that is a training example
            {"input": [{"role": "user", "content": td.R_PDF}], "ideal": td.FIX_TWICE},
            {"input": [{"role": "user", "content": td.R_COUNT}], "ideal": td.FIX_COUNT},
            {"input": [{"role": "user", "content": td.R_COUNT}], "ideal": td.FIX_COUNT},
        ],
    }
    for name, rows in files.items():
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    counts = {name.removesuffix(".jsonl"): len(rows) for name, rows in files.items()}
    (folder / "datacard.json").write_text(json.dumps({"counts": counts, "files": []}))
    prompt = [{"role": "user", "content": td.R_PDF}]
    row = {"prompt": prompt, "completion": [{"role": "assistant", "content": BAD}], "label": False}
    for split in ("train", "validation"):
        path = folder / "parquet" / "unpaired" / f"{split}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist([row, row] if split == "train" else [row]), path)
    _, problems = validate_export(folder)
    text = "\n".join(problems)
    assert "sft_validation.jsonl:1: duplicate of sft.jsonl:1" in text
    assert "preference_validation.jsonl:1: duplicate of preference.jsonl:1" in text
    # the same two answers the other way: one training set must not teach both
    assert (
        "preference_validation.jsonl:2: the same two answers the other way in preference.jsonl:1"
        in text
    )
    assert "eval.jsonl:3: duplicate example" in text
    assert "eval.jsonl:1: duplicate of sft.jsonl:2" in text
    assert "parquet/unpaired/train.parquet:2: duplicate example" in text
    train, validation = "parquet/unpaired/train.parquet", "parquet/unpaired/validation.parquet"
    assert f"{validation}:1: duplicate of {train}:1" in text
