"""The daily job, its 02:00 UTC schedule, and the sensor that reruns a day when files land late."""

import json
import os
from datetime import timedelta

import dagster as dg

from feedback_pipelines import config
from feedback_pipelines.defs.partitions import daily_partitions
from feedback_pipelines.ingest.landing import invalid_folders, landed_partitions
from feedback_pipelines.resources.settings import PipelineConfig

#: Where the daily job's steps run: `in_process` (default), `multiprocess` (a process per step:
#: embedding shards run side by side, the steps of the `stores` pool one at a time), or `k8s`
#: (a pod per step, with `dagster-k8s`; needs the stores as services, see docs/deploy/README.md).
EXECUTOR_ENV = "FEEDBACK_EXECUTOR"
#: What the multiprocess executor's fork server imports before it forks a step's process.
PRELOAD = "feedback_pipelines.preload"


def job_executor() -> dg.ExecutorDefinition:
    """The executor FEEDBACK_EXECUTOR names.

    In process by default: one process pays the model's and the definitions' start-up once.
    The steps that open the embedded stores are in the `stores` pool whatever the executor.
    """
    name = os.environ.get(EXECUTOR_ENV, "in_process").strip() or "in_process"
    if name == "in_process":
        return dg.in_process_executor
    if name == "multiprocess":
        # Every shard plus the one `stores` step that may run beside them; step processes
        # fork from a server that imported the project once (a fresh import costs seconds).
        return dg.multiprocess_executor.configured(
            {
                "max_concurrent": config.embed_shards() + 1,
                "start_method": {"forkserver": {"preload_modules": [PRELOAD]}},
            }
        )
    if name == "k8s":
        try:
            from dagster_k8s import k8s_job_executor
        except ImportError as err:  # pragma: no cover - locked in requirements.lock
            raise RuntimeError(
                f"{EXECUTOR_ENV}=k8s needs dagster-k8s: pip install 'feedback_pipelines[k8s]'"
            ) from err
        return k8s_job_executor
    raise ValueError(f"{EXECUTOR_ENV}={name!r}: expected 'in_process', 'multiprocess' or 'k8s'")


daily_pipeline = dg.define_asset_job(
    "daily_pipeline",
    selection=dg.AssetSelection.all(),
    executor_def=job_executor(),
    description="Every asset and check of one day, from the landing zone to the report.",
)


@dg.schedule(
    name="daily_pipeline_schedule",
    job=daily_pipeline,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=(
        "Every night at 02:00 UTC, runs daily_pipeline for yesterday's partition: the day's "
        "landing folders become the warehouse tables, topics, regressions, exports and the report."
    ),
)
def daily_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    """Yesterday's partition, as `build_schedule_from_partitioned_job` would ask for it.

    Written out because that helper calls the job's deprecated `run_request_for_partition`.
    """
    day = (context.scheduled_execution_time - timedelta(days=1)).date()
    if day < daily_partitions.start.date():
        return dg.SkipReason(f"{day} is before the first partition (FEEDBACK_START_DATE)")
    return dg.RunRequest(partition_key=day.isoformat())


# The cursor's key for the misnamed folders already reported (no day is named like it).
INVALID = "invalid_folders"

#: Tag of a run that processed a day's landing files: their fingerprint (`landed_partitions`).
#: `feedback-pipelines run` sets it, so the sensor knows those files were run already.
LANDING_FINGERPRINT_TAG = "feedback_pipelines/landing_fingerprint"
PARTITION_TAG = "dagster/partition"


def already_run(
    instance: dg.DagsterInstance, current: dict[str, str], seen: dict[str, str]
) -> dict[str, str]:
    """The days of `current` whose exact files a recorded run already processed.

    Only days the cursor does not know in this state are looked up (one query each), so after
    the first tick this costs nothing.
    """
    found = {}
    for ds, fingerprint in current.items():
        if seen.get(ds) == fingerprint:
            continue
        tags = {PARTITION_TAG: ds, LANDING_FINGERPRINT_TAG: fingerprint}
        if instance.get_run_records(
            dg.RunsFilter(job_name=daily_pipeline.name, tags=tags), limit=1
        ):
            found[ds] = fingerprint
    return found


@dg.sensor(
    job=daily_pipeline,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Every minute, fingerprints each dt= landing folder (file names, sizes, mtimes) and "
        "requests a run of daily_pipeline for a day whose files are new or changed, e.g. late "
        "feedback for an old day. The same files never run twice: the cursor holds the "
        "fingerprints already run, including runs of `feedback-pipelines run`."
    ),
)
def landing_sensor(
    context: dg.SensorEvaluationContext, settings: PipelineConfig
) -> dg.SensorResult:
    """Fingerprints each `dt=` folder (names, sizes, mtimes); a changed fingerprint runs that day.

    The cursor holds the fingerprints already run and the run key is the fingerprint, so the
    same set of files never runs twice. Files a run outside the sensor already processed
    (`feedback-pipelines run`, which tags its runs with the fingerprint) enter the cursor
    without a run, so `dagster dev` after `make demo` starts idle. A folder for a day that is
    not a partition yet (today, or before FEEDBACK_START_DATE) is left out of the cursor and
    reported. A `dt=` folder named for no real day is warned about once: the cursor keeps those
    it reported (under `INVALID`).
    """
    seen: dict = json.loads(context.cursor) if context.cursor else {}
    reported = set(seen.pop(INVALID, []))
    landing = settings.landing_path  # the same zone ingest reads
    invalid = invalid_folders(landing)
    if new := [f for f in invalid if f not in reported]:
        context.log.warning(f"landing folders that name no day, never read (rename them): {new}")
    current = landed_partitions(landing)
    seen.update(already_run(context.instance, current, seen))
    valid = set(daily_partitions.get_partition_keys())
    requests, skipped = [], []
    for ds, fingerprint in sorted(current.items()):
        if seen.get(ds) == fingerprint:
            continue
        if ds not in valid:
            skipped.append(ds)
            continue
        requests.append(dg.RunRequest(partition_key=ds, run_key=f"{ds}:{fingerprint}"))
        seen[ds] = fingerprint
    if skipped:
        context.log.info(f"landing folders not (yet) partitions, left for later: {skipped}")
    if invalid:
        seen[INVALID] = invalid
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(seen, sort_keys=True))
