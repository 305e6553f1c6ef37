"""Where the daily job's steps run (FEEDBACK_EXECUTOR), checked by Dagster's own validator."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _dagster(args: list[str], executor: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "FEEDBACK_EXECUTOR": executor, "DAGSTER_HOME": str(home)}
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def _executor_of_the_job(executor: str) -> str:
    code = (
        "from feedback_pipelines.definitions import defs;"
        "print(defs().resolve_job_def('daily_pipeline').executor_def.name)"
    )
    env = {**os.environ, "FEEDBACK_EXECUTOR": executor, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.slow
def test_the_definitions_validate_with_the_kubernetes_executor(tmp_path):
    done = _dagster(["definitions", "validate", "-w", "workspace.yaml"], "k8s", tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        "Validation successful for code location feedback_pipelines." in done.stdout + done.stderr
    )
    assert _executor_of_the_job("k8s") == "k8s"  # the job is built with what the setting names


@pytest.mark.parametrize(
    ("name", "expected"),
    [("k8s", "k8s"), ("multiprocess", "multiprocess"), ("", "in_process"), (" ", "in_process")],
)
def test_the_setting_names_the_executor(monkeypatch, name, expected):
    from feedback_pipelines.defs.automation import EXECUTOR_ENV, job_executor

    monkeypatch.setenv(EXECUTOR_ENV, name)
    assert job_executor().name == expected


def test_an_unknown_executor_is_a_clear_error(tmp_path):
    done = _dagster(["definitions", "validate", "-w", "workspace.yaml"], "ray", tmp_path)
    assert done.returncode != 0
    assert (
        "FEEDBACK_EXECUTOR='ray': expected 'in_process', 'multiprocess' or 'k8s'"
        in done.stdout + done.stderr
    )
