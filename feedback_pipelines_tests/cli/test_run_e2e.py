"""`feedback-pipelines run` in a subprocess: one backfill, an idle sensor, bounded waits.

And issue 19's parallel days: the earlier day runs in one process, frozen (SIGSTOP) as its
embedding shard starts; the later day starts beside it with the multiprocess executor and two
shards, embeds while the earlier day is still embedding, then waits for it before it writes
(defs.ordering). The end state must equal the backfill's, whose days ran one after the other in
one process with one shard: every warehouse table row for row (vectors bit for bit) and every
point id.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import time
from dataclasses import dataclass
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


@dataclass
class Backfill:
    """`run` over 2026-11-18..20 as one backfill: two generated days, the 18th has no input."""

    env: dict
    first_line: str
    first_line_seconds: float
    out: str
    err: str
    returncode: int


@pytest.fixture(scope="module")
def backfill(tmp_path_factory) -> Backfill:
    root = tmp_path_factory.mktemp("backfill")
    env = environment(root / "run", generate(root / "gen", days=2))
    started = time.monotonic()
    proc = subprocess.Popen(
        [*cli(), "run", "--start", "2026-11-18", "--end", DAY],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    first = proc.stdout.readline()
    seconds = time.monotonic() - started
    rest, err = proc.communicate(timeout=900)
    return Backfill(env, first, seconds, first + rest, err, proc.returncode)


def test_a_range_runs_as_one_backfill_quietly_and_leaves_the_sensor_idle(backfill, monkeypatch):
    env, out, err = backfill.env, backfill.out, backfill.err
    assert backfill.first_line_seconds < 10, "the first line comes before Dagster loads"
    assert backfill.first_line.startswith(
        "feedback-pipelines run: 3 day(s), 2026-11-18..2026-11-20"
    )
    # 2026-11-18 has no input: a warning in the run, and a non-zero exit without --allow-empty.
    assert backfill.returncode == 1, out + err
    assert "WARN  2026-11-18 input_present: no input for 2026-11-18" in out
    assert "pass --allow-empty" in out
    assert "[3/3] 2026-11-20  ok" in out
    # each day's line says what it found, topics included
    day = re.search(r"^\[3/3\] 2026-11-20  ok in .*$", out, re.M).group(0)
    assert re.search(r"[\d,]+ feedback events, [\d,]+ subtopics?, [\d,]+ themes?, ", day), day
    for noise in (" - DEBUG - ", " - INFO - ", "WARNING:root", "Please consider to run"):
        assert noise not in out + err, noise
    assert "Traceback" not in out + err

    days = ["2026-11-18", "2026-11-19", DAY]
    with instance_of(env) as instance:
        records = instance.get_run_records(dg.RunsFilter(job_name="daily_pipeline"))
        backfills = {r.dagster_run.tags.get("dagster/backfill") for r in records}
        assert len(records) == 3 and len(backfills) == 1
        (backfill_id,) = backfills
        backfill = instance.get_backfill(backfill_id)
        assert backfill is not None and backfill.status.value == "COMPLETED_SUCCESS"
        assert list(backfill.partition_names) == days
        # Oldest first: the newest day is the latest materialization.
        latest = instance.get_latest_materialization_event(dg.AssetKey("review_report"))
        assert latest.dagster_event.partition == DAY

        # What `dagster dev`'s first sensor tick does on this instance: nothing.
        for key, value in env.items():
            if key.startswith("FEEDBACK_"):
                monkeypatch.setenv(key, value)
        from feedback_pipelines_tests.fixtures.pipeline import load_defs

        defs = load_defs()
        sensor = defs.resolve_sensor_def("landing_sensor")
        context = dg.build_sensor_context(
            instance=instance, cursor=None, definitions=defs, resources=defs.resources
        )
        tick = sensor.evaluate_tick(context)
        assert list(tick.run_requests) == []
        assert sorted(json.loads(tick.cursor)) == ["2026-11-19", DAY]

    allowed = run(env, "--start", "2026-11-18", "--end", "2026-11-18", "--allow-empty")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert "WARN  2026-11-18 input_present" in allowed.stdout


def test_a_wait_for_a_pool_says_what_it_waits_for_gives_up_and_hears_ctrl_c(tmp_path):
    landing = generate(tmp_path / "gen", days=1)
    env = environment(tmp_path / "run", landing)
    home = Path(env["DAGSTER_HOME"])
    home.mkdir(parents=True)
    shutil.copyfile(ROOT / "dagster.yaml", home / "dagster.yaml")
    ghost = "0000aaaa-run-the-instance-does-not-know"
    with instance_of(env) as instance:  # a slot held by something this machine cannot judge
        storage = instance.event_log_storage
        storage.initialize_concurrency_limit_to_default("stores")  # 1, from dagster.yaml
        assert storage.claim_concurrency_slot("stores", ghost, "elsewhere").is_claimed

    gave_up = run(env, "--start", DAY, "--end", DAY, "--wait-timeout", "5")
    assert gave_up.returncode == 1, gave_up.stdout + gave_up.stderr
    assert "landing_ingest waits for pool stores, held by run 0000aaaa" in gave_up.stdout
    (line,) = gave_up.stderr.strip().splitlines()
    assert line.startswith("feedback-pipelines: error: gave up after 5s waiting for pool")

    proc = subprocess.Popen(
        [*cli(), "run", "--start", DAY, "--end", DAY, "--wait-timeout", "600"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if "waits for pool stores" in line:
            break
    else:
        raise AssertionError("".join(seen))
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, "".join(seen) + out + err
    assert "stopped after" in out
    with instance_of(env) as instance:
        runs = instance.get_run_records(dg.RunsFilter(job_name="daily_pipeline"))
        assert {r.dagster_run.status for r in runs} == {
            dg.DagsterRunStatus.FAILURE,  # gave up
            dg.DagsterRunStatus.CANCELED,  # Ctrl-C
        }
        holders = instance.event_log_storage.get_concurrency_info("stores")
        assert [s.run_id for s in holders.claimed_slots] == [ghost]  # nothing of ours left
        assert {s.run_id for s in holders.pending_steps} <= {ghost}
        statuses = sorted(b.status.value for b in instance.get_backfills())
        assert statuses == ["CANCELED", "FAILED"]


# ------------------------------------------------------------------ two days at once

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


def test_two_days_at_once_write_what_one_after_the_other_writes(backfill, tmp_path):
    landing = Path(backfill.env["FEEDBACK_LANDING_DIR"])
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

    assert_same_end_state(env, backfill.env)  # its 2026-11-18 wrote nothing
