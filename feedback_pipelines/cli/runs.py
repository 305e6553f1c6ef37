"""What `feedback-pipelines run` records in DAGSTER_HOME, and how it keeps the instance usable.

Runs started by the command run in this process (`execute_in_process`), so no Dagster daemon
watches them: when the process dies (kill -9, a reboot, an out-of-memory kill) its run would stay
STARTED forever and keep its concurrency-pool slots, and every later run would wait on them.
Each run therefore carries the pid and host that run it; before starting, and whenever a step
waits for a pool, runs whose process is gone are marked failed and their slots freed.

Dagster-internal names are used in one place only, `record_backfill` (the record that makes the
runs of one command show as one backfill in the UI); everything else is the public instance API.
"""

from __future__ import annotations

import os
import random
import socket
import string
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import dagster as dg

PID_TAG = "feedback_pipelines/pid"
HOST_TAG = "feedback_pipelines/host"
LAUNCHED_BY_TAG = "feedback_pipelines/launched_by"
BACKFILL_TAG = "dagster/backfill"  # what the UI groups runs by
RANGE_TAG = "feedback_pipelines/range"  # the days the command was asked for, `first..last`
PARTITION_TAG = "dagster/partition"

IN_PROGRESS = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


def new_backfill_id() -> str:
    """An id in the shape Dagster gives backfills (8 lowercase letters)."""
    return "".join(random.choice(string.ascii_lowercase) for _ in range(8))


def process_tags() -> dict[str, str]:
    """Tags naming this process, so a later command can tell whether the run's process lives."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname(), LAUNCHED_BY_TAG: "cli"}


# --- is a run's process alive? -------------------------------------------------------------------
def process_started_at(pid: int) -> float | None:
    """When process `pid` started (epoch seconds), or None when no such process runs.

    On Linux from /proc (a zombie counts as gone); elsewhere the pid's existence, at time 0.
    """
    stat = Path(f"/proc/{pid}/stat")
    if Path("/proc/self/stat").exists():
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        if fields[0] in ("Z", "X"):
            return None
        ticks = int(fields[19])
        return _boot_time() + ticks / os.sysconf("SC_CLK_TCK")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return 0.0
    return 0.0


def _boot_time() -> float:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    return 0.0


@dataclass(frozen=True)
class RunProcess:
    """The process that runs (or ran) a run, as far as the records tell."""

    run_id: str
    status: dg.DagsterRunStatus
    partition: str | None
    pid: int | None
    host: str | None
    created: float
    ours: bool

    @property
    def alive(self) -> bool | None:
        """True / False when known; None when this machine cannot tell (another host, no pid)."""
        if self.pid is None or (self.host is not None and self.host != socket.gethostname()):
            return None
        started = process_started_at(self.pid)
        if started is None:
            return False
        # A pid reused by a process started after the run was created is not the run's.
        return started <= self.created + 5

    def describe(self) -> str:
        """`run 1a2b3c4d (day 2026-11-20, pid 1234)`."""
        bits = [f"day {self.partition}" if self.partition else None]
        bits.append(f"pid {self.pid}" if self.pid else None)
        if self.host and self.host != socket.gethostname():
            bits.append(f"on {self.host}")
        inner = ", ".join(b for b in bits if b)
        return f"run {self.run_id[:8]}" + (f" ({inner})" if inner else "")


def _local_storage(instance: dg.DagsterInstance) -> bool:
    """Runs recorded in SQLite under DAGSTER_HOME were started on this machine."""
    return "sqlite" in type(instance.run_storage).__name__.lower()


def run_process(instance: dg.DagsterInstance, record) -> RunProcess:
    """Pid and host of a run: from this tool's tags, else (local storage) from its engine events.

    Runs of older versions of this tool and runs Dagster launched record their pid only in an
    engine event ("Executing steps in process (pid: N)", "Started process for run (pid: N)").
    """
    run = record.dagster_run
    tags = run.tags
    pid = int(tags[PID_TAG]) if tags.get(PID_TAG, "").isdigit() else None
    host = tags.get(HOST_TAG)
    if pid is None and _local_storage(instance):
        host = socket.gethostname()
        events = instance.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT, limit=50
        ).records
        for event in events:
            data = event.event_log_entry.dagster_event.engine_event_data
            value = data.metadata.get("pid") if data and data.metadata else None
            if value is not None and str(value.value).isdigit():
                pid = int(value.value)
    return RunProcess(
        run_id=run.run_id,
        status=run.status,
        partition=tags.get(PARTITION_TAG),
        pid=pid,
        host=host,
        created=record.create_timestamp.timestamp(),
        ours=PID_TAG in tags,
    )


# --- reaping -------------------------------------------------------------------------------------
def in_progress(instance: dg.DagsterInstance) -> list[RunProcess]:
    """Every run the records show as started and not finished."""
    records = instance.get_run_records(dg.RunsFilter(statuses=IN_PROGRESS))
    return [run_process(instance, r) for r in records]


def reap_dead_runs(instance: dg.DagsterInstance, log: Callable[[str], None]) -> list[str]:
    """Mark failed every unfinished run whose process is gone, and free every stale pool slot.

    Also frees the slots of finished runs (a run marked failed or canceled from the UI while its
    process was gone keeps them otherwise) and closes the backfill record of a command that
    died. Returns the ids of the runs marked failed.
    """
    reaped = []
    for proc in in_progress(instance):
        if proc.alive is not False:
            continue
        run = instance.get_run_by_id(proc.run_id)
        if run is None or run.status not in IN_PROGRESS:
            continue
        held = slots_held(instance, run.run_id)
        instance.report_run_failed(
            run,
            f"The process that ran this run (pid {proc.pid}) is gone: marked failed by "
            "feedback-pipelines so its pool slots are freed.",
        )
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        freed = ", ".join(f"{n} {pool} slot{'s' if n > 1 else ''}" for pool, n in held.items())
        log(
            f"{proc.describe()} was left unfinished by a process that is gone: marked it "
            f"failed{f' and freed its pool slots ({freed})' if freed else ''}"
        )
        reaped.append(run.run_id)
        backfill_id = run.tags.get(BACKFILL_TAG)
        if backfill_id and proc.ours:
            close_orphan_backfill(instance, backfill_id)
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        holders = storage.get_concurrency_run_ids()
        if holders:
            finished = instance.get_run_records(
                dg.RunsFilter(run_ids=list(holders), statuses=FINISHED)
            )
            for record in finished:
                run_id = record.dagster_run.run_id
                storage.free_concurrency_slots_for_run(run_id)
                log(f"freed the pool slots still held by finished run {run_id[:8]}")
    return reaped


def slots_held(instance: dg.DagsterInstance, run_id: str) -> dict[str, int]:
    """Pool -> number of slots the run holds."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return {}
    held: dict[str, int] = {}
    for pool in storage.get_concurrency_keys():
        for slot in storage.get_concurrency_info(pool).claimed_slots:
            if slot.run_id == run_id:
                held[pool] = held.get(pool, 0) + 1
    return held


def pool_holders(instance: dg.DagsterInstance, pool: str) -> list[tuple[str, str]]:
    """(run id, step key) of every slot of `pool` in use."""
    info = instance.event_log_storage.get_concurrency_info(pool)
    return [(slot.run_id, slot.step_key) for slot in info.claimed_slots]


def describe_holders(instance: dg.DagsterInstance, pool: str, exclude: str = "") -> str:
    """`run 1a2b3c4d (day 2026-11-19, pid 1234) in step qdrant_feedback`, for each holder."""
    parts = []
    for run_id, step in pool_holders(instance, pool):
        if run_id == exclude:
            continue
        records = instance.get_run_records(dg.RunsFilter(run_ids=[run_id]), limit=1)
        record = records[0] if records else None
        who = run_process(instance, record).describe() if record else f"run {run_id[:8]}"
        parts.append(f"{who} in step {step}")
    return "; ".join(parts) or "no run (the slot is being handed over)"


class WaitTimeout(Exception):
    """A wait for another run or for a pool went past its bound."""


def run_slots(instance: dg.DagsterInstance) -> int:
    """How many runs may be in progress at once (dagster.yaml concurrency.runs.max_concurrent_runs).

    1 unless dagster.yaml says otherwise (Dagster's own default, 10, is not taken: days then run
    one after another). Above 1, days of different commands run side by side: their embedding
    overlaps and the steps that open the stores take turns (the `stores` pool), in date order
    (`defs.ordering`). -1 (no limit) counts as unlimited.
    """
    runs = (instance.get_settings("concurrency") or {}).get("runs") or {}
    limit = runs.get("max_concurrent_runs", 1)
    return 1_000_000 if limit < 0 else max(1, limit)


def wait_for_other_runs(
    instance: dg.DagsterInstance,
    timeout: float,
    log: Callable[[str], None],
    exclude: Iterable[str] = (),
    poll: float = 2.0,
) -> None:
    """Wait (bounded) until fewer live runs than `run_slots` are in progress.

    Dead runs are reaped as they are found. Ctrl-C stops the wait (KeyboardInterrupt).
    """
    skip = set(exclude)
    slots = run_slots(instance)
    deadline = time.monotonic() + timeout
    told: set[str] = set()
    while True:
        reap_dead_runs(instance, log)
        busy = [p for p in in_progress(instance) if p.run_id not in skip]
        if len(busy) < slots:
            return
        names = ", ".join(p.describe() for p in busy)
        limit = "one writer at a time" if slots == 1 else f"{slots} runs at a time"
        if time.monotonic() >= deadline:
            raise WaitTimeout(
                f"gave up after {timeout:.0f}s waiting for {names} to finish (it writes the same "
                "warehouse and vector store). If no process runs it any more, stop it in the "
                "Dagster UI (Runs > Terminate) and try again; --wait-timeout sets the bound"
            )
        new = {p.run_id for p in busy} - told
        if new:
            log(
                f"waiting for {names} to finish before starting ({limit}, dagster.yaml "
                f"concurrency.runs.max_concurrent_runs; giving up after {timeout:.0f}s, Ctrl-C "
                "to stop)"
            )
            told |= new
        time.sleep(poll)


# --- the backfill record -------------------------------------------------------------------------
# The code location `dagster dev` serves ([tool.dg.project] code_location_name in pyproject.toml).
LOCATION_NAME = "feedback_pipelines"
REPOSITORY_NAME = "__repository__"


def record_backfill(
    instance: dg.DagsterInstance,
    backfill_id: str,
    job_name: str,
    partitions: list[str],
    status: str,
    started_at: float,
    tags: dict[str, str] | None = None,
) -> bool:
    """Record (or update) the backfill the command's runs belong to: the UI shows them as one.

    Written once the runs are over, never as REQUESTED: a requested backfill is one the daemon
    of a running `dagster dev` would start launching runs for. Returns False when this Dagster
    version's internals differ (the runs then still carry the tag).
    """
    try:
        from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
        from dagster._core.remote_origin import (
            ManagedGrpcPythonEnvCodeLocationOrigin,
            RemotePartitionSetOrigin,
            RemoteRepositoryOrigin,
        )
        from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

        origin = RemotePartitionSetOrigin(
            repository_origin=RemoteRepositoryOrigin(
                code_location_origin=ManagedGrpcPythonEnvCodeLocationOrigin(
                    loadable_target_origin=LoadableTargetOrigin(
                        executable_path=sys.executable,
                        module_name="feedback_pipelines.definitions",
                        working_directory=os.getcwd(),
                    ),
                    location_name=LOCATION_NAME,
                ),
                repository_name=REPOSITORY_NAME,
            ),
            partition_set_name=f"{job_name}_partition_set",
        )
        backfill = PartitionBackfill(
            backfill_id=backfill_id,
            status=BulkActionStatus(status),
            from_failure=False,
            tags=tags or {},
            backfill_timestamp=started_at,
            partition_set_origin=origin,
            partition_names=partitions,
            last_submitted_partition_name=partitions[-1] if partitions else None,
            title=f"feedback-pipelines run {partitions[0]}..{partitions[-1]}",
            backfill_end_timestamp=time.time(),
        )
        if instance.get_backfill(backfill_id) is None:
            instance.add_backfill(backfill)
        else:
            instance.update_backfill(backfill)
    except Exception:  # an internal API moved: the runs keep their tags, nothing else breaks
        return False
    return True


def close_orphan_backfill(instance: dg.DagsterInstance, backfill_id: str) -> None:
    """Record the backfill of a command that died before recording it, as failed."""
    try:
        if instance.get_backfill(backfill_id) is not None:
            return
    except Exception:
        return
    records = instance.get_run_records(dg.RunsFilter(tags={BACKFILL_TAG: backfill_id}))
    if not records:
        return
    days = sorted({r.dagster_run.tags.get(PARTITION_TAG, "") for r in records} - {""})
    asked = records[0].dagster_run.tags.get(RANGE_TAG, "")
    if ".." in asked:
        first, last = (date.fromisoformat(d) for d in asked.split(".."))
        days = [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
    job = records[0].dagster_run.job_name
    started = min(r.create_timestamp.timestamp() for r in records)
    record_backfill(instance, backfill_id, job, days, "FAILED", started)
