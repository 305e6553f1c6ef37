"""LAMP's real writer edits through the pipeline's own path: landing, ingest, tuning exports.

LAMP (salesforce/creativity_eval, BSD-3-Clause) holds professional writers' edits of GPT-4o,
Claude 3.5 Sonnet and Llama-3-70B paragraphs (feedback_pipelines_tests/data/real/lamp/). The sources
importer writes them to the landing zone (one trace per paragraph, one correction per edit);
the real job ingests them and runs `tuning_candidates`; the export rules are checked.
"""

from __future__ import annotations

import json
from datetime import date

import dagster as dg
import pandas as pd
import pytest

from feedback_pipelines.routing.tuning.validate import validate_export
from feedback_pipelines.sources.public_sets import import_public_set
from feedback_pipelines_tests.fixtures.pipeline import TEST_DATA, load_defs, make_env

pytestmark = [pytest.mark.slow]

LAMP = TEST_DATA / "real" / "lamp"
DS = "2026-11-20"


def run_stage(ds: str, asset: str):
    """Run, through the real job, the step that materializes `asset` (whole multi-asset)."""
    defs = load_defs()
    keys = dg.AssetSelection.assets(asset).required_multi_asset_neighbors()
    job = defs.resolve_job_def("daily_pipeline")
    job = job.get_subset(asset_selection=keys.resolve(defs.resolve_asset_graph()))
    return job.execute_in_process(partition_key=ds, raise_on_error=False)


@pytest.fixture(scope="module")
def lamp_run(tmp_path_factory):
    records = {}
    for path in sorted(LAMP.glob("W*_edits.json")):
        for record in json.loads(path.read_text()):
            records[record["id"]] = record
    with pytest.MonkeyPatch.context() as mp:
        env = make_env(tmp_path_factory.mktemp("lamp"), mp)
        import_public_set("lamp", LAMP, env.landing, end=date.fromisoformat(DS), days=1)
        assert run_stage(DS, "feedback_events").success
        result = run_stage(DS, "tuning_candidates")
        assert result.success
    with env.connect() as conn:
        events = conn.execute("SELECT * FROM feedback_events WHERE ds = ?", [DS]).df()
        table = conn.execute("SELECT * FROM tuning_candidates WHERE ds = ?", [DS]).df()
    item = {
        row.feedback_id: records[json.loads(row.metadata)["item"]] for row in events.itertuples()
    }
    folder = env.data / "exports" / f"dt={DS}"
    return records, events, table, item, folder, result


def test_every_edit_arrives_as_a_correction(lamp_run):
    records, events, *_ = lamp_run
    assert len(records) == 150 and len(events) == 150
    assert (events["kind"] == "correction").all() and events["trace_found"].all()
    assert events["trace_id"].nunique() < len(events)  # writers edited the same paragraphs


def test_every_edit_is_an_sft_example_unless_a_gate_says_why(lamp_run):
    _, events, table, item, folder, _ = lamp_run
    excluded = [json.loads(x) for x in (folder / "excluded.jsonl").read_text().splitlines()]
    reason = {x["feedback_id"]: x["filter"] for x in excluded if x["dataset"] == "sft"}
    sft = table[table["dataset"].isin(["sft"])]
    for fid in events["feedback_id"]:
        assert (fid in set(sft["feedback_id"])) != (fid in reason), fid
    assert len(sft) >= 140  # real edits: only a few conflicting or near-duplicate ones
    assert set(reason.values()) <= {"conflicting_corrections", "near_duplicate", "pii"}
    for row in sft.itertuples():
        assert row.completion == item[row.feedback_id]["postedit"]
        assert json.loads(row.prompt)[-1]["content"] == item[row.feedback_id]["instruction"]
        assert row.model_version == item[row.feedback_id]["source"]


def test_the_edited_paragraph_is_preferred_over_the_models(lamp_run):
    _, _, table, item, folder, _ = lamp_run
    pref = table[table["dataset"] == "preference"]
    assert len(pref) == len(table[table["dataset"] == "sft"])
    for row in pref.itertuples():
        assert row.completion == item[row.feedback_id]["postedit"]
        assert row.rejected == item[row.feedback_id]["preedit"]
    first = pref[(pref["file"] == "preference.jsonl") & (pref["line"] == 1)].iloc[0]
    line = json.loads((folder / "preference.jsonl").read_text().splitlines()[0])
    assert line["preferred_output"][0]["content"] == item[first.feedback_id]["postedit"]
    assert line["non_preferred_output"][0]["content"] == item[first.feedback_id]["preedit"]


def test_lamp_exports_pass_the_independent_checker_and_load(lamp_run):
    import datasets

    *_, table, _, folder, result = lamp_run
    _, problems = validate_export(folder)
    assert problems == []
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks["exports_consistent"]
    card = json.loads((folder / "datacard.json").read_text())
    assert card["counts"]["sft"] + card["counts"]["sft_validation"] == int(
        (table["dataset"] == "sft").sum()
    )
    sft = datasets.load_dataset("parquet", data_dir=str(folder / "parquet" / "sft"))
    assert sum(len(s) for s in sft.values()) == int((table["dataset"] == "sft").sum())
    pref = pd.read_parquet(folder / "parquet" / "preference" / "train.parquet")
    assert pref["chosen"].map(len).eq(1).all() and pref["rejected"].map(len).eq(1).all()
