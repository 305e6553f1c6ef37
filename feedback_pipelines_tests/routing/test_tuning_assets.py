"""The routing assets on the generated week: exports, review queue, tables, checks, reruns.

Upstream clustering and regression tables are planted in their documented shape from the
generator's truth (topic = cluster, `sql_help` regressed), so this stage is tested on its own.
The window is 2 days to keep the embedding work small.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import date, timedelta

import dagster as dg
import duckdb
import pandas as pd
import pytest

from feedback_pipelines.defs.tuning import routing
from feedback_pipelines.resources.semantic import EmbedderResource, VectorStoreResource
from feedback_pipelines.resources.settings import PipelineConfig
from feedback_pipelines.resources.warehouse import WarehouseResource
from feedback_pipelines.routing.day import read_events
from feedback_pipelines.routing.tuning import gates
from feedback_pipelines.routing.tuning.messages import normalize_text
from feedback_pipelines.routing.tuning.similarity import PairMemory
from feedback_pipelines.routing.tuning.validate import validate_export
from feedback_pipelines_tests.fixtures.pipeline import WEEK_END, make_env
from feedback_pipelines_tests.fixtures.vectors import reusing_vectors

pytestmark = [pytest.mark.slow]

DS = WEEK_END.isoformat()
WINDOW_DAYS = 2
START = (WEEK_END - timedelta(days=WINDOW_DAYS - 1)).isoformat()
REGRESSED_TOPIC = "sql_help"


def cluster_of(truth: dict) -> dict[str, int]:
    """feedback_id -> cluster id: the planted topic, with 1 in 20 events left as noise."""
    topics = {t: i for i, t in enumerate(sorted(t["name"] for t in truth["topics"]))}
    out = {}
    for fid, topic in truth["feedback_topic"].items():
        noise = int(hashlib.sha256(fid.encode()).hexdigest(), 16) % 20 == 0
        out[fid] = -1 if noise else topics[topic]
    return out


def plant_upstream(warehouse, truth: dict) -> int:
    """Write cluster_assignments, feedback_clusters and version_regressions for DS."""
    clusters = cluster_of(truth)
    topics = {t["name"]: t["label"] for t in truth["topics"]}
    ids = {t: i for i, t in enumerate(sorted(topics))}
    regressed = ids[REGRESSED_TOPIC]
    with duckdb.connect(str(warehouse)) as conn:
        fids = conn.execute(
            "SELECT feedback_id FROM feedback_events WHERE ds BETWEEN ? AND ?", [START, DS]
        ).df()
        assignments = pd.DataFrame(
            {
                "ds": pd.Timestamp(DS).date(),
                "feedback_id": fids["feedback_id"],
                "cluster_id": [clusters.get(f, -1) for f in fids["feedback_id"]],
            }
        )
        labels = pd.DataFrame(
            {"ds": pd.Timestamp(DS).date(), "cluster_id": list(ids.values()),
             "label": [topics[t] for t in ids]}
        )  # fmt: skip
        yesterday = (WEEK_END - timedelta(days=1)).isoformat()
        regressions = pd.DataFrame(
            [
                _regression(DS, regressed, True, 0.25),
                _regression(DS, ids["billing_invoice"], False, 0.01),
                _regression(yesterday, ids["billing_invoice"], False, 0.02),
            ]
        )
        cached = cached_vectors(conn)
        for name, frame in (
            ("feedback_embeddings", cached),
            ("cluster_assignments", assignments),
            ("feedback_clusters", labels),
            ("version_regressions", regressions),
        ):
            conn.register("_frame", frame)
            conn.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM _frame")
            conn.unregister("_frame")
    return regressed


CACHED = 20


def cached_vectors(conn) -> pd.DataFrame:
    """`feedback_embeddings` rows (the semantic stage's shape) for a few of the requests."""
    from feedback_pipelines.embedding import get_embedder, text_hash

    requests = conn.execute(
        "SELECT DISTINCT request FROM feedback_events WHERE ds BETWEEN ? AND ? AND request "
        "IS NOT NULL ORDER BY request LIMIT ?",
        [START, DS, CACHED],
    ).df()["request"]
    model = get_embedder()
    vectors = model.embed(list(requests))
    return pd.DataFrame(
        {
            "ds": pd.Timestamp(DS).date(),
            "feedback_id": [f"cached-{i}" for i in range(len(requests))],
            "model_id": model.model_id,
            "text_hash": [text_hash(t, model.model_id) for t in requests],
            "text": requests,
            "vector": [v.tolist() for v in vectors],
        }
    )


def _regression(window_end: str, cluster: int, flagged: bool, delta: float) -> dict:
    return {
        "ds": pd.Timestamp(window_end).date(),
        "window_start": pd.Timestamp(window_end).date() - timedelta(days=13),
        "window_end": pd.Timestamp(window_end).date(),
        "dimension": "model_version",
        "candidate_version": "nimbus-2026-11",
        "baseline_version": "nimbus-2026-10",
        "metric": "negative_rate",
        "cluster_id": cluster,
        "n_candidate": 120,
        "n_baseline": 300,
        "rate_candidate": 0.15 + delta,
        "rate_baseline": 0.15,
        "delta": delta,
        "p_value": 0.0001 if flagged else 0.6,
        "q_value": 0.001 if flagged else 0.7,
        "is_regression": flagged,
    }


def materialize(
    window_days: int = WINDOW_DAYS, selection=None, export_mode: str = "cumulative"
) -> dg.ExecuteInProcessResult:
    with reusing_vectors():
        return dg.materialize(
            [routing],
            partition_key=DS,
            resources={
                "settings": PipelineConfig(window_days=window_days, export_mode=export_mode),
                "warehouse": WarehouseResource(),
                "embedder": EmbedderResource(),
                "vector_store": VectorStoreResource(),
            },
            selection=selection,
        )


# The files that name the Dagster run (the data card and its Markdown copies): a rerun is a
# new run, so these differ by the run id alone.
NAMES_THE_RUN = ("datacard.json", "datacard.md", "README.md")


def digest(*folders) -> dict[str, str]:
    """Hashes of every file, with the data card's run id masked."""
    out = {}
    for folder in folders:
        card = folder / "datacard.json"
        run = json.loads(card.read_text())["generator"]["run_id"] if card.exists() else None
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                data = p.read_bytes()
                if run and p.name in NAMES_THE_RUN:
                    data = data.replace(run.encode(), b"<run>")
                out[f"{folder.name}/{p.relative_to(folder)}"] = hashlib.sha256(data).hexdigest()
    return out


def tables(env) -> dict[str, pd.DataFrame]:
    with env.connect() as conn:
        return {
            name: conn.execute(f"SELECT * FROM {name} WHERE ds = ? ORDER BY ALL", [DS]).df()
            for name in ("tuning_candidates", "review_queue")
        }


@pytest.fixture(scope="module")
def routed(ingested_week, tmp_path_factory):
    source, truth = ingested_week
    with pytest.MonkeyPatch.context() as mp:
        env = make_env(tmp_path_factory.mktemp("routing"), mp)
        shutil.copy(source.warehouse, env.warehouse)
        regressed = plant_upstream(env.warehouse, truth)
        first = materialize()
        exports, queue = env.data / "exports" / f"dt={DS}", env.data / "review" / f"dt={DS}"
        files, rows = digest(exports, queue), tables(env)
        second = materialize()
        rerun = digest(exports, queue), tables(env)
    with env.connect() as conn:
        events = read_events(conn, START, DS, columns="*")
    return {
        "env": env, "truth": truth, "regressed": regressed, "first": first, "second": second,
        "files": files, "rows": rows, "rerun": rerun, "exports": exports, "queue": queue,
        "events": events,
    }  # fmt: skip


def test_exports_pass_the_checker_and_hold_no_planted_pii(routed):
    _, problems = validate_export(routed["exports"])
    assert problems == []
    checks = {c.check_name: c.passed for c in routed["first"].get_asset_check_evaluations()}
    assert checks == {"exports_consistent": True}
    planted = routed["truth"]["pii"]
    assert planted
    for folder in (routed["exports"], routed["queue"]):
        for path in folder.rglob("*"):
            if path.is_file():
                text = path.read_bytes().decode("utf-8", errors="replace")
                found = [p for p in planted if p in text]
                assert not found, (path.name, found[:3])


def test_sft_example_for_each_valid_correction_in_the_window(routed):
    events, table = routed["events"], routed["rows"]["tuning_candidates"]
    corrections = events[(events["kind"] == "correction") | events["correction"].notna()]
    assert len(corrections) > 10
    exported = set(table.loc[table["dataset"].isin(["sft", "eval"]), "feedback_id"])
    excluded = [
        json.loads(x) for x in (routed["exports"] / "excluded.jsonl").read_text().splitlines()
    ]
    reason = {x["feedback_id"]: x["filter"] for x in excluded if x["dataset"] == "sft"}
    for row in corrections.itertuples():
        assert (row.feedback_id in exported) != (row.feedback_id in reason), row.feedback_id
        why = reason.get(row.feedback_id)
        if why == "unsafe":
            assert row.reason == "unsafe"
        elif why == "no_trace":
            assert not row.trace_found
        elif why == "pii":
            assert gates.has_pii([row.correction, row.request, row.messages])
        elif why == "correction_equals_response":
            assert normalize_text(row.correction) == normalize_text(row.response)
    card = json.loads((routed["exports"] / "datacard.json").read_text())
    for f in card["filters"]:
        assert f["removed"].get("sft", 0) == sum(v == f["filter"] for v in reason.values())


def test_no_example_twice_and_no_leak_between_splits(routed):
    table = routed["rows"]["tuning_candidates"]
    assert not table.duplicated(["file", "feedback_id"]).any()
    for name in ("sft.jsonl", "sft_validation.jsonl", "preference.jsonl", "eval.jsonl"):
        lines = (routed["exports"] / name).read_text().splitlines()
        assert len(lines) == len(set(lines)), name
    split = table[table["split"].notna()].groupby("group_id")["split"].nunique()
    assert (split == 1).all()
    requests = table.assign(request=[normalize_text(json.loads(p)[-1]["content"])
                                     for p in table["prompt"]])  # fmt: skip
    held = set(requests.loc[requests["split"] == "test", "request"])
    trained = set(requests.loc[requests["split"].isin(["train", "validation"]), "request"])
    assert held and not held & trained
    cases = [json.loads(x) for x in (routed["exports"] / "eval.jsonl").read_text().splitlines()]
    assert {c["metadata"]["regressed_cluster"] for c in cases} == {routed["regressed"]}
    own = table.loc[table["dataset"] == "eval", "cluster_id"]
    assert (own == routed["regressed"]).mean() > 0.5  # mostly the cluster's own events


def test_datacard_counts_equal_the_files_and_parquet_loads(routed):
    import datasets

    folder = routed["exports"]
    card = json.loads((folder / "datacard.json").read_text())
    for entry in card["files"]:
        path = folder / entry["path"]
        rows = (
            len(path.read_text().splitlines())
            if entry["format"] == "jsonl"
            else len(pd.read_parquet(path))
        )
        assert rows == entry["rows"], entry["path"]
    for name in ("sft", "preference", "eval"):
        assert card["counts"][name] == len((folder / f"{name}.jsonl").read_text().splitlines())
    assert card["clusters"]["regressed"] == [routed["regressed"]]
    assert card["clusters"]["regressed_themes"] == []  # no feedback_topics planted
    assert not any("feedback_clusters" in n for n in card["notes"])  # it was planted
    assert card["window"] == {"start": START, "end": DS, "days": WINDOW_DAYS}
    assert card["embedding"]["search"] == "matrix"
    assert card["embedding"]["texts_from_feedback_embeddings"] == CACHED  # semantic's cache
    for name in ("sft", "preference", "unpaired", "eval"):
        loaded = datasets.load_dataset("parquet", data_dir=str(folder / "parquet" / name))
        frames = [pd.read_parquet(p) for p in sorted((folder / "parquet" / name).glob("*"))]
        assert sum(len(s) for s in loaded.values()) == sum(len(f) for f in frames) > 0
    ranked = [
        json.loads(x) for x in (folder / "candidates" / "index.jsonl").read_text().splitlines()
    ]
    assert ranked[0]["cluster_id"] == routed["regressed"]  # regressed cluster first by impact
    assert (folder / ranked[0]["file"]).exists()


def test_rerunning_the_partition_writes_identical_files_and_rows(routed):
    assert routed["second"].success
    files, rows = routed["rerun"]
    assert files == routed["files"]  # but the run id, which names the second run
    # the rerun started from the first run's near-duplicate pairs (kept under work/)
    (memory,) = (routed["env"].data / "work" / "near_duplicates").glob("*.npz")
    kept = PairMemory.load(memory)
    assert kept is not None and len(kept.keys) > 100 and len(kept.i) > 0
    card = json.loads((routed["exports"] / "datacard.json").read_text())
    assert card["generator"]["run_id"] == routed["second"].run_id
    for name, frame in routed["rows"].items():
        pd.testing.assert_frame_equal(rows[name], frame)


def test_review_queue_routes_what_people_should_see(routed):
    events, queue = routed["events"], routed["rows"]["review_queue"]
    today = events[events["ds"] == pd.Timestamp(DS)]
    clusters = cluster_of(routed["truth"])
    unsafe = set(today.loc[today["reason"] == "unsafe", "feedback_id"])
    noise = {f for f in today.loc[today["is_negative"], "feedback_id"] if clusters.get(f) == -1}
    reasons = {r.feedback_id: json.loads(r.routing_reasons) for r in queue.itertuples()}
    assert unsafe and {f for f, r in reasons.items() if "unsafe" in r} == unsafe
    assert noise and {f for f, r in reasons.items() if "unclustered_negative" in r} == noise
    sample = queue[queue["routing_reasons"].str.contains("new_regression_sample")]
    assert 0 < len(sample) <= 5 and set(sample["cluster_id"]) == {routed["regressed"]}
    assert queue["trace_id"].notna().all() and queue["session_id"].notna().all()
    assert list(queue.sort_values("priority")["priority"]) == sorted(queue["priority"])
    lines = (routed["queue"] / "queue.jsonl").read_text().splitlines()
    csv_rows = pd.read_csv(routed["queue"] / "queue.csv")
    assert len(lines) == len(csv_rows) == len(queue)
    assert set(csv_rows["feedback_id"]) == set(queue["feedback_id"])


def test_missing_upstream_tables_degrade_gracefully(ingested_week, tmp_path, monkeypatch):
    source, _ = ingested_week
    env = make_env(tmp_path, monkeypatch)
    shutil.copy(source.warehouse, env.warehouse)
    folder = env.data / "exports" / f"dt={DS}"
    # The review queue alone: its files and table, and nothing of the exports.
    alone = materialize(window_days=1, selection=["review_queue"])
    assert alone.success and not folder.exists()
    assert (env.data / "review" / f"dt={DS}" / "queue.csv").exists()
    with env.connect() as conn:
        assert conn.execute("SELECT count(*) FROM review_queue").fetchone()[0] > 0
        query = "SELECT table_name FROM information_schema.tables"
        tables = {t for (t,) in conn.execute(query).fetchall()}
    assert "tuning_candidates" not in tables
    result = materialize(window_days=1)
    assert result.success
    card = json.loads((folder / "datacard.json").read_text())
    notes = " ".join(card["notes"])
    assert "no cluster assignments" in notes and "version_regressions" in notes
    assert card["counts"]["eval"] == 0 and card["counts"]["sft"] > 0
    assert not card["clusters"]["clustering_available"]
    _, problems = validate_export(folder)
    assert problems == []
    with env.connect() as conn:
        reasons = conn.execute(
            "SELECT DISTINCT routing_reason FROM review_queue WHERE ds = ?", [DS]
        ).fetchall()
    assert {r for (r,) in reasons} <= {"unsafe", "conflicting_corrections"}
    assert date.fromisoformat(card["window"]["start"]) == WEEK_END


def test_incremental_runs_read_the_voted_pairs_earlier_days_exported(
    ingested_week, tmp_path, monkeypatch
):
    from feedback_pipelines.routing.day import read_inputs
    from feedback_pipelines.routing.tuning.pipeline import ExportedPair
    from feedback_pipelines.routing.tuning.votes import pair_key
    from feedback_pipelines.schema import TUNING_COLUMNS, TUNING_DDL
    from feedback_pipelines.tables import write_partition

    source, _ = ingested_week
    env = make_env(tmp_path, monkeypatch)
    shutil.copy(source.warehouse, env.warehouse)
    before = (WEEK_END - timedelta(days=1)).isoformat()
    prompt = [{"role": "user", "content": "Which planets have  rings?"}]

    def row(ds, example, dataset, src, chosen, rejected):
        values = dict.fromkeys(TUNING_COLUMNS)
        values.update(ds=date.fromisoformat(ds), example_id=example, dataset=dataset,
                      source=src, prompt=json.dumps(prompt), completion=chosen,
                      rejected=rejected, file=f"{dataset}.jsonl",
                      line=int(example[1:]) + 1)  # fmt: skip
        return values

    with env.connect(read_only=False) as conn:
        for ds, rows in (
            (before, [row(before, "x1", "preference", "pairwise_vote", "Saturn.", "None."),
                      row(before, "x0", "preference", "pairwise_vote", "saturn. ", "none."),
                      row(before, "x2", "preference", "ranking", "Four.", "Two."),
                      row(before, "x3", "preference", "liked_vs_disliked", "Six.", "Five."),
                      row(before, "x4", "eval", "preferred_response", "Eight.", None)]),
            (DS, [row(DS, "x5", "preference", "pairwise_vote", "Ten.", "Nine.")]),  # not earlier
        ):  # fmt: skip
            frame = pd.DataFrame(rows, columns=TUNING_COLUMNS).astype({"line": "int32"})
            write_partition(conn, "tuning_candidates", TUNING_DDL, frame, ds)
        incremental = read_inputs(conn, DS, 1, None, incremental=True)
        cumulative = read_inputs(conn, DS, 1, None)
    asked = [{"role": "user", "content": "which planets have rings?"}]  # the same, folded
    assert incremental.exported_votes == {
        # the first of one pair's copies
        pair_key(asked, "Saturn.", "None."): ExportedPair(before, "x0", "preference.jsonl", 1),
        pair_key(asked, "Four.", "Two."): ExportedPair(before, "x2", "preference.jsonl", 3),
    }
    assert cumulative.exported_votes == {}
    assert len(incremental.events) == len(cumulative.events) > 0
    # The asset in the incremental mode: the day's new examples, the earlier rows kept.
    assert materialize(window_days=1, export_mode="incremental").success
    card = json.loads((env.data / "exports" / f"dt={DS}" / "datacard.json").read_text())
    assert card["mode"]["export"] == "incremental" and card["counts"]["sft"] > 0
    with env.connect() as conn:
        kept = conn.execute(
            "SELECT example_id FROM tuning_candidates WHERE ds < ? ORDER BY 1", [DS]
        )
        assert kept.fetchall() == [("x0",), ("x1",), ("x2",), ("x3",), ("x4",)]
