"""Quality gates of the tuning sets: each drops examples for one stated reason, and counts them.

A gate never fixes an example, it removes it: training on a half-repaired text teaches the
half-repair. Every removal is counted per dataset in a `GateLog`, and the data card lists each
filter with its count, so the export's size can be explained line by line.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache

from feedback_pipelines import privacy

# What each filter means, in the words the data card prints.
FILTERS: dict[str, str] = {
    "unsafe": "feedback with reason `unsafe`: routed to human review, never trained on",
    "no_trace": "the judged trace is unknown, so there is no prompt",
    "unusable_prompt": "the prompt has no user turn, or does not end with one",
    "pii": "text still holding personal data after redaction",
    "empty_correction": "the correction is empty",
    "correction_equals_response": "the correction repeats the model's answer",
    "too_short": "the target text is far too short to teach anything",
    "too_long": "the target text or the whole example is over the length cap",
    "missing_response": "the model's answer is empty, so there is nothing to compare",
    "conflicting_corrections": (
        "corrections of near-identical requests that disagree: routed to human review"
    ),
    "conflicting_labels": "the same answer to the same prompt was both liked and disliked",
    "contradicted_pair": (
        "a preference pair whose preferred answer someone judged bad (thumbs down, low rating, "
        "correction) or whose rejected answer someone judged good (votes are comparisons: no "
        "judgement of one answer contradicts them), or a pair whose two answers are also "
        "paired the other way (a voted pair stays; of two pairs judged apart, neither)"
    ),
    "split_vote": "two answers compared side by side as often one way as the other",
    "different_prompts": "a side-by-side vote between answers to different prompts",
    "identical_answers": "a side-by-side vote between two answers that are the same text",
    "exported_earlier": (
        "incremental exports: a voted pair of texts an earlier day's export already holds (its "
        "majority changed side and back, or other answers of the same texts were voted so): "
        "each pair is exported once"
    ),
    "reversed_after_export": (
        "incremental exports: a voted pair whose majority changed side after an earlier day's "
        "export held it the other way: routed to human review, never exported both ways"
    ),
    "exact_duplicate": "the same example (after whitespace and case folding) seen before",
    "near_duplicate": "request and target both over the near-duplicate cosine of an earlier one",
}

# Broader than `privacy.PII_PATTERNS` on purpose: redaction must not over-match prose, but an
# export would rather lose an example than ship a number that merely looks like a phone.
_LOOSE_PHONE = re.compile(r"(?<![\w+])\+?(?:\(\d{1,4}\)|\d{1,4})(?:[ .\-]\(?\d{2,4}\)?){2,4}(?!\w)")
_LOOSE_CARD = re.compile(r"(?<!\d)\d(?:[ \-]?\d){12,18}(?!\d)")
_LOOSE_KEY = re.compile(
    r"\b(?:sk|pk|rk)[-_](?:live|test|proj|ant)?[-_]?[A-Za-z0-9]{16,}"
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}|\bAKIA[0-9A-Z]{16}\b"
)
_LOOSE_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
_DIGIT = re.compile(r"\d")


#: Texts the last `screen` found no candidate of a redaction pattern in: `_pii_hits` runs only
#: the broader patterns on them. A fact about each text, whichever run screened it, so runs
#: sharing the process can only skip less, never answer differently.
_NO_STRICT: frozenset[str] = frozenset()


def screen(texts: Iterable[str | None]) -> None:
    """Look for the redaction patterns in many texts at once, before the gates ask one by one.

    One RE2 scan in DuckDB (`privacy.screened`) clears most texts; for those `_pii_hits` skips
    `privacy.find_pii`, two thirds of its cost. Its answers do not change: the scan is the
    test `find_pii` itself uses on long lists. Each call replaces the previous one's texts.
    """
    global _NO_STRICT
    distinct = list(dict.fromkeys(t for t in texts if t))
    flagged = set(privacy.screened(distinct))
    _NO_STRICT = frozenset(t for t in distinct if t not in flagged)


def pii_hits(text: str | None) -> list[str]:
    """PII-looking substrings of a text, by the redaction patterns and broader look-alikes.

    The broader patterns catch digit groups of phone shape (9 or more digits), Luhn-valid
    digit runs without word boundaries, and key prefixes redaction leaves alone (`pk_`,
    `rk_`): cheap to drop, expensive to publish.
    """
    if not text:
        return []
    return list(_pii_hits(text))


@lru_cache(maxsize=2**21)
def _pii_hits(text: str) -> tuple[str, ...]:
    """`pii_hits`, memoized: system prompts and templated requests repeat thousands of times.

    Large enough for a 14-day window's distinct texts at 100k events a day (~600k), so the
    export check that reads the files back finds every text the gates already scanned.
    """
    found = [] if text in _NO_STRICT else privacy.find_pii([text])
    found += [m.group(0) for m in _LOOSE_EMAIL.finditer(text)]
    found += [m.group(0) for m in _LOOSE_KEY.finditer(text)]
    found += [
        m.group(0) for m in _LOOSE_PHONE.finditer(text) if len(_DIGIT.findall(m.group(0))) >= 9
    ]
    for m in _LOOSE_CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group(0))
        if 13 <= len(digits) <= 19 and privacy.luhn_ok(digits):
            found.append(m.group(0))
    return tuple(found)


def has_pii(texts: Iterable[str | None]) -> bool:
    """True when any of the texts holds something PII-looking.

    Asks the memo directly (no list per text): the gates ask ~2M times per 100k events.
    """
    return any(t and _pii_hits(t) for t in texts)


def json_texts(value: object, key: str = "") -> Iterable[str]:
    """The string values of a JSON value, except ids (keys ending in `_id` or `_ids`).

    Ids are hex or digits by design and can look like a card number to a pattern; they are
    not personal data and are left out of PII scans.
    """
    if isinstance(value, str):
        if not (key.endswith("_id") or key.endswith("_ids")):
            yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from json_texts(v, str(k))
    elif isinstance(value, list):
        for v in value:
            yield from json_texts(v, key)


def visible_chars(text: str | None) -> int:
    """Characters that are not whitespace."""
    return len("".join((text or "").split()))


class GateLog:
    """Removals per (filter, dataset), and which filter removed each feedback event.

    Attributes:
        counts: (filter, dataset) -> examples removed.
        dropped: (dataset, feedback_id) -> the filter that removed it, so "why is my
            correction not in the export?" has an answer.
    """

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self.dropped: dict[tuple[str, str], str] = {}

    def drop(self, name: str, dataset: str, feedback_id: str | None = None) -> None:
        """Record that filter `name` removed one example (of `feedback_id`) from `dataset`."""
        if name not in FILTERS:
            raise KeyError(f"unknown filter {name!r}")
        self.counts[(name, dataset)] += 1
        if feedback_id is not None:
            self.dropped.setdefault((dataset, feedback_id), name)

    def reason(self, dataset: str, feedback_id: str) -> str | None:
        """The filter that removed this event's example from `dataset`, if one did."""
        return self.dropped.get((dataset, feedback_id))

    def total(self, dataset: str | None = None) -> int:
        """All removals, or those of one dataset."""
        return sum(n for (_, d), n in self.counts.items() if dataset is None or d == dataset)

    def as_records(self) -> list[dict]:
        """One record per filter: name, description, removals by dataset (stable order)."""
        out = []
        for name, description in FILTERS.items():
            removed = {d: n for (f, d), n in sorted(self.counts.items()) if f == name}
            out.append(
                {
                    "filter": name,
                    "description": description,
                    "removed": removed,
                    "total": sum(removed.values()),
                }
            )
        return out
