"""The synthetic generator: determinism, and truth.json checked against a plain re-parse.

The reference parse below is written from CONTRACT.md section 2 alone (it imports nothing from
the generator): it reads every file, classifies bad lines, dedups ids across files and days, and
recomputes what truth.json claims. A generator bug and a truth bug cannot cancel out this way.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import pairwise
from pathlib import Path

import pytest

from feedback_pipelines.sources import synthetic_phrasebank as pb
from feedback_pipelines.sources.synthetic import generate, write_jsonl

END = date(2026, 11, 20)

KINDS = {"thumbs_up", "thumbs_down", "rating", "correction", "comment", "regenerate", "copy"}
REASONS = {
    "factual_error",
    "incomplete",
    "irrelevant",
    "tone",
    "too_long",
    "formatting",
    "refusal",
    "unsafe",
    "other",
}
TRACE_REQUIRED = ("trace_id", "timestamp", "model_version", "messages", "response")
FEEDBACK_REQUIRED = ("feedback_id", "trace_id", "timestamp", "kind")
TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")
ALL_REASONS = {
    "not_json",
    "not_object",
    "missing_field",
    "wrong_type",
    "unknown_kind",
    "bad_timestamp",
    "invalid_utf8",
    "oversize",
}


def luhn(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()]
    odd = digits[-1::-2]
    even = [sum(divmod(2 * d, 10)) for d in digits[-2::-2]]
    return (sum(odd) + sum(even)) % 10 == 0


def parse_ts(value: object) -> datetime | None:
    if not isinstance(value, str) or not TS_RE.match(value):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def classify(raw: bytes, source: str) -> tuple[str | None, dict | None]:
    """The reason a line is quarantined (None if valid), and the record."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "invalid_utf8", None
    if len(text) > 100_000:
        return "oversize", None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        return "not_json", None
    if not isinstance(obj, dict):
        return "not_object", None
    required = TRACE_REQUIRED if source == "traces" else FEEDBACK_REQUIRED
    if any(obj.get(k) is None for k in required):
        return "missing_field", None

    def is_str(k: str) -> bool:
        return obj.get(k) is None or isinstance(obj[k], str)

    if source == "traces":
        msgs = obj["messages"]
        ok = (
            all(is_str(k) for k in ("trace_id", "session_id", "user_id", "model_version"))
            and isinstance(obj["response"], str)
            and isinstance(msgs, list)
            and all(
                isinstance(m, dict)
                and isinstance(m.get("role"), str)
                and isinstance(m.get("content"), str)
                for m in msgs
            )
            and isinstance(obj.get("metadata", {}), dict)
        )
    else:
        score = obj.get("score")
        ok = (
            all(is_str(k) for k in ("feedback_id", "trace_id", "kind", "comment", "correction"))
            and (score is None or (isinstance(score, int | float) and not isinstance(score, bool)))
            and isinstance(obj.get("metadata", {}), dict)
        )
    if not ok:
        return "wrong_type", None
    if source == "feedback":
        if obj["kind"] not in KINDS:
            return "unknown_kind", None
        if obj.get("reason") is not None and obj["reason"] not in REASONS:
            return "unknown_reason", None
    if parse_ts(obj["timestamp"]) is None:
        return "bad_timestamp", None
    return None, obj


def read_lines(path: Path) -> list[bytes]:
    data = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    lines = data.split(b"\n")
    assert lines[-1] == b"", f"{path} does not end with a newline"
    return lines[:-1]


@dataclass
class Parsed:
    """What a plain ingest of the landing zone holds."""

    days: list[str]
    counts: dict[str, dict] = field(default_factory=dict)
    traces: dict[str, dict] = field(default_factory=dict)  # trace_id -> record (+ds, file)
    feedback: dict[str, dict] = field(default_factory=dict)  # feedback_id -> record (+ds...)
    dup_places: Counter = field(default_factory=Counter)  # same_file/other_file/next_day
    raw_text: list[str] = field(default_factory=list)


def reference_parse(root: Path) -> Parsed:
    days = sorted(p.name[3:] for p in (root / "traces").iterdir())
    out = Parsed(days)
    for ds in days:
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
            "quarantined": Counter(),
            "by_source": {"traces": Counter(), "feedback": Counter()},
            "lines": {"traces": 0, "feedback": 0},
        }
        for source, id_key, store in (
            ("traces", "trace_id", out.traces),
            ("feedback", "feedback_id", out.feedback),
        ):
            for path in sorted((root / source / f"dt={ds}").iterdir()):
                for raw in read_lines(path):
                    c["lines"][source] += 1
                    reason, rec = classify(raw, source)
                    if reason is not None:
                        c["quarantined"][reason] += 1
                        c["by_source"][source][reason] += 1
                        continue
                    key = rec[id_key]
                    if key in store:
                        first = store[key]
                        c["trace_duplicates" if source == "traces" else "feedback_duplicates"] += 1
                        if first["_ds"] != ds:
                            out.dup_places[(source, "next_day")] += 1
                        elif first["_file"] == path.name:
                            out.dup_places[(source, "same_file")] += 1
                        else:
                            out.dup_places[(source, "other_file")] += 1
                        continue
                    rec["_ds"], rec["_file"] = ds, path.name
                    store[key] = rec
                    if source == "traces":
                        c["traces_valid_unique"] += 1
                        out.raw_text.extend(m["content"] for m in rec["messages"])
                        out.raw_text.append(rec["response"])
                        continue
                    c["feedback_valid_unique"] += 1
                    out.raw_text.extend(
                        t for t in (rec.get("comment"), rec.get("correction")) if t is not None
                    )
                    trace = out.traces.get(rec["trace_id"])
                    if trace is None:
                        c["feedback_unknown_trace"] += 1
                    elif trace["_ds"] < ds:
                        c["feedback_late"] += 1
                    kind, score = rec["kind"], rec.get("score")
                    rec["_neg"] = (
                        kind in ("thumbs_down", "correction", "regenerate")
                        or (kind == "rating" and score <= 2)
                        or (kind == "comment" and rec.get("reason") is not None)
                    )
                    c["feedback_negative"] += rec["_neg"]
                    c["corrections"] += kind == "correction"
                    c["regenerations"] += kind == "regenerate"
        out.counts[ds] = c
    return out


def abandoned_ids(parsed: Parsed) -> set[str]:
    """Last trace of each session without thumbs_up / copy / rating >= 4."""
    positive = {
        f["trace_id"]
        for f in parsed.feedback.values()
        if f["kind"] in ("thumbs_up", "copy") or (f["kind"] == "rating" and f["score"] >= 4)
    }
    last: dict[tuple[str, str], tuple[str, str]] = {}
    for tid, t in parsed.traces.items():
        key = (t["_ds"], t["session_id"])
        if key not in last or t["timestamp"] > last[key][0]:
            last[key] = (t["timestamp"], tid)
    return {tid for _, tid in last.values() if tid not in positive}


def rates(parsed: Parsed, truth: dict) -> tuple[dict, dict]:
    """Negative rates per version, and per (version, topic), over feedback with a known trace."""
    overall: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    per: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for fid, f in parsed.feedback.items():
        trace = parsed.traces.get(f["trace_id"])
        if trace is None:
            continue
        v, topic = trace["model_version"], truth["feedback_topic"][fid]
        for acc in (overall[v], per[(v, topic)]):
            acc[0] += 1
            acc[1] += f["_neg"]
    return overall, per


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, Parsed]:
    """The default-size week, generated once for the module and re-parsed independently."""
    root = tmp_path_factory.mktemp("synthetic_week")
    truth = generate(root, 7, END)
    return root, truth, reference_parse(root)


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_same_seed_gives_identical_files_and_another_seed_does_not(tmp_path):
    a = generate(tmp_path / "a", 3, END, seed=3, events_per_day=150)
    b = generate(tmp_path / "b", 3, END, seed=3, events_per_day=150)
    assert a == b
    files_a, files_b = tree_bytes(tmp_path / "a"), tree_bytes(tmp_path / "b")
    assert len(files_a) == 1 + 3 * (3 + 4)  # truth + 3 trace and 4 feedback files a day
    assert files_a == files_b
    generate(tmp_path / "c", 3, END, seed=4, events_per_day=150)
    files_c = tree_bytes(tmp_path / "c")
    assert files_c.keys() == files_a.keys()
    assert all(files_c[k] != files_a[k] for k in files_a if k.endswith(".jsonl"))


def test_truth_on_disk_equals_the_returned_truth(week):
    root, truth, _ = week
    assert json.loads((root / "truth.json").read_text(encoding="utf-8")) == truth


def test_counts_in_truth_match_a_plain_reparse(week):
    _, truth, parsed = week
    assert list(truth["counts"]) == parsed.days
    assert truth["start"] == parsed.days[0] and truth["end"] == parsed.days[-1] == END.isoformat()
    keys = (
        "traces_valid_unique",
        "feedback_valid_unique",
        "trace_duplicates",
        "feedback_duplicates",
        "feedback_unknown_trace",
        "feedback_late",
        "feedback_negative",
        "corrections",
        "regenerations",
    )
    for ds in parsed.days:
        mine, theirs = parsed.counts[ds], truth["counts"][ds]
        for key in keys:
            assert theirs[key] == mine[key], (ds, key)
        assert theirs["quarantined"] == dict(mine["quarantined"]), ds
        assert theirs["quarantined_by_source"] == {s: dict(v) for s, v in mine["by_source"].items()}
        assert theirs["lines"] == mine["lines"]
        assert theirs["feedback_valid_unique"] == truth["events_per_day"] == 1200
    assert truth["corrections"] == sum(c["corrections"] for c in parsed.counts.values())
    assert set(truth["feedback_topic"]) == set(parsed.feedback)
    assert set(truth["trace_topic"]) == set(parsed.traces)


def test_every_malformed_reason_is_planted_every_day(week):
    _, truth, parsed = week
    assert set(truth["quarantine_reasons"]) == ALL_REASONS
    for ds in parsed.days:
        by_source = parsed.counts[ds]["by_source"]
        assert set(by_source["feedback"]) == ALL_REASONS, ds
        assert set(by_source["traces"]) == ALL_REASONS - {"unknown_kind", "oversize"}, ds


def test_malformed_false_plants_no_bad_line(tmp_path):
    truth = generate(tmp_path, 2, END, events_per_day=100, malformed=False)
    parsed = reference_parse(tmp_path)
    for ds in parsed.days:
        assert not parsed.counts[ds]["quarantined"]
        assert truth["counts"][ds]["quarantined"] == {}
        assert parsed.counts[ds]["feedback_valid_unique"] == 100


def test_redeliveries_land_in_the_same_file_another_file_and_the_next_day(week):
    _, _, parsed = week
    for source in ("traces", "feedback"):
        for place in ("same_file", "other_file", "next_day"):
            assert parsed.dup_places[(source, place)] >= 1, (source, place)
    # late feedback and unknown traces on every day after the first
    for ds in parsed.days[1:]:
        assert parsed.counts[ds]["feedback_late"] >= 2
        assert parsed.counts[ds]["feedback_unknown_trace"] >= 2


def test_timestamps_fall_inside_their_folder_day_except_redeliveries(week):
    _, _, parsed = week
    for store in (parsed.traces, parsed.feedback):
        for rec in store.values():
            assert rec["timestamp"][:10] == rec["_ds"], rec
    # late feedback: the trace is from an earlier day, the event is stamped the day it landed
    late = [
        f
        for f in parsed.feedback.values()
        if f["trace_id"] in parsed.traces and parsed.traces[f["trace_id"]]["_ds"] < f["_ds"]
    ]
    assert late
    for f in late:
        assert f["kind"] not in ("thumbs_up", "copy")
        assert not (f["kind"] == "rating" and f["score"] >= 4)


def test_gzipped_files_read_back_and_have_a_fixed_header(week):
    root, _, _ = week
    for source in ("traces", "feedback"):
        gz = sorted((root / source).rglob("*.jsonl.gz"))
        assert len(gz) >= 7
        for path in gz:
            raw = path.read_bytes()
            assert raw[:2] == b"\x1f\x8b" and raw[4:8] == b"\0\0\0\0"  # mtime 0: reproducible
            assert len(gzip.decompress(raw).splitlines()) > 10


def test_the_regression_hides_in_the_overall_rate_but_shows_on_its_topic(week):
    _, truth, parsed = week
    overall, per = rates(parsed, truth)
    (reg,) = truth["expected_regressions"]
    cand, base, topic = reg["candidate"], reg["baseline"], reg["topic"]
    rc, rb = per[(cand, topic)], per[(base, topic)]
    assert rc[0] >= 150 and rb[0] >= 150
    assert rc[1] / rc[0] - rb[1] / rb[0] > 0.2
    assert abs(rc[1] / rc[0] - reg["rate_candidate"]) < 1e-5
    assert abs(rb[1] / rb[0] - reg["rate_baseline"]) < 1e-5
    oc, ob = overall[cand], overall[base]
    assert abs(oc[1] / oc[0] - ob[1] / ob[0]) < 0.02
    assert abs(oc[1] / oc[0] - reg["overall_rate_candidate"]) < 1e-5
    # every other topic of the candidate behaves like the baseline
    for t in truth["topics"]:
        name = t["name"]
        if name == topic or (cand, name) not in per or (base, name) not in per:
            continue
        c, b = per[(cand, name)], per[(base, name)]
        assert abs(c[1] / c[0] - b[1] / b[0]) < 0.05, name
    # the mix shift that hides it: the candidate leans towards low-negative topics
    base_rate = {t["name"]: t["base_negative_rate"] for t in truth["topics"]}

    def mean_topic_rate(v: str) -> float:
        n = sum(per[(v, t)][0] for t in base_rate if (v, t) in per and t != topic)
        return sum(per[(v, t)][0] * base_rate[t] for t in base_rate if (v, t) in per) / n

    assert mean_topic_rate(cand) < mean_topic_rate(base) - 0.01


def test_the_clean_release_matches_its_baseline_on_every_topic(week):
    _, truth, parsed = week
    overall, per = rates(parsed, truth)
    (clean,) = truth["expected_clean"]
    cand, base = clean["candidate"], clean["baseline"]
    for t in truth["topics"]:
        c, b = per.get((cand, t["name"])), per.get((base, t["name"]))
        if c and b:
            assert abs(c[1] / c[0] - b[1] / b[0]) < 0.03, t["name"]
    assert abs(overall[cand][1] / overall[cand][0] - overall[base][1] / overall[base][0]) < 0.02
    for v, (n, k) in overall.items():
        assert truth["overall_rates"][v] == {
            "n": n,
            "negative": k,
            "negative_rate": round(k / n, 6),
        }


def test_versions_roll_out_on_different_days_and_the_old_ones_keep_traffic(week):
    _, truth, parsed = week
    first = {v["model_version"]: v["first_day"] for v in truth["versions"]}
    assert len(set(first.values())) == 3
    seen: dict[str, set[str]] = defaultdict(set)
    prompts: dict[str, set[str]] = defaultdict(set)
    for t in parsed.traces.values():
        seen[t["model_version"]].add(t["_ds"])
        prompts[t["model_version"]].add(t["prompt_version"])
    for v, day in first.items():
        assert min(seen[v]) == day
        assert max(seen[v]) == parsed.days[-1]  # never fully replaced within the week
    assert any(len(p) > 1 for p in prompts.values())  # a prompt change inside a model version
    baselines = {v["model_version"]: v["baseline"] for v in truth["versions"]}
    assert sum(b is None for b in baselines.values()) == 1


def test_the_new_topic_appears_only_from_its_first_day(week):
    _, truth, parsed = week
    name, first = truth["new_topic"]["name"], truth["new_topic"]["first_day"]
    assert parsed.days[0] < first <= parsed.days[-1]
    days_with = {t["_ds"] for tid, t in parsed.traces.items() if truth["trace_topic"][tid] == name}
    assert min(days_with) == first
    assert days_with == {d for d in parsed.days if d >= first}
    assert {t["name"]: t["first_day"] for t in truth["topics"]}[name] == first
    assert len(truth["topics"]) >= 12


def test_sessions_turns_and_abandonment(week):
    _, truth, parsed = week
    by_session: dict[str, list[dict]] = defaultdict(list)
    for t in parsed.traces.values():
        by_session[t["session_id"]].append(t)
    sizes = Counter(len(v) for v in by_session.values())
    assert set(sizes) == {1, 2, 3, 4, 5}
    regen_traces = {f["trace_id"] for f in parsed.feedback.values() if f["kind"] == "regenerate"}
    assert regen_traces
    for turns in by_session.values():
        turns.sort(key=lambda t: t["timestamp"])
        assert len({t["_ds"] for t in turns}) == 1
        for prev, nxt in pairwise(turns):
            gap = (parse_ts(nxt["timestamp"]) - parse_ts(prev["timestamp"])).total_seconds()
            assert 5 <= gap <= 200
            if prev["trace_id"] in regen_traces:  # a regenerated answer: same input again
                assert nxt["messages"] == prev["messages"]
            else:
                assert nxt["messages"][: len(prev["messages"])] == prev["messages"]
                assert nxt["messages"][len(prev["messages"])]["content"] == prev["response"]
    expected = abandoned_ids(parsed)
    assert set(truth["abandoned_trace_ids"]) == expected
    for ds in parsed.days:
        assert truth["counts"][ds]["abandoned"] == sum(
            parsed.traces[t]["_ds"] == ds for t in expected
        )
    assert 0.2 < len(expected) / len(by_session) < 0.7


def test_kinds_reasons_comments_and_corrections(week):
    _, _, parsed = week
    kinds = Counter(f["kind"] for f in parsed.feedback.values())
    assert set(kinds) == KINDS
    reasons = Counter(f.get("reason") for f in parsed.feedback.values())
    assert reasons["unsafe"] >= 3 and reasons[None] > 0
    negatives = [f for f in parsed.feedback.values() if f["_neg"]]
    with_comment = sum(f.get("comment") is not None for f in negatives)
    assert 0.2 < with_comment / len(negatives) < 0.45
    scores = Counter(f["score"] for f in parsed.feedback.values() if f["kind"] == "rating")
    assert set(scores) == {1, 2, 3, 4, 5}
    corrections = [f for f in parsed.feedback.values() if f["kind"] == "correction"]
    known = [f for f in corrections if f["trace_id"] in parsed.traces]
    assert known and all(f["correction"] for f in corrections)
    assert all(f["correction"] != parsed.traces[f["trace_id"]]["response"] for f in known)
    # corrections and comments are varied text, not a handful of fixed strings
    assert len({f["correction"] for f in corrections}) > 100
    assert len({f["comment"] for f in negatives if f.get("comment")}) > 150
    requests = {t["messages"][-1]["content"] for t in parsed.traces.values()}
    assert len(requests) > 0.3 * len(parsed.traces)


def test_every_planted_pii_and_lookalike_and_payload_is_in_the_data(week):
    _, truth, parsed = week
    text = "\n".join(parsed.raw_text)
    by_kind = truth["pii_by_kind"]
    assert all(by_kind[k] for k in ("email", "phone", "card", "sk", "ghp", "akia", "ip"))
    assert sorted(truth["pii"]) == sorted(v for vs in by_kind.values() for v in vs)
    for value in truth["pii"]:
        assert value in text, value
    for card in by_kind["card"]:
        assert luhn(card), card
    assert truth["not_pii"]
    for value in truth["not_pii"]:
        assert value in text and not luhn(value), value
    assert any(len(v.replace(" ", "")) == 16 and " " in v for v in truth["not_pii"])
    assert len({p.split()[0] for p in by_kind["phone"]}) >= 4  # several national formats
    assert {v[:4] for v in by_kind["akia"]} == {"AKIA"}
    assert all(v.startswith("ghp_") for v in by_kind["ghp"])
    assert all(v.startswith("sk-") for v in by_kind["sk"])
    assert len(truth["payloads"]) >= 3
    for payload in truth["payloads"]:
        assert "<" in payload and payload in text
    users = {r.get("user_id") for r in (*parsed.traces.values(), *parsed.feedback.values())}
    assert truth["raw_user_ids"] and set(truth["raw_user_ids"]) <= users
    assert any("@" in u for u in truth["raw_user_ids"])


def test_phrasebank_templates_all_fill_and_stay_coherent():
    import random

    from feedback_pipelines.sources.synthetic import _Topic

    rng = random.Random(0)
    assert len(pb.TOPICS) >= 12
    for i, spec in enumerate(pb.TOPICS):
        topic = _Topic(i, spec)
        n_requests = sum(len(it["requests"]) for it in topic.intents)
        assert n_requests >= 10, topic.name
        assert len({r for it in topic.intents for r in it["complaints"]}) >= 5, topic.name
        for _ in range(20):
            slots = topic.sample_slots(rng)
            for intent in topic.intents:
                assert all(intent[k] for k in ("responses", "bad", "corrections", "complaints"))
                for key in ("requests", "responses", "bad", "corrections", "complaints"):
                    for tpl in intent[key]:
                        assert "{" not in tpl.format_map(slots), (topic.name, tpl)
                filled = {c.format_map(slots) for c in intent["corrections"]}
                assert not filled & {r.format_map(slots) for r in intent["responses"]}
            for tpl in (*spec["followups"], *spec["negative_comments"]):
                tpl.format_map(slots)


def test_write_jsonl_roundtrips_plain_and_gzip(tmp_path):
    recs = [{"a": 1, "t": "café <b>"}, {"a": 2, "t": None}]
    assert write_jsonl(tmp_path / "x.jsonl", recs) == 2
    assert write_jsonl(tmp_path / "x.jsonl.gz", recs, gz=True) == 2
    for name in ("x.jsonl", "x.jsonl.gz"):
        assert [json.loads(line) for line in read_lines(tmp_path / name)] == recs
    first = (tmp_path / "x.jsonl.gz").read_bytes()
    write_jsonl(tmp_path / "x.jsonl.gz", recs, gz=True)
    assert (tmp_path / "x.jsonl.gz").read_bytes() == first


@pytest.mark.parametrize("days", [1, 2, 7])
def test_each_version_is_first_seen_after_the_one_it_follows(tmp_path, days):
    """Also when released on its predecessor's day (1 or 2 days): the regression stage orders
    versions (and a model's prompts) by first sighting, so the planted regression must be the
    candidate's, not an improvement of its baseline's."""
    truth = generate(tmp_path, days, END, events_per_day=600)
    parsed = reference_parse(tmp_path)
    first: dict[tuple[str, ...], str] = {}
    for record in parsed.traces.values():
        ts = parse_ts(record["timestamp"]).isoformat()
        model = record["model_version"]
        for key in ((model,), (model, record["prompt_version"])):
            first[key] = min(first.get(key, ts), ts)
    models = [(v["model_version"],) for v in truth["versions"]]
    assert sorted(models, key=first.get) == models, first
    # and within a model, its prompts (the second model changes prompt after its release)
    prompts = [(p["model_version"], p["prompt_version"]) for p in truth["prompt_versions"]]
    assert sorted(prompts, key=lambda k: (models.index(k[:1]), first[k])) == prompts, first


@pytest.mark.parametrize("days", [1, 2])
def test_short_spans_stay_consistent(tmp_path, days):
    truth = generate(tmp_path, days, END, events_per_day=60)
    parsed = reference_parse(tmp_path)
    assert parsed.days == list(truth["counts"])
    for ds in parsed.days:
        assert truth["counts"][ds]["feedback_valid_unique"] == 60
        assert (
            truth["counts"][ds]["traces_valid_unique"] == parsed.counts[ds]["traces_valid_unique"]
        )
        assert (
            truth["counts"][ds]["feedback_duplicates"] == parsed.counts[ds]["feedback_duplicates"]
        )
    assert set(truth["abandoned_trace_ids"]) == abandoned_ids(parsed)
    with pytest.raises(ValueError):
        generate(tmp_path / "bad", 0, END)
