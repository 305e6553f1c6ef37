"""Fixtures every stage's tests share: an isolated data directory, a generated, ingested week.

The helpers behind them (and the builders of test inputs) live in `fixtures/`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from feedback_pipelines_tests.fixtures.pipeline import (
    WEEK_DAYS,
    WEEK_END,
    WEEK_EVENTS_PER_DAY,
    PipelineEnv,
    make_env,
    run_day,
    week_days,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files with slow tests first, so two workers end on short files, not on one long one.

    `make test` hands whole files to its workers in this order (`--dist loadfile
    --no-loadscope-reorder`); xdist's own order, most tests first, left single-test files of
    90-100 s (fault injection, then two days at once) to run alone at the end.
    """
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow)  # stable: the order within a file stays


@pytest.fixture
def pipeline_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PipelineEnv:
    """An empty, isolated data directory for one test."""
    return make_env(tmp_path, monkeypatch)


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
