"""Shared fixtures: an isolated data directory, and a generated, ingested week.

Every test that runs the pipeline points FEEDBACK_DATA_DIR (and DAGSTER_HOME) at its own tmp
folder; the resources resolve their paths from the environment at run time.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")

# Copies of the real public files the tests read, with their licenses (see data/README.md).
TEST_DATA = Path(__file__).resolve().parent / "data"

# The generated week the shared fixture builds (small, so the suite stays fast).
WEEK_END = date(2026, 11, 20)
WEEK_DAYS = 7
WEEK_EVENTS_PER_DAY = 600


@dataclass
class PipelineEnv:
    """Paths of one isolated pipeline: data dir, landing zone, warehouse, Dagster home."""

    data: Path
    landing: Path
    warehouse: Path
    dagster_home: Path

    def connect(self, read_only: bool = True) -> duckdb.DuckDBPyConnection:
        """Open the warehouse (read-only by default, for assertions)."""
        return duckdb.connect(str(self.warehouse), read_only=read_only)


def make_env(root: Path, monkeypatch: pytest.MonkeyPatch | None = None) -> PipelineEnv:
    """Point the environment at a fresh data dir under root."""
    data = root / "data"
    home = root / "dagster_home"
    for p in (data, home):
        p.mkdir(parents=True, exist_ok=True)
    values = {
        "FEEDBACK_DATA_DIR": str(data),
        "DAGSTER_HOME": str(home),
        "FEEDBACK_PSEUDONYM_KEY": "test-secret-key",
    }
    for key, value in values.items():
        if monkeypatch is not None:
            monkeypatch.setenv(key, value)
        else:
            os.environ[key] = value
    if monkeypatch is not None:
        monkeypatch.delenv("FEEDBACK_LANDING_DIR", raising=False)
    return PipelineEnv(data, data / "landing", data / "warehouse.duckdb", home)


@pytest.fixture
def pipeline_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PipelineEnv:
    """An empty, isolated data directory for one test."""
    return make_env(tmp_path, monkeypatch)


def load_defs() -> dg.Definitions:
    """The project's real Definitions."""
    from feedback_pipelines.definitions import defs

    return defs()


def run_day(ds: str, selection: str | None = None) -> dg.ExecuteInProcessResult:
    """Run the real daily job (or a selection of it) for one partition, in process."""
    defs = load_defs()
    job = defs.resolve_job_def("daily_pipeline")
    if selection is not None:
        job = job.get_subset(asset_selection={dg.AssetKey(k) for k in selection.split(",")})
    return job.execute_in_process(partition_key=ds, raise_on_error=False)


def week_days(end: date = WEEK_END, days: int = WEEK_DAYS) -> list[str]:
    """The partition keys of the generated week."""
    return [(end - timedelta(days=days - 1 - i)).isoformat() for i in range(days)]


@pytest.fixture(scope="session")
def generated_landing(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A generated week of landing data (not ingested) and its truth, shared by the session."""
    from feedback_pipelines.sources.synthetic import generate

    root = tmp_path_factory.mktemp("generated")
    truth = generate(
        root / "landing", WEEK_DAYS, WEEK_END, seed=11, events_per_day=WEEK_EVENTS_PER_DAY
    )
    return root / "landing", truth


@pytest.fixture(scope="session")
def ingested_week(
    tmp_path_factory: pytest.TempPathFactory, generated_landing
) -> tuple[PipelineEnv, dict]:
    """The generated week ingested (ingest assets only) into its own warehouse."""
    import shutil

    landing, truth = generated_landing
    root = tmp_path_factory.mktemp("ingested")
    saved = {
        k: os.environ.get(k)
        for k in ("FEEDBACK_DATA_DIR", "DAGSTER_HOME", "FEEDBACK_PSEUDONYM_KEY")
    }
    env = make_env(root)
    shutil.copytree(landing, env.landing)
    try:
        for ds in week_days():
            result = run_day(ds, selection="traces,feedback_events,quarantine,ingest_files")
            assert result.success, ds
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return env, truth


def read_truth(landing: Path) -> dict:
    """The generator's planted truth next to a landing zone."""
    return json.loads((landing / "truth.json").read_text())
