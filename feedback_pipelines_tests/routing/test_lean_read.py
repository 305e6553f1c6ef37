"""The lean window read gives the events the plain read gives, and shared prompts parse alike.

`day.read_window_events` reads the window as Arrow batches decoded by distinct value, with
each trace's prompt parsed once (`events.Prompts`); `prepare_events` must make the very same
events of it as of `day.read_events`' frame (JSON texts, one string per row), whatever the
batch size. `frozen_gc` must leave the collector as it found it.
"""

from __future__ import annotations

import gc
import json
import random
from datetime import timedelta

import pytest

from feedback_pipelines.routing import day
from feedback_pipelines.routing.tuning import messages as msg
from feedback_pipelines.routing.tuning.events import Prompts, prepare_events
from feedback_pipelines.routing.tuning.pipeline import frozen_gc
from feedback_pipelines_tests.fixtures.pipeline import WEEK_END

DS = WEEK_END.isoformat()
START = (WEEK_END - timedelta(days=2)).isoformat()


@pytest.mark.parametrize("rows", [97, 1 << 18])
def test_window_read_prepares_the_same_events(ingested_week, monkeypatch, rows):
    env, _ = ingested_week
    monkeypatch.setattr(day, "READ_ROWS", rows)
    with env.connect() as conn:
        plain = day.read_events(conn, START, DS)
        lean = day.read_window_events(conn, START, DS)
        empty = day.read_window_events(conn, "1999-01-01", "1999-01-02")
    assert len(lean) == len(plain) > 300
    assert len(empty) == 0 and prepare_events(empty) == []
    old, new = prepare_events(plain), prepare_events(lean)
    assert new == old
    # Equal prompts are one list, and equal repeating strings one object.
    by_text: dict[str, list] = {}
    for e in new:
        by_text.setdefault(json.dumps(e.prompt), []).append(e.prompt)
    assert any(len(p) > 1 for p in by_text.values())
    assert all(all(p is group[0] for p in group) for group in by_text.values())
    kinds = {}
    assert all(kinds.setdefault(e.kind, e.kind) is e.kind for e in new)


def _random_messages(rng: random.Random) -> object:
    turns = ["Hi", "  hello  ", "How do I reset it?", "", "Use the admin page.", "ok"]
    roles = ["system", "user", "assistant", "human", "ai", "tool", " USER ", None]
    out = []
    for _ in range(rng.randrange(0, 5)):
        content: object = rng.choice(turns)
        if rng.random() < 0.2:
            content = [{"type": "text", "text": rng.choice(turns)}, "part", {"image": 1}]
        message = {"role": rng.choice(roles), "content": content}
        if rng.random() < 0.1:
            message["name"] = "x"
        out.append(message if rng.random() < 0.95 else "not a message")
    shape = rng.random()
    if shape < 0.5:
        return json.dumps(out)
    if shape < 0.6:
        return "{not json"
    if shape < 0.65:
        return None
    if shape < 0.8:
        return msg.parse_messages(out)  # already clean: kept as it is
    return out


def test_prompts_parse_as_parse_messages_and_share_equal_prompts():
    rng = random.Random(5)
    values = [_random_messages(rng) for _ in range(400)]
    prompts = Prompts()
    seen: dict[str, list] = {}
    for k, value in enumerate(values):
        prompt, last, context = prompts(value)
        want = msg.parse_messages(value)
        assert prompt == want
        assert (last, context) == (msg.last_request(want), msg.context_key(want))
        assert prompt is seen.setdefault(json.dumps(want), prompt)  # one list per prompt
        if k % 50 == 0:
            prompts.forget_texts()
    assert len(seen) > 20
    clean = msg.parse_messages([{"role": "user", "content": "a fresh one"}])
    assert prompts(clean)[0] is clean  # a clean prompt is kept, not copied


def test_frozen_gc_restores_the_collector():
    gc.unfreeze()  # whatever an earlier test left
    before = gc.get_threshold()
    with frozen_gc() as freeze:
        assert gc.get_freeze_count() > 0
        freeze()
        with frozen_gc():  # nested: the outer block owns the freeze
            pass
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before
    with pytest.raises(KeyError), frozen_gc():  # a failing step leaves it as found too
        raise KeyError("x")
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == before
    gc.freeze()  # frozen by someone else: the block leaves that freeze and adds none
    try:
        outside = gc.get_freeze_count()
        garbage = [[] for _ in range(1000)]  # tracked by the collector, as frozen objects are
        with frozen_gc() as freeze:
            freeze()
            assert gc.get_threshold() == before
        # None of the 1,000 new objects was frozen. (Not `==`: a frozen object is still freed
        # by reference counting, e.g. by another thread, and a CI run saw 2 go.)
        assert gc.get_freeze_count() < outside + len(garbage)
        del garbage
    finally:
        gc.unfreeze()
