"""The one entry point: every Dagster object lives under `defs/` and is found by the loader."""

import functools
import warnings
from pathlib import Path

import dagster as dg

CODE_REFERENCES = "dagster/code_references"


@dg.definitions
def defs() -> dg.Definitions:
    """All assets, checks, jobs, schedules, sensors and resources of the project."""
    return with_code_references(dg.load_from_defs_folder(path_within_project=Path(__file__).parent))


def daily_pipeline_job() -> dg.JobDefinition:
    """The daily job, built once per process.

    Step processes rebuild it by this name (`dg.reconstructable`), and the multiprocess
    executor's fork server builds it before it forks them (FEEDBACK_EXECUTOR=multiprocess), so
    a step starts without loading the project again.
    """
    return _daily_pipeline_job()


@functools.cache
def _daily_pipeline_job() -> dg.JobDefinition:
    return defs().resolve_job_def("daily_pipeline")


def with_code_references(loaded: dg.Definitions) -> dg.Definitions:
    """Each asset links to the file and line of the function that computes it (UI: "Code")."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)  # the API, not our use of it
        warnings.simplefilter("ignore", dg.PreviewWarning)
        referenced = dg.with_source_code_references(
            [a for a in loaded.assets or [] if isinstance(a, dg.AssetsDefinition)]
        )
        refs = {
            spec.key: spec.metadata[CODE_REFERENCES]
            for assets_def in referenced
            for spec in assets_def.specs
            if CODE_REFERENCES in spec.metadata
        }
        return loaded.map_asset_specs(
            func=lambda spec: (
                spec.merge_attributes(metadata={CODE_REFERENCES: refs[spec.key]})
                if spec.key in refs and CODE_REFERENCES not in spec.metadata
                else spec
            )
        )
