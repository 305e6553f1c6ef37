"""Cumulative snapshot or the day's new examples: a stated choice, and a setting (issue 16, 3).

Each day's export was a snapshot of the 14-day window (on a generated week, 173 of 210 SFT rows
repeated the day before) and nothing said so. The default stays the snapshot, the data card
says so and how to get the other mode; `incremental` exports only the examples new on their
day, so concatenated daily exports hold each example once. The run id the data card names is
the only byte that differs between two runs of the same inputs.
"""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest

from feedback_pipelines.embedding.onnx import OnnxEmbedder
from feedback_pipelines.resources.settings import PipelineConfig
from feedback_pipelines.routing.day import Inputs, run_day, tuning_settings
from feedback_pipelines.routing.tuning import TuningSettings, build_tuning_sets, write_export
from feedback_pipelines.routing.tuning.pipeline import newest_day
from feedback_pipelines.routing.tuning.similarity import TextVectorCache
from feedback_pipelines.routing.tuning.validate import validate_export
from feedback_pipelines.vectorstore.neighbours import EdgeNeighbours
from feedback_pipelines_tests.fixtures import tuning as td

YESTERDAY = "2026-11-19"


@pytest.fixture(scope="module")
def vectors() -> TextVectorCache:
    return TextVectorCache(OnnxEmbedder().embed)


def two_days() -> pd.DataFrame:
    """Corrections and signals yesterday; more of both today, one pair spanning the days."""
    return td.frame(
        [
            td.event("y-pdf", "correction", td.R_PDF, "No.", correction=td.FIX_PDF, ds=YESTERDAY),
            td.event("y-down", "thumbs_down", td.R_COUNT, "Use COUNT(DISTINCT *).", cluster=2,
                     ds=YESTERDAY),
            td.event("y-up", "thumbs_up", td.R_JOIN, "LEFT JOIN keeps all orders.", cluster=2,
                     ds=YESTERDAY),
            td.event("t-twice", "correction", td.R_TWICE, "Never.", correction=td.FIX_TWICE),
            td.event("t-up", "thumbs_up", td.R_COUNT, "GROUP BY customer_id with COUNT(*).",
                     cluster=2),
        ]
    )  # fmt: skip


def build(vectors, ds: str, events: pd.DataFrame, **settings):
    return build_tuning_sets(
        events[events["ds"] <= ds], vectors=vectors, neighbours=EdgeNeighbours(), ds=ds,
        window_start="2026-11-07", settings=TuningSettings(**settings),
    )  # fmt: skip


def ids(sets) -> set[str]:
    return {x.example_id for x in sets.examples}


def test_cumulative_is_the_default_and_the_card_says_so(vectors, tmp_path):
    sets = build(vectors, td.DS, two_days())
    assert {newest_day(x) for x in sets.examples} == {YESTERDAY, td.DS}  # the whole window
    write_export(sets, tmp_path)
    card = json.loads((tmp_path / "datacard.json").read_text())
    assert card["mode"]["export"] == "cumulative"
    assert "snapshot" in card["mode"]["meaning"] and "incremental" in card["mode"]["other_mode"]
    assert "Export mode: cumulative" in (tmp_path / "datacard.md").read_text()


def test_incremental_exports_hold_each_example_once_over_the_days(vectors, tmp_path):
    events = two_days()
    today = build(vectors, td.DS, events, export_mode="incremental")
    assert today.examples and {newest_day(x) for x in today.examples} == {td.DS}
    # The pair of yesterday's disliked answer and today's liked one is new today.
    assert any(x.paired and x.event.feedback_id == "y-down" for x in today.of("preference"))
    before = build(vectors, YESTERDAY, events, export_mode="incremental")
    snapshot = build(vectors, td.DS, events)
    assert not ids(before) & ids(today)
    assert ids(before) | ids(today) == ids(snapshot)
    write_export(today, tmp_path)
    assert validate_export(tmp_path)[1] == []
    card = json.loads((tmp_path / "datacard.json").read_text())
    assert card["mode"]["export"] == "incremental" and card["settings"]["export_mode"] == (
        "incremental"
    )
    left = card["mode"]["earlier_examples_left_out"]
    assert sum(n for d, n in left.items() if d != "candidates") == len(snapshot.examples) - len(
        today.examples
    )
    assert left["sft"] == 1  # yesterday's correction, in yesterday's export


def test_concatenated_incremental_exports_repeat_no_line(vectors, tmp_path):
    """A newer, closer liked answer must not re-form yesterday's pair under new ids."""
    bad, good = "Invoices are only sent by email.", "Settings, Billing, Invoice history, PDF."
    events = td.frame(
        [
            td.event("y-down", "thumbs_down", td.R_PDF, bad, ds=YESTERDAY),
            td.event("y-up", "thumbs_up", td.R_PDF_HI, good, ds=YESTERDAY),  # cosine 0.99
            td.event("t-up", "thumbs_up", td.R_PDF, good),  # today: the very request
        ]
    )
    lines, unpaired = [], []
    for ds in (YESTERDAY, td.DS):
        folder = tmp_path / ds
        write_export(build(vectors, ds, events, export_mode="incremental"), folder)
        for name in ("preference.jsonl", "preference_validation.jsonl"):
            lines += (folder / name).read_text().splitlines()
        for path in (folder / "parquet" / "unpaired").glob("*.parquet"):
            frame = pd.read_parquet(path, columns=["prompt", "completion", "label"])
            unpaired += [json.dumps(r, default=str) for r in frame.to_dict("records")]
    assert len(lines) == 1 and len(unpaired) == len(set(unpaired)) == 2


def test_the_setting_reaches_the_pipeline_and_bad_values_fail():
    config = PipelineConfig(export_mode="incremental", export_license="CC-BY-4.0")
    assert tuning_settings(config) == TuningSettings(export_mode="incremental", license="CC-BY-4.0")
    assert tuning_settings(PipelineConfig()) == TuningSettings()
    with pytest.raises(ValueError, match="export_mode"):
        TuningSettings(export_mode="daily")


def test_the_environment_sets_the_mode_and_a_bad_one_fails_at_load(monkeypatch):
    from feedback_pipelines.defs.resources import pipeline_settings

    monkeypatch.delenv("FEEDBACK_EXPORT_MODE", raising=False)
    monkeypatch.delenv("FEEDBACK_EXPORT_LICENSE", raising=False)
    assert tuning_settings(pipeline_settings()) == TuningSettings()
    monkeypatch.setenv("FEEDBACK_EXPORT_MODE", " incremental ")
    monkeypatch.setenv("FEEDBACK_EXPORT_LICENSE", "CC-BY-4.0")
    assert tuning_settings(pipeline_settings()) == TuningSettings(
        export_mode="incremental", license="CC-BY-4.0"
    )
    monkeypatch.setenv("FEEDBACK_EXPORT_MODE", "daily")
    with pytest.raises(ValueError, match="FEEDBACK_EXPORT_MODE='daily': expected one of cumul"):
        pipeline_settings()


def digest(folder) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_only_the_run_id_differs_between_runs(vectors, tmp_path):
    embed, events = OnnxEmbedder(), two_days()
    written = {}
    for k, run in enumerate(("run-1", "run-2", None, None)):
        folder = tmp_path / f"{run}-{k}"
        run_day(
            Inputs(events=events), td.DS, folder, embed=embed.embed, model_id=embed.model_id,
            neighbours=EdgeNeighbours(), window_days=14, write_queue=False, run_id=run,
        )  # fmt: skip
        export = folder / "exports" / f"dt={td.DS}"
        card = json.loads((export / "datacard.json").read_text())
        assert card["generator"]["run_id"] == run
        written.setdefault(run, []).append(digest(export))
    assert written[None][0] == written[None][1]  # no run: the same bytes every time
    one, two = written["run-1"][0], written["run-2"][0]
    differ = {name for name in one if one[name] != two[name]}
    assert differ == {"datacard.json", "datacard.md", "README.md"}
    masked = [
        (tmp_path / f"{run}-{k}" / "exports" / f"dt={td.DS}" / "datacard.json")
        .read_text()
        .replace(run, "")
        for k, run in enumerate(("run-1", "run-2"))
    ]
    assert masked[0] == masked[1]
