"""Operations: the demo's partitions, the instance settings every run gets, the dependency list."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import dagster as dg
import pytest

ROOT = Path(__file__).resolve().parents[1]
# Dagster packages used through configuration or as tools, not imported by the code.
NOT_IMPORTED = {"dagster-webserver", "dagster-dg-cli", "dagster-postgres"}


def test_every_dagster_integration_in_the_dependencies_is_used():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    names = [re.split(r"[=<>\[ ;]", d, maxsplit=1)[0] for d in project["project"]["dependencies"]]
    integrations = [n for n in names if n.startswith("dagster-") and n not in NOT_IMPORTED]
    assert "dagster-duckdb" in integrations  # the warehouse resource
    source = "\n".join(p.read_text() for p in (ROOT / "feedback_pipelines").rglob("*.py"))
    for name in integrations:
        module = name.replace("-", "_")
        assert re.search(rf"^\s*(from|import) {module}\b", source, re.M), f"{name} is unused"
    lock = (ROOT / "requirements.lock").read_text()
    for name in names:
        assert re.search(rf"^{re.escape(name)}==", lock, re.M | re.I), f"{name} not locked"
    assert "dagster-duckdb-pandas" not in lock


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_the_demo_partitions_start_where_the_demo_data_starts(tmp_path):
    out = subprocess.run(
        ["make", "-n", "demo", "DEMO_END=2026-11-20", "DEMO_DAYS=7"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    run = next(line for line in out.splitlines() if "feedback-pipelines run" in line)
    assert "FEEDBACK_START_DATE=${FEEDBACK_START_DATE:-2026-11-14}" in run
    assert "--start 2026-11-14 --end 2026-11-20" in run
    # `make dev` starts the partitions at the first day the landing zone holds.
    for day in ("2026-11-16", "2026-11-19"):
        (tmp_path / "landing" / "feedback" / f"dt={day}").mkdir(parents=True)
    out = subprocess.run(
        ["make", "-n", "dev", f"FEEDBACK_DATA_DIR={tmp_path}"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    dev = next(line for line in out.splitlines() if "dagster dev" in line)
    assert "FEEDBACK_START_DATE=${FEEDBACK_START_DATE:-2026-11-16}" in dev


def test_the_cli_gives_a_new_dagster_home_the_projects_instance_settings(tmp_path, monkeypatch):
    from feedback_pipelines.cli.run import ensure_dagster_home

    home = tmp_path / "home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    assert ensure_dagster_home() == home
    assert (home / "dagster.yaml").read_text() == (ROOT / "dagster.yaml").read_text()
    with dg.DagsterInstance.get() as instance:
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
        assert instance.run_monitoring_enabled  # dead launched runs are failed by the daemon
        assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] > 0
        assert instance.get_settings("telemetry") == {"enabled": False}


@pytest.mark.parametrize(("setting", "huge"), [(None, "False"), ("1", "True"), ("0", "False")])
def test_numpy_keeps_to_small_pages_unless_told_otherwise(setting, huge):
    """Importing the project turns off numpy's huge-page advice, but a set variable wins."""
    env = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    if setting is not None:
        env["NUMPY_MADVISE_HUGEPAGE"] = setting
    code = (
        "import numpy._core.multiarray as m; before = m._get_madvise_hugepage(); "
        "import feedback_pipelines; print(before, m._get_madvise_hugepage())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[1] == huge
    if setting is not None:  # numpy read it (its own default depends on the kernel)
        assert out[0] == str(setting == "1")


_KEPT_MEMORY = """
import os, numpy as np
from feedback_pipelines.malloc import freed_memory_kept
def rss(): return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
n = (256 << 20) // 8
base = rss(); a = np.ones(n); touched = rss() - base; del a; dropped = rss() - base
with freed_memory_kept():
    a = np.ones(n); del a; kept = rss() - base
    b = np.ones(n); again = rss() - base; del b
trimmed = rss() - base
print(touched >> 20, dropped >> 20, kept >> 20, again >> 20, trimmed >> 20)
"""


@pytest.mark.parametrize("setting", [None, "0"])
def test_a_step_reuses_freed_memory_and_gives_it_back_after(setting):
    """glibc unmaps a freed 256 MB array at once; inside the block it is kept and reused."""
    env = {k: v for k, v in os.environ.items() if k != "FEEDBACK_KEEP_FREED_MEMORY"}
    if setting is not None:
        env["FEEDBACK_KEEP_FREED_MEMORY"] = setting
    out = subprocess.run(
        [sys.executable, "-c", _KEPT_MEMORY], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    touched, dropped, kept, again, trimmed = map(int, out)  # MB above the start
    assert touched >= 250 and dropped < 50  # glibc's own way: mapped, unmapped
    assert trimmed < 50  # given back when the block ends
    if setting == "0":  # turned off: glibc's own way inside too
        assert kept < 50
    else:
        assert kept >= 250 and again < kept + 50  # kept, then reused: no second 256 MB
