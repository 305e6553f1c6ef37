"""The optional cluster labeller against a small OpenAI-compatible server on 127.0.0.1.

The server speaks the chat-completions API (POST /v1/chat/completions, Bearer auth, a
`choices[0].message.content` reply) and records every request, so the tests see exactly what
left the process: titles are asked for with keyphrases and redacted quotes only.
"""

from __future__ import annotations

import json
import threading
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest

from feedback_pipelines.clustering.llm_labels import (
    ChatLabeller,
    LabellerError,
    chat_completions_url,
    clean_title,
    title_clusters,
)

KEY = "sk-test-labeller-key-0123456789"


class ChatServer:
    """A chat-completions endpoint: answers from `replies` (status, title) in order."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.replies: list[tuple[int, str]] = []
        self.default = (200, "Refunds after cancelled flights")
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(
                    {"path": self.path, "auth": self.headers.get("Authorization"), "body": body}
                )
                status, title = server.replies.pop(0) if server.replies else server.default
                if status != 200:
                    payload = {"error": {"message": "nope"}}
                else:
                    payload = {
                        "id": "chatcmpl-1",
                        "object": "chat.completion",
                        "model": body["model"],
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": title},
                                "finish_reason": "stop",
                            }
                        ],
                    }
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:  # keep test output clean
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def sent_text(self) -> str:
        return json.dumps([r["body"] for r in self.requests])


@pytest.fixture
def server():
    s = ChatServer()
    yield s
    s.close()


def test_a_title_is_asked_with_keyphrases_and_redacted_quotes(server):
    labeller = ChatLabeller(server.url, api_key=KEY, model="tiny-model")
    server.replies = [(200, 'Title: "Refunds after cancelled flights".\nBecause...')]
    title = labeller.title(
        ["refund", "cancelled flight"],
        ["I want my refund, write to jane.doe@example.com", "flight cancelled, no money back"],
    )
    assert title == "Refunds after cancelled flights"
    (request,) = server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["auth"] == f"Bearer {KEY}"
    body = request["body"]
    assert body["model"] == "tiny-model" and body["temperature"] == 0
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    user = body["messages"][1]["content"]
    assert "refund, cancelled flight" in user and "flight cancelled, no money back" in user
    assert "jane.doe@example.com" not in server.sent_text() and "<EMAIL>" in user
    assert KEY not in repr(labeller)


def test_server_errors_are_retried_and_client_errors_are_not(server):
    labeller = ChatLabeller(server.url, max_retries=2)
    server.replies = [(503, ""), (500, ""), (200, "Password resets")]
    assert labeller.title(["password"], ["reset link expired"]) == "Password resets"
    assert len(server.requests) == 3 and server.requests[0]["auth"] is None
    server.replies = [(401, "")]
    with pytest.raises(LabellerError, match="401"):
        labeller.title(["password"], [])
    assert len(server.requests) == 4
    server.replies = [(200, "   \n")]
    with pytest.raises(LabellerError, match="empty"):
        labeller.title(["password"], [])


def test_unreachable_endpoint_is_a_labeller_error():
    labeller = ChatLabeller("http://127.0.0.1:9/v1", max_retries=0, timeout=2)
    with pytest.raises(LabellerError, match="unreachable"):
        labeller.title(["x"], [])


def test_urls_and_titles_are_normalised():
    assert chat_completions_url("http://h/v1/") == "http://h/v1/chat/completions"
    assert chat_completions_url("http://h/v1/chat/completions") == "http://h/v1/chat/completions"
    assert clean_title("**Shipping delays**") == "Shipping delays"
    assert len(clean_title("word " * 40, max_chars=30)) <= 30


def frame(rows: list[dict]) -> pd.DataFrame:
    base = {"label": "", "label_source": "keyphrases", "quotes": ["a quote"]}
    return pd.DataFrame([{**base, **r} for r in rows])


def test_titles_are_reused_for_kept_topics_and_failures_keep_keyphrases(server):
    labeller = ChatLabeller(server.url, max_retries=0)
    previous = frame(
        [
            {"cluster_id": 1, "label": "Invoice questions", "label_source": "llm",
             "keyphrases": ["invoice", "billing", "plan"], "status": "stable"},
            {"cluster_id": 2, "label": "old", "label_source": "llm",
             "keyphrases": ["resume", "gap"], "status": "stable"},
        ]
    )  # fmt: skip
    today = frame(
        [
            {"cluster_id": 1, "label": "invoice, billing, vat", "status": "stable",
             "keyphrases": ["invoice", "billing", "vat"]},
            {"cluster_id": 2, "label": "workout, protein", "status": "stable",
             "keyphrases": ["workout", "protein"]},
            {"cluster_id": 3, "label": "smart, network", "status": "new",
             "keyphrases": ["smart", "network"]},
            {"cluster_id": 4, "label": "faded one", "status": "faded", "keyphrases": ["x"]},
        ]
    )  # fmt: skip
    server.replies = [(200, "Workout plans"), (500, "")]
    out = title_clusters(today, labeller, previous).set_index("cluster_id")
    assert out.loc[1, "label"] == "Invoice questions"  # kept topic, similar keyphrases: reused
    assert out.loc[2, "label"] == "Workout plans"  # same id, different subject: asked again
    assert out.loc[3, "label"] == "smart, network"  # the endpoint failed: keyphrases stay
    assert out.loc[3, "label_source"] == "keyphrases" and out.loc[2, "label_source"] == "llm"
    assert out.loc[4, "label"] == "faded one"
    assert len(server.requests) == 2 and labeller.failures == 1


def test_the_asset_titles_clusters_when_a_labeller_is_configured(server, tmp_path):
    """The clustering asset on a tiny warehouse (hash-embedder space), labeller on."""
    from feedback_pipelines.defs.clustering import topic_clusters
    from feedback_pipelines.embedding import get_embedder
    from feedback_pipelines.resources.clustering import ClusterLabellerResource
    from feedback_pipelines.resources.semantic import EmbedderResource
    from feedback_pipelines.resources.settings import PipelineConfig
    from feedback_pipelines.resources.warehouse import WarehouseResource

    model = get_embedder("hash:384")
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((3, 384))
    end = date(2026, 11, 20)
    events, vectors = [], []
    words = ["refund flight", "invoice billing", "password reset"]
    for d in range(4):
        day = end - timedelta(days=d)
        for t in range(3):
            for i in range(25):
                v = centres[t] + 0.05 * rng.standard_normal(384)
                vectors.append(v / np.linalg.norm(v))
                events.append(
                    {
                        "ds": day,
                        "feedback_id": f"f-{day}-{t}-{i}",
                        "user_id": f"u{i}",
                        "session_id": f"s-{day}-{t}-{i}",
                        "timestamp": pd.Timestamp(day) + pd.Timedelta(minutes=i),
                        "is_negative": i % 2 == 0,
                        # a raw address the warehouse should never hold: redacted before sending
                        "text": f"{words[t]} problem {i} contact bob.smith@example.org",
                    }
                )
    ev = pd.DataFrame(events)
    ev["text_hash"] = ev["feedback_id"]
    ev["model_id"] = model.model_id
    ev["vector"] = [list(map(float, v)) for v in vectors]
    db = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(db)) as conn:
        conn.register("ev", ev)
        conn.execute(
            "CREATE TABLE feedback_events AS SELECT ds, feedback_id, user_id, session_id, "
            "timestamp, is_negative FROM ev"
        )
        conn.execute(
            "CREATE TABLE feedback_embeddings AS SELECT ds, feedback_id, model_id, text_hash, "
            "text, vector::FLOAT[384] AS vector FROM ev"
        )
    resources = {
        "settings": PipelineConfig(data_dir=str(tmp_path)),
        "warehouse": WarehouseResource(database=str(db)),
        "embedder": EmbedderResource(name="hash:384"),
        "cluster_labeller": ClusterLabellerResource(url=server.url, api_key=KEY, model="m"),
    }
    server.default = (200, "A topic title")
    result = dg.materialize(
        [topic_clusters],
        partition_key=end.isoformat(),
        resources=resources,
    )
    assert result.success
    with duckdb.connect(str(db), read_only=True) as conn:
        clusters = conn.execute("SELECT * FROM feedback_clusters").df()
    assert len(clusters) >= 3  # three planted topics (a topic over max_share is cut finer)
    assert (clusters["label"] == "A topic title").all()
    assert (clusters["label_source"] == "llm").all()
    assert len(server.requests) == len(clusters)
    assert all(r["auth"] == f"Bearer {KEY}" for r in server.requests)
    assert "bob.smith@example.org" not in server.sent_text()
    (mat,) = [
        m
        for m in result.asset_materializations_for_node("topic_clusters")
        if m.asset_key == dg.AssetKey("feedback_clusters")
    ]
    assert "m at http://127.0.0.1" in mat.metadata["labels"].value
