"""The daily job, its 02:00 UTC schedule, and the sensor that reruns a day when files land late."""

import json

import dagster as dg

from feedback_pipelines.defs.partitions import daily_partitions
from feedback_pipelines.ingest.landing import invalid_folders, landed_partitions
from feedback_pipelines.resources.settings import PipelineConfig

# Every asset and check of a day, in one process: the embedded DuckDB and Qdrant stores take one
# writer process at a time (dagster.yaml also queues runs one at a time).
daily_pipeline = dg.define_asset_job(
    "daily_pipeline",
    selection=dg.AssetSelection.all(),
    partitions_def=daily_partitions,
    executor_def=dg.in_process_executor,
    description="Every asset and check of one day, from the landing zone to the report.",
)

daily_schedule = dg.build_schedule_from_partitioned_job(
    daily_pipeline,
    hour_of_day=2,
    minute_of_hour=0,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

# The cursor's key for the misnamed folders already reported (no day is named like it).
INVALID = "invalid_folders"


@dg.sensor(
    job=daily_pipeline,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests a run of a day when files in its landing folders are new or changed.",
)
def landing_sensor(
    context: dg.SensorEvaluationContext, settings: PipelineConfig
) -> dg.SensorResult:
    """Fingerprints each `dt=` folder (names, sizes, mtimes); a changed fingerprint runs that day.

    The cursor holds the fingerprints already run and the run key is the fingerprint, so the
    same set of files never runs twice. A folder for a day that is not a partition yet (today,
    or before FEEDBACK_START_DATE) is left out of the cursor and reported. A `dt=` folder named
    for no real day is warned about once: the cursor keeps those it reported (under `INVALID`).
    """
    seen: dict = json.loads(context.cursor) if context.cursor else {}
    reported = set(seen.pop(INVALID, []))
    landing = settings.landing_path  # the same zone ingest reads
    invalid = invalid_folders(landing)
    if new := [f for f in invalid if f not in reported]:
        context.log.warning(f"landing folders that name no day, never read (rename them): {new}")
    current = landed_partitions(landing)
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
