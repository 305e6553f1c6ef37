"""A Qdrant server collection gets the embedded store's layout, over the real REST protocol.

No Qdrant server runs here, so a small fake one on 127.0.0.1 records what qdrant-client sends
and answers with the least JSON its models accept.
"""

import importlib.metadata
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from feedback_pipelines.vectorstore import PAYLOAD_INDEXES, open_store
from feedback_pipelines.vectorstore.qdrant_client_store import QdrantClientStore

NAME = "feedback-test"
DIM = 384  # 1.5 KB a vector: 10k points are 15,000 KB, 100k are 150,000 KB
INT8 = {"scalar": {"type": "int8", "quantile": 0.99, "always_ram": True}}  # the previous release's
TURBO = {"turbo": {"bits": "bits4", "always_ram": True}}
OPTIMIZERS = {"indexing_threshold": 15_000, "max_segment_size": 150_000}


def _config(m: int, quantization: dict | None, optimizers: dict) -> dict:
    """A collection's config as GET /collections/NAME reports it."""
    return {
        "params": {"vectors": {"size": DIM, "distance": "Cosine"}},
        "hnsw_config": {"m": m, "ef_construct": 100, "full_scan_threshold": 10_000},
        "optimizer_config": {"default_segment_number": 0, "flush_interval_sec": 5, **optimizers},
        "quantization_config": quantization,
    }


#: What a collection made with the server's defaults (by an earlier release) reports.
DEFAULTS = _config(16, None, {"indexing_threshold": 10_000, "max_segment_size": None})
#: What a collection already holding this release's layout reports.
CONVERGED = _config(0, TURBO, OPTIMIZERS)
#: What a collection made by the previous release (int8 codes) reports.
FORMER = _config(0, INT8, OPTIMIZERS)


class FakeQdrant(ThreadingHTTPServer):
    """Records (method, path, JSON body) of each request; one collection, empty of points."""

    def __init__(self, config: dict | None, schema: dict | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.config = config  # None: the collection does not exist yet
        self.schema = dict(schema or {})  # field -> its index, as the server reports it
        self.requests: list[tuple[str, str, dict | None]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def sent(self, method: str, path: str) -> list[dict | None]:
        return [body for m, p, body in self.requests if (m, p) == (method, path)]

    def answer(self, method: str, path: str) -> object:
        col = f"/collections/{NAME}"
        if (method, path) == ("GET", "/"):  # the version check; answered unwrapped
            return {"title": "fake qdrant", "version": importlib.metadata.version("qdrant-client")}
        if (method, path) == ("GET", col + "/exists"):
            return {"exists": self.config is not None}
        if (method, path) == ("PUT", col):
            self.config = CONVERGED
            return True
        if (method, path) == ("GET", col):
            return {
                "status": "green",
                "optimizer_status": "ok",
                "segments_count": 1,
                "config": self.config,
                "payload_schema": self.schema,
            }
        if (method, path) == ("PUT", col + "/index"):
            body = self.sent(method, path)[-1]
            schema = body["field_schema"]
            kind = schema if isinstance(schema, str) else schema["type"]
            self.schema[body["field_name"]] = {
                "data_type": kind,
                **({} if isinstance(schema, str) else {"params": schema}),
                "points": 0,
            }
            return {"operation_id": 1, "status": "completed"}
        if method == "DELETE" and path.startswith(col + "/index/"):
            del self.schema[path.removeprefix(col + "/index/")]
            return {"operation_id": 2, "status": "completed"}
        if (method, path) == ("POST", col + "/points/query"):
            return {"points": []}
        if (method, path) == ("PATCH", col):
            self.config = CONVERGED
            return True
        raise LookupError(f"{method} {path}")


class _Handler(BaseHTTPRequestHandler):
    server: FakeQdrant

    def _reply(self) -> None:
        path = self.path.split("?")[0]
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.server.requests.append((self.command, path, body))
        try:
            status, result = 200, self.server.answer(self.command, path)
            out = result if path == "/" else {"result": result, "status": "ok", "time": 0.0}
        except LookupError as e:
            status, out = 404, {"status": {"error": f"not faked: {e}"}, "time": 0.0}
        data = json.dumps(out).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = _reply

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def serve(monkeypatch):
    """Start a FakeQdrant reporting a given collection config; stopped after the test."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.lower(), raising=False)
    servers = []

    def start(config: dict | None, schema: dict | None = None) -> FakeQdrant:
        server = FakeQdrant(config, schema)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        deadline = time.monotonic() + 5
        # Each client checks the server's version on a thread of its own, and each opening asks
        # whether the collection exists: wait for every client's check before stopping.
        while time.monotonic() < deadline and len(server.sent("GET", "/")) < max(
            1, len(server.sent("GET", f"/collections/{NAME}/exists"))
        ):
            time.sleep(0.01)
        server.shutdown()
        server.server_close()


def test_new_collection_is_created_with_quantized_segments_and_no_graph(serve):
    fake = serve(None)
    with open_store("any-model", DIM, url=fake.url, collection=NAME):
        pass
    [body] = fake.sent("PUT", f"/collections/{NAME}")
    assert body["vectors"] == {"size": DIM, "distance": "Cosine"}
    assert body["quantization_config"] == TURBO
    assert body["hnsw_config"]["m"] == 0
    assert body["optimizers_config"] == OPTIMIZERS
    indexes = {
        b["field_name"]: b["field_schema"] for b in fake.sent("PUT", f"/collections/{NAME}/index")
    }
    assert set(indexes) == set(PAYLOAD_INDEXES)
    assert indexes["cluster_id"] == {"type": "integer", "lookup": True, "range": False}
    assert indexes["model_version"] == {"type": "keyword", "is_tenant": True}
    assert indexes["ds"] == "datetime"
    assert fake.sent("PATCH", f"/collections/{NAME}") == []


def test_search_rescores_quantized_candidates_without_a_beam(serve):
    fake = serve(CONVERGED)
    with open_store("any-model", DIM, url=fake.url, collection=NAME) as store:
        assert store.search(np.ones(DIM), {"kind": "correction"}, 5) == []
    [body] = fake.sent("POST", f"/collections/{NAME}/points/query")
    assert body["limit"] == 5
    assert body["params"]["quantization"] == {"rescore": True, "oversampling": 4.0}
    assert body["params"].get("hnsw_ef") is None


def test_a_graph_when_asked_for_is_built_and_searched_with_a_beam(serve):
    fake = serve(None)
    with QdrantClientStore(NAME, DIM, url=fake.url, hnsw_m=16, hnsw_ef=64) as store:
        store.search(np.ones(DIM))
    [created] = fake.sent("PUT", f"/collections/{NAME}")
    assert created["hnsw_config"]["m"] == 16
    assert created["quantization_config"] == TURBO
    [query] = fake.sent("POST", f"/collections/{NAME}/points/query")
    assert query["params"]["hnsw_ef"] == 64


def test_the_graph_setting_reaches_the_server(serve, monkeypatch):
    from feedback_pipelines.resources.semantic import VectorStoreResource

    monkeypatch.setenv("FEEDBACK_QDRANT_HNSW_M", "16")
    fake = serve(None)
    with open_store("any-model", DIM, url=fake.url, collection=NAME):
        pass
    [created] = fake.sent("PUT", f"/collections/{NAME}")
    assert created["hnsw_config"]["m"] == 16
    assert VectorStoreResource().graph_m() == 16  # what its `open` passes to `open_store`
    assert VectorStoreResource(hnsw_m=0).graph_m() == 0
    for bad in ("-1", "sixteen"):
        monkeypatch.setenv("FEEDBACK_QDRANT_HNSW_M", bad)
        with pytest.raises(ValueError, match="FEEDBACK_QDRANT_HNSW_M must be a whole number"):
            open_store("any-model", DIM, url=fake.url, collection=NAME)


@pytest.mark.parametrize("before", [DEFAULTS, FORMER], ids=["server defaults", "int8 layout"])
def test_a_collection_of_an_earlier_release_is_updated_once(serve, before):
    fake = serve(before)
    for _ in range(2):
        with open_store("any-model", DIM, url=fake.url, collection=NAME):
            pass
    [body] = fake.sent("PATCH", f"/collections/{NAME}")
    assert body["quantization_config"] == TURBO
    assert body["hnsw_config"]["m"] == 0
    assert body["optimizers_config"] == OPTIMIZERS
    assert fake.sent("PUT", f"/collections/{NAME}") == []


def test_a_collection_already_converged_is_left_alone(serve):
    fake = serve(CONVERGED)
    with open_store("any-model", DIM, url=fake.url, collection=NAME):
        pass
    assert fake.sent("GET", f"/collections/{NAME}")  # its config was read
    assert fake.sent("PATCH", f"/collections/{NAME}") == []
    assert fake.sent("PUT", f"/collections/{NAME}") == []


def test_a_layout_someone_chose_is_left_alone(serve):
    fake = serve(_config(16, INT8, {"indexing_threshold": 20_000, "max_segment_size": None}))
    with open_store("any-model", DIM, url=fake.url, collection=NAME) as store:
        store.search(np.ones(DIM))
    assert fake.sent("PATCH", f"/collections/{NAME}") == []
    assert fake.sent("PUT", f"/collections/{NAME}") == []


def test_indexes_of_an_earlier_release_are_replaced_once(serve):
    earlier = {  # a range part on cluster ids, a plain keyword index on the model version
        "cluster_id": {"data_type": "integer", "points": 5},
        "model_version": {"data_type": "keyword", "points": 5},
        "ds": {"data_type": "datetime", "points": 5},
    }
    fake = serve(CONVERGED, earlier)
    for _ in range(2):
        with open_store("any-model", DIM, url=fake.url, collection=NAME):
            pass
    deleted = [p for m, p, _ in fake.requests if m == "DELETE"]
    assert sorted(deleted) == [
        f"/collections/{NAME}/index/cluster_id",
        f"/collections/{NAME}/index/model_version",
    ]
    made = [b["field_name"] for b in fake.sent("PUT", f"/collections/{NAME}/index")]
    assert sorted(made) == sorted(set(PAYLOAD_INDEXES) - {"ds"})  # each once, ds kept
    assert fake.schema["cluster_id"]["params"] == {
        "type": "integer",
        "lookup": True,
        "range": False,
    }
    assert fake.schema["model_version"]["params"] == {"type": "keyword", "is_tenant": True}
