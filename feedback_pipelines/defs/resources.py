"""Binds every resource key: `settings`, `warehouse`, `embedder`, `vector_store`.

One place for all of them: a defs module with its own `defs = dg.Definitions(...)` would
hide its other objects from the loader.
Paths resolve from the environment at run time, so one set of definitions serves every
FEEDBACK_DATA_DIR.
"""

from __future__ import annotations

import os

import dagster as dg

from feedback_pipelines.resources.semantic import EmbedderResource, VectorStoreResource
from feedback_pipelines.resources.settings import PipelineConfig
from feedback_pipelines.resources.warehouse import WarehouseResource
from feedback_pipelines.routing.tuning.settings import EXPORT_MODES


def _secret(name: str) -> dg.EnvVar | str:
    """A secret bound through EnvVar (never stored in the definitions); empty when unset."""
    return dg.EnvVar(name) if os.environ.get(name) else ""


def pipeline_settings() -> PipelineConfig:
    """The `settings` resource as the environment sets it (README, "Configuration").

    A bad export mode fails here, when the definitions load, rather than at the day's routing.
    """
    mode = os.environ.get("FEEDBACK_EXPORT_MODE", "").strip() or "cumulative"
    if mode not in EXPORT_MODES:
        raise ValueError(
            f"FEEDBACK_EXPORT_MODE={mode!r}: expected one of {', '.join(sorted(EXPORT_MODES))}"
        )
    return PipelineConfig(
        pseudonym_key=_secret("FEEDBACK_PSEUDONYM_KEY"),
        baseline_version=os.environ.get("FEEDBACK_BASELINE_VERSION", ""),
        regression_min_effect_test=os.environ.get(
            "FEEDBACK_REGRESSION_MIN_EFFECT_TEST", "estimate"
        ),
        export_mode=mode,
        export_license=os.environ.get("FEEDBACK_EXPORT_LICENSE", "").strip(),
    )


defs = dg.Definitions(
    resources={
        "settings": pipeline_settings(),
        "warehouse": WarehouseResource(),
        "embedder": EmbedderResource(),
        "vector_store": VectorStoreResource(
            url=_secret("QDRANT_URL"), api_key=_secret("QDRANT_API_KEY")
        ),
    }
)
