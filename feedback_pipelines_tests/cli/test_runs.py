"""A run whose process died is marked failed and frees its pool slots; live runs are left alone."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess

import dagster as dg
import pytest

from feedback_pipelines.cli.runs import (
    BACKFILL_TAG,
    HOST_TAG,
    PID_TAG,
    RANGE_TAG,
    WaitTimeout,
    process_started_at,
    reap_dead_runs,
    run_process,
    wait_for_other_runs,
)

POOL = "stores"


@dg.op
def step():
    return None


@dg.job(name="daily_pipeline")
def stand_in():
    step()


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.fixture
def instance(tmp_path):
    with dg.DagsterInstance.local_temp(
        str(tmp_path), overrides={"concurrency": {"pools": {"default_limit": 1}}}
    ) as inst:
        yield inst


def started_run(instance, pid: int, **tags) -> dg.DagsterRun:
    run = instance.create_run_for_job(
        stand_in,
        status=dg.DagsterRunStatus.STARTED,
        tags={PID_TAG: str(pid), HOST_TAG: socket.gethostname(), **tags},
    )
    return run


def test_process_started_at_tells_live_from_gone():
    assert process_started_at(os.getpid()) is not None
    assert process_started_at(dead_pid()) is None


def test_a_dead_runs_slots_are_freed_and_it_is_marked_failed(instance):
    storage = instance.event_log_storage
    storage.set_concurrency_slots(POOL, 1)
    dead = started_run(
        instance,
        dead_pid(),
        **{BACKFILL_TAG: "abcdefgh", RANGE_TAG: "2026-11-19..2026-11-20"},
        **{"dagster/partition": "2026-11-19"},
    )
    assert storage.claim_concurrency_slot(POOL, dead.run_id, "qdrant_feedback").is_claimed
    live = started_run(instance, os.getpid())
    lines: list[str] = []

    assert reap_dead_runs(instance, lines.append) == [dead.run_id]

    assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
    assert instance.get_run_by_id(live.run_id).status == dg.DagsterRunStatus.STARTED
    assert storage.get_concurrency_info(POOL).claimed_slots == []
    (line,) = lines
    assert dead.run_id[:8] in line and "freed its pool slots (1 stores slot)" in line
    # The command that died never recorded its backfill: it is recorded, failed, whole range.
    backfill = instance.get_backfill("abcdefgh")
    assert backfill is not None and backfill.status.value == "FAILED"
    assert list(backfill.partition_names) == ["2026-11-19", "2026-11-20"]
    # A second pass has nothing to do.
    assert reap_dead_runs(instance, lines.append) == []


def test_a_reused_pid_does_not_keep_a_dead_run_alive(instance):
    """A pid now held by a process that started after the run was created is not the run's."""
    newer = subprocess.Popen(["sleep", "30"])
    try:
        run = started_run(instance, newer.pid)
        (record,) = instance.get_run_records(dg.RunsFilter(run_ids=[run.run_id]))
        proc = run_process(instance, record)
        assert proc.alive is True
        assert dataclasses.replace(proc, created=proc.created - 3600).alive is False
        elsewhere = dataclasses.replace(proc, host="another-machine")
        assert elsewhere.alive is None  # cannot tell from here
        assert "on another-machine" in elsewhere.describe()
    finally:
        newer.kill()
        newer.wait()


def test_slots_of_finished_runs_are_freed(instance):
    storage = instance.event_log_storage
    storage.set_concurrency_slots(POOL, 1)
    run = instance.create_run_for_job(stand_in, status=dg.DagsterRunStatus.CANCELED)
    assert storage.claim_concurrency_slot(POOL, run.run_id, "qdrant_feedback").is_claimed
    reap_dead_runs(instance, lambda _: None)
    assert storage.get_concurrency_info(POOL).claimed_slots == []


def test_waiting_for_a_live_run_is_bounded_and_says_what_it_waits_for(instance):
    live = started_run(instance, os.getpid(), **{"dagster/partition": "2026-11-20"})
    lines: list[str] = []
    with pytest.raises(WaitTimeout) as error:
        wait_for_other_runs(instance, timeout=0.5, log=lines.append, poll=0.1)
    assert live.run_id[:8] in str(error.value) and "2026-11-20" in str(error.value)
    assert lines and "waiting for" in lines[0] and live.run_id[:8] in lines[0]
    # Runs of other hosts are not judged here, and a dead run is reaped, not waited for.
    instance.report_run_failed(live)
    started_run(instance, dead_pid())
    wait_for_other_runs(instance, timeout=0.5, log=lines.append, poll=0.1)


def test_a_step_waits_for_running_runs_before_it_and_for_no_other(instance):
    """defs.ordering: earlier days and older runs of the same day go first; dead or later don't."""
    from feedback_pipelines.defs.ordering import earlier_runs_pending

    day = {"dagster/partition": "2026-11-20"}
    earlier = started_run(instance, os.getpid(), **{"dagster/partition": "2026-11-19"})
    older_same_day = started_run(instance, os.getpid(), **day)
    me = started_run(instance, os.getpid(), **day)
    started_run(instance, os.getpid(), **day)  # created after me
    started_run(instance, os.getpid(), **{"dagster/partition": "2026-11-21"})
    started_run(instance, dead_pid(), **{"dagster/partition": "2026-11-18"})  # a killed command
    pending = earlier_runs_pending(instance, me.run_id, "2026-11-20", "step")
    assert pending == [(earlier.run_id, "2026-11-19"), (older_same_day.run_id, "2026-11-20")]
    assert earlier_runs_pending(instance, me.run_id, "2026-11-20", "not_a_step_of_theirs") == []
    instance.report_run_failed(earlier)  # finished: nothing to wait for
    assert earlier_runs_pending(instance, me.run_id, "2026-11-20", "step") == [
        (older_same_day.run_id, "2026-11-20")
    ]
