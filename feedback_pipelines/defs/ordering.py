"""Days in date order: a step waits while a run of an earlier day has yet to run the same step.

Several days may run at once (a backfill with `max_concurrent_runs` above 1): their embedding
shards overlap, and the steps that open the stores take turns through the `stores` pool. Many
of those steps read what earlier days wrote (the topic registry, complaint ids, a release's
replay, the report's history), so a day must not run such a step before an earlier day that is
running has run it: otherwise concurrent runs would give other tables than one day after the
other. A step that finds such a run asks Dagster to retry it a few seconds later, which frees
its pool slot while it waits. A run of the same day created earlier counts as earlier (two runs
of one day take turns too). Runs only queued, finished, for a later day, or whose process is
gone (a killed command) are not waited for: a queued earlier day would wait for this run's slot,
so waiting for it would deadlock.

The waits share Dagster's attempt count with the steps' retry policy (`STORE_RETRY`): after a
day waited, a store error is retried fewer times, or not at all.
"""

from __future__ import annotations

import dagster as dg

from feedback_pipelines.cli.runs import IN_PROGRESS, PARTITION_TAG, run_process

#: How the line a waiting step logs starts (the CLI shows it as a wait, not a failure).
WAITS_FOR = "waits for "
#: Seconds between two looks (growing by half each look up to the cap), and how many looks
#: before the step gives up (about 12 hours).
WAIT_SECONDS, MAX_WAIT_SECONDS = 5.0, 30.0
MAX_WAITS = 12 * 3600 // 30
_DONE = {"SUCCESS", "FAILURE", "SKIPPED"}


def earlier_runs_pending(
    instance: dg.DagsterInstance, run_id: str, ds: str, step_key: str
) -> list[tuple[str, str]]:
    """(run id, day) of each running run before this one that has yet to finish `step_key`.

    Before: of an earlier day, or of the same day and created earlier.
    """
    own = instance.get_run_record_by_id(run_id)
    created = own.create_timestamp if own is not None else None
    pending = []
    for record in instance.get_run_records(dg.RunsFilter(statuses=IN_PROGRESS)):
        run = record.dagster_run
        day = run.tags.get(PARTITION_TAG, "")
        if run.run_id == run_id or not day or day > ds:
            continue
        if day == ds and (created is None or record.create_timestamp >= created):
            continue
        if not _plans_step(instance, run, step_key) or run_process(instance, record).alive is False:
            continue
        stats = instance.get_run_step_stats(run.run_id, step_keys=[step_key])
        if any(s.status is not None and s.status.value in _DONE for s in stats):
            continue
        pending.append((run.run_id, day))
    return sorted(pending, key=lambda p: p[1])


def _plans_step(instance: dg.DagsterInstance, run, step_key: str) -> bool:
    if run.step_keys_to_execute is not None:
        return step_key in run.step_keys_to_execute
    snapshot_id = run.execution_plan_snapshot_id
    snapshot = instance.get_execution_plan_snapshot(snapshot_id) if snapshot_id else None
    return snapshot is None or any(step.key == step_key for step in snapshot.steps)


def in_date_order(context: dg.OpExecutionContext | dg.AssetExecutionContext) -> None:
    """Raise `RetryRequested` while an earlier day's running run has this step still to do.

    Call first thing in every step that reads or writes the stores.
    """
    step_key = context.get_step_execution_context().step.key
    pending = earlier_runs_pending(
        context.instance, context.run.run_id, context.partition_key, step_key
    )
    if not pending:
        return
    run_id, day = pending[0]
    wait = min(MAX_WAIT_SECONDS, WAIT_SECONDS * 1.5**context.retry_number)
    context.log.info(
        f"{WAITS_FOR}{day} (run {run_id[:8]}) to run {step_key} first: days that run at once "
        f"write the stores in date order (next look in {wait:.0f}s)"
    )
    raise dg.RetryRequested(max_retries=MAX_WAITS, seconds_to_wait=wait)
