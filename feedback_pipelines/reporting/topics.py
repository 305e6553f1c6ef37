"""Topics as the report shows them: cards for the top ones, a table of all, quotes, people.

* **Ranked by a stated rule.** Topics with a flagged regression first, then by negative volume
  (events x negative share) over the clustering window; cards for the first few, and every
  topic in a compact table after them, so none is out of reach.
* **Status as written.** The clustering stage says whether a topic is new, growing, stable or
  faded; the report shows that word, and shows nothing when the stage wrote nothing.
* **Two levels when they exist.** When `feedback_topics` (themes) exists, subtopic cards are
  grouped under their theme and a finding names its theme.
* **Quotes a person can follow up.** Each quote says whether the feedback was negative or
  positive, keeps the request apart from the comment, and gives its feedback id with the
  `feedback-pipelines session <id>` command that shows the whole conversation.
* **k people, honestly counted.** Quotes show only for topics of at least k distinct people.
  When the events of a topic carry no user id at all (FeedbackQA, preference sets), people
  cannot be counted: the page says so and counts distinct conversations (sessions; an answer
  without a session counts alone) instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd

from feedback_pipelines.clustering.complaints import FIRST_GROUP_ID
from feedback_pipelines.formatting import _nan, fmt_day, fmt_pct
from feedback_pipelines.privacy import find_pii
from feedback_pipelines.reporting import charts
from feedback_pipelines.reporting.text import as_list, clean_text, to_date
from feedback_pipelines.reporting.views import (
    STATUS_TEXT,
    ClusterView,
    Finding,
    Quote,
    ReportInputs,
    ReportSettings,
    ThemeView,
    TopicRow,
)

RANKING_RULE = (
    "Topics are ranked by negative feedback: topics with a flagged regression first, then by "
    "events × negative share over the {window}. Cards show the top {n}; the table after them "
    "lists every topic."
)


def cluster_labels(clusters: pd.DataFrame | None) -> dict[int, str]:
    """cluster_id -> readable, redacted label (used by findings and cluster cards)."""
    if clusters is None or clusters.empty or "cluster_id" not in clusters:
        return {}
    out = {}
    for row in clusters.itertuples(index=False):
        if _nan(row.cluster_id):
            continue
        label = clean_text(getattr(row, "label", ""), 80)
        if not label:
            label = ", ".join(as_list(getattr(row, "keyphrases", None))[:3])
        out[int(row.cluster_id)] = label or f"topic #{int(row.cluster_id)}"
    return out


def theme_labels(topics: pd.DataFrame | None) -> dict[int, str]:
    """topic_id -> readable, redacted theme label (empty when there are no themes)."""
    if topics is None or topics.empty or "topic_id" not in topics:
        return {}
    out = {}
    for row in topics.itertuples(index=False):
        if _nan(row.topic_id) or int(row.topic_id) < 0:
            continue
        label = clean_text(getattr(row, "label", ""), 80)
        if not label:
            label = ", ".join(as_list(getattr(row, "keyphrases", None))[:3])
        out[int(row.topic_id)] = label or f"theme #{int(row.topic_id)}"
    return out


def theme_of(clusters: pd.DataFrame | None) -> dict[int, int]:
    """cluster_id -> topic_id (its theme), when the clustering wrote one."""
    if clusters is None or clusters.empty or "topic_id" not in clusters:
        return {}
    out = {}
    for cid, tid in zip(clusters["cluster_id"], clusters["topic_id"], strict=True):
        if not _nan(cid) and not _nan(tid) and int(tid) >= 0:
            out[int(cid)] = int(tid)
    return out


def status_text(status: object, growth: object = None) -> tuple[str, str]:
    """(css key, words) of the status the clustering wrote; ("", "") when it wrote none."""
    if _nan(status) or str(status).strip() == "":
        return "", ""
    key = str(status).strip().lower()
    words = STATUS_TEXT.get(key, clean_text(status, 30).capitalize())
    if key == "growing" and not _nan(growth):
        words += f" ({float(growth):+.0%})"  # type: ignore[arg-type]
    return key, words


@dataclass
class People:
    """How many people a topic (or the period) holds, and what was counted."""

    n: int | None  # None = unknown
    basis: str  # "people" | "conversations"
    text: str  # "412 people" / "58 conversations (no user ids)"


def topic_people(row: Any, counted: dict[int, dict[str, int]]) -> People:
    """Distinct users of a topic; distinct conversations when its events have no user id."""
    cid = int(row.cluster_id)
    c = counted.get(cid)
    if c is not None:
        if c.get("with_user", 0) > 0:
            n = int(c["users"])
            return People(n, "people", f"{n:,} {'person' if n == 1 else 'people'}")
        n = int(c.get("conversations", 0))
        return People(
            n, "conversations", f"{n:,} conversation{'s' if n != 1 else ''} (no user ids)"
        )
    users = getattr(row, "distinct_users", None)
    size = getattr(row, "size", None)
    if not _nan(size) and int(size) == 0:  # type: ignore[call-overload]
        return People(0, "people", "—")  # a faded topic: nobody in the window
    if _nan(users) or (int(users) == 0 and counted):  # type: ignore[call-overload]
        # Unknown, or 0 from a stage that counted user ids where there are none.
        return People(None, "people", "? people")
    n = int(users)  # type: ignore[arg-type]
    return People(n, "people", f"{n:,} {'person' if n == 1 else 'people'}")


def _people_counts(frame: pd.DataFrame | None) -> dict[int, dict[str, int]]:
    if frame is None or frame.empty:
        return {}
    out = {}
    for row in frame.itertuples(index=False):
        if _nan(row.cluster_id):
            continue
        out[int(row.cluster_id)] = {
            k: 0 if _nan(getattr(row, k, 0)) else int(getattr(row, k, 0))
            for k in ("events", "users", "with_user", "conversations")
        }
    return out


_KIND_WORDS = {
    "thumbs_down": "thumbs down",
    "thumbs_up": "thumbs up",
    "correction": "correction",
    "regenerate": "regenerated",
    "comment": "comment",
    "copy": "copied",
}


def _polarity(row: Any) -> tuple[str, str]:
    kind = "" if _nan(getattr(row, "kind", None)) else str(row.kind)
    score = getattr(row, "score", None)
    negative = not _nan(getattr(row, "is_negative", None)) and bool(row.is_negative)
    positive = kind in ("thumbs_up", "copy") or (
        kind == "rating" and not _nan(score) and float(score) >= 4  # type: ignore[arg-type]
    )
    what = (
        f"rating {float(score):g}/5"  # type: ignore[arg-type]
        if kind == "rating" and not _nan(score)
        else _KIND_WORDS.get(kind, clean_text(kind.replace("_", " "), 30))
    )
    reason = getattr(row, "reason", None)
    if not _nan(reason) and str(reason):
        what += f", {clean_text(str(reason).replace('_', ' '), 40)}"
    polarity = "negative" if negative else "positive" if positive else "neutral"
    return polarity, f"{polarity} ({what})" if what else polarity


def safe_id(value: object) -> str:
    """An id fit to print: empty when it is missing or looks like personal data."""
    if _nan(value):
        return ""
    text = str(value).strip()
    if not text or len(text) > 120 or find_pii([text]) or any(c.isspace() for c in text):
        return ""
    return text


def _quotes_from_events(frame: pd.DataFrame, settings: ReportSettings) -> list[Quote]:
    """Up to max_quotes: negatives first, one positive when there is one, no repeated text."""
    by_polarity: dict[str, list[Quote]] = {"negative": [], "positive": [], "neutral": []}
    seen: set[str] = set()
    for row in frame.itertuples(index=False):
        comment = clean_text(getattr(row, "comment", None), settings.max_quote_chars)
        correction = clean_text(getattr(row, "correction", None), settings.max_quote_chars)
        request = clean_text(getattr(row, "request", None), settings.max_quote_chars)
        if not (comment or correction or request):
            continue
        text_key = f"{request}\x00{comment}\x00{correction}".lower()
        if text_key in seen:
            continue
        seen.add(text_key)
        polarity, words = _polarity(row)
        fid = safe_id(getattr(row, "feedback_id", None))
        by_polarity[polarity].append(
            Quote(
                polarity=polarity,
                polarity_text=words,
                request=request,
                comment=comment,
                correction=correction,
                feedback_id=fid or "(id not shown)",
                command=f"feedback-pipelines session {fid}" if fid else "",
            )
        )
    k = settings.max_quotes
    negatives, positives = by_polarity["negative"], by_polarity["positive"]
    out = negatives[: k - min(1, len(positives))] + positives[:1]
    rest = [q for q in negatives + positives + by_polarity["neutral"] if q not in out]
    return out + rest[: k - len(out)]


def _stored_quotes(row: Any, settings: ReportSettings) -> list[Quote]:
    """The clustering's own quotes (texts without ids), when no event-level quotes exist."""
    out: list[Quote] = []
    for quote in as_list(getattr(row, "quotes", None)):
        text = clean_text(quote, settings.max_quote_chars)
        if text and text not in [q.comment for q in out]:
            out.append(Quote("neutral", "", "", text, "", "", ""))
        if len(out) >= settings.max_quotes:
            break
    return out


def quotes_for(
    row: Any,
    people: People,
    events: pd.DataFrame | None,
    settings: ReportSettings,
) -> tuple[list[Quote], str]:
    """A cluster's quotes if at least k distinct people (or conversations) are in it."""
    k = settings.min_users_for_quotes
    if people.n is None:
        return [], "Quotes hidden: the number of distinct people in this topic is unknown."
    if people.n < k:
        what = "people" if people.basis == "people" else "conversations (no user ids)"
        return [], (
            f"Quotes hidden to protect privacy: fewer than {k} {what} in this topic ({people.n})."
        )
    quotes = (
        _quotes_from_events(events, settings)
        if events is not None and not events.empty
        else _stored_quotes(row, settings)
    )
    return quotes, "" if quotes else "No quotes were kept for this topic."


@dataclass
class TopicsResult:
    """Everything the topics section shows."""

    cards: list[ClusterView]
    faded: list[ClusterView]
    hidden: int
    themes: list[ThemeView]
    rows: list[TopicRow]
    ranking_rule: str


def build_topics(
    inputs: ReportInputs,
    days: list[date],
    regressions: list[Finding],
    settings: ReportSettings,
) -> TopicsResult:
    """Cards for the top topics (regressed ones always), faded ones apart, a row for every one."""
    clusters = inputs.clusters
    rule = RANKING_RULE.format(
        window=f"{settings.trend_days}-day clustering window", n=settings.max_clusters
    )
    if clusters is None or clusters.empty or "cluster_id" not in clusters:
        return TopicsResult([], [], 0, [], [], rule)
    labels = cluster_labels(clusters)
    themes = theme_labels(inputs.topics)
    theme_map = theme_of(clusters)
    counted = _people_counts(inputs.cluster_people)
    quotes_by: dict[int, pd.DataFrame] = {}
    if inputs.cluster_quotes is not None and not inputs.cluster_quotes.empty:
        quotes_by = {
            int(c): g for c, g in inputs.cluster_quotes.groupby("cluster_id") if not _nan(c)
        }
    regressed: dict[int, list[str]] = {}
    for f in regressions:
        if f.cluster_id is not None and f.subject not in regressed.setdefault(f.cluster_id, []):
            regressed[f.cluster_id].append(f.subject)
    # A theme-level regression puts its theme's subtopics first too (it names no subtopic).
    themes_hit = {
        f.theme_id for f in regressions if f.cluster_id is None and f.theme_id is not None
    }
    in_hit_theme = {c for c, t in theme_map.items() if t in themes_hit}
    frame = clusters[pd.to_numeric(clusters["cluster_id"], errors="coerce").fillna(-1) >= 0]
    size = pd.to_numeric(frame.get("size"), errors="coerce").fillna(0)
    neg = pd.to_numeric(frame.get("negative_rate"), errors="coerce").fillna(0)
    ids = frame["cluster_id"].astype(int)
    frame = frame.assign(
        _impact=size * neg, _regressed=ids.isin(regressed) | ids.isin(in_hit_theme)
    )
    frame = frame.sort_values(
        ["_regressed", "_impact", "cluster_id"], ascending=[False, False, True], kind="stable"
    )
    daily: dict[int, list[float | None]] = {}
    if inputs.cluster_daily is not None and not inputs.cluster_daily.empty:
        day_index = {d: i for i, d in enumerate(days)}
        for r in inputs.cluster_daily.itertuples(index=False):
            i = day_index.get(to_date(r.ds))
            if i is None or _nan(r.cluster_id):
                continue
            values = daily.setdefault(int(r.cluster_id), [0.0] * len(days))
            values[i] = float(r.n)
    cards: list[ClusterView] = []
    faded: list[ClusterView] = []
    rows: list[TopicRow] = []
    hidden = 0
    for row in frame.itertuples(index=False):
        cid = int(row.cluster_id)
        key, words = status_text(getattr(row, "status", None), getattr(row, "growth", None))
        is_faded = key == "faded"
        people = topic_people(row, counted)
        with_card = not is_faded and (len(cards) < settings.max_clusters or cid in regressed)
        tid = theme_map.get(cid)
        theme = themes.get(tid, "") if tid is not None else ""
        anchor = f"topic-{cid}" if with_card else ""
        rows.append(
            TopicRow(
                label=labels.get(cid, f"topic #{cid}"),
                theme=theme,
                status=key,
                status_text=words or "—",
                size=int(0 if _nan(row.size) else row.size),
                people=people.text,
                negative_rate=fmt_pct(getattr(row, "negative_rate", None)),
                anchor=anchor,
            )
        )
        if not with_card and not is_faded:
            continue
        if is_faded:
            quotes, why = [], "Faded topic: quotes are shown only for current topics."
        else:
            quotes, why = quotes_for(row, people, quotes_by.get(cid), settings)
            if why.startswith("Quotes hidden"):
                hidden += 1
        first = to_date(getattr(row, "first_seen", None))
        view = ClusterView(
            cluster_id=cid,
            label=labels.get(cid, f"topic #{cid}"),
            keyphrases=_extra_keyphrases(row, labels.get(cid, "")),
            size=int(0 if _nan(row.size) else row.size),
            users=people.n,
            negative_rate=fmt_pct(getattr(row, "negative_rate", None)),
            status=key,
            status_text=words,
            first_seen=fmt_day(first) if first else "",
            spark=(
                charts.sparkline(
                    daily[cid], title=f"Events per day in this topic, last {len(days)} days"
                )
                if cid in daily
                else None
            ),
            quotes=quotes,
            quotes_hidden=why,
            regressed_on=regressed.get(cid, []),
            people_text=people.text,
            theme_id=tid,
            theme=theme,
            anchor=anchor,
        )
        (faded if is_faded else cards).append(view)
    return TopicsResult(
        cards,
        faded[: settings.max_clusters],
        hidden,
        _themes(
            inputs.topics,
            cards,
            themes,
            complaints_by_theme(
                inputs.complaints, settings.min_users_for_quotes, users_counted(inputs.totals)
            ),
        ),
        rows,
        rule,
    )


def _extra_keyphrases(row: Any, label: str) -> list[str]:
    """Keyphrases that add to the label (the label is often made of the first ones)."""
    words = {w.strip().lower() for w in label.replace(",", " ").split()}
    out = []
    for k in as_list(getattr(row, "keyphrases", None)):
        text = clean_text(k, 40)
        if text and not set(text.lower().split()) <= words and text not in out:
            out.append(text)
    return out[:6]


def users_counted(totals: dict[str, int]) -> bool:
    """False when the period's feedback carries no user ids (people cannot be counted)."""
    n = int(totals.get("n_feedback", 0))
    return not (n and int(totals.get("n_with_user", int(totals.get("n_users", 0)) and n)) == 0)


def complaint_label(row: Any, k: int, counted: bool = True) -> str:
    """A complaint group's label, redacted; a data-driven group's only with >= k people.

    A fixed kind's label is the product's words ("does not answer the question"); a
    data-driven group's comes from a member's sentence, so it is held to the quotes' k rule
    (and hidden when people cannot be counted: the group counts users, not conversations).
    """
    cid = getattr(row, "complaint_id", None)
    users = getattr(row, "distinct_users", None)
    if not _nan(cid) and int(cid) >= FIRST_GROUP_ID:
        if not counted:
            return "a group of its own (its words hidden: people cannot be counted)"
        if _nan(users) or int(users) < k:
            return f"a smaller group (its words hidden: fewer than {k} people)"
    return clean_text(getattr(row, "label", ""), 100)


def complaints_by_theme(
    complaints: pd.DataFrame | None, k: int, counted: bool = True, limit: int = 5
) -> dict[int, list[tuple[str, int]]]:
    """topic_id -> [(complaint label, events)], largest first, from `topic_counts`."""
    out: dict[int, list[tuple[str, int]]] = {}
    if complaints is None or complaints.empty or "topic_counts" not in complaints:
        return out
    for row in complaints.itertuples(index=False):
        label = complaint_label(row, k, counted)
        counts = row.topic_counts
        if isinstance(counts, str):
            try:
                counts = json.loads(counts)
            except ValueError:
                continue
        if not label or not isinstance(counts, dict):
            continue
        for tid, n in counts.items():
            if str(tid).lstrip("-").isdigit() and int(tid) >= 0 and int(n) > 0:
                out.setdefault(int(tid), []).append((label, int(n)))
    return {t: sorted(v, key=lambda ln: (-ln[1], ln[0]))[:limit] for t, v in out.items()}


def _themes(
    topics: pd.DataFrame | None,
    cards: list[ClusterView],
    labels: dict[int, str],
    complaints: dict[int, list] | None = None,
) -> list[ThemeView]:
    """The cards grouped under their themes, in the cards' order (empty without themes)."""
    if not labels or not any(c.theme_id is not None for c in cards):
        return []
    info: dict[int, Any] = {}
    if topics is not None and not topics.empty:
        for row in topics.itertuples(index=False):
            if not _nan(row.topic_id):
                info[int(row.topic_id)] = row
    groups: dict[int | None, list[ClusterView]] = {}
    for card in cards:
        groups.setdefault(card.theme_id, []).append(card)
    out = []
    for tid, members in groups.items():
        row = info.get(tid) if tid is not None else None
        key, words = status_text(getattr(row, "status", None), getattr(row, "growth", None))
        size = getattr(row, "size", None)
        subtopics = as_list(getattr(row, "subtopics", None)) if row is not None else []
        out.append(
            ThemeView(
                topic_id=tid,
                label=labels.get(tid, "No theme") if tid is not None else "No theme",
                status=key,
                status_text=words,
                size=int(size) if size is not None and not _nan(size) else 0,
                negative_rate=fmt_pct(getattr(row, "negative_rate", None)),
                subtopics=len(subtopics) if subtopics else len(members),
                clusters=members,
                complaints=(complaints or {}).get(tid, []) if tid is not None else [],
            )
        )
    return out


def votes_note(totals: dict[str, int]) -> str:
    """What "negative" means when some feedback is side-by-side votes ("" when none is)."""
    votes, n = int(totals.get("n_votes", 0)), int(totals.get("n_feedback", 0))
    if not votes:
        return ""
    share = "All" if votes == n else f"{votes:,} of the {n:,}"
    return (
        f"{share} feedback events are side-by-side votes (a thumbs-up on the answer chosen, "
        "a thumbs-down on the other): for them, negative means a comparison lost, so a "
        "version's negative share counts the comparisons it lost."
    )


def period_people(totals: dict[str, int], k: int) -> tuple[str, str]:
    """("412 people" or "58 conversations", the note on how people were counted)."""
    n = int(totals.get("n_feedback", 0))
    users = int(totals.get("n_users", 0))
    with_user = int(totals.get("n_with_user", users and n))
    conversations = int(totals.get("n_conversations", 0))
    if not users_counted(totals):
        return (
            f"{conversations:,} conversation{'s' if conversations != 1 else ''}",
            "This feedback carries no user ids, so people cannot be counted: distinct "
            "conversations (sessions; an answer without a session counts alone) stand in for "
            f"people, and a topic's quotes need at least {k} conversations.",
        )
    text = f"{users:,} {'person' if users == 1 else 'people'}"
    if n and 0 < with_user < n:
        missing = n - with_user
        return text, (
            f"{missing:,} of {n:,} feedback events carry no user id; the people counted are "
            "those with one."
        )
    return text, ""
