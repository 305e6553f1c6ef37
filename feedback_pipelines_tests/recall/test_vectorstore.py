"""The vector store backends behind one interface: filters, idempotence, payload updates."""

import json
import multiprocessing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from feedback_pipelines.recall.sync import assignments_digest, sync_day, write_cluster_ids
from feedback_pipelines.vectorstore import (
    PAYLOAD_INDEXES,
    collection_name,
    open_store,
    point_id,
)

N = 120
DAYS = ["2026-11-18", "2026-11-19", "2026-11-20"]


def _points(seed: int = 0):
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((N, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    points = []
    for i in range(N):
        points.append(
            (
                point_id(f"fb-{i}"),
                vectors[i],
                {
                    "feedback_id": f"fb-{i}",
                    "ds": DAYS[i % 3],
                    "model_version": ["v1", "v2"][i % 2],
                    "prompt_version": ["p1", "p2", "p3"][i % 3],
                    "kind": ["thumbs_down", "thumbs_up", "correction", "comment"][i % 4],
                    "reason": [None, "factual_error", "tone"][i % 3],
                    "is_negative": i % 4 in (0, 2),
                    "user_role": ["analyst", "admin"][i % 2],
                    "text": f"text {i}",
                },
            )
        )
    return points, vectors


def _brute(points, flt):
    def ok(p):
        for k, v in flt.items():
            got = p.get(k)
            if isinstance(v, dict):
                if ("gte" in v and not got >= v["gte"]) or ("lte" in v and not got <= v["lte"]):
                    return False
            elif isinstance(v, list):
                if got not in v:
                    return False
            elif got != v:
                return False
        return True

    return [i for i, (_, _, p) in enumerate(points) if ok(p)]


FILTERS = [
    {"model_version": "v2"},
    {"prompt_version": "p3"},
    {"kind": "correction"},
    {"kind": ["thumbs_down", "correction"]},
    {"reason": "factual_error"},
    {"ds": {"gte": "2026-11-19"}},
    {"ds": {"gte": "2026-11-19", "lte": "2026-11-19"}},
    {"is_negative": True},
    {"is_negative": False},
    {"user_role": "analyst"},
    {"model_version": "v1", "is_negative": True, "ds": {"lte": "2026-11-19"}},
    {"model_version": ["v1", "v2"], "kind": "thumbs_down", "reason": None},
]


@pytest.fixture(params=["edge", "local", "memory"])
def store(request, tmp_path):
    s = open_store("test-model", 16, path=tmp_path / "qdrant", backend=request.param)
    yield s
    s.close()


def test_edge_stores_each_vector_exactly_whatever_its_layout(tmp_path):
    """A float32 row, a row of a column-major matrix, a list of doubles: the same 32-bit floats."""
    _, vectors = _points()
    wide = np.asfortranarray(vectors)  # its rows are not contiguous
    given = [vectors[0], wide[1], vectors[2].astype(np.float64).tolist()]
    with open_store("test-model", 16, path=tmp_path / "qdrant", backend="edge") as store:
        store.upsert(
            [(point_id(f"fb-{i}"), v, {"feedback_id": f"fb-{i}"}) for i, v in enumerate(given)]
        )
        got = store.retrieve_vectors([point_id(f"fb-{i}") for i in range(3)])
    for i in range(3):
        assert np.array_equal(got[point_id(f"fb-{i}")], vectors[i]), i


def test_rerun_leaves_one_point_per_event(store):
    points, _ = _points()
    store.upsert(points)
    store.upsert(points)
    assert store.count() == N
    assert point_id("fb-1") == point_id("fb-1") != point_id("fb-2")


@pytest.fixture(scope="module", params=["edge", "local", "memory"])
def loaded(request, tmp_path_factory):
    """A store holding `_points()`, shared by the read-only filter tests."""
    path = tmp_path_factory.mktemp(f"loaded-{request.param}")
    s = open_store("test-model", 16, path=path, backend=request.param)
    s.upsert(_points()[0])
    yield s
    s.close()


@pytest.mark.parametrize("flt", FILTERS, ids=lambda f: ",".join(f))
def test_each_filter_alone_and_combined_matches_brute_force(loaded, flt):
    store = loaded
    points, vectors = _points()
    expected = _brute(points, {k: v for k, v in flt.items() if v is not None})
    assert 0 < len(expected) < N
    assert store.count(flt) == len(expected)
    query = vectors[expected[0]]
    hits = store.search(query, flt, limit=5)
    exact = sorted(expected, key=lambda i: -float(vectors[i] @ query))[:5]
    assert [h.id for h in hits] == [points[i][0] for i in exact]
    assert hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert all(h.payload["feedback_id"] in {f"fb-{i}" for i in expected} for h in hits)
    assert isinstance(hits[0].payload["is_negative"], bool)  # bools round-trip as bools


def test_set_payloads_and_retrieve_vectors(store):
    points, vectors = _points()
    store.upsert(points)
    store.set_payloads({pid: {"cluster_id": i % 5} for i, (pid, _, _) in enumerate(points)})
    assert store.count({"cluster_id": 3}) == len([i for i in range(N) if i % 5 == 3])
    assert store.count({"cluster_id": [0, 1]}) == len([i for i in range(N) if i % 5 < 2])
    store.set_payload([points[0][0]], {"cluster_id": -1})
    assert store.retrieve_payloads([points[0][0]])[points[0][0]]["cluster_id"] == -1
    got = store.retrieve_vectors([points[0][0], points[7][0], point_id("missing")])
    assert set(got) == {points[0][0], points[7][0]}
    assert float(got[points[7][0]] @ vectors[7]) == pytest.approx(1.0, abs=1e-5)
    assert sorted(store.ids({"ds": "2026-11-18"})) == sorted(
        pid for pid, _, p in points if p["ds"] == "2026-11-18"
    )
    held = store.fields({"ds": "2026-11-18"}, ["cluster_id", "no_such_field"])
    assert sorted(held) == sorted(store.ids({"ds": "2026-11-18"}))
    assert held[points[3][0]] == {"cluster_id": 3}  # only the fields asked for
    assert set(store.fields({}, [])[points[1][0]]) == set()


def test_sync_day_is_idempotent_keeps_clusters_and_drops_stale(store):
    points, _ = _points()
    day = [p for p in points if p[2]["ds"] == "2026-11-20"]
    sync_day(store, "2026-11-20", day)
    store.set_payload([day[0][0]], {"cluster_id": 4})
    result = sync_day(store, "2026-11-20", day[1:])  # one event gone after a correction
    assert result.deleted == 1 and result.count == len(day) - 1
    result = sync_day(store, "2026-11-20", day)
    assert result.count == len(day) and store.count() == len(day)
    result = sync_day(store, "2026-11-20", day)  # a plain rerun
    assert result.deleted == 0 and result.count == len(day)
    store.set_payload([day[1][0]], {"cluster_id": 9, "topic_id": 2})
    result = sync_day(store, "2026-11-20", day)
    assert result.kept_cluster_ids == 1
    payload = store.retrieve_payloads([day[1][0]])[day[1][0]]
    assert payload["cluster_id"] == 9 and payload["topic_id"] == 2
    assert payload["text"] == day[1][2]["text"]  # the rest of the payload is the new one


def test_cluster_ids_are_written_only_where_they_change(store):
    points, _ = _points()
    store.upsert(points)
    window = (DAYS[1], DAYS[2])  # the oldest day is outside: its points keep what they hold
    inside = [p[2]["feedback_id"] for p in points if p[2]["ds"] >= DAYS[1]]
    wanted = pd.DataFrame(
        {
            "feedback_id": [*inside, "fb-no-point"],
            "cluster_id": [k % 3 for k in range(len(inside))] + [1],
            "topic_id": [k % 2 for k in range(len(inside))] + [0],
        }
    )
    first = write_cluster_ids(store, window, wanted)
    assert (first.written, first.unchanged, first.missing) == (len(inside), 0, 1)
    again = write_cluster_ids(store, window, wanted)  # a rerun: every payload already right
    assert (again.written, again.unchanged) == (0, len(inside))
    wanted.loc[0, "cluster_id"] = 7
    assert write_cluster_ids(store, window, wanted).written == 1
    held = store.fields({}, ("feedback_id", "cluster_id", "topic_id"))
    by_event = {f["feedback_id"]: f for f in held.values()}
    assert by_event[inside[0]]["cluster_id"] == 7
    assert by_event[inside[1]] == {"feedback_id": inside[1], "cluster_id": 1, "topic_id": 1}
    outside = [p[2]["feedback_id"] for p in points if p[2]["ds"] == DAYS[0]]
    assert all(by_event[f].get("cluster_id") is None for f in outside)


def _by_day() -> dict[str, list]:
    points, _ = _points()
    return {d: [p for p in points if p[2]["ds"] == d] for d in DAYS}


def _assign(by_day: dict[str, list], days: list[str], shift: int) -> pd.DataFrame:
    """Assignments of the events of `days`: subtopics 0-2 (shifted), themes 0-1."""
    fids = [p[2]["feedback_id"] for d in days for p in by_day[d]]
    return pd.DataFrame(
        {
            "feedback_id": fids,
            "cluster_id": [(k + shift) % 3 for k in range(len(fids))],
            "topic_id": [k % 2 for k in range(len(fids))],
        }
    )


def _reads(store, monkeypatch) -> list[dict]:
    """The filters of every `fields` read of the store from now on."""
    reads: list[dict] = []
    fields = store.fields
    monkeypatch.setattr(store, "fields", lambda f, names=(): reads.append(f) or fields(f, names))
    return reads


def _held(store) -> dict[str, tuple]:
    """feedback_id -> (cluster_id, topic_id) of every point, read past `_reads`' spy."""
    found = type(store).fields(store, {}, ("feedback_id", "cluster_id", "topic_id")).values()
    return {f["feedback_id"]: (f.get("cluster_id"), f.get("topic_id")) for f in found}


def test_the_day_after_a_full_write_reads_only_its_own_points(tmp_path, monkeypatch):
    """The sync mark: the store holds the last window's ids, so the next window reads one day.

    Whatever path was taken, the payloads end as the assignments say; a write to another day,
    a mark of other assignments, a write cut short or an event without a point all mean the
    whole window is read again.
    """
    store = open_store("test-model", 16, path=tmp_path / "qdrant", backend="edge")
    by_day = _by_day()

    def assign(days, shift):
        return _assign(by_day, days, shift)

    reads = _reads(store, monkeypatch)

    def held():
        return _held(store)

    for day in DAYS[:2]:
        sync_day(store, day, by_day[day])
    first = assign(DAYS[:2], 0)
    done = write_cluster_ids(store, (DAYS[0], DAYS[1]), first)  # nothing before: read all
    assert done.read == done.written == len(first) and reads[-1] == {
        "ds": {"gte": DAYS[0], "lte": DAYS[1]}
    }
    assert store.sync_mark() == {"ds": DAYS[1], "digest": assignments_digest(first)}

    sync_day(store, DAYS[2], by_day[DAYS[2]])  # the day after the mark: it stays
    assert store.sync_mark()["ds"] == DAYS[1]
    second = assign(DAYS[1:], 1)  # every earlier event changes subtopic, or not
    reads.clear()
    previous = (DAYS[1], first.sample(frac=1.0, random_state=0))  # as read back: any order
    done = write_cluster_ids(store, (DAYS[1], DAYS[2]), second, previous)
    assert reads == [{"ds": DAYS[2]}] and done.read == len(by_day[DAYS[2]])
    before = dict(zip(first["feedback_id"], zip(first["cluster_id"], first["topic_id"])))
    want = dict(zip(second["feedback_id"], zip(second["cluster_id"], second["topic_id"])))
    assert done.written == sum(before.get(f) != ids for f, ids in want.items()) < len(second)
    assert held() == {**before, **want}  # the oldest day keeps its last window's ids

    for other, kept in ((DAYS[2], True), (DAYS[0], False), (DAYS[1], False)):  # a backfill, a rerun
        store.set_sync_mark({"ds": DAYS[1], "digest": assignments_digest(first)})
        sync_day(store, other, by_day[other])
        assert (store.sync_mark() is not None) is kept
    reads.clear()
    assert write_cluster_ids(store, (DAYS[1], DAYS[2]), second, previous).written == 0
    assert reads == [{"ds": {"gte": DAYS[1], "lte": DAYS[2]}}]  # no mark: read all

    store.set_sync_mark({"ds": DAYS[1], "digest": assignments_digest(second)})  # not `first`
    reads.clear()
    write_cluster_ids(store, (DAYS[1], DAYS[2]), second, previous)
    assert len(reads) == 1 and "gte" in reads[0]["ds"]

    monkeypatch.setattr(store, "set_payloads", lambda payloads: 1 / 0)
    with pytest.raises(ZeroDivisionError):  # cut short: no mark, whatever there was
        write_cluster_ids(store, (DAYS[1], DAYS[2]), assign(DAYS[1:], 2), previous)
    assert store.sync_mark() is None
    monkeypatch.undo()
    ghost = pd.concat([second, pd.DataFrame({"feedback_id": ["fb-none"], "cluster_id": [1],
                                             "topic_id": [0]})])  # fmt: skip
    assert write_cluster_ids(store, (DAYS[1], DAYS[2]), ghost).missing == 1
    assert store.sync_mark() is None  # an event without a point: the store is not complete
    store.close()
    for backend in ("local", "memory"):  # nowhere to keep a mark: always unknown
        other = open_store("test-model", 16, path=tmp_path / backend, backend=backend)
        other.set_sync_mark({"ds": DAYS[1]})
        assert other.sync_mark() is None
        other.close()


def test_the_day_just_synced_with_its_ids_is_not_read_back(tmp_path, monkeypatch):
    """`qdrant_feedback` writes the day's points with their ids, then the window's changes.

    The sync says what the day's points hold, so with the mark nothing is read, and without it
    (a rerun of the day) only the window's earlier days.
    """
    store = open_store("test-model", 16, path=tmp_path / "qdrant", backend="edge")
    by_day = _by_day()
    for day in DAYS[:2]:
        sync_day(store, day, by_day[day])
    first = _assign(by_day, DAYS[:2], 0)
    write_cluster_ids(store, (DAYS[0], DAYS[1]), first)
    second = _assign(by_day, DAYS[1:], 2)
    ids = second.set_index("feedback_id")
    day = [
        (pid, vector, {**p, **ids.loc[p["feedback_id"]].astype(int).to_dict()})
        for pid, vector, p in by_day[DAYS[2]]
    ]
    before = _held(store)
    want = {**before, **dict(zip(second["feedback_id"], zip(second["cluster_id"],
                                                            second["topic_id"])))}  # fmt: skip
    changed = sum(before.get(f) != ids for f, ids in want.items() if f in before)
    reads = _reads(store, monkeypatch)
    for rerun in (False, True):
        synced = sync_day(store, DAYS[2], day)
        reads.clear()
        done = write_cluster_ids(store, (DAYS[1], DAYS[2]), second, (DAYS[1], first), synced.held)
        assert _held(store) == want and done.missing == 0
        assert done.unchanged >= len(day)  # the day's points were written with their ids
        if not rerun:  # the mark: the earlier days are as `first` left them
            assert reads == [] and done.read == 0 and done.written == changed > 0
        else:  # no mark (the day's own): read the earlier days, find nothing to write
            assert reads == [{"ds": {"gte": DAYS[1], "lt": DAYS[2]}}]
            assert done.read == len(by_day[DAYS[1]]) and done.written == 0
        assert store.sync_mark() == {"ds": DAYS[2], "digest": assignments_digest(second)}
    store.close()


def _segment_codes(shard: Path) -> list[dict]:
    """The quantization each segment of an Edge shard holds (Qdrant's own segment files)."""
    return [
        json.loads(f.read_text())["quantization_config"]
        for f in sorted(shard.glob("segments/*/vector_storage/quantized.config.json"))
    ]


def test_optimized_edge_store_quantizes_each_day_and_keeps_recall(tmp_path, monkeypatch):
    """Stores of earlier releases (plain, then int8 segments) are re-encoded when optimized."""
    import qdrant_edge as qe

    from feedback_pipelines.vectorstore import edge
    from feedback_pipelines.vectorstore.edge import EdgeStore
    from feedback_pipelines.vectorstore.layout import INDEX_POINTS

    def int8(qe):  # how the previous release quantized a segment
        return qe.ScalarQuantizationConfig(type=qe.ScalarType.Int8, quantile=0.99, always_ram=True)

    dim, per_day = 32, INDEX_POINTS + 2000
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((40, dim))
    folder = tmp_path / "qdrant"
    plain = qe.EdgeConfig(vectors=qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine))
    qe.EdgeShard.create(str(folder / "c"), plain).close()  # as an older release created it
    vectors, payloads = [], []
    for day in range(2):
        if day == 0:
            monkeypatch.setattr(edge, "_codes", int8)
        else:
            codes = _segment_codes(folder / "c")
            assert codes and all(
                c == {"scalar": {"type": "int8", "quantile": 0.99, "always_ram": True}}
                for c in codes
            )
            monkeypatch.undo()
        store = EdgeStore(folder, "c", dim)
        assert store.earlier_segments() == (0 if day == 0 else len(codes))
        rows = centres[rng.integers(0, 40, per_day)] + 0.3 * rng.standard_normal((per_day, dim))
        rows = (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)
        day_payloads = [
            {"feedback_id": f"d{day}-{i}", "ds": DAYS[day], "model_version": f"v{i % 3}"}
            for i in range(per_day)
        ]
        store.upsert(
            [(point_id(p["feedback_id"]), v, p) for v, p in zip(rows, day_payloads, strict=True)]
        )
        store.optimize()
        assert store.info()["indexed_vectors"] == store.count() == per_day * (day + 1)
        vectors.append(rows)
        payloads += day_payloads
        store.close()
    turbo = {"turbo": {"always_ram": True, "bits": "bits4"}}
    codes = _segment_codes(folder / "c")
    assert codes and all(c == turbo for c in codes)  # the int8 day was re-encoded
    store = EdgeStore(folder, "c", dim)
    assert store.earlier_segments() == 0
    everything = np.vstack(vectors)
    right = []
    for flt in ({}, {"model_version": "v1"}, {"ds": DAYS[1], "model_version": "v2"}):
        keep = np.array([all(p.get(k) == v for k, v in flt.items()) for p in payloads])
        for query in rng.standard_normal((5, dim)).astype(np.float32):
            query /= np.linalg.norm(query)
            scores = everything @ query
            tenth = np.sort(scores[keep])[-10]
            hits = store.search(query, flt, 10)
            assert len(hits) == 10
            right += [h.score >= tenth - 1e-4 for h in hits]  # scores are rescored: exact
            assert all(all(h.payload.get(k) == v for k, v in flt.items()) for h in hits)
    store.close()
    assert np.mean(right) >= 0.95  # recall@10: 4-bit codes rank, the best 4 x 10 are rescored


def test_bad_filters_are_refused(store):
    with pytest.raises(ValueError):
        store.count({"ds": {"after": "2026-11-01"}})
    with pytest.raises(ValueError):
        store.count({"kind": []})


def test_one_collection_per_model():
    a = collection_name("sentence-transformers/all-MiniLM-L6-v2@onnx-int8:pkg==1.0.0")
    b = collection_name("sentence-transformers/all-MiniLM-L6-v2@torch-fp32:st==6.2.0")
    assert a != b and a.startswith("feedback-sentence-transformers-all-minilm-l6-v2")
    assert "/" not in a and len(a) < 120
    assert {"model_version", "prompt_version", "kind", "reason", "ds", "is_negative",
            "cluster_id", "user_role"} <= set(PAYLOAD_INDEXES)  # fmt: skip


def test_point_ids_are_uuid5_of_the_feedback_id():
    """Fixed forever: the ids of every stored point; spelled out on bytes, checked against uuid."""
    import uuid

    from feedback_pipelines.vectorstore.base import POINT_NAMESPACE

    names = ["a", "", "fb-000001", "ünïcode ✓", "x" * 300, 42, *map(str, range(2000))]
    for name in names:
        assert point_id(name) == str(uuid.uuid5(POINT_NAMESPACE, str(name)))
    assert point_id("fb-1") == "af3f9baa-58f8-571f-89de-cfddde3f5ff6"


@pytest.mark.parametrize("backend", ["edge", "local"])
def test_embedded_store_persists_and_has_indexes(tmp_path, backend):
    points, vectors = _points()
    with open_store("m", 16, path=tmp_path, backend=backend) as s:
        s.upsert(points)
    with open_store("m", 16, path=tmp_path, backend=backend) as s:
        assert s.count() == N
        assert s.search(vectors[3], {"model_version": "v2"}, 1)[0].id == points[3][0]
        if backend == "edge":
            schema = set(s.shard.info().payload_schema)
            assert set(PAYLOAD_INDEXES) <= schema


def test_edge_indexes_of_the_previous_release_are_replaced_once(tmp_path, monkeypatch):
    """Cluster ids and flags are indexed for matches only, the model version as a tenant; a
    store of the previous release (integer indexes with ranges, a plain keyword one) gets them
    replaced when opened, and its filters still match."""
    import qdrant_edge as qe

    from feedback_pipelines.vectorstore import edge

    def ranged(shard) -> dict[str, bool]:
        schema = shard.info().payload_schema
        return {
            k: v.params is None or bool(getattr(v.params, "range", True)) for k, v in schema.items()
        }

    def tenant(shard) -> bool:
        params = shard.info().payload_schema["model_version"].params
        return params is not None and bool(params.is_tenant)

    points, vectors = _points()
    points = [(pid, v, {**pl, "cluster_id": i % 5}) for i, (pid, v, pl) in enumerate(points)]
    monkeypatch.setattr(
        edge, "_schema", lambda kind: {"integer": qe.PayloadSchemaType.Integer,
                                       "bool": qe.PayloadSchemaType.Integer,
                                       "keyword": qe.PayloadSchemaType.Keyword,
                                       "tenant": qe.PayloadSchemaType.Keyword,
                                       "datetime": qe.PayloadSchemaType.Datetime}[kind],
    )  # fmt: skip
    with open_store("m", 16, path=tmp_path, backend="edge") as s:
        s.upsert(points)
        s.optimize()
        assert ranged(s.shard)["cluster_id"] and ranged(s.shard)["is_negative"]
        assert not tenant(s.shard)
    monkeypatch.undo()
    with open_store("m", 16, path=tmp_path, backend="edge") as s:
        got = ranged(s.shard)
        assert set(got) == set(PAYLOAD_INDEXES)
        assert not got["cluster_id"] and not got["is_negative"]
        assert got["ds"]  # days are ranges: that index keeps them
        assert tenant(s.shard)
        schema = s.shard.info().payload_schema
        assert schema["cluster_id"].points == schema["is_negative"].points == N
        assert schema["model_version"].points == N
        assert s.count({"model_version": "v2"}) == N // 2
        flt = {"cluster_id": 2, "is_negative": True}
        want = {p for p, _, pl in points if pl["cluster_id"] == 2 and pl["is_negative"]}
        assert want and {h.id for h in s.search(vectors[0], flt, N)} == want
        assert s.count(flt) == len(want)


def _open_edge(path: str, queue) -> None:
    try:
        open_store("m", 16, path=path, backend="edge")
        queue.put("opened")
    except Exception as exc:  # the lock error is what we want to see
        queue.put(type(exc).__name__ + ": " + str(exc))


def test_edge_store_allows_one_process_at_a_time(tmp_path):
    with open_store("m", 16, path=tmp_path, backend="edge"):
        queue = multiprocessing.get_context("spawn").Queue()
        proc = multiprocessing.get_context("spawn").Process(
            target=_open_edge, args=(str(tmp_path), queue)
        )
        proc.start()
        proc.join(60)
        message = queue.get(timeout=5)
    assert message != "opened" and "WAL" in message


def test_the_payload_pii_scan_reads_free_text_not_ids():
    import numpy as np

    from feedback_pipelines.privacy import find_pii
    from feedback_pipelines.recall.sync import payload_texts

    vector = np.zeros(4, dtype=np.float32)
    points = [
        ("p1", vector, {"feedback_id": "20261120-000025", "trace_id": "4111111111111111",
                        "text": "the invoice total is wrong", "ds": "2026-11-20"}),
        ("p2", vector, {"feedback_id": "f2", "text": "mail me at jane.doe@example.com"}),
    ]  # fmt: skip
    texts = payload_texts(points)
    assert texts == ["the invoice total is wrong", "mail me at jane.doe@example.com"]
    assert find_pii(texts) == ["jane.doe@example.com"]


def test_a_day_is_asked_for_as_a_range_the_datetime_index_serves():
    from feedback_pipelines.vectorstore.base import PAYLOAD_INDEXES, indexed_filter

    got = indexed_filter({"ds": "2026-11-20", "kind": "comment"}, PAYLOAD_INDEXES)
    assert got == {"ds": {"gte": "2026-11-20", "lte": "2026-11-20"}, "kind": "comment"}
    assert indexed_filter({"ds": {"gte": "2026-11-01"}}, PAYLOAD_INDEXES) == {
        "ds": {"gte": "2026-11-01"}
    }
