"""What went wrong: negative feedback grouped by the complaint's own words, not the request.

Topics say what users asked about; a team fixing a model also needs to know what went wrong
("does not answer the question", "missing details"). So every negative event with a comment or a
categorized reason is grouped by its complaint alone: the comment (redacted) and the reason. The
request, response and correction never enter, or complaints would group by subject again.

Groups are stable by construction. A fixed vocabulary of complaint kinds (`KINDS`, each with a
few prototype phrasings) holds fixed ids. A complaint takes the kind whose prototypes one of its
sentences is closest to, either as written or in its verdict form (`verdict_form`: subject words
masked, "Doesn't mention something"), because rater comments are long and a sentence embedding
is dominated by the subject; on FeedbackQA the verdict form lifts the share placed on a kind from
29% to 74%. A kind with its own vocabulary (slow, outdated, unsafe...) also needs one of its cue
words. The categorized reason adds `reason_bonus` to its kind and decides when the words point
nowhere clearly; a reason alone decides when there is no comment.

What is close to no kind is grouped on its verdict forms, so by how the answer failed rather than
what it was about: a complaint in one of yesterday's groups stays there, one close to such a
group's centroid joins it, and only the rest is clustered (average-linkage agglomerative, no
seed). New groups continue an old id when their centroid matches, are named by the verdict form
of their most central member ("Discusses … but not specifically …"), and groups smaller than
`min_group_size` fall into "other".

Pure functions over pandas and numpy: the caller passes an `embed` function (the asset passes
one backed by the content-hash cache, so a rerun embeds nothing).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import AgglomerativeClustering
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

from feedback_pipelines.privacy import redact_pii

Embed = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class ComplaintKind:
    """One kind of complaint users of LLM products raise, with its fixed id.

    Attributes:
        complaint_id: Fixed forever (the group's id in every partition).
        kind: Short key, e.g. "off_topic" (what `search --complaint` accepts).
        label: What a person reads.
        reasons: Categorized reasons (CONTRACT section 2) that mean this kind.
        prototypes: Phrasings a user might write; a sentence close to one is this kind.
        cues: Word starts one of which a comment must contain to be this kind (empty: none
            needed). Sentence embeddings match on shared words as much as on meaning ("The
            response itself has limited information" came out "slow" through "the response
            was very slow"); a kind with its own vocabulary must show some of it.
    """

    complaint_id: int
    kind: str
    label: str
    reasons: tuple[str, ...]
    prototypes: tuple[str, ...]
    cues: tuple[str, ...] = ()


KINDS: tuple[ComplaintKind, ...] = (
    ComplaintKind(1, "off_topic", "does not answer the question", ("irrelevant",), (
        "does not answer the question",
        "this is irrelevant to the question",
        "it doesn't address what was asked",
        "the answer talks about something else than what the question asks",
        "off-topic, misses the point of the question",
        "the question is asking about something different",
    )),
    ComplaintKind(2, "incomplete", "missing details / incomplete", ("incomplete",), (
        "missing details",
        "the answer is incomplete",
        "not enough information",
        "too vague and general, not specific",
        "only partially answers the question",
        "it should give more detail and examples",
        "doesn't elaborate enough",
    )),
    ComplaintKind(3, "factual_error", "factually wrong", ("factual_error",), (
        "this is factually wrong",
        "that is wrong",
        "the answer is wrong",
        "the information is incorrect",
        "that's not true, the answer contains mistakes",
        "the facts and numbers are wrong",
        "made up facts, hallucinated",
    ), ("wrong", "incorrect", "false", "untrue", "not true", "mistake", "error", "inaccura",
        "misinform", "hallucinat", "made up", "fake", "correct", "fact")),
    ComplaintKind(4, "outdated", "outdated information", (), (
        "the information is outdated",
        "this is out of date, no longer current",
        "old information, it has changed since",
    ), ("outdated", "out of date", "old", "current", "anymore", "no longer", "update",
        "latest", "date", "recent", "changed")),
    ComplaintKind(5, "too_long", "too long / verbose", ("too_long",), (
        "too long",
        "too verbose and wordy",
        "repetitive, says the same thing twice",
        "flowery and overwritten",
        "could be much shorter and more concise",
    ), ("long", "length", "verbose", "wordy", "short", "concise", "redundan", "repeti",
        "ramble", "rambling", "flowery", "overwritten", "unnecessar")),
    ComplaintKind(6, "formatting", "wrong format", ("formatting",), (
        "wrong format",
        "badly formatted, should be a list or a table",
        "did not follow the requested format",
        "messy layout and punctuation",
    ), ("format", "list", "table", "bullet", "markdown", "layout", "punctuation", "json",
        "indent", "structure", "code block")),
    ComplaintKind(7, "refusal", "refused / unhelpful", ("refusal",), (
        "it refused to answer",
        "the assistant would not help me",
        "unhelpful non-answer",
        "it just said it cannot do that",
    ), ("refus", "won't", "wouldn't", "can't", "cannot", "declin", "unable", "unhelpful",
        "not allowed", "not help", "no help")),
    ComplaintKind(8, "unsafe", "unsafe or rude", ("unsafe",), (
        "unsafe or harmful content",
        "rude and offensive",
        "inappropriate response",
        "dangerous advice",
    ), ("unsafe", "harm", "danger", "rude", "offensive", "inappropriate", "toxic", "racis",
        "sexis", "insult", "violen", "illegal", "offend", "disrespect")),
    ComplaintKind(9, "slow", "slow", (), (
        "too slow",
        "it took forever to respond",
        "the response was very slow",
    ), ("slow", "took", "wait", "forever", "latency", "time out", "timeout", "timed out",
        "seconds", "minutes", "lag", "hang", "speed", "fast")),
    ComplaintKind(10, "style", "awkward wording or tone", ("tone",), (
        "the wording is clumsy and awkward",
        "uses worn-out stock phrases",
        "sentences are badly built",
        "the tone is wrong",
        "sounds robotic and unnatural",
    ), ("word", "phras", "tone", "clich", "awkward", "robotic", "clumsy", "sentence",
        "grammar", "read well", "reads", "style", "unnatural", "cumbersome", "stock")),
)  # fmt: skip

#: The group of complaints close to no kind and in no data-driven group.
OTHER_ID = 0
OTHER_KIND = "other"
OTHER_LABEL = "other"
#: Data-driven groups get ids from here on, so they never collide with a kind.
FIRST_GROUP_ID = 100

KIND_BY_ID = {k.complaint_id: k for k in KINDS}
KIND_BY_NAME = {k.kind: k for k in KINDS}
KIND_BY_REASON = {r: k for k in KINDS for r in k.reasons}

CLUSTER_COLUMNS = [
    "complaint_id",
    "kind",
    "label",
    "label_source",
    "keyphrases",
    "size",
    "share",
    "n_with_reason",
    "distinct_users",
    "example_ids",
    "quotes",
    "centroid",
]
ASSIGNMENT_COLUMNS = ["feedback_id", "complaint_id", "kind", "similarity", "source"]


@dataclass(frozen=True)
class ComplaintConfig:
    """Knobs of the grouping (defaults measured on FeedbackQA rater comments, see the bench).

    Attributes:
        kind_threshold: Cosine from which a sentence is of a kind.
        reason_bonus: Added to the score of the kind the categorized reason names.
        group_distance: Average-linkage cosine distance below which unplaced complaints merge.
        min_group_size: Smaller data-driven groups go to "other".
        match_threshold: Centroid cosine from which a group continues a previous group's id.
        keep_similarity: Cosine to a previous group's centroid from which a complaint joins
            that group before anything is clustered (so it does not move from day to day).
        max_sentences: Sentences of a comment scored (the verdict comes early).
        max_group_sample: Unplaced complaints clustered at most (the rest join their nearest
            group), so the quadratic linkage stays bounded.
        n_examples: Example ids and quotes kept per group.
        max_quote_chars: Quotes are cut to this length.
    """

    kind_threshold: float = 0.5
    reason_bonus: float = 0.1
    group_distance: float = 0.45
    min_group_size: int = 3
    match_threshold: float = 0.8
    keep_similarity: float = 0.6
    max_sentences: int = 4
    max_group_sample: int = 3000
    n_examples: int = 5
    max_quote_chars: int = 200


@dataclass
class ComplaintGroups:
    """The result for one window: one row per group, one per complaint event, and figures."""

    clusters: pd.DataFrame
    assignments: pd.DataFrame
    stats: dict = field(default_factory=dict)


# --- the complaint's text ------------------------------------------------------------------------

_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+|\n+|;\s+")
_WORD_RE = re.compile(r"[^\W\d_][\w'-]*")
_TOKEN_RE = re.compile(r"[^\W\d_][\w'\u2019-]*|[^\s\w]+|\d+")


def _clean(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return ""
    return " ".join(str(value).split())


def complaint_text(comment: object) -> str:
    """The complaint's own words: the comment, PII-redacted (the request is never part of it)."""
    return redact_pii(_clean(comment)) or ""


def complaint_sentences(text: str, max_sentences: int = 4) -> list[str]:
    """The first sentences of a comment with at least two words (each cut to 300 chars)."""
    out = []
    for part in _SENTENCE_RE.split(text or ""):
        part = part.strip(" -–—*\t")
        if len(_WORD_RE.findall(part)) >= 2:
            out.append(part[:300])
        if len(out) >= max_sentences:
            break
    if not out and text.strip():
        out.append(text.strip()[:300])
    return out


#: Words that say how an answer failed, kept when a sentence is reduced to its verdict; every
#: other word (the subject: "visa", "swabs") becomes "something". Sentence embeddings are
#: dominated by the subject, so "Doesn't mention swabs" sits nearer other complaints about swabs
#: than "does not answer the question"; its verdict form "Doesn't mention something" does not.
VERDICT_WORDS = frozenset(ENGLISH_STOP_WORDS) | frozenset(
    """
answer answers answered question questions asked asks asking ask query request address addresses
addressed mention mentions mentioned mentioning relevant irrelevant related relate relates
unrelated topic subject point mark misses missed miss vague general generic broad detail details
detailed specific specifically specifics information info enough little lacking lacks lack brief
short basic bare minimal incomplete partial partially complete wrong incorrect false true error
errors mistake mistakes inaccurate accurate outdated date old current long verbose wordy lengthy
repetitive redundant concise format formatted formatting list table confusing unclear clear
refused refuse refuses unhelpful helpful useful useless help rude offensive unsafe harmful
dangerous inappropriate slow talks talk discusses discuss explains explain describes describe
says say gives give provides provide does doesn't don't didn't isn't wasn't instead rather
different elaborate example examples link links
""".split()
)
_KEEP = VERDICT_WORDS | {w for k in KINDS for p in k.prototypes for w in _WORD_RE.findall(p)}


def verdict_form(sentence: str) -> str:
    """The sentence with its subject words replaced ("Doesn't mention something at all").

    Kept: `VERDICT_WORDS`, the words of the kinds' prototypes, punctuation; a run of other
    words (and any token holding a digit: account or case numbers are never a label) becomes one
    "something". Fixed vocabulary, so the result depends on the sentence only.
    """
    out: list[str] = []
    masked = False
    for token in _TOKEN_RE.findall(sentence):
        word = token.lower().replace("\u2019", "'")
        if (token[0].isalpha() and word not in _KEEP) or any(c.isdigit() for c in token):
            if not masked:
                out.append("something")
            masked = True
        else:
            out.append(token)
            masked = False
    return " ".join(out)


def select_complaints(events: pd.DataFrame) -> pd.DataFrame:
    """The negative events that say what went wrong: a comment, or a categorized reason.

    Returns:
        feedback_id, text (redacted comment, maybe ''), reason (or None), user_id, kept in the
        input's order; only the columns named here are read, never the request.
    """
    neg = events["is_negative"].fillna(False).astype(bool)
    text = events.get("comment", pd.Series([None] * len(events), index=events.index))
    text = text.map(complaint_text)
    reason = events.get("reason", pd.Series([None] * len(events), index=events.index))
    reason = reason.map(lambda r: _clean(r) or None)
    keep = neg & ((text != "") | reason.notna())
    users = events.get("user_id", pd.Series([None] * len(events), index=events.index))
    out = pd.DataFrame(
        {
            "feedback_id": events["feedback_id"].astype(str),
            "text": text,
            "reason": reason,
            "user_id": users,
        }
    )[keep]
    return out.reset_index(drop=True)


# --- kinds ---------------------------------------------------------------------------------------


def prototype_texts() -> tuple[list[str], np.ndarray]:
    """Every prototype phrasing and the row of its kind in `KINDS`."""
    texts = [p for k in KINDS for p in k.prototypes]
    owner = np.array([i for i, k in enumerate(KINDS) for _ in k.prototypes])
    return texts, owner


def kind_scores(
    sentence_vectors: np.ndarray,
    sentence_owner: np.ndarray,
    n_complaints: int,
    prototype_vectors: np.ndarray,
    prototype_owner: np.ndarray,
) -> np.ndarray:
    """Score of each complaint for each kind, shape (n_complaints, len(KINDS)).

    The best cosine of any of its sentences to any of the kind's prototypes; -1 where a
    complaint has no text.
    """
    scores = np.full((n_complaints, len(KINDS)), -1.0, dtype=np.float32)
    if not len(sentence_vectors):
        return scores
    sims = sentence_vectors @ prototype_vectors.T  # (sentences, prototypes)
    per_kind = np.full((len(sentence_vectors), len(KINDS)), -1.0, dtype=np.float32)
    for k in range(len(KINDS)):
        per_kind[:, k] = sims[:, prototype_owner == k].max(axis=1)
    np.maximum.at(scores, sentence_owner, per_kind)
    return scores


_CUE_RE = {
    k.kind: re.compile(r"\b(?:" + "|".join(re.escape(c) for c in k.cues) + ")", re.IGNORECASE)
    for k in KINDS
    if k.cues
}


def cue_mask(texts: Sequence[str]) -> np.ndarray:
    """(n, len(KINDS)) booleans: whether each text may be each kind (has one of its cues)."""
    mask = np.ones((len(texts), len(KINDS)), dtype=bool)
    for j, k in enumerate(KINDS):
        pattern = _CUE_RE.get(k.kind)
        if pattern is not None:
            mask[:, j] = [bool(pattern.search(t or "")) for t in texts]
    return mask


def place_kinds(
    scores: np.ndarray, reasons: Sequence[str | None], config: ComplaintConfig
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The kind row of each complaint (-1 = none), its score, and what decided it.

    The reason's kind gets `reason_bonus`, and decides when no kind clears `kind_threshold`
    (a user's own category outweighs vague words: "Not great." with reason `incomplete`); a
    complaint without text takes its reason's kind outright (score NaN). Without a reason, a
    complaint whose best score is under `kind_threshold` has no kind.
    """
    boosted = scores.copy()
    row_of = {k.kind: i for i, k in enumerate(KINDS)}
    reason_rows = np.array(
        [row_of[KIND_BY_REASON[r].kind] if r in KIND_BY_REASON else -1 for r in reasons]
    )
    has_text = scores.max(axis=1) > -1 if len(scores) else np.zeros(0, dtype=bool)
    for i in np.flatnonzero(reason_rows >= 0):
        boosted[i, reason_rows[i]] += config.reason_bonus
    best = boosted.argmax(axis=1) if len(scores) else np.zeros(0, dtype=int)
    best_score = boosted.max(axis=1) if len(scores) else np.zeros(0)
    kind = np.where(best_score >= config.kind_threshold, best, -1)
    score = best_score.astype(np.float64)
    source = []
    for i in range(len(scores)):
        r = reason_rows[i]
        if not has_text[i]:
            kind[i] = r
            score[i] = np.nan
            source.append("reason")
        elif r >= 0 and kind[i] == r:
            source.append("text+reason")
        elif r >= 0 and kind[i] < 0:
            # the user named the kind and the words say nothing clearer: the reason decides
            kind[i] = r
            score[i] = float(boosted[i, r])
            source.append("reason")
        else:
            source.append("text")
    return kind, score, source


# --- data-driven groups --------------------------------------------------------------------------


def unit(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def group_unplaced(vectors: np.ndarray, config: ComplaintConfig) -> np.ndarray:
    """Group labels (0..k-1 by size, -1 = too small) of complaints close to no kind.

    Average linkage on cosine distance with a distance threshold: no seed, no k to choose, the
    same input gives the same groups. Past `max_group_sample` the first that many (the caller
    orders them deterministically) are clustered and the rest join their nearest group.
    """
    n = len(vectors)
    if n < max(2, config.min_group_size):
        return np.full(n, -1, dtype=int)
    fit_n = min(n, config.max_group_sample)
    model = AgglomerativeClustering(
        n_clusters=None,
        metric="cosine",
        linkage="average",
        distance_threshold=config.group_distance,
    )
    raw = model.fit_predict(vectors[:fit_n])
    labels = np.full(n, -1, dtype=int)
    labels[:fit_n] = raw
    if fit_n < n:
        ids = np.unique(raw)
        cents = unit(np.stack([vectors[:fit_n][raw == c].mean(axis=0) for c in ids]))
        sims = vectors[fit_n:] @ cents.T
        near = sims.argmax(axis=1)
        ok = sims[np.arange(len(near)), near] >= 1.0 - config.group_distance
        labels[fit_n:] = np.where(ok, ids[near], -1)
    sizes = pd.Series(labels[labels >= 0]).value_counts()
    big = [c for c, s in sizes.items() if s >= config.min_group_size]
    # by size, ties by first member: the numbering does not depend on the linkage's own labels
    first = {c: int(np.flatnonzero(labels == c)[0]) for c in big}
    order = sorted(big, key=lambda c: (-int(sizes[c]), first[c]))
    remap = {c: i for i, c in enumerate(order)}
    return np.array([remap.get(c, -1) for c in labels], dtype=int)


#: Words too common in complaints to name a group; negations stay ("does not mention").
LABEL_STOP_WORDS = frozenset(
    """something the a an this that these those it its is are was were be been of to in and or
    for on as with by at from answer question questions response information info which what
    who how when where there their they them you your i we our has have had will would""".split()
)


def distinctive_phrases(
    texts: Sequence[str], labels: np.ndarray, n_terms: int = 3
) -> dict[int, list[str]]:
    """The phrases (1-3 words) that set each group apart from all complaints (c-TF-IDF).

    Run on verdict forms, the phrases say how the answer failed ("only talks", "does not
    mention"), not what it was about. Texts labelled -1 are background: they count for the idf,
    never get phrases.
    """
    labels = np.asarray(labels)
    groups = sorted(int(c) for c in set(labels.tolist()) if c >= 0)
    if not groups:
        return {}
    vectorizer = CountVectorizer(
        ngram_range=(1, 3),
        stop_words=sorted(LABEL_STOP_WORDS),
        token_pattern=r"(?u)\b[^\W\d_][\w']*[^\W\d_]",
    )
    try:
        counts = vectorizer.fit_transform([t or "" for t in texts]).tocsr()
    except ValueError:  # nothing but stop words
        return {g: [] for g in groups}
    terms = vectorizer.get_feature_names_out()
    classes = [*groups, -1]
    per_class = np.vstack(
        [np.asarray(counts[labels == c].sum(axis=0)).ravel() for c in classes]
    ).astype(np.float64)
    tf = per_class / np.maximum(per_class.sum(axis=1, keepdims=True), 1.0)
    avg = per_class.sum(axis=1).mean()
    idf = np.log(1.0 + avg / np.maximum(per_class.sum(axis=0), 1.0))
    scores = tf * idf
    # a phrase must recur inside the group to name it
    docs_with = np.vstack([np.asarray((counts[labels == c] > 0).sum(axis=0)).ravel()
                           for c in groups])  # fmt: skip
    out: dict[int, list[str]] = {}
    for row, g in enumerate(groups):
        chosen: list[str] = []
        covered: set[str] = set()
        for j in np.argsort(-scores[row], kind="stable"):
            if scores[row, j] <= 0 or len(chosen) >= n_terms:
                break
            if docs_with[row, j] < 2 and (labels == g).sum() > 2:
                continue
            words = set(str(terms[j]).split())
            if words <= ENGLISH_STOP_WORDS or words <= covered:
                continue
            chosen = [c for c in chosen if not set(c.split()) < words]
            chosen.append(str(terms[j]))
            covered |= words
        out[g] = chosen
    return out


def previous_groups(previous: pd.DataFrame | None) -> tuple[np.ndarray, np.ndarray]:
    """Ids and unit centroids of the previous partition's data-driven groups."""
    if previous is None or not len(previous):
        return np.zeros(0, dtype=int), np.zeros((0, 0), dtype=np.float32)
    rows = previous[previous["complaint_id"] >= FIRST_GROUP_ID]
    rows = rows[rows["centroid"].map(lambda c: c is not None and len(c) > 0)]
    if not len(rows):
        return np.zeros(0, dtype=int), np.zeros((0, 0), dtype=np.float32)
    cents = unit(np.stack([np.asarray(c, dtype=np.float32) for c in rows["centroid"]]))
    return rows["complaint_id"].to_numpy(dtype=int), cents


def verdict_label(verdicts: Sequence[str], max_chars: int = 70) -> str:
    """A group's name from the verdict forms of its most central members.

    The shortest first sentence that still says something, subject words shown as "…"
    ("Discusses … but not specifically …").
    """
    best = ""
    for text in verdicts:
        first = complaint_sentences(text, 1)
        if not first:
            continue
        line = re.sub(r"\bsomething\b(\s+something\b)*", "…", first[0])
        line = re.sub(r"\s+([.,;:!?)])", r"\1", line).strip(" .")
        telling = [w for w in _WORD_RE.findall(line) if w.lower() not in ENGLISH_STOP_WORDS]
        if len(telling) < 2:  # "… on … of … in …" names nothing
            continue
        if not best or len(line) < len(best):
            best = line
    return _shorten(best, max_chars) if best else ""


def match_previous(
    centroids: np.ndarray, previous: pd.DataFrame | None, next_id: int, threshold: float
) -> list[int]:
    """Ids for today's data-driven groups: a previous group's id when its centroid is close.

    One-to-one (Hungarian on cosine), accepted from `threshold`; the others get new ids from
    `next_id` in their order (largest first).
    """
    ids = [-1] * len(centroids)
    prev = previous
    if prev is not None and len(prev) and len(centroids):
        prev = prev[prev["complaint_id"] >= FIRST_GROUP_ID]
        prev = prev[prev["centroid"].map(lambda c: c is not None and len(c) > 0)]
    if prev is not None and len(prev) and len(centroids):
        old = unit(np.stack([np.asarray(c, dtype=np.float32) for c in prev["centroid"]]))
        sims = unit(centroids) @ old.T
        rows, cols = linear_sum_assignment(-sims)
        for r, c in zip(rows, cols, strict=True):
            if sims[r, c] >= threshold:
                ids[r] = int(prev["complaint_id"].iloc[c])
    fresh = next_id
    for i in range(len(ids)):
        if ids[i] < 0:
            ids[i] = fresh
            fresh += 1
    return ids


# --- the whole window ----------------------------------------------------------------------------


def _first_of_each_text(indices: Sequence[int], texts: Sequence[str]) -> list[int]:
    """The first of `indices` with each distinct non-empty text, in their order.

    Templated and pasted complaints repeat: the most central members of a group are often one
    text many times, which made five identical quotes and, when that text's verdict form names
    nothing, no label from the members at all.
    """
    first: dict[str, int] = {}
    for i in indices:
        if texts[i]:
            first.setdefault(texts[i], int(i))
    return list(first.values())


def _shorten(text: str, max_chars: int) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= max_chars else flat[: max_chars - 1].rsplit(" ", 1)[0] + "…"


def group_complaints(
    events: pd.DataFrame,
    embed: Embed,
    *,
    previous: pd.DataFrame | None = None,
    previous_assignments: Mapping[str, int] | None = None,
    next_id: int = FIRST_GROUP_ID,
    config: ComplaintConfig = ComplaintConfig(),
) -> ComplaintGroups:
    """Group a window's negative feedback by what went wrong.

    Args:
        events: Feedback events with feedback_id, is_negative, comment, reason (user_id
            optional). Other columns (request, response, correction) are ignored.
        embed: Texts -> unit vectors (n, dim), e.g. the embedder through its cache.
        previous: Yesterday's `complaint_clusters` rows (complaint_id, centroid), for the ids of
            data-driven groups.
        previous_assignments: Yesterday's feedback_id -> complaint_id: a complaint that was in
            one of those data-driven groups stays there (placed events never move).
        next_id: First unused data-driven id (>= FIRST_GROUP_ID).
        config: Thresholds.

    Returns:
        clusters (`CLUSTER_COLUMNS`, one row per non-empty group), assignments
        (`ASSIGNMENT_COLUMNS`, one row per complaint), stats.
    """
    picked = select_complaints(events).sort_values("feedback_id", kind="stable")
    picked = picked.reset_index(drop=True)
    n = len(picked)
    if n == 0:
        return ComplaintGroups(
            pd.DataFrame(columns=CLUSTER_COLUMNS),
            pd.DataFrame(columns=ASSIGNMENT_COLUMNS),
            {"complaints": 0},
        )
    sentences: list[str] = []
    owner: list[int] = []
    for i, text in enumerate(picked["text"]):
        for s in complaint_sentences(text, config.max_sentences):
            sentences.append(s)
            owner.append(i)
    proto_texts, proto_owner = prototype_texts()
    verdicts = [verdict_form(s) for s in sentences]
    vectors = np.asarray(embed(proto_texts + sentences + verdicts), dtype=np.float32)
    dim = vectors.shape[1]
    n_proto, n_sent = len(proto_texts), len(sentences)
    proto_vectors = unit(vectors[:n_proto])
    sent_vectors = unit(vectors[n_proto : n_proto + n_sent])
    verdict_vectors = unit(vectors[n_proto + n_sent :])
    owner_arr = np.asarray(owner, dtype=int)
    scores = np.maximum(
        kind_scores(sent_vectors, owner_arr, n, proto_vectors, proto_owner),
        kind_scores(verdict_vectors, owner_arr, n, proto_vectors, proto_owner),
    )
    # a kind whose own words the comment lacks is out of reach (its reason still names it)
    has_sentences = np.bincount(owner_arr, minlength=n).astype(bool)
    scores = np.where(cue_mask(picked["text"].tolist()) | ~has_sentences[:, None], scores, -0.5)
    kind_row, score, source = place_kinds(scores, picked["reason"].tolist(), config)

    # each complaint's vector: the mean of its sentences' verdict forms, so what is close to no
    # kind still groups by how the answer failed, not by its subject (a reason alone: its
    # kind's prototypes)
    comp = np.zeros((n, dim), dtype=np.float32)
    if len(owner_arr):
        np.add.at(comp, owner_arr, verdict_vectors)
    kind_centres = unit(np.stack([proto_vectors[proto_owner == k].mean(axis=0)
                                  for k in range(len(KINDS))]))  # fmt: skip
    empty = ~np.bincount(owner_arr, minlength=n).astype(bool)
    for i in np.flatnonzero(empty):
        if kind_row[i] >= 0:
            comp[i] = kind_centres[kind_row[i]]
    comp = unit(comp)

    complaint_id = np.full(n, OTHER_ID, dtype=int)
    placed = kind_row >= 0
    complaint_id[placed] = [KINDS[k].complaint_id for k in kind_row[placed]]
    pool = np.flatnonzero(~placed & ~empty)
    texts = picked["text"].tolist()
    # stable by construction: a complaint close to one of yesterday's groups stays in it; only
    # the rest is clustered, and a new group close to an old one continues its id
    old_ids, old_centroids = previous_groups(previous)
    if previous_assignments is not None and len(pool):
        known = {int(c) for c in old_ids}
        before = picked["feedback_id"].iloc[pool].map(previous_assignments)
        keep = before.map(lambda c: pd.notna(c) and int(c) in known).to_numpy(dtype=bool)
        complaint_id[pool[keep]] = before[keep].astype(int).to_numpy()
        kept_before = int(keep.sum())
        pool = pool[~keep]
    else:
        kept_before = 0
    if len(old_ids) and len(pool):
        sims = comp[pool] @ old_centroids.T
        near = sims.argmax(axis=1)
        stays = sims[np.arange(len(pool)), near] >= config.keep_similarity
        complaint_id[pool[stays]] = old_ids[near[stays]]
        rest = pool[~stays]
    else:
        rest = pool
    local = group_unplaced(comp[rest], config)
    n_new = int(local.max()) + 1 if len(local) and local.max() >= 0 else 0
    new_centroids = (
        unit(np.stack([comp[rest][local == g].mean(axis=0) for g in range(n_new)]))
        if n_new
        else np.zeros((0, dim), dtype=np.float32)
    )
    new_ids = match_previous(
        new_centroids, previous, max(next_id, FIRST_GROUP_ID), config.match_threshold
    )
    for g in range(n_new):
        complaint_id[rest[local == g]] = new_ids[g]
    # phrases: every complaint is background, each data-driven group a class
    data_ids = sorted(int(c) for c in set(complaint_id.tolist()) if c >= FIRST_GROUP_ID)
    class_of = {cid: i for i, cid in enumerate(data_ids)}
    phrase_labels = np.array([class_of.get(int(c), -1) for c in complaint_id], dtype=int)
    verdict_texts = [
        " ".join(verdict_form(x) for x in complaint_sentences(t, config.max_sentences))
        for t in texts
    ]
    phrases = distinctive_phrases(verdict_texts, phrase_labels)

    kinds = [
        KINDS[k].kind if k >= 0 else OTHER_KIND for k in kind_row
    ]  # data-driven groups are of kind "other": close to no known kind
    assignments = pd.DataFrame(
        {
            "feedback_id": picked["feedback_id"],
            "complaint_id": complaint_id,
            "kind": kinds,
            "similarity": np.round(score, 4),
            "source": source,
        }
    )
    rows = []
    for cid in sorted(set(complaint_id.tolist())):
        members = np.flatnonzero(complaint_id == cid)
        centre = unit(comp[members].mean(axis=0, keepdims=True))[0]
        near = members[np.argsort(-(comp[members] @ centre), kind="stable")]
        with_text = _first_of_each_text(near, texts)  # five quotes, not one five times
        if cid in KIND_BY_ID:
            kind, label, source_of_label, keyphrases = (
                KIND_BY_ID[cid].kind, KIND_BY_ID[cid].label, "kind", [],
            )  # fmt: skip
        elif cid == OTHER_ID:
            kind, label, source_of_label, keyphrases = OTHER_KIND, OTHER_LABEL, "kind", []
        else:
            keyphrases = phrases.get(class_of[cid], [])
            kind = OTHER_KIND
            label = verdict_label([verdict_texts[i] for i in with_text[:3]])
            source_of_label = "verdict"
            if not label:  # the complaints' own words: the most central one's first sentence
                first = complaint_sentences(texts[with_text[0]], 1) if with_text else []
                label, source_of_label = (_shorten(first[0], 70), "quote") if first else ("", "")
            if not label:  # phrases of verdict forms are mostly function words: the last resort
                label = ", ".join(keyphrases) if keyphrases else f"complaint group {cid}"
                source_of_label = "keyphrases"
        users = picked["user_id"].iloc[members]
        rows.append(
            {
                "complaint_id": int(cid),
                "kind": kind,
                "label": label,
                "label_source": source_of_label,
                "keyphrases": keyphrases,
                "size": len(members),
                "share": round(len(members) / n, 4),
                "n_with_reason": int(picked["reason"].iloc[members].notna().sum()),
                "distinct_users": int(users.dropna().nunique()),
                "example_ids": [picked["feedback_id"].iloc[i] for i in near[: config.n_examples]],
                "quotes": [
                    _shorten(texts[i], config.max_quote_chars)
                    for i in with_text[: config.n_examples]
                ],
                "centroid": centre.astype(np.float32),
            }
        )
    clusters = pd.DataFrame(rows, columns=CLUSTER_COLUMNS)
    clusters = clusters.sort_values(["size", "complaint_id"], ascending=[False, True])
    stats = {
        "complaints": n,
        "with_text": int((~empty).sum()),
        "sentences": len(sentences),
        "kind_share": round(float(placed.mean()), 4),
        "grouped_share": round(float((complaint_id >= FIRST_GROUP_ID).mean()), 4),
        "other_share": round(float((complaint_id == OTHER_ID).mean()), 4),
        "groups": len(clusters),
        "data_driven_groups": len(data_ids),
        "new_groups": n_new,
        "kept_in_previous_groups": kept_before + int(len(pool) - len(rest)),
        "by_kind": {k: int(v) for k, v in pd.Series(kinds).value_counts().items()},
    }
    return ComplaintGroups(clusters.reset_index(drop=True), assignments, stats)


def resolve_complaint(value: str | int) -> int | str:
    """A `--complaint` value as an id (an integer) or a kind name ("off_topic", "other")."""
    text = str(value).strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    key = text.lower().replace("-", "_").replace(" ", "_")
    if key in KIND_BY_NAME or key == OTHER_KIND:
        return key
    by_label = {k.label.lower(): k.kind for k in KINDS}
    if text.lower() in by_label:
        return by_label[text.lower()]
    known = ", ".join([*KIND_BY_NAME, OTHER_KIND])
    raise ValueError(f"unknown complaint {value!r}: give a complaint id or a kind ({known})")
