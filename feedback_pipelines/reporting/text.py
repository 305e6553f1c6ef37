"""Small helpers every report builder shares: user text made fit to show, lists, days."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import date, datetime

import pandas as pd

from feedback_pipelines.formatting import _nan
from feedback_pipelines.privacy import redact_pii
from feedback_pipelines.reporting.views import _WS, UNKNOWN_VERSION


def clean_text(text: object, max_chars: int = 240) -> str:
    """User text made fit to show: redacted (again), whitespace collapsed, cut with an ellipsis.

    The warehouse already holds redacted text; redacting again costs little and protects the
    report against a stage that forgot. Escaping is the template's job (autoescape).
    """
    if _nan(text) or text is None:
        return ""
    value = redact_pii(_WS.sub(" ", str(text)).strip()) or ""
    if len(value) > max_chars:
        value = value[: max_chars - 1].rstrip() + "…"
    return value


def as_list(value: object) -> list[str]:
    """A list column as stored: a list, a numpy array, a JSON string, or nothing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return [value]
        return [str(v) for v in parsed] if isinstance(parsed, list) else [str(parsed)]
    if isinstance(value, Iterable):
        return [str(v) for v in value if v is not None]
    return [str(value)]


def to_date(value: object) -> date | None:
    """A day from a date, a timestamp or a string; None when missing."""
    if _nan(value):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return pd.Timestamp(value).date()  # type: ignore[arg-type]


def version_text(value: object) -> str:
    """A version name fit to show ("(unknown version)" when missing)."""
    return UNKNOWN_VERSION if _nan(value) or value == "" else clean_text(value, 80)
