"""Synthetic landing zone with planted, documented truth.

``generate`` writes a realistic week (or any span) of LLM traces and user feedback into the
landing-zone layout of CONTRACT.md section 2, and a ``truth.json`` that says exactly what the
pipeline should find in it. Every stage tests against that truth: ingest (counts, duplicates,
quarantine, late and orphan feedback), privacy (planted PII and look-alikes), clustering (topic of
every event), regressions (one hidden per-topic regression, one clean release) and reporting
(HTML payloads that must stay inert).

Layout written under ``out``::

    traces/dt=YYYY-MM-DD/gateway-00.jsonl, gateway-01.jsonl, gateway-02.jsonl.gz
    feedback/dt=YYYY-MM-DD/widget-00.jsonl, widget-01.jsonl.gz, api-00.jsonl, slack-00.jsonl.gz
    truth.json

Volume: ``events_per_day`` valid unique feedback events a day and about 1.45 traces per event,
so 1,000,000 events are about 2.45 million lines (about 1.6 GB, gzip level 1 on a third of the
files) and take about a minute of one CPU core.

Lines within a file are in timestamp order, as a gateway or collector writes them; malformed
lines are mixed in at random positions. ``api-00.jsonl`` omits null optional fields, the other
feedback files write them as ``null``. Files are rewritten, never deleted: other files already in
a ``dt=`` folder are left alone. Output is byte-identical for the same arguments.

What the data holds:

* Topics (``synthetic_phrasebank.TOPICS``): 15 distinct domains, each with 5–6 intents (10+
  request phrasings per topic, slot fillers, casual openers/closers, some all-lowercase), the
  answers that fit each intent, a flawed answer, the user's correction of it, and complaints.
  One topic per session; every feedback event's topic is its trace's topic. A negative event's
  trace gets the flawed answer 70% of the time, so corrections correct what was said.
  The regressed version's negatives on the regressed topic carry their own failure mode
  (SQL dialect mix-ups, ``factual_error``) in comments.
* Model versions ``nimbus-2026-09`` (from day 0), ``nimbus-2026-10`` (about 1/7 of the way in,
  baseline the first: same per-topic negative rates and the same topic mix — an A/A release)
  and ``nimbus-2026-11`` (about 3/7 in, baseline the second: negative rate on ``sql_help`` rises
  from 0.15 to 0.50 while its traffic leans towards topics with low negative rates, so its overall
  negative rate stays within a fraction of a point of its baseline). Traffic moves to a new
  version gradually; older versions keep a share. Over one or two days, where versions share a
  first day, each goes live 8 hours after the one before it (and v13, below, 8 hours after its
  model), so versions are first seen in release order. Per-(version, topic) negative events are
  spread evenly over time (error-diffusion, not coin flips), so the realized rates are close to
  the planted ones even on small samples.
* Prompt versions ``support-v12`` and ``support-v13``: v13 starts within ``nimbus-2026-10``
  (half its traffic on its first day, 85% later) and is the only prompt of ``nimbus-2026-11``.
  Prompts change nothing in the rates (no confounding).
* New topic ``smart_home_setup`` appears only from about 4/7 of the way in.
* Sessions of 1–5 turns, 40–160 s apart, each turn carrying the whole conversation in
  ``messages``; after a ``regenerate`` the next trace repeats the same input. Feedback on a turn:
  thumbs_up/down (reason or null, a comment on ~30% of negatives), rating 1–5, correction
  (a corrected answer, topic-specific), comment (with a reason = negative; without = praise),
  regenerate, copy. A few ``unsafe`` reasons, mostly on medication and workout answers.
* PII inside user text (requests, comments, corrections, and echoed in a few responses):
  emails, phone numbers in several national formats, Luhn-valid card numbers (grouped, dashed,
  plain), ``sk-``/``sk-proj-`` keys, ``ghp_`` tokens, ``AKIA`` keys, IPv4 addresses; plus
  look-alikes that are not PII (13–19 digit strings failing Luhn, some card-shaped).
* HTML/script payloads in requests and comments.
* Malformed lines (``malformed=True``) on every day, every reason at least once per day:
  ``not_json`` (truncated line / HTML error page), ``not_object`` (a JSON list, string or
  number), ``missing_field`` (a required field absent), ``wrong_type`` (``messages`` a string,
  ``response`` a list, ``score`` a non-numeric string, ``trace_id`` a number, ``metadata`` a
  string), ``unknown_kind`` (feedback only), ``bad_timestamp`` (unparseable), ``invalid_utf8``
  (Latin-1 bytes inside a string), ``oversize`` (feedback only: a line over 100,000 characters,
  a pasted log in the comment). Malformed lines carry fresh ids and never a positive signal.
* Re-deliveries: byte-identical copies of feedback lines in the same file, in another file of
  the same day and in the next day's folder; the same for a few traces. Late feedback (lands
  the day after its trace, timestamped on the day it lands, never a positive signal) and
  feedback whose ``trace_id`` was never delivered.

Validity rules the truth assumes (what the reference parse in the tests applies): a line is
quarantined when it is not valid UTF-8, longer than ``MAX_LINE_CHARS`` characters, not JSON, not
a JSON object, misses a required field (traces: trace_id, timestamp, model_version, messages,
response; feedback: feedback_id, trace_id, timestamp, kind), has a wrong type, an unknown kind,
or an unparseable timestamp. Every other line is valid; a valid line whose id was seen before
(same file, same day, or an earlier day's folder) is a duplicate.

truth.json keys:

* ``seed``, ``start``, ``end`` (ISO dates), ``days``, ``events_per_day``, ``malformed``.
* ``topics``: list of ``{name, label, first_day, base_negative_rate}``.
* ``versions``: list of ``{model_version, first_day, baseline}`` (baseline null for the first).
* ``prompt_versions``: list of ``{prompt_version, model_version, first_day}``.
* ``planted_rates``: ``{model_version: {topic: negative_rate}}`` as designed.
* ``expected_regressions``: list of ``{candidate, baseline, topic, metric: "negative_rate",
  rate_candidate, rate_baseline, n_candidate, n_baseline, overall_rate_candidate,
  overall_rate_baseline}`` with realized rates over all generated days.
* ``expected_clean``: list of ``{candidate, baseline, overall_rate_candidate,
  overall_rate_baseline}``: a release whose per-topic rates equal its baseline's.
* ``overall_rates``: ``{model_version: {n, negative, negative_rate}}`` over valid unique
  feedback whose trace is known (late feedback included, unknown-trace feedback not).
* ``rates_by_topic``: ``{model_version: {topic: {n, negative, negative_rate}}}``, same basis.
* ``new_topic``: ``{name, first_day}``.
* ``counts``: ``{ds: {...}}`` per day, meaning what the warehouse holds after dedup within and
  across days (an id first seen on day d counts on d only): ``traces_valid_unique``,
  ``feedback_valid_unique``, ``trace_duplicates`` and ``feedback_duplicates`` (valid lines in
  that day's folder whose id was already seen), ``feedback_unknown_trace``, ``feedback_late``
  (trace in an earlier day's folder), ``feedback_negative`` (is_negative per CONTRACT),
  ``corrections``, ``regenerations`` (regenerate events), ``sessions``, ``abandoned``,
  ``quarantined`` ``{reason: n}`` (both sources), ``quarantined_by_source``
  ``{"traces"|"feedback": {reason: n}}``, ``lines`` ``{"traces"|"feedback": n}`` (all lines in
  the folder), ``files`` ``{"traces"|"feedback": [file names]}``.
* ``corrections``: total valid unique correction events.
* ``feedback_topic``: ``{feedback_id: topic}`` for every valid unique feedback event (for an
  unknown-trace event, the topic of the trace that never arrived).
* ``trace_topic``: ``{trace_id: topic}`` for every valid unique trace.
* ``abandoned_trace_ids``: sorted trace ids expected ``abandoned``: the last trace of each
  session (sessions never cross midnight) that got no thumbs_up, copy or rating >= 4.
* ``pii``: every planted PII string, exactly as written; ``pii_by_kind``: the same by kind
  (email, phone, card, sk, ghp, akia, ip).
* ``not_pii``: planted look-alikes that must survive redaction unchanged.
* ``payloads``: planted HTML/script payloads (each contains ``<``).
* ``raw_user_ids``: up to 50 raw user ids that appear in the files (never to be stored).
* ``quarantine_reasons``: the reason names used in ``counts[ds]["quarantined"]``.
"""

from __future__ import annotations

import gzip
import json
import math
import random
import re
import string
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from itertools import accumulate
from json.encoder import encode_basestring
from operator import itemgetter
from pathlib import Path
from typing import Any

from feedback_pipelines.sources import synthetic_phrasebank as pb

MODEL_VERSIONS = ("nimbus-2026-09", "nimbus-2026-10", "nimbus-2026-11")
PROMPT_OLD, PROMPT_NEW = "support-v12", "support-v13"
REGRESSED_TOPIC = "sql_help"
REGRESSED_RATE = 0.50
NEW_TOPIC = "smart_home_setup"

KINDS = ("thumbs_up", "thumbs_down", "rating", "correction", "comment", "regenerate", "copy")
REASONS = (
    "factual_error",
    "incomplete",
    "irrelevant",
    "tone",
    "too_long",
    "formatting",
    "refusal",
    "unsafe",
    "other",
)
QUARANTINE_REASONS = (
    "not_json",
    "not_object",
    "missing_field",
    "wrong_type",
    "unknown_kind",
    "bad_timestamp",
    "invalid_utf8",
    "oversize",
)
TRACE_REQUIRED = ("trace_id", "timestamp", "model_version", "messages", "response")
FEEDBACK_REQUIRED = ("feedback_id", "trace_id", "timestamp", "kind")
MAX_LINE_CHARS = 100_000

TRACE_FILES = ("gateway-00.jsonl", "gateway-01.jsonl", "gateway-02.jsonl.gz")
FEEDBACK_FILES = ("widget-00.jsonl", "widget-01.jsonl.gz", "api-00.jsonl", "slack-00.jsonl.gz")
GZIP_LEVEL = 1  # fast: the benchmark's volume matters more than the ratio

_DAY_MS = 86_400_000
RELEASE_GAP_MS = 8 * 3_600_000
_HOUR_WEIGHTS = (1, 1, 1, 1, 1, 2, 3, 5, 7, 8, 9, 9, 9, 9, 9, 8, 8, 7, 6, 5, 4, 3, 2, 2)
_TURNS_CUM = (0.30, 0.60, 0.80, 0.92, 1.0)  # 1..5 turns
_FB_LAST_CUM = (0.25, 0.80, 1.0)  # 0, 1, 2 events on a session's last turn
_FB_MID_CUM = (0.55, 0.93, 1.0)  # 0, 1, 2 events on an earlier turn
_NEG_KINDS = ("thumbs_down", "correction", "regenerate", "rating", "comment")
_NEG_CUM = tuple(accumulate((0.45, 0.18, 0.17, 0.10, 0.10)))
_POS_KINDS = ("thumbs_up", "copy", "rating", "comment")
_POS_CUM = tuple(accumulate((0.45, 0.25, 0.20, 0.10)))
_ROLE_WEIGHTS = {"customer": 0.55, "agent": 0.22, "analyst": 0.15, "admin": 0.08}
_APPS = {
    "customer": ("web", "ios", "android"),
    "agent": ("helpdesk-web",),
    "analyst": ("analytics-studio", "slack-bot"),
    "admin": ("admin-console", "web"),
}
_LOCALES = (
    "en-US",
    "en-US",
    "en-US",
    "en-GB",
    "de-DE",
    "fr-FR",
    "es-ES",
    "ja-JP",
    "pt-BR",
    "en-IN",
)
_SOURCE_FILES = {"widget": (0, 1), "api": (2,), "slack": (3,)}
_CLOCK = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86_400)]
_PII_PLACEHOLDER = re.compile(r"\{(email|phone|card|sk|ghp|akia|ip|digits)\}")
_ALNUM = string.ascii_letters + string.digits


def generate(
    out: Path,
    days: int,
    end: date,
    seed: int = 7,
    events_per_day: int = 1200,
    *,
    malformed: bool = True,
) -> dict:
    """Writes a synthetic landing zone under ``out`` and returns its truth.

    Args:
        out: Landing directory; ``traces/``, ``feedback/`` and ``truth.json`` are written in it.
        days: Number of daily partitions, ending at ``end``.
        end: Last day (UTC) generated.
        seed: Seed of the only random stream; same arguments give byte-identical files.
        events_per_day: Valid unique feedback events per day (regular, late and unknown-trace
            together); traces come to about 1.45 per event. At least 20.
        malformed: Plant malformed lines (every reason, every day). ``False`` for benchmarks
            that want clean volume; duplicates, late and orphan feedback are still planted.

    Returns:
        The truth dict (also written to ``out/truth.json``); its keys are described in the
        module docstring.
    """
    if days < 1:
        raise ValueError("days must be >= 1")
    if events_per_day < 20:
        raise ValueError("events_per_day must be >= 20")
    gen = _Generator(Path(out), days, end, seed, events_per_day, malformed)
    truth = gen.run()
    _write_truth(Path(out) / "truth.json", truth)
    return truth


def write_jsonl(path: Path, records: Iterable[Mapping[str, Any]], gz: bool = False) -> int:
    """Writes records as JSON lines (UTF-8, gzip with a fixed header when ``gz``).

    Deterministic: the same records give the same bytes, so re-running a writer is idempotent.

    Returns:
        The number of lines written.
    """
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    _write_lines(Path(path), lines, gz)
    return len(lines)


def luhn_valid(digits: str) -> bool:
    """Returns whether a digit string (separators ignored) passes the Luhn checksum."""
    ds = [int(c) for c in digits if c.isdigit()]
    total = 0
    for i, d in enumerate(reversed(ds)):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return len(ds) > 0 and total % 10 == 0


def _write_lines(path: Path, lines: list[str], gz: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape") if lines else b""
    if gz:
        data = gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)
    path.write_bytes(data)


def _write_truth(path: Path, truth: dict) -> None:
    # One key per line keeps the file readable while the big maps stay on the fast C encoder.
    path.parent.mkdir(parents=True, exist_ok=True)
    parts = [f"{json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in truth.items()]
    path.write_text("{\n" + ",\n".join(parts) + "\n}\n", encoding="utf-8")


def _pick(rng: random.Random, items: tuple | list, cum: tuple | list) -> Any:
    return items[bisect_right(cum, rng.random() * cum[-1])]


# json.dumps(s, ensure_ascii=False) for one string, without the encoder set-up per call: the
# generator quotes ~3 strings per line, so this is most of its JSON cost.
_dq = encode_basestring


class _Topic:
    """A phrasebank topic compiled for fast sampling."""

    def __init__(self, index: int, spec: dict[str, Any]) -> None:
        self.index = index
        self.name: str = spec["name"]
        self.label: str = spec["label"]
        self.rate: float = spec["rate"]
        self.weight: float = spec["weight"]
        self.slots = [(k, v) for k, v in spec["slots"].items()]
        self.derive = pb.DERIVE.get(self.name)
        self.intents: list[dict[str, list[str]]] = spec["intents"]
        self.followups: list[str] = spec["followups"]
        self.negative_comments: list[str] = spec["negative_comments"]
        self.regression_comments: list[str] = spec.get("regression_comments", [])
        self.positive_comments: list[str] = spec["positive_comments"]
        self.pii: list[str] = spec.get("pii", [])
        self.lookalikes: list[str] = spec.get("lookalikes", [])
        self.pii_rate = 0.08 if self.name == "python_debugging" else 0.03
        roles = spec["roles"]
        self.roles = tuple(roles)
        self.roles_cum = tuple(accumulate(roles.values()))
        reasons = spec["reasons"]
        self.reasons = tuple(reasons)
        self.reasons_cum = tuple(accumulate(reasons.values()))

    def sample_slots(self, rng: random.Random) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, values in self.slots:
            v = values[int(rng.random() * len(values))]
            if isinstance(v, dict):
                out.update(v)
            else:
                out[key] = v
        if self.derive is not None:
            self.derive(out)
        return out


class _Generator:
    """One generation run; all randomness comes from ``self.rng`` in a fixed call order."""

    def __init__(
        self, out: Path, days: int, end: date, seed: int, events_per_day: int, malformed: bool
    ) -> None:
        self.out = out
        self.days = days
        self.end = end
        self.start = end - timedelta(days=days - 1)
        self.seed = seed
        self.epd = events_per_day
        self.malformed = malformed
        self.rng = random.Random(seed)
        self.topics = [_Topic(i, t) for i, t in enumerate(pb.TOPICS)]
        self.t_by_name = {t.name: t for t in self.topics}
        self._plan()
        self._make_users()
        self._make_pii_pools()
        # truth accumulators
        self.feedback_topic: dict[str, str] = {}
        self.trace_topic: dict[str, str] = {}
        self.abandoned: list[str] = []
        self.rate_n = [[0] * len(self.topics) for _ in MODEL_VERSIONS]
        self.rate_neg = [[0] * len(self.topics) for _ in MODEL_VERSIONS]
        self.acc: dict[tuple[int, int], float] = {}
        self.planted: dict[str, dict[str, None]] = {
            k: {} for k in ("email", "phone", "card", "sk", "ghp", "akia", "ip", "digits")
        }
        self.payloads: dict[str, None] = {}
        self.raw_user_ids: dict[str, None] = {}
        self.prompt_first: dict[tuple[str, str], int] = {}
        self.counts: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------ plan
    def _plan(self) -> None:
        d = self.days
        off2 = min(d - 1, max(1, round(d / 7)))
        off3 = min(d - 1, max(off2 + 1, round(3 * d / 7)))
        self.v_first = [0, off2, off3]
        # A version released on its predecessor's first day (spans of one or two days) goes
        # live 8 hours after it, so its first event follows the predecessor's as in production
        # (the regression stage orders versions by first sighting).
        self.release_ms = [
            RELEASE_GAP_MS * sum(self.v_first[j] == self.v_first[vi] for j in range(vi))
            for vi in range(3)
        ]
        self.new_topic_first = min(d - 1, max(1, round(4 * d / 7)))
        self.prompt_change = min(d - 1, off2 + 1)
        self.regressed = self.t_by_name[REGRESSED_TOPIC].index
        self.new_topic = self.t_by_name[NEW_TOPIC].index
        base = [t.rate for t in self.topics]
        self.p = [list(base), list(base), list(base)]
        self.p[2][self.regressed] = REGRESSED_RATE
        self.shares = [self._shares(day) for day in range(d)]
        # Tilt the candidate's topic mix towards low-negative topics until its expected overall
        # negative rate equals its baseline's: the regression then hides in the overall number.
        target = self._expected_rate(1, 0.0)
        lo, hi = 0.0, 40.0
        if self._expected_rate(2, hi) > target:
            lo = hi
        else:
            for _ in range(60):
                mid = (lo + hi) / 2
                if self._expected_rate(2, mid) > target:
                    lo = mid
                else:
                    hi = mid
        self.beta = lo
        self.mix: dict[tuple[int, int], tuple[tuple[int, ...], tuple[float, ...]]] = {}
        for day in range(d):
            for vi in range(3):
                w = self._mix_weights(vi, day, self.beta if vi == 2 else 0.0)
                self.mix[(vi, day)] = (tuple(w), tuple(accumulate(w.values())))
        self.v_cum = [tuple(accumulate(s)) for s in self.shares]

    def _live(self, vi: int, pv: str, day: int, ms: int, end: int) -> int:
        """`ms` (in [0, end]) moved into the part of the day model `vi` with prompt `pv` is live.

        Only on a day a version shares with its predecessor's release (spans of one or two
        days); the new prompt of the second model goes live a gap after that model.
        """
        release = self.release_ms[vi] if day == self.v_first[vi] else 0
        if vi == 1 and pv == PROMPT_NEW and day == self.prompt_change == self.v_first[1]:
            release += RELEASE_GAP_MS
        return release + ms * (end - release) // end if release else ms

    def _shares(self, day: int) -> list[float]:
        active = [vi for vi in range(3) if self.v_first[vi] <= day]
        out = [0.0, 0.0, 0.0]
        remaining = 1.0
        for vi in reversed(active):
            if vi == active[0]:
                out[vi] = remaining
            else:
                s = remaining * min(0.65, 0.35 + 0.10 * (day - self.v_first[vi]))
                out[vi] = s
                remaining -= s
        return out

    def _mix_weights(self, vi: int, day: int, beta: float) -> dict[int, float]:
        ref = sum(t.rate for t in self.topics) / len(self.topics)
        w: dict[int, float] = {}
        for t in self.topics:
            if t.index == self.new_topic and day < self.new_topic_first:
                continue
            tilt = 1.0 if t.index == self.regressed else math.exp(-beta * (t.rate - ref))
            w[t.index] = t.weight * tilt
        total = sum(w.values())
        return {k: v / total for k, v in w.items()}

    def _expected_rate(self, vi: int, beta: float) -> float:
        num = den = 0.0
        for day in range(self.days):
            s = self.shares[day][vi]
            if s <= 0:
                continue
            w = self._mix_weights(vi, day, beta)
            num += s * sum(wt * self.p[vi][ti] for ti, wt in w.items())
            den += s
        return num / den if den else 0.0

    # ----------------------------------------------------------- actors, PII
    def _make_users(self) -> None:
        rng = self.rng
        n = max(240, self.epd // 2)
        nums = rng.sample(range(1, 1_000_000), n)
        roles = tuple(_ROLE_WEIGHTS)
        roles_cum = tuple(accumulate(_ROLE_WEIGHTS.values()))
        self.users_by_role: dict[str, list[tuple]] = {r: [] for r in roles}
        for num in nums:
            role = _pick(rng, roles, roles_cum)
            raw = f"u_{num:06d}" if rng.random() < 0.5 else f"user-{num:05d}@corp.example"
            apps = _APPS[role]
            app = apps[int(rng.random() * len(apps))]
            locale = _LOCALES[int(rng.random() * len(_LOCALES))]
            # plain ASCII names: the JSON is written directly, as for every generated line
            meta_trace = f'{{"app":"{app}","user_role":"{role}","locale":"{locale}"}}'
            meta_fb = {
                src: f'{{"source":"{src}","app":"{app}","user_role":"{role}"}}'
                for src in _SOURCE_FILES
            }
            self.users_by_role[role].append((raw, _dq(raw), meta_trace, meta_fb))
        everyone = [u for r in roles for u in self.users_by_role[r]]
        for r in roles:
            if not self.users_by_role[r]:
                self.users_by_role[r] = everyone

    def _make_pii_pools(self) -> None:
        rng = self.rng
        emails = []
        for i in range(16):
            f = pb.FIRST_NAMES[int(rng.random() * len(pb.FIRST_NAMES))]
            la = pb.LAST_NAMES[int(rng.random() * len(pb.LAST_NAMES))]
            dom = pb.EMAIL_DOMAINS[int(rng.random() * len(pb.EMAIL_DOMAINS))]
            style = i % 3
            if style == 0:
                emails.append(f"{f}.{la}@{dom}")
            elif style == 1:
                emails.append(f"{f}{la[0]}{rng.randrange(10, 99)}@{dom}")
            else:
                emails.append(f"{f}_{la}+support@{dom}")
        phones = []
        for i in range(16):
            a = rng.choice((212, 312, 415, 646, 617, 206))
            x = rng.randrange(100, 199)
            style = i % 8
            phones.append(
                [
                    f"+1 ({a}) 555-0{x}",
                    f"{a}-555-0{x}",
                    f"({a}) 555-0{x}",
                    f"{a}.555.0{x}",
                    f"+1-{a}-555-0{x}",
                    f"+44 20 7946 0{x}",
                    f"+49 30 {rng.randrange(1000, 9999)} {rng.randrange(1000, 9999)}",
                    f"+33 1 42 68 {rng.randrange(10, 99)} {rng.randrange(10, 99)}",
                ][style]
            )
        cards = []
        for i in range(10):
            prefix, length = [
                ("4", 16),
                ("51", 16),
                ("55", 16),
                ("37", 15),
                ("6011", 16),
                ("4", 16),
                ("34", 15),
                ("52", 16),
                ("4", 16),
                ("6011", 16),
            ][i]
            body = prefix + "".join(str(rng.randrange(10)) for _ in range(length - len(prefix) - 1))
            num = body + str(_luhn_check_digit(body))
            cards.append(_group_card(num, i % 3))
        looks = []
        for i in range(16):
            length = (16, 16, 13, 18, 19, 16)[i % 6]
            body = "".join(str(rng.randrange(10)) for _ in range(length - 1))
            if i % 3 == 0:
                body = "4" + body[1:]  # Visa-shaped, still invalid
            num = body + str((_luhn_check_digit(body) + 1 + rng.randrange(9)) % 10)
            looks.append(_group_card(num, 0) if (i % 4 == 0 and length == 16) else num)
        sk = [
            ("sk-proj-" + _rand_str(rng, _ALNUM, 40))
            if i % 2
            else ("sk-" + _rand_str(rng, _ALNUM, 48))
            for i in range(5)
        ]
        ghp = ["ghp_" + _rand_str(rng, _ALNUM, 36) for _ in range(5)]
        akia = ["AKIA" + _rand_str(rng, string.ascii_uppercase + "234567", 16) for _ in range(5)]
        ips = []
        for i in range(10):
            ips.append(
                [
                    f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                    f"192.168.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                    f"172.{rng.randrange(16, 32)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                    f"203.0.113.{rng.randrange(1, 255)}",
                    f"198.51.100.{rng.randrange(1, 255)}",
                ][i % 5]
            )
        self.pools = {
            "email": emails,
            "phone": phones,
            "card": cards,
            "sk": sk,
            "ghp": ghp,
            "akia": akia,
            "ip": ips,
            "digits": looks,
        }
        self.pool_pos = dict.fromkeys(self.pools, 0)

    def _pii(self, kind: str) -> str:
        pool = self.pools[kind]
        i = self.pool_pos[kind]
        self.pool_pos[kind] = i + 1
        value = pool[i % len(pool)]
        self.planted[kind][value] = None
        return value

    def _fill_snippet(self, snippet: str) -> tuple[str, str, str]:
        kind = _PII_PLACEHOLDER.search(snippet).group(1)
        value = self._pii(kind)
        return snippet.replace("{" + kind + "}", value), kind, value

    def _payload(self) -> str:
        rng = self.rng
        p = pb.PAYLOADS[int(rng.random() * len(pb.PAYLOADS))]
        self.payloads[p] = None
        return pb.PAYLOAD_WRAPPERS[int(rng.random() * len(pb.PAYLOAD_WRAPPERS))].replace(
            "{payload}", p
        )

    # ------------------------------------------------------------------ text
    def _user_text(self, topic: _Topic, body: str) -> tuple[str, str | None]:
        """Dresses a request body like a user would and plants PII, look-alikes, payloads."""
        rng = self.rng
        text = (
            pb.OPENERS[int(rng.random() * len(pb.OPENERS))]
            + body
            + pb.CLOSERS[int(rng.random() * len(pb.CLOSERS))]
        )
        if rng.random() < 0.12:
            text = text.lower()
        echo = None
        r = rng.random()
        if r < topic.pii_rate:
            pool = topic.pii if topic.pii and rng.random() < 0.8 else pb.GENERIC_REQUEST_PII
            snippet, kind, value = self._fill_snippet(pool[int(rng.random() * len(pool))])
            text = f"{text} {snippet}"
            if kind in ("email", "phone") and rng.random() < 0.3:
                echo = value
        elif r < topic.pii_rate + 0.02:
            pool = topic.lookalikes or pb.GENERIC_LOOKALIKES
            snippet, _, _ = self._fill_snippet(pool[int(rng.random() * len(pool))])
            text = f"{text} {snippet}"
        elif r < topic.pii_rate + 0.024:
            text = f"{text} {self._payload()}"
        return text, echo

    def _request(
        self, topic: _Topic, intent: dict[str, list[str]], slots: dict[str, str]
    ) -> tuple[str, str | None]:
        reqs = intent["requests"]
        return self._user_text(topic, reqs[int(self.rng.random() * len(reqs))].format_map(slots))

    def _followup(
        self, topic: _Topic, intent: dict[str, list[str]], slots: dict[str, str], prev_neg: bool
    ) -> tuple[str, str | None, dict[str, list[str]]]:
        """A next user turn: a complaint after a bad answer, else a follow-up or a new ask."""
        rng = self.rng
        r = rng.random()
        if prev_neg:
            neg = pb.NEGATIVE_FOLLOWUPS[int(rng.random() * len(pb.NEGATIVE_FOLLOWUPS))]
            if r < 0.5:
                fu = topic.followups[int(rng.random() * len(topic.followups))]
                body = f"{neg} {fu.format_map(slots)}"
            else:
                body = neg
        elif r < 0.6:
            body = topic.followups[int(rng.random() * len(topic.followups))].format_map(slots)
        else:
            intent = topic.intents[int(rng.random() * len(topic.intents))]
            prefix = pb.POSITIVE_FOLLOWUP_PREFIXES[
                int(rng.random() * len(pb.POSITIVE_FOLLOWUP_PREFIXES))
            ]
            reqs = intent["requests"]
            body = prefix + reqs[int(rng.random() * len(reqs))].format_map(slots)
        text, echo = self._user_text(topic, body)
        return text, echo, intent

    def _negative_comment(
        self,
        topic: _Topic,
        intent: dict[str, list[str]],
        slots: dict[str, str],
        reason: str | None,
        regressed: bool,
    ) -> str:
        """A complaint: about this answer, about the topic, or generic for the reason."""
        rng = self.rng
        r = rng.random()
        if regressed and topic.regression_comments and r < 0.6:
            pool = topic.regression_comments
        elif r < 0.5 or (reason is None and r < 0.8):
            pool = intent["complaints"]
        elif r < 0.8 or reason is None:
            pool = topic.negative_comments
        else:
            pool = pb.REASON_COMMENTS.get(reason, pb.GENERIC_NEGATIVE_COMMENTS)
        return self._comment_extras(pool[int(rng.random() * len(pool))].format_map(slots))

    def _positive_comment(self, topic: _Topic) -> str:
        rng = self.rng
        if rng.random() < 0.7:
            text = topic.positive_comments[int(rng.random() * len(topic.positive_comments))]
        else:
            text = pb.GENERIC_POSITIVE_COMMENTS[
                int(rng.random() * len(pb.GENERIC_POSITIVE_COMMENTS))
            ]
        return self._comment_extras(text)

    def _comment_extras(self, text: str) -> str:
        rng = self.rng
        r = rng.random()
        if r < 0.03:
            snippet, _, _ = self._fill_snippet(
                pb.COMMENT_PII[int(rng.random() * len(pb.COMMENT_PII))]
            )
            return f"{text} {snippet}"
        if r < 0.04:
            return f"{text} {self._payload()}"
        return text

    def _correction(self, intent: dict[str, list[str]], slots: dict[str, str]) -> str:
        rng = self.rng
        pool = intent["corrections"]
        text = pool[int(rng.random() * len(pool))].format_map(slots)
        text = text[0].upper() + text[1:]
        if rng.random() < 0.02:
            snippet, _, _ = self._fill_snippet(
                pb.CORRECTION_PII[int(rng.random() * len(pb.CORRECTION_PII))]
            )
            text = f"{text} {snippet}"
        return text

    def _reason(self, topic: _Topic, vi: int) -> str:
        if vi == 2 and topic.index == self.regressed and self.rng.random() < 0.7:
            return "factual_error"
        if self.rng.random() < 0.015:
            return "unsafe" if topic.name != "recipe_conversion" else "other"
        return _pick(self.rng, topic.reasons, topic.reasons_cum)

    def _negative(self, vi: int, ti: int) -> bool:
        """Error diffusion per (version, topic): realized rates track the planted ones."""
        key = (vi, ti)
        a = self.acc.get(key)
        if a is None:
            a = self.rng.random()
        a += self.p[vi][ti]
        if a >= 1.0:
            self.acc[key] = a - 1.0
            return True
        self.acc[key] = a
        return False

    # ------------------------------------------------------------- one day
    def run(self) -> dict:
        carry_fb: list[tuple[str, str]] = []
        carry_tr: list[tuple[str, str]] = []
        late_pool: list[tuple] = []
        for day in range(self.days):
            carry_fb, carry_tr, late_pool = self._day(day, carry_fb, carry_tr, late_pool)
        return self._truth()

    def _day(
        self, day: int, carry_fb: list, carry_tr: list, late_prev: list
    ) -> tuple[list, list, list]:
        rng = self.rng
        ds = (self.start + timedelta(days=day)).isoformat()
        prefix = ds + "T"
        tr_files: list[list[tuple[str, str]]] = [[] for _ in TRACE_FILES]
        fb_files: list[list[tuple[str, str]]] = [[] for _ in FEEDBACK_FILES]
        tr_pool: list[tuple[int, str, str]] = []
        fb_pool: list[tuple[int, str, str]] = []
        late_next: list[tuple] = []
        late_seen = 0
        c = {
            "traces_valid_unique": 0,
            "feedback_valid_unique": 0,
            "trace_duplicates": 0,
            "feedback_duplicates": 0,
            "feedback_unknown_trace": 0,
            "feedback_late": 0,
            "feedback_negative": 0,
            "corrections": 0,
            "regenerations": 0,
            "sessions": 0,
            "abandoned": 0,
        }
        day_trace_ids: list[str] = []

        def ts(ms: int) -> str:
            s, m3 = divmod(ms, 1000)
            return f"{prefix}{_CLOCK[s]}.{m3:03d}Z"

        def fb_file(src: str) -> int:
            opts = _SOURCE_FILES[src]
            return opts[0] if len(opts) == 1 else opts[int(rng.random() * len(opts))]

        def emit_fb(
            tid: str,
            sid: str,
            user: tuple,
            ms: int,
            kind: str,
            reason: str | None,
            score: int | None,
            comment: str | None,
            correction: str | None,
            topic_name: str,
            vi: int | None,
            ti: int,
            regular: bool,
        ) -> bool:
            """Writes one valid feedback event and books it in the truth; returns is_negative."""
            r = rng.random()
            src = "widget" if r < 0.7 else ("api" if r < 0.9 else "slack")
            fid = f"fb_{rng.getrandbits(96):024x}"
            t = ts(ms)
            head = (
                f'{{"feedback_id":"{fid}","trace_id":"{tid}","session_id":"{sid}",'
                f'"user_id":{user[1]},"timestamp":"{t}","kind":"{kind}"'
            )
            if src != "api":
                line = (
                    f'{head},"reason":{"null" if reason is None else _dq(reason)},'
                    f'"score":{"null" if score is None else score},'
                    f'"comment":{"null" if comment is None else _dq(comment)},'
                    f'"correction":{"null" if correction is None else _dq(correction)},'
                    f'"metadata":{user[3][src]}}}'
                )
            else:  # this source omits null fields
                parts = [head]
                if reason is not None:
                    parts.append(f',"reason":{_dq(reason)}')
                if score is not None:
                    parts.append(f',"score":{score}')
                if comment is not None:
                    parts.append(f',"comment":{_dq(comment)}')
                if correction is not None:
                    parts.append(f',"correction":{_dq(correction)}')
                parts.append(f',"metadata":{user[3][src]}}}')
                line = "".join(parts)
            f = fb_file(src)
            fb_files[f].append((t, line))
            if regular:
                fb_pool.append((f, t, line))
            neg = (
                kind in ("thumbs_down", "correction", "regenerate")
                or (kind == "rating" and score <= 2)
                or (kind == "comment" and reason is not None)
            )
            self.feedback_topic[fid] = topic_name
            if len(self.raw_user_ids) < 50:
                self.raw_user_ids.setdefault(user[0])
            c["feedback_valid_unique"] += 1
            c["feedback_negative"] += neg
            c["corrections"] += kind == "correction"
            c["regenerations"] += kind == "regenerate"
            if vi is not None:
                self.rate_n[vi][ti] += 1
                self.rate_neg[vi][ti] += neg
            return neg

        n_late = min(len(late_prev), max(2, round(0.004 * self.epd))) if day > 0 else 0
        n_unknown = max(2, round(0.002 * self.epd))
        target = self.epd - n_late - n_unknown
        v_cum = self.v_cum[day]
        fb_count = 0

        # ---- regular sessions
        while fb_count < target:
            vi = _pick(rng, (0, 1, 2), v_cum)
            t_items, t_cum = self.mix[(vi, day)]
            topic = self.topics[_pick(rng, t_items, t_cum)]
            ti = topic.index
            role = _pick(rng, topic.roles, topic.roles_cum)
            pool = self.users_by_role[role]
            user = pool[int(rng.random() * len(pool))]
            mv = MODEL_VERSIONS[vi]
            if vi == 0 or (vi == 1 and day < self.prompt_change):
                pv = PROMPT_OLD
            elif vi == 1:
                pv = (
                    PROMPT_NEW
                    if rng.random() < (0.5 if day == self.prompt_change else 0.85)
                    else PROMPT_OLD
                )
            else:
                pv = PROMPT_NEW
            if (pv, mv) not in self.prompt_first:
                self.prompt_first[(pv, mv)] = day
            n_turns = bisect_right(_TURNS_CUM, rng.random()) + 1
            slots = topic.sample_slots(rng)
            intent = topic.intents[int(rng.random() * len(topic.intents))]
            sid = f"sess_{rng.getrandbits(64):016x}"
            hour = _pick(rng, range(24), _HOUR_CUM)
            start = hour * 3_600_000 + int(rng.random() * 3_600_000)
            start = min(start, _DAY_MS - 1_000_000 - int(rng.random() * 60_000))
            start = self._live(vi, pv, day, start, _DAY_MS - 1_000_000)
            c["sessions"] += 1
            sys_msg = '{"role":"system","content":' + _dq(pb.SYSTEM_PROMPTS[pv]) + "}"
            history = [sys_msg]
            hist_chars = len(pb.SYSTEM_PROMPTS[pv])
            regen_input: tuple[list[str], int] | None = None
            prev_neg = False
            t_ms = start
            last_positive = False
            tid = ""
            for k in range(n_turns):
                is_last = k == n_turns - 1
                r = rng.random()
                n_fb = bisect_right(_FB_LAST_CUM if is_last else _FB_MID_CUM, r)
                n_fb = min(n_fb, target - fb_count)
                flags = [self._negative(vi, ti) for _ in range(n_fb)]
                any_neg = True in flags
                # input messages
                echo = None
                if regen_input is not None:
                    msgs, in_chars = regen_input
                else:
                    if k == 0:
                        req, echo = self._request(topic, intent, slots)
                    else:
                        req, echo, intent = self._followup(topic, intent, slots, prev_neg)
                    msgs = [*history, '{"role":"user","content":' + _dq(req) + "}"]
                    in_chars = hist_chars + len(req)
                bad = any_neg and rng.random() < 0.7
                resp_pool = intent["bad"] if bad else intent["responses"]
                resp = resp_pool[int(rng.random() * len(resp_pool))].format_map(slots)
                resp = resp[0].upper() + resp[1:]
                if echo is not None:
                    resp = f"Thanks — I'll use {echo} for follow-up. {resp}"
                tid = f"{rng.getrandbits(128):032x}"
                out_tok = len(resp) // 4 + int(rng.random() * 24)
                in_tok = in_chars // 4 + 3 * len(msgs)
                lat = round((220 + out_tok * (24, 21, 16)[vi]) * (0.7 + 0.9 * rng.random()), 1)
                t_str = ts(t_ms)
                line = (
                    f'{{"trace_id":"{tid}","session_id":"{sid}","user_id":{user[1]},'
                    f'"timestamp":"{t_str}","model_version":"{mv}","prompt_version":"{pv}",'
                    f'"messages":[{",".join(msgs)}],"response":{_dq(resp)},'
                    f'"latency_ms":{lat},"input_tokens":{in_tok},"output_tokens":{out_tok},'
                    f'"metadata":{user[2]}}}'
                )
                f = _pick(rng, (0, 1, 2), (0.45, 0.75, 1.0))
                tr_files[f].append((t_str, line))
                tr_pool.append((f, t_str, line))
                self.trace_topic[tid] = topic.name
                day_trace_ids.append(tid)
                c["traces_valid_unique"] += 1
                # feedback on this turn
                positive = False
                regenerated = False
                first_kind = None
                for j, neg in enumerate(flags):
                    kinds, cum = (_NEG_KINDS, _NEG_CUM) if neg else (_POS_KINDS, _POS_CUM)
                    kind = _pick(rng, kinds, cum)
                    if kind == first_kind:
                        kind = kinds[(kinds.index(kind) + 1) % len(kinds)]
                    if kind == "regenerate" and (is_last or regenerated):
                        # a regenerate always produces a next turn; none follows the last one
                        kind = "correction" if first_kind == "thumbs_down" else "thumbs_down"
                    first_kind = kind
                    reason = score = comment = correction = None
                    if kind == "thumbs_down":
                        reason = None if rng.random() < 0.25 else self._reason(topic, vi)
                        if rng.random() < 0.3:
                            comment = self._negative_comment(topic, intent, slots, reason, vi == 2)
                    elif kind == "correction":
                        correction = self._correction(intent, slots)
                        rr = rng.random()
                        reason = "factual_error" if rr < 0.6 else "incomplete" if rr < 0.8 else None
                        if rng.random() < 0.2:
                            comment = pb.CORRECTION_COMMENTS[
                                int(rng.random() * len(pb.CORRECTION_COMMENTS))
                            ]
                    elif kind == "regenerate":
                        regenerated = True
                    elif kind == "rating":
                        if neg:
                            score = 1 if rng.random() < 0.4 else 2
                            if rng.random() < 0.3:
                                comment = self._negative_comment(
                                    topic, intent, slots, None, vi == 2
                                )
                        else:
                            rr = rng.random()
                            score = 3 if rr < 0.2 else (4 if rr < 0.55 else 5)
                            if rng.random() < 0.1:
                                comment = self._positive_comment(topic)
                    elif kind == "comment":
                        if neg:
                            reason = self._reason(topic, vi)
                            comment = self._negative_comment(topic, intent, slots, reason, vi == 2)
                        else:
                            comment = self._positive_comment(topic)
                    elif kind == "thumbs_up" and rng.random() < 0.08:
                        comment = self._positive_comment(topic)
                    delay = (
                        2_000 + int(rng.random() * 4_000)
                        if kind == "regenerate"
                        else 3_000 + int(rng.random() * (37_000 if not is_last else 110_000))
                    )
                    emit_fb(
                        tid,
                        sid,
                        user,
                        t_ms + delay + j,
                        kind,
                        reason,
                        score,
                        comment,
                        correction,
                        topic.name,
                        vi,
                        ti,
                        True,
                    )
                    fb_count += 1
                    if kind in ("thumbs_up", "copy") or (kind == "rating" and score >= 4):
                        positive = True
                if t_ms >= _DAY_MS - 5_400_000:
                    late_seen += 1
                    cand = (tid, sid, user, vi, ti, slots, intent)
                    if len(late_next) < 400:
                        late_next.append(cand)
                    else:
                        j = int(rng.random() * late_seen)
                        if j < 400:
                            late_next[j] = cand
                # next turn
                if regenerated:
                    regen_input = (msgs, in_chars)
                    t_ms += 8_000 + int(rng.random() * 12_000)
                else:
                    regen_input = None
                    history = [*msgs, '{"role":"assistant","content":' + _dq(resp) + "}"]
                    hist_chars = in_chars + len(resp)
                    t_ms += 40_000 + int(rng.random() * 120_000)
                prev_neg = any_neg
                last_positive = positive
            if not last_positive:
                self.abandoned.append(tid)
                c["abandoned"] += 1

        # ---- late feedback on yesterday's evening traces
        if n_late:
            for cand in rng.sample(late_prev, n_late):
                tid, sid, user, vi, ti, slots, intent = cand
                topic = self.topics[ti]
                neg = self._negative(vi, ti)
                ms = 5_000 + int(rng.random() * 9_000_000)
                prefix_c = pb.LATE_COMMENTS[int(rng.random() * len(pb.LATE_COMMENTS))]
                reason = score = comment = correction = None
                if neg:
                    rr = rng.random()
                    if rr < 0.4:
                        kind = "thumbs_down"
                        reason = self._reason(topic, vi)
                        comment = prefix_c + self._negative_comment(
                            topic, intent, slots, reason, vi == 2
                        )
                    elif rr < 0.7:
                        kind = "correction"
                        correction = self._correction(intent, slots)
                        reason = "factual_error"
                    elif rr < 0.85:
                        kind = "comment"
                        reason = self._reason(topic, vi)
                        comment = prefix_c + self._negative_comment(
                            topic, intent, slots, reason, vi == 2
                        )
                    else:
                        kind, score = "rating", 2
                elif rng.random() < 0.5:
                    kind, score = "rating", 3
                else:
                    kind = "comment"
                    comment = prefix_c + self._positive_comment(topic)
                emit_fb(
                    tid,
                    sid,
                    user,
                    ms,
                    kind,
                    reason,
                    score,
                    comment,
                    correction,
                    topic.name,
                    vi,
                    ti,
                    False,
                )
                c["feedback_late"] += 1

        # ---- feedback whose trace never arrived
        for _ in range(n_unknown):
            vi = _pick(rng, (0, 1, 2), v_cum)
            t_items, t_cum = self.mix[(vi, day)]
            topic = self.topics[_pick(rng, t_items, t_cum)]
            slots = topic.sample_slots(rng)
            pool = self.users_by_role[_pick(rng, topic.roles, topic.roles_cum)]
            user = pool[int(rng.random() * len(pool))]
            tid = f"{rng.getrandbits(128):032x}"
            sid = f"sess_{rng.getrandbits(64):016x}"
            ms = int(rng.random() * (_DAY_MS - 1000))
            if rng.random() < 0.6:
                reason = self._reason(topic, vi)
                emit_fb(
                    tid,
                    sid,
                    user,
                    ms,
                    "thumbs_down",
                    reason,
                    None,
                    self._negative_comment(topic, topic.intents[0], slots, reason, False),
                    None,
                    topic.name,
                    None,
                    topic.index,
                    False,
                )
            else:
                emit_fb(
                    tid,
                    sid,
                    user,
                    ms,
                    "thumbs_up",
                    None,
                    None,
                    None,
                    None,
                    topic.name,
                    None,
                    topic.index,
                    False,
                )
            c["feedback_unknown_trace"] += 1

        # ---- re-deliveries
        for f, t, line in carry_fb:
            fb_files[int(rng.random() * len(FEEDBACK_FILES))].append((t, line))
        for f, t, line in carry_tr:
            tr_files[int(rng.random() * len(TRACE_FILES))].append((t, line))
        c["feedback_duplicates"] += len(carry_fb)
        c["trace_duplicates"] += len(carry_tr)
        next_fb = self._duplicate(fb_pool, fb_files, 0.004, day, c, "feedback_duplicates")
        next_tr = self._duplicate(tr_pool, tr_files, 0.002, day, c, "trace_duplicates")

        # ---- malformed lines
        bad_tr: list[list[str]] = [[] for _ in TRACE_FILES]
        bad_fb: list[list[str]] = [[] for _ in FEEDBACK_FILES]
        q_tr: dict[str, int] = {}
        q_fb: dict[str, int] = {}
        if self.malformed:
            for reason in QUARANTINE_REASONS:
                if reason not in ("unknown_kind", "oversize"):
                    for i in range(1 + (rng.random() < 0.3)):
                        bad_tr[int(rng.random() * len(TRACE_FILES))].append(
                            self._bad_trace(reason, day + i, prefix)
                        )
                        q_tr[reason] = q_tr.get(reason, 0) + 1
                for i in range(1 + (rng.random() < 0.3)):
                    bad_fb[int(rng.random() * len(FEEDBACK_FILES))].append(
                        self._bad_feedback(reason, day + i, prefix, day_trace_ids)
                    )
                    q_fb[reason] = q_fb.get(reason, 0) + 1

        # ---- write
        n_lines_tr = self._write_day("traces", ds, TRACE_FILES, tr_files, bad_tr)
        n_lines_fb = self._write_day("feedback", ds, FEEDBACK_FILES, fb_files, bad_fb)
        q_all = {
            r: q_tr.get(r, 0) + q_fb.get(r, 0)
            for r in QUARANTINE_REASONS
            if q_tr.get(r, 0) + q_fb.get(r, 0)
        }
        c["quarantined"] = q_all
        c["quarantined_by_source"] = {"traces": q_tr, "feedback": q_fb}
        c["lines"] = {"traces": n_lines_tr, "feedback": n_lines_fb}
        c["files"] = {"traces": list(TRACE_FILES), "feedback": list(FEEDBACK_FILES)}
        self.counts[ds] = c
        return next_fb, next_tr, late_next

    def _duplicate(
        self,
        pool: list[tuple[int, str, str]],
        files: list[list[tuple[str, str]]],
        rate: float,
        day: int,
        c: dict,
        key: str,
    ) -> list[tuple[int, str, str]]:
        """Copies lines into the same file, another file and (returned) the next day."""
        rng = self.rng
        k = max(1, round(rate * len(pool)))
        last_day = day == self.days - 1
        want = 3 * k if not last_day else 2 * k
        picks = rng.sample(range(len(pool)), min(want, len(pool)))
        same, other, nxt = picks[:k], picks[k : 2 * k], picks[2 * k :]
        for i in same:
            f, t, line = pool[i]
            files[f].append((t, line))
        for i in other:
            f, t, line = pool[i]
            f2 = (f + 1 + int(rng.random() * (len(files) - 1))) % len(files)
            files[f2].append((t, line))
        c[key] += len(same) + len(other)
        return [pool[i] for i in nxt]

    def _write_day(
        self,
        source: str,
        ds: str,
        names: tuple[str, ...],
        files: list[list[tuple[str, str]]],
        bad: list[list[str]],
    ) -> int:
        rng = self.rng
        total = 0
        for name, rows, junk in zip(names, files, bad, strict=True):
            rows.sort(key=itemgetter(0))
            lines = [line for _, line in rows]
            for j in junk:
                lines.insert(int(rng.random() * (len(lines) + 1)), j)
            _write_lines(self.out / source / f"dt={ds}" / name, lines, name.endswith(".gz"))
            total += len(lines)
        return total

    # ------------------------------------------------------------ malformed
    def _junk_trace(self, prefix: str) -> dict[str, Any]:
        rng = self.rng
        topic = self.topics[int(rng.random() * len(self.topics))]
        slots = topic.sample_slots(rng)
        req = topic.intents[0]["requests"][0].format_map(slots)
        return {
            "trace_id": f"{rng.getrandbits(128):032x}",
            "session_id": f"sess_{rng.getrandbits(64):016x}",
            "user_id": "u_999999",
            "timestamp": f"{prefix}{rng.randrange(24):02d}:{rng.randrange(60):02d}:"
            f"{rng.randrange(60):02d}.{rng.randrange(1000):03d}Z",
            "model_version": MODEL_VERSIONS[0],
            "prompt_version": PROMPT_OLD,
            "messages": [{"role": "user", "content": req}],
            "response": topic.intents[0]["responses"][0].format_map(slots),
            "latency_ms": 812.0,
            "input_tokens": 40,
            "output_tokens": 60,
            "metadata": {"app": "web", "user_role": "customer", "locale": "en-US"},
        }

    def _junk_feedback(self, prefix: str, trace_ids: list[str]) -> dict[str, Any]:
        rng = self.rng
        tid = trace_ids[int(rng.random() * len(trace_ids))] if trace_ids else "0" * 32
        return {
            "feedback_id": f"fb_{rng.getrandbits(96):024x}",
            "trace_id": tid,
            "session_id": None,
            "user_id": "u_999999",
            "timestamp": f"{prefix}{rng.randrange(24):02d}:{rng.randrange(60):02d}:"
            f"{rng.randrange(60):02d}.{rng.randrange(1000):03d}Z",
            "kind": "thumbs_down",
            "reason": "other",
            "score": None,
            "comment": "this answer is wrong",
            "correction": None,
            "metadata": {"source": "widget"},
        }

    def _bad_trace(self, reason: str, variant: int, prefix: str) -> str:
        rec = self._junk_trace(prefix)
        return _corrupt(rec, reason, variant, TRACE_REQUIRED, "traces")

    def _bad_feedback(self, reason: str, variant: int, prefix: str, trace_ids: list[str]) -> str:
        rec = self._junk_feedback(prefix, trace_ids)
        return _corrupt(rec, reason, variant, FEEDBACK_REQUIRED, "feedback")

    # ----------------------------------------------------------------- truth
    def _truth(self) -> dict:
        names = [t.name for t in self.topics]

        def rate(n: int, k: int) -> float | None:
            return round(k / n, 6) if n else None

        overall = {}
        by_topic = {}
        for vi, mv in enumerate(MODEL_VERSIONS):
            n = sum(self.rate_n[vi])
            k = sum(self.rate_neg[vi])
            overall[mv] = {"n": n, "negative": k, "negative_rate": rate(n, k)}
            by_topic[mv] = {
                names[ti]: {
                    "n": self.rate_n[vi][ti],
                    "negative": self.rate_neg[vi][ti],
                    "negative_rate": rate(self.rate_n[vi][ti], self.rate_neg[vi][ti]),
                }
                for ti in range(len(names))
                if self.rate_n[vi][ti]
            }
        v1, v2, v3 = MODEL_VERSIONS
        reg = by_topic[v3].get(REGRESSED_TOPIC, {"n": 0, "negative_rate": None})
        base = by_topic[v2].get(REGRESSED_TOPIC, {"n": 0, "negative_rate": None})
        day_iso = [(self.start + timedelta(days=i)).isoformat() for i in range(self.days)]
        pii_kinds = ("email", "phone", "card", "sk", "ghp", "akia", "ip")
        pii_by_kind = {k: list(self.planted[k]) for k in pii_kinds}
        return {
            "seed": self.seed,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "days": self.days,
            "events_per_day": self.epd,
            "malformed": self.malformed,
            "topics": [
                {
                    "name": t.name,
                    "label": t.label,
                    "first_day": day_iso[self.new_topic_first if t.index == self.new_topic else 0],
                    "base_negative_rate": t.rate,
                }
                for t in self.topics
            ],
            "versions": [
                {
                    "model_version": mv,
                    "first_day": day_iso[self.v_first[vi]],
                    "baseline": MODEL_VERSIONS[vi - 1] if vi else None,
                }
                for vi, mv in enumerate(MODEL_VERSIONS)
            ],
            "prompt_versions": [
                {"prompt_version": pv, "model_version": mv, "first_day": day_iso[d]}
                for (pv, mv), d in sorted(self.prompt_first.items(), key=lambda x: (x[1], x[0]))
            ],
            "planted_rates": {
                mv: dict(zip(names, self.p[vi], strict=True))
                for vi, mv in enumerate(MODEL_VERSIONS)
            },
            "expected_regressions": [
                {
                    "candidate": v3,
                    "baseline": v2,
                    "topic": REGRESSED_TOPIC,
                    "metric": "negative_rate",
                    "rate_candidate": reg["negative_rate"],
                    "rate_baseline": base["negative_rate"],
                    "n_candidate": reg["n"],
                    "n_baseline": base["n"],
                    "overall_rate_candidate": overall[v3]["negative_rate"],
                    "overall_rate_baseline": overall[v2]["negative_rate"],
                }
            ],
            "expected_clean": [
                {
                    "candidate": v2,
                    "baseline": v1,
                    "overall_rate_candidate": overall[v2]["negative_rate"],
                    "overall_rate_baseline": overall[v1]["negative_rate"],
                }
            ],
            "overall_rates": overall,
            "rates_by_topic": by_topic,
            "new_topic": {"name": NEW_TOPIC, "first_day": day_iso[self.new_topic_first]},
            "counts": self.counts,
            "corrections": sum(c["corrections"] for c in self.counts.values()),
            "quarantine_reasons": list(QUARANTINE_REASONS),
            "abandoned_trace_ids": sorted(self.abandoned),
            "pii": [v for k in pii_kinds for v in pii_by_kind[k]],
            "pii_by_kind": pii_by_kind,
            "not_pii": list(self.planted["digits"]),
            "payloads": list(self.payloads),
            "raw_user_ids": list(self.raw_user_ids),
            "feedback_topic": self.feedback_topic,
            "trace_topic": self.trace_topic,
        }


_HOUR_CUM = tuple(accumulate(_HOUR_WEIGHTS))


def _corrupt(
    rec: dict[str, Any], reason: str, variant: int, required: tuple[str, ...], source: str
) -> str:
    """Turns a well-formed record into a line with exactly one defect of the given reason."""
    v = variant
    if reason == "not_json":
        if v % 2:
            return "<html><body><h1>502 Bad Gateway</h1></body></html>"
        s = json.dumps(rec, ensure_ascii=False)
        return s[: len(s) // 2]
    if reason == "not_object":
        return [json.dumps([rec], ensure_ascii=False), json.dumps("thumbs_down"), "42"][v % 3]
    if reason == "missing_field":
        rec.pop(required[v % len(required)])
    elif reason == "wrong_type":
        if source == "traces":
            if v % 2:
                rec["response"] = [rec["response"]]
            else:
                rec["messages"] = rec["messages"][0]["content"]
        else:
            choice = v % 3
            if choice == 0:
                rec["kind"], rec["score"] = "rating", "two"
            elif choice == 1:
                rec["trace_id"] = 1234567
            else:
                rec["metadata"] = "source=widget"
    elif reason == "unknown_kind":
        rec["kind"] = ("thumbs_sideways", "emoji_reaction", "flag")[v % 3]
    elif reason == "bad_timestamp":
        rec["timestamp"] = ("yesterday", "2026-13-45T25:61:00Z", "20/11/2026 09:14", "")[v % 4]
    elif reason == "invalid_utf8":
        key = "comment" if source == "feedback" else "response"
        # a lone surrogate that surrogateescape turns back into the raw Latin-1 byte 0xE9
        rec[key] = "Caf\udce9 menu answer was wrong, r\udce9sum\udce9 below"
    elif reason == "oversize":
        log = "ERROR 2026-11-20 09:14:03 worker[42] connection reset by peer; retrying\n"
        rec["comment"] = "Here is the full log you asked for:\n" + log * (
            MAX_LINE_CHARS // len(log) + 200
        )
    return json.dumps(rec, ensure_ascii=False)


def _luhn_check_digit(body: str) -> int:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return (10 - total % 10) % 10


def _group_card(num: str, style: int) -> str:
    if style == 2:
        return num
    sep = " " if style == 0 else "-"
    if len(num) == 15:
        return sep.join((num[:4], num[4:10], num[10:]))
    return sep.join(num[i : i + 4] for i in range(0, len(num), 4))


def _rand_str(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(alphabet[int(rng.random() * len(alphabet))] for _ in range(n))
