"""Render report views to HTML and Markdown files, and keep the index of every report.

Jinja2 with autoescape on for every template, Markdown included: user text reaches the page
only as escaped text, and a template has to say `|safe`-free things to be safe (charts arrive as
`Markup` built from escaped parts in `charts`). The HTML carries a Content-Security-Policy that
forbids every script and every fetch, so even a template bug could not run a planted payload or
call home; the page needs nothing from the network (inline CSS, inline SVG, system fonts).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from feedback_pipelines.files import staging_folder, swap_folder, write_atomic
from feedback_pipelines.reporting.views import ReportView

# No script, no fetch, no frame, no form: the page is inert. Styles and SVG are inline; `img-src
# data:` would allow inline images only.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "base-uri 'none'; form-action 'none'"
)

# Markdown's inline specials that can make links, emphasis, code or tables out of user text.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
# `<` that could open raw HTML (a tag, a comment, an autolink) and `&` that could spell an entity.
_HTML_OPEN = re.compile(r"<(?=[A-Za-z/!?])")
_ENTITY = re.compile(r"&(?=#?[A-Za-z0-9]+;)")
_URL_SCHEME = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]{1,20}):(//)")
_WWW = re.compile(r"(?i)\bwww\.")
_WS = re.compile(r"\s+")


def md_text(value: object) -> Markup:
    r"""Untrusted text made inert for Markdown: one line, specials escaped, links defanged.

    Markdown renderers (Dagster's UI, chat tools) turn `[x](y)`, `<tag>`, `<url>` and bare URLs
    into links or HTML, and `*`/`_` into emphasis; a quote must stay a quote. So Markdown's
    specials are backslash-escaped (`\<script>` renders as the text `<script>`, never as HTML),
    URLs are defanged (`https[:]//…`) so no renderer autolinks them, and newlines are folded so
    a quote cannot start a heading or a table row. Plain text like "q < 0.001" stays readable.
    The result is Markup, so the template's HTML autoescaping does not add entities on top.
    """
    text = _WS.sub(" ", "" if value is None else str(value)).strip()
    text = _MD_SPECIAL.sub(r"\\\1", text)
    text = _HTML_OPEN.sub(r"\\<", text)
    text = _ENTITY.sub(r"\\&", text)
    text = _URL_SCHEME.sub(r"\1[:]\2", text)
    text = _WWW.sub("www[.]", text)
    return Markup(text)


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("feedback_pipelines.reporting", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = md_text
    env.globals["csp"] = CONTENT_SECURITY_POLICY
    return env


ENV = _environment()


def render_html(view: ReportView, index_href: str = "../index.html") -> str:
    """The report page (one self-contained HTML document)."""
    return ENV.get_template("report.html.j2").render(report=view, index_href=index_href)


def render_markdown(view: ReportView) -> str:
    """The same headline facts as Markdown, for chat tools and email."""
    return ENV.get_template("report.md.j2").render(report=view)


def summary_markdown(view: ReportView, report_path: str | None = None) -> str:
    """The summary for Dagster's asset metadata: title, sentences, versions, where the file is."""
    return ENV.get_template("summary.md.j2").render(report=view, path=report_path)


@dataclass
class WrittenReport:
    """Where one report was written."""

    html: Path
    markdown: Path
    meta: Path


def write_report(view: ReportView, reports_dir: Path) -> WrittenReport:
    """Write report.html, report.md and report.json (the index entry) under reports_dir/KEY/.

    The three files are rendered into a staging folder and swapped in together: a crash never
    leaves a report without its Markdown or its index entry.
    """
    folder = reports_dir / view.key
    staging = staging_folder(folder)
    for name, text in (
        ("report.html", render_html(view)),
        ("report.md", render_markdown(view)),
        ("report.json", json.dumps(view.index_entry(), indent=2, sort_keys=True) + "\n"),
    ):
        write_atomic(staging / name, text)
    swap_folder(staging, folder)
    return WrittenReport(folder / "report.html", folder / "report.md", folder / "report.json")


def read_index_entries(reports_dir: Path) -> list[dict[str, Any]]:
    """Every report's index entry (report.json beside it), newest first; weekly before daily.

    A folder with a report.html but no readable report.json (written by hand, or an older
    version) is still listed, with its folder name as the title.
    """
    entries = []
    for html in sorted(reports_dir.glob("*=*/report.html")):
        meta = html.with_name("report.json")
        entry: dict[str, Any] = {}
        if meta.exists():
            try:
                entry = json.loads(meta.read_text(encoding="utf-8"))
            except ValueError:
                entry = {}
        key = html.parent.name
        entry.setdefault("key", key)
        entry.setdefault("kind", "weekly" if key.startswith("week=") else "daily")
        entry.setdefault("title", key)
        entry.setdefault("headline", "")
        entry.setdefault("end", key.split("=", 1)[1] if key.startswith("dt=") else "")
        entry.setdefault("period", "")
        entry.setdefault("regressions", 0)
        entry.setdefault("resolved", 0)
        entry.setdefault("has_data", True)
        entry["href"] = f"{key}/report.html"
        entries.append(entry)
    entries.sort(key=lambda e: (str(e.get("end", "")), e.get("kind") == "weekly"), reverse=True)
    return entries


def render_index(entries: list[dict[str, Any]], updated: date | None = None) -> str:
    """The index page: every report, newest first, with its headline."""
    weeks = [e for e in entries if e.get("kind") == "weekly"]
    days = [e for e in entries if e.get("kind") != "weekly"]
    return ENV.get_template("index.html.j2").render(
        entries=entries, weeks=weeks, days=days, updated=updated
    )


def rebuild_index(reports_dir: Path) -> Path:
    """Rewrite reports/index.html from the reports on disk (so it never drifts from them)."""
    path = reports_dir / "index.html"
    write_atomic(path, render_index(read_index_entries(reports_dir)))
    return path
