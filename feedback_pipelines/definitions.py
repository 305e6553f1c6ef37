"""The one entry point: every Dagster object lives under `defs/` and is found by the loader."""

from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    """All assets, checks, jobs, schedules, sensors and resources of the project."""
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
