"""Readable labels: c-TF-IDF keyphrases, re-ranked by the embedder with MMR, and quotes.

A cluster id means nothing to a person; what they need is the few words that set a cluster apart
from the others and a handful of things users actually wrote. Keyphrases come from class-based
TF-IDF (BERTopic's c-TF-IDF): all texts of a cluster are one document, a term scores high when it
is frequent in that cluster and rare across clusters. Quotes are the members nearest the
cluster's centre in the embedding space, so they show what is typical, not what is extreme.

Redaction placeholders (``<EMAIL>``, ``<PHONE>``...), English stop words and generic words of
feedback ("think, want, people", "make", "gives") never become keyphrases: a label made of them
says nothing about the topic. With an embedder, the best c-TF-IDF candidates are re-ranked by
their cosine to the cluster's centroid (what BERTopic's KeyBERTInspired does) and picked with
maximal marginal relevance, so the label's words are both typical and different from each other.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

from feedback_pipelines.schema import NOISE

#: Redaction placeholders as privacy.py writes them: removed before counting words.
PLACEHOLDER_RE = re.compile(r"<[A-Z][A-Z_]*>")
#: Words of two or more letters (digits allowed after the first letter): no bare numbers.
TOKEN_PATTERN = r"(?u)\b[^\W\d_][\w'-]*[^\W_]\b"
#: Words that are everywhere in feedback about answers and say nothing about which answer, and
#: the contractions and fillers scikit-learn's English list lacks.
FEEDBACK_STOP_WORDS = frozenset(
    {
        "answer", "answers", "question", "questions", "response", "please", "thanks", "thank",
        "hi", "hello", "does", "did", "doing", "just", "really", "ok", "okay", "yes", "don't",
        "doesn't", "didn't", "isn't", "wasn't", "aren't", "can't", "won't", "couldn't",
        "wouldn't", "shouldn't", "it's", "i'm", "i've", "i'd", "i'll", "that's", "there's",
        "what's", "you're", "they're", "let's", "dont", "doesnt", "didnt", "isnt", "cant",
        "wont", "im", "ive",
        # generic words that name no topic (measured: "think, want, people" held 93% of a day)
        "think", "want", "wants", "wanted", "people", "make", "makes", "made", "give", "gives",
        "gave", "like", "know", "need", "needs", "way", "thing", "things", "use", "used",
        "using", "get", "gets", "got", "good", "bad", "better", "best", "great", "sure",
        "right", "say", "said", "tell", "told", "going", "lot", "actually", "maybe", "probably",
        "pretty", "kind", "stuff", "something", "anything", "everything", "someone", "time",
        "times", "help", "helpful", "unhelpful", "correct", "wrong", "information", "info",
        "would", "could", "should", "also", "much", "many", "well", "still", "even", "able",
        # sign-offs and urgency that every topic's messages carry
        "tried", "try", "trying", "urgent", "asap", "appreciate", "appreciated", "cheers", "ty",
        "thx", "hey", "team", "guys", "sorry",
    }
)  # fmt: skip
STOP_WORDS = frozenset(ENGLISH_STOP_WORDS) | FEEDBACK_STOP_WORDS
_WORD_RE = re.compile(TOKEN_PATTERN)
#: Every word, one letter or a number too: those are not keyphrases but do break a phrase.
_ANY_WORD_RE = re.compile(r"(?u)[\w'-]+")
#: Phrases never span these: a keyphrase is words that were next to each other in one clause.
_CLAUSE_RE = re.compile(r"[.!?;:,()\[\]{}\"\n\r\t]+|\s[-–—]\s")


def phrases(text: str, ngram_range: tuple[int, int] = (1, 2)) -> list[str]:
    """The candidate keyphrases of a text: n-grams of adjacent words within one clause.

    Unlike scikit-learn's default (which drops stop words and then joins what is left), an
    n-gram here never contains a stop word and never jumps over one, so "How long should I
    bake" gives "bake", not the false phrase "long bake". Placeholders are removed first.

    Args:
        text: One redacted text.
        ngram_range: Smallest and largest n.
    """
    lo, hi = ngram_range
    out: list[str] = []
    clean = strip_placeholders(text).replace("\u2019", "'").lower()
    for clause in _CLAUSE_RE.split(clean):
        # "answering a different" is no phrase; quotes and dashes around a word are not in it
        tokens = [w for w in (t.strip("'-") for t in _ANY_WORD_RE.findall(clause)) if w]
        keep = [t not in STOP_WORDS and _WORD_RE.fullmatch(t) is not None for t in tokens]
        for n in range(lo, hi + 1):
            for i in range(len(tokens) - n + 1):
                if all(keep[i : i + n]):
                    out.append(" ".join(tokens[i : i + n]))
    return out


@dataclass(frozen=True)
class LabelConfig:
    """Knobs of the labels.

    Attributes:
        n_keyphrases: Keyphrases kept per cluster.
        n_label_terms: Keyphrases joined into the one-line label.
        n_quotes: Representative quotes per cluster (3 to 5 reads well).
        max_docs_per_cluster: Texts per cluster fed to the vectorizer; a bounded sample keeps
            labelling linear in the number of clusters, not in the window's volume.
        max_quote_chars: Quotes are cut to this length (with an ellipsis).
        ngram_range: Word n-grams considered as keyphrases.
        n_candidates: Best c-TF-IDF terms per cluster re-ranked by the embedder.
        diversity: MMR trade-off (0 = only relevance, 1 = only difference from chosen terms).
        seed: For the per-cluster sample.
    """

    n_keyphrases: int = 8
    n_label_terms: int = 3
    n_quotes: int = 5
    max_docs_per_cluster: int = 2000
    max_quote_chars: int = 280
    ngram_range: tuple[int, int] = (1, 2)
    n_candidates: int = 20
    diversity: float = 0.3
    seed: int = 0


def strip_placeholders(text: str) -> str:
    """The text without redaction placeholders, so they are never counted as words."""
    return PLACEHOLDER_RE.sub(" ", text or "")


def _sample_per_cluster(labels: np.ndarray, cap: int, seed: int) -> np.ndarray:
    """Indices of at most `cap` members of each cluster (noise included), in input order."""
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if len(idx) > cap:
            idx = np.sort(rng.choice(idx, size=cap, replace=False))
        keep.append(idx)
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, dtype=int)


def class_tfidf(
    texts: Sequence[str], labels: np.ndarray, config: LabelConfig = LabelConfig()
) -> tuple[list[int], sparse.csr_matrix, np.ndarray]:
    """The c-TF-IDF matrix of the clusters: one row per class (noise included), one column a term.

    tf is each class's term counts divided by its total; idf is ``log(1 + A / f_t)`` with A the
    average number of words per class and f_t the term's count over all classes (BERTopic's
    formula), so a term common to every cluster scores near zero.

    Args:
        texts: Member texts (redacted), aligned with labels.
        labels: Cluster of each text (-1 = noise, kept as its own class for the idf).
        config: Label settings.

    Returns:
        (classes, matrix, terms): the class of each row, the scores, the term of each column.
    """
    labels = np.asarray(labels)
    idx = _sample_per_cluster(labels, config.max_docs_per_cluster, config.seed)
    sub = labels[idx]
    classes = sorted(int(c) for c in np.unique(sub))
    if not classes:
        return [], sparse.csr_matrix((0, 0)), np.array([], dtype=object)
    # Each distinct text is counted once and weighted by its repeats: a window repeats many
    # texts, and the class counts are the same integers (100k events: 65k distinct texts).
    position: dict[str, int] = {}
    doc = np.fromiter(
        (position.setdefault(str(texts[i] or ""), len(position)) for i in idx),
        dtype=np.int64,
        count=len(idx),
    )
    vectorizer = CountVectorizer(analyzer=partial(phrases, ngram_range=config.ngram_range))
    try:
        counts = vectorizer.fit_transform(list(position))
    except ValueError:  # nothing but stop words and placeholders
        return classes, sparse.csr_matrix((len(classes), 0)), np.array([], dtype=object)
    row = np.searchsorted(classes, sub)
    onehot = sparse.csr_matrix(  # repeated (class, text) entries are summed
        (np.ones(len(sub)), (row, doc)), shape=(len(classes), len(position))
    )
    per_class = (onehot @ counts).tocsr().astype(np.float64)
    totals = np.asarray(per_class.sum(axis=1)).ravel()
    tf = sparse.diags(1.0 / np.maximum(totals, 1.0)) @ per_class
    freq = np.asarray(per_class.sum(axis=0)).ravel()
    avg_words = totals.mean() if len(totals) else 0.0
    idf = np.log(1.0 + avg_words / np.maximum(freq, 1.0))
    return classes, (tf @ sparse.diags(idf)).tocsr(), vectorizer.get_feature_names_out()


def _stem(word: str) -> str:
    """A word without its plural or number suffix ("refunds", "boxes", "covid-19").

    For comparing terms only: a crude rule that leaves "status", "class" and "analysis" alone.
    """
    w = re.sub(r"-?[0-9]+$", "", word) or word
    if w.endswith("'s"):
        return w[:-2]
    if len(w) > 4 and w.endswith(("xes", "ches", "shes", "sses")):
        return w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-1]
    return w


def _stems(term: str) -> set[str]:
    """The stems of a term's words: "refunds" and "covid-19" say what "refund", "covid" say."""
    return {_stem(w) for w in term.split()}


def top_keyphrases(
    scores: np.ndarray, terms: np.ndarray, n: int, replace_ratio: float = 0.6
) -> list[str]:
    """The n best terms of one class, without repeating what a chosen term already says.

    A term whose words are all shown already is skipped ("refund, refund policy, policy" says
    "policy" twice; "refunds" and "covid-19" repeat "refund" and "covid"). A phrase that
    contains a chosen shorter term takes its place when it scores at least `replace_ratio` of
    it (it accounts for most of that term's uses: "physical" becomes "physical activities"),
    and is skipped otherwise ("invoice" does not become the rarer "invoice shows").

    Args:
        scores: c-TF-IDF scores of the class over all terms.
        terms: The term of each column.
        n: How many to return.
        replace_ratio: Score share from which a longer phrase replaces a term it contains.
    """
    chosen: list[tuple[str, float]] = []
    covered: set[str] = set()
    for j in np.argsort(-scores, kind="stable"):
        score = float(scores[j])
        if score <= 0 or len(chosen) >= n:
            break
        term = str(terms[j])
        words = _stems(term)
        if words <= covered:
            continue
        inside = [k for k, (c, _) in enumerate(chosen) if _stems(c) < words]
        if inside:
            if any(score < replace_ratio * chosen[k][1] for k in inside):
                continue
            keep = inside[0]
            chosen[keep] = (term, chosen[keep][1])
            chosen = [c for k, c in enumerate(chosen) if k not in inside[1:]]
        else:
            chosen.append((term, score))
        covered |= words
    return [c for c, _ in chosen[:n]]


def mmr(relevance: np.ndarray, similarity: np.ndarray, n: int, diversity: float) -> list[int]:
    """Maximal marginal relevance: the indices of n items, picked one at a time.

    Each pick is the best trade-off between its relevance and its largest similarity to the
    items already chosen.
    """
    chosen: list[int] = []
    left = list(range(len(relevance)))
    while left and len(chosen) < n:
        if chosen:
            redundancy = similarity[np.ix_(left, chosen)].max(axis=1)
        else:
            redundancy = np.zeros(len(left))
        score = (1 - diversity) * relevance[left] - diversity * redundancy
        chosen.append(left.pop(int(np.argmax(score))))
    return chosen


def keyphrases_by_cluster(
    texts: Sequence[str],
    labels: np.ndarray,
    config: LabelConfig = LabelConfig(),
    embed=None,
    centres: dict[int, np.ndarray] | None = None,
) -> dict[int, list[str]]:
    """Keyphrases of every cluster (noise excluded), best first.

    Without an embedder, the c-TF-IDF order (`top_keyphrases`). With one, the cluster's best
    `n_candidates` terms (no word said twice) are embedded once, scored by cosine to the
    cluster's centroid and picked by MMR.

    Args:
        texts: Member texts (redacted), aligned with labels.
        labels: Cluster of each text (-1 = noise).
        config: Label settings.
        embed: Texts -> unit vectors (the embedder of the clustered vectors), or None.
        centres: Cluster id -> unit centroid in the embedder's space (needed with `embed`).

    Returns:
        Cluster id -> list of keyphrases (possibly empty for a cluster of stop words only).
    """
    classes, matrix, terms = class_tfidf(texts, labels, config)
    wide = config.n_candidates if embed is not None and centres else config.n_keyphrases
    out: dict[int, list[str]] = {}
    for r, c in enumerate(classes):
        if c == NOISE:
            continue
        scores = matrix[r].toarray().ravel() if matrix.shape[1] else np.zeros(0)
        out[c] = top_keyphrases(scores, terms, max(wide, config.n_keyphrases))
    if wide == config.n_keyphrases:
        return out
    vocab = sorted({t for keys in out.values() for t in keys})
    if not vocab:
        return out
    vectors = np.asarray(embed(vocab), dtype=np.float32)
    where = {t: i for i, t in enumerate(vocab)}
    for c, keys in out.items():
        if len(keys) <= 1 or c not in centres:
            continue
        v = vectors[[where[t] for t in keys]]
        picked = mmr(v @ centres[c], v @ v.T, config.n_keyphrases, config.diversity)
        out[c] = [keys[i] for i in picked]
    return out


def label_from_keyphrases(keyphrases: Sequence[str], n_terms: int = 3) -> str:
    """One line a person can read in a table: the first few keyphrases."""
    return ", ".join(keyphrases[:n_terms]) if keyphrases else "(no distinctive words)"


def shorten(text: str, max_chars: int) -> str:
    """Whitespace collapsed and cut at a word boundary to max_chars (with an ellipsis)."""
    flat = " ".join((text or "").split())
    if len(flat) <= max_chars:
        return flat
    cut = flat[: max_chars - 1].rsplit(" ", 1)[0]
    return cut + "…"


def centroids(vectors: np.ndarray, labels: np.ndarray) -> dict[int, np.ndarray]:
    """Unit-length mean vector of each cluster (noise excluded), in the embedding space.

    One sparse product, whatever the number of clusters.
    """
    ids = np.unique(labels[labels != NOISE])
    if not len(ids):
        return {}
    rows = np.flatnonzero(labels != NOISE)
    onehot = sparse.csr_matrix(
        (np.ones(len(rows)), (np.searchsorted(ids, labels[rows]), rows)),
        shape=(len(ids), len(labels)),
    )
    means = np.asarray(onehot @ np.asarray(vectors, dtype=np.float64))
    means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
    return {int(c): means[i].astype(np.float32) for i, c in enumerate(ids)}


def representative_quotes(
    texts: Sequence[str],
    vectors: np.ndarray,
    labels: np.ndarray,
    centres: dict[int, np.ndarray],
    n: int = 5,
    max_chars: int = 280,
) -> dict[int, list[str]]:
    """The n distinct member texts nearest each cluster's centre (cosine), nearest first.

    Duplicates (same text up to case and spacing) count once, so a complaint pasted 50 times
    does not fill all the quotes.

    Args:
        texts: Member texts (redacted), aligned with vectors and labels.
        vectors: Unit-length embeddings.
        labels: Cluster of each row (-1 = noise, skipped).
        centres: Cluster id -> unit centroid (see `centroids`).
        n: Quotes per cluster.
        max_chars: Each quote is shortened to this length.
    """
    out: dict[int, list[str]] = {}
    for c, centre in centres.items():
        idx = np.flatnonzero(labels == c)
        sims = vectors[idx] @ centre
        quotes: list[str] = []
        seen: set[str] = set()
        for i in idx[np.argsort(-sims, kind="stable")]:
            key = " ".join(str(texts[i]).lower().split())
            if not key or key in seen:
                continue
            seen.add(key)
            quotes.append(shorten(str(texts[i]), max_chars))
            if len(quotes) >= n:
                break
        out[c] = quotes
    return out


def describe_clusters(
    texts: Sequence[str],
    vectors: np.ndarray,
    labels: np.ndarray,
    config: LabelConfig = LabelConfig(),
    embed=None,
) -> pd.DataFrame:
    """Label, keyphrases, quotes and centroid of every cluster (noise excluded).

    Args:
        texts: Member texts (redacted), aligned with vectors and labels.
        vectors: Unit-length embeddings (full space).
        labels: Cluster of each row (-1 = noise).
        config: Label settings.
        embed: Texts -> unit vectors of the same embedder as `vectors`, to re-rank keyphrase
            candidates (see `keyphrases_by_cluster`); None keeps the c-TF-IDF order.

    Returns:
        One row per cluster: cluster, label, keyphrases (list), quotes (list), centroid (array).
    """
    labels = np.asarray(labels)
    centres = centroids(vectors, labels)
    keys = keyphrases_by_cluster(texts, labels, config, embed, centres)
    quotes = representative_quotes(
        texts, vectors, labels, centres, config.n_quotes, config.max_quote_chars
    )
    rows = [
        {
            "cluster": c,
            "label": label_from_keyphrases(keys.get(c, []), config.n_label_terms),
            "keyphrases": keys.get(c, []),
            "quotes": quotes[c],
            "centroid": centres[c],
        }
        for c in sorted(centres)
    ]
    return pd.DataFrame(rows, columns=["cluster", "label", "keyphrases", "quotes", "centroid"])
