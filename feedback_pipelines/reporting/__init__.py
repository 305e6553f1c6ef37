"""Review reports for stakeholders: a view-model from warehouse facts, SVG charts, HTML + Markdown.

`load` reads the (aggregated) facts of a day or a week from the warehouse, `model` turns them
into what a person reads, `charts` draws inline SVG, and `render` writes the files and the index.
None of it imports Dagster: `feedback_pipelines.defs.reporting` wires it to the daily partitions.
"""

from feedback_pipelines.reporting.model import (
    ReportInputs,
    ReportSettings,
    ReportView,
    build_report,
)
from feedback_pipelines.reporting.render import (
    rebuild_index,
    render_html,
    render_markdown,
    summary_markdown,
    write_report,
)

__all__ = [
    "ReportInputs",
    "ReportSettings",
    "ReportView",
    "build_report",
    "rebuild_index",
    "render_html",
    "render_markdown",
    "summary_markdown",
    "write_report",
]
