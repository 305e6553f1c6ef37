"""Issue 19: two days run at once give the tables and points of one day after the other.

The earlier day runs in one process, frozen (SIGSTOP) as its embedding shard starts; the later
day starts beside it with the multiprocess executor and two shards, embeds while the earlier day
is still embedding, then waits for it before it writes (defs.ordering).
The end state must equal a one-day-after-the-other run in one process with one shard: every
warehouse table row for row (vectors bit for bit) and every point id.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import dagster as dg
import pytest

from feedback_pipelines_tests.fixtures.cli import (
    DAY,
    ROOT,
    assert_same_end_state,
    cli,
    environment,
    generate,
    instance_of,
    run,
    run_messages,
)

pytestmark = pytest.mark.slow

EARLIER = "2026-11-19"
SHARD = "feedback_embeddings.embed_shard[shard_0]"


def _start(env: dict, day: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*cli(), "run", "--start", day, "--end", day, "--wait-timeout", "300"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def _unlocked(paths: list[str]) -> bool:
    """Whether nobody holds a lock on these SQLite files (an exclusive lock is free)."""
    for path in paths:
        if not os.path.exists(path):
            continue
        conn = sqlite3.connect(path, timeout=0.5, isolation_level=None)
        try:
            conn.execute("BEGIN EXCLUSIVE")
            conn.execute("ROLLBACK")
        except sqlite3.OperationalError:
            return False
        finally:
            conn.close()
    return True


def _stop_unlocked(pid: int, paths: list[str]) -> None:
    """SIGSTOP `pid` at a moment it holds no lock on the event log's files.

    Frozen in the middle of writing an event it would keep the run's SQLite file locked, and
    every reader (this test, the other run) would fail after SQLite's busy timeout (CI did).
    """
    for _ in range(200):
        os.kill(pid, signal.SIGSTOP)
        if _unlocked(paths):
            return
        os.kill(pid, signal.SIGCONT)
        time.sleep(0.01)
    raise AssertionError("the step's process always held the event log's lock")


def _freeze_step(env: dict, run_id: str, step: str, proc: subprocess.Popen) -> int:
    """SIGSTOP the process of `step` as it starts, while it holds no pool slot; its pid."""
    deadline = time.monotonic() + 300
    with instance_of(env) as instance:
        storage = instance.event_log_storage
        files = [storage.path_for_shard(run_id), storage.path_for_shard("index")]
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read()
            for record in instance.get_records_for_run(run_id).records:
                event = record.event_log_entry.dagster_event
                if event is not None and event.step_key == step and event.pid:
                    _stop_unlocked(event.pid, files)
                    ended = instance.get_records_for_run(
                        run_id, of_type=dg.DagsterEventType.STEP_SUCCESS
                    ).records
                    assert step not in {r.event_log_entry.step_key for r in ended}, "too late"
                    pool = instance.event_log_storage.get_concurrency_info("stores")
                    held = pool.claimed_slots + pool.pending_steps
                    assert run_id not in {s.run_id for s in held}, "frozen in the pool"
                    return event.pid
            time.sleep(0.05)
    raise AssertionError(f"{step} never started")


def _run_of(env: dict, day: str) -> str:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with instance_of(env) as instance:
            runs = instance.get_run_records(dg.RunsFilter(tags={"dagster/partition": day}))
        if runs:
            return runs[0].dagster_run.run_id
        time.sleep(0.3)
    raise AssertionError(f"no run of {day}")


def _step_times(instance, run_id: str, kind: dg.DagsterEventType) -> dict[str, float]:
    records = instance.get_records_for_run(run_id, of_type=kind).records
    return {r.event_log_entry.step_key: r.event_log_entry.timestamp for r in records}


def test_two_days_at_once_write_what_one_after_the_other_writes(tmp_path):
    landing = generate(tmp_path / "gen", days=2)
    one_by_one = environment(tmp_path / "sequential", landing)
    done = run(one_by_one, "--start", EARLIER, "--end", DAY)
    assert done.returncode == 0, done.stdout + done.stderr

    env = environment(tmp_path / "parallel", landing)
    home = Path(env["DAGSTER_HOME"])
    home.mkdir(parents=True)
    config = (ROOT / "dagster.yaml").read_text()
    assert "max_concurrent_runs: 1" in config
    (home / "dagster.yaml").write_text(
        config.replace("max_concurrent_runs: 1", "max_concurrent_runs: 2")
    )
    first = _start(env, EARLIER)
    earlier_run = _run_of(env, EARLIER)
    frozen = _freeze_step(env, earlier_run, SHARD, first)  # the earlier day is embedding
    try:
        second = _start(
            {**env, "FEEDBACK_EXECUTOR": "multiprocess", "FEEDBACK_EMBED_SHARDS": "2"}, DAY
        )
        later_run = _run_of(env, DAY)
        deadline = time.monotonic() + 300
        while not any(m.startswith(f"waits for {EARLIER}") for m in run_messages(env, later_run)):
            assert second.poll() is None, second.stdout.read()
            assert time.monotonic() < deadline, "the later day never waited for the earlier one"
            time.sleep(0.3)
    finally:
        os.kill(frozen, signal.SIGCONT)
    out_first, _ = first.communicate(timeout=600)
    out_second, _ = second.communicate(timeout=600)
    assert first.returncode == 0, out_first
    assert second.returncode == 0, out_second
    assert "failed, retrying" not in out_second  # waiting for a day is not a failure

    with instance_of(env) as instance:
        done_later = _step_times(instance, later_run, dg.DagsterEventType.STEP_SUCCESS)
        started_earlier = _step_times(instance, earlier_run, dg.DagsterEventType.STEP_START)
    # Both shards of the later day finished before the earlier day committed its own vectors.
    shards = [done_later[f"feedback_embeddings.embed_shard[shard_{i}]"] for i in (0, 1)]
    assert max(shards) < started_earlier["feedback_embeddings.commit_embeddings"]

    assert_same_end_state(env, one_by_one)
