"""Binds the shared resource keys: `settings` (PipelineConfig) and `warehouse` (DuckDB).

Stage modules add their own keys with a module-level `defs = dg.Definitions(resources=...)`.
Paths resolve from the environment at run time, so one set of definitions serves every
FEEDBACK_DATA_DIR.
"""

from __future__ import annotations

import os

import dagster as dg

from feedback_pipelines.resources.settings import PipelineConfig
from feedback_pipelines.resources.warehouse import WarehouseResource

_key = dg.EnvVar("FEEDBACK_PSEUDONYM_KEY") if os.environ.get("FEEDBACK_PSEUDONYM_KEY") else ""

defs = dg.Definitions(
    resources={
        "settings": PipelineConfig(
            pseudonym_key=_key, baseline_version=os.environ.get("FEEDBACK_BASELINE_VERSION", "")
        ),
        "warehouse": WarehouseResource(),
    }
)
