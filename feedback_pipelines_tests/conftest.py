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


# The files on the generated week (the fixtures below): `make test` hands them to one worker as
# one unit, so the week is built once and its texts embedded once (`fixtures/vectors.py`).
WEEK_FIXTURES = {"generated_landing", "ingested_week"}
WEEK_FILES = frozenset(
    f"feedback_pipelines_tests/{name}.py"
    for name in (
        "clustering/test_clustering_assets",
        "ingest/test_generated",
        "recall/test_retention",
        "recall/test_search",
        "recall/test_semantic_assets",
        "regressions/test_regressions_assets",
        "reporting/test_report_runs",
        "reporting/test_reporting",
        "routing/test_block_neighbours",
        "routing/test_lean_read",
        "routing/test_routing_scale",
        "routing/test_tuning_assets",
    )
)


@pytest.hookimpl(optionalhook=True)  # an xdist hook: `-p no:xdist` still runs
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """`--dist loadfile`, with the files on the generated week as one unit of work."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class Scheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "generated-week" if path in WEEK_FILES else path

    return Scheduling(config, log)


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]):
    """Slow files first, each file's tests together; every file on the week in `WEEK_FILES`.

    `make test` hands whole files (and the week's files as one unit) to its workers in this
    order (`--dist loadfile --no-loadscope-reorder`); xdist's own order, most tests first, left
    single-test files of 90-100 s (fault injection, then two days at once) to run alone at the
    end. Sorted after pytest's own reordering, which pulls the tests of a session fixture
    together across files: in a unit of several files that would tear a module's fixtures down
    and build them again.
    """
    yield
    week = {
        item.nodeid.split("::", 1)[0] for item in items if WEEK_FIXTURES & set(item.fixturenames)
    }
    if week - WEEK_FILES:
        raise pytest.UsageError(f"add to conftest.WEEK_FILES: {sorted(week - WEEK_FILES)}")
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    first: dict[Path, int] = {}
    for i, item in enumerate(items):
        first.setdefault(item.path, i)
    items.sort(key=lambda item: (item.path not in slow, first[item.path]))  # stable


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
