"""Tuning sets from feedback: SFT, preference, unpaired and eval examples, prompt candidates.

Pure core (no Dagster): `build_tuning_sets` turns a window of feedback events (with their
trace's texts, cluster ids, clusters and regressions when available) into examples that passed
every quality gate; `write_export` writes them as OpenAI JSONL, TRL Parquet, candidate files
and a data card.
"""

from feedback_pipelines.routing.tuning.exportfiles import Export
from feedback_pipelines.routing.tuning.pipeline import TuningSets, build_tuning_sets
from feedback_pipelines.routing.tuning.settings import TuningSettings
from feedback_pipelines.routing.tuning.writer import write_export

__all__ = ["Export", "TuningSets", "TuningSettings", "build_tuning_sets", "write_export"]
