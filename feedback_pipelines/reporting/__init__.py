"""Review reports for stakeholders: a view-model from warehouse facts, SVG charts, HTML + Markdown.

`load` reads the (aggregated) facts of a day or a week from the warehouse, `build` turns them
into the `views` a person reads (worded by `feedback_pipelines.formatting`), `charts` draws
inline SVG, and `render` writes the files and the index.
None of it imports Dagster: `feedback_pipelines.defs.reporting` wires it to the daily partitions.
"""

from feedback_pipelines.reporting.build import build_report
from feedback_pipelines.reporting.render import (
    rebuild_index,
    render_html,
    render_markdown,
    summary_markdown,
    write_report,
)
from feedback_pipelines.reporting.views import ReportInputs, ReportSettings, ReportView

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
