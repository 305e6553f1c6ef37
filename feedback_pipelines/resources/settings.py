"""The pipeline's settings as a Dagster resource, so the UI shows them and tests can swap them."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from feedback_pipelines import config


class PipelineConfig(dg.ConfigurableResource):
    """Where data lives and the knobs of each stage (CONTRACT.md section 1).

    Empty paths are resolved from the environment when used (FEEDBACK_DATA_DIR,
    FEEDBACK_LANDING_DIR), not when the definitions load. The pseudonym key is a secret: bind
    it with `dg.EnvVar("FEEDBACK_PSEUDONYM_KEY")`; left empty, the built-in demo key is used and
    ingest logs a warning.
    """

    data_dir: str = ""
    landing_dir: str = ""
    pseudonym_key: str = ""
    lookback_days: int = 7
    window_days: int = 14
    quarantine_warn_rate: float = 0.05
    unknown_trace_warn_rate: float = 0.10
    min_users_for_quotes: int = 5
    baseline_version: str = ""
    # "estimate" (flag: always-valid evidence of any rise and an estimate >= 3 points) or "null"
    # (strict: evidence that the rise itself exceeds 3 points); see regressions.sequential
    regression_min_effect_test: str = "estimate"
    export_mode: str = "cumulative"  # or "incremental": see routing.tuning.settings.EXPORT_MODES
    export_license: str = ""  # the exports' license or terms; empty: TuningSettings' default

    @property
    def data_path(self) -> Path:
        """The data directory as a path."""
        return Path(self.data_dir) if self.data_dir else config.data_dir()

    @property
    def landing_path(self) -> Path:
        """The landing zone root."""
        if self.landing_dir:
            return Path(self.landing_dir)
        return config.landing_dir() if not self.data_dir else self.data_path / "landing"

    @property
    def warehouse_path(self) -> Path:
        """The DuckDB warehouse file."""
        return self.data_path / "warehouse.duckdb"

    def resolved_pseudonym_key(self) -> config.PseudonymKey:
        """The key to hash user ids with, and whether it is the demo default."""
        if self.pseudonym_key:
            return config.PseudonymKey(self.pseudonym_key, False)
        return config.PseudonymKey(config.DEMO_PSEUDONYM_KEY, True)
