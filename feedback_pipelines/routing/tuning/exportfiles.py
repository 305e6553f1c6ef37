"""What one export wrote: its files and row counts, and one table row per example.

Shared by the writer, which fills it, and the data card, which describes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ExportFile:
    """One written file: where, what, how many rows."""

    path: str
    format: str
    dataset: str
    split: str | None
    rows: int


@dataclass
class Export:
    """What `write_export` wrote: the files, and one table row per exported example."""

    folder: Path
    files: list[ExportFile] = field(default_factory=list)
    table: list[dict] = field(default_factory=list)

    def rows(self, path: str) -> int:
        """Rows written to one file (0 when absent)."""
        return next((f.rows for f in self.files if f.path == path), 0)
