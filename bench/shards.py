"""Embedding shards against one process: wall time of the embedding stage, and identical vectors.

    PYTHONPATH=. .venv/bin/python bench/shards.py [--events 20000] [--shards 2] [--root DIR]

Generates one day (`feedback-pipelines generate`), ingests it once, then embeds the same day
twice from the same ingested warehouse, each in a fresh process:

- `one`: the default, in-process executor, FEEDBACK_EMBED_SHARDS=1 (what `make demo` does);
- `sharded`: FEEDBACK_EXECUTOR=multiprocess, FEEDBACK_EMBED_SHARDS=--shards: plan, shards as
  parallel step processes, commit.

It prints each stage's wall time (run start to end, so process start-up is counted) and the
largest absolute difference between the two tables' vectors (0 means identical bytes), plus the
load average: on a shared machine compare only runs at equal load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

DAY = "2026-11-20"
STAGE = "feedback_embeddings"


def _child(mode: str, root: Path) -> dict:
    """Embed the day once in this process (called by the parent as a subprocess)."""
    import dagster as dg

    from feedback_pipelines.definitions import daily_pipeline_job

    job = daily_pipeline_job().get_subset(asset_selection={dg.AssetKey(STAGE)})
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    with dg.DagsterInstance.get() as instance:
        started = time.perf_counter()
        if mode == "one":
            result = job.execute_in_process(
                partition_key=DAY, instance=instance, raise_on_error=False, run_config=quiet
            )
            success = result.success
        else:
            from dagster._core.execution.api import execute_run

            run = instance.create_run_for_job(
                job_def=job,
                run_config=quiet,
                tags={"dagster/partition": DAY},
                asset_selection=frozenset({dg.AssetKey(STAGE)}),
            )
            recon = dg.reconstructable(daily_pipeline_job).get_subset(
                asset_selection={dg.AssetKey(STAGE)}
            )
            success = execute_run(recon, run, instance).success
        seconds = time.perf_counter() - started
    return {"mode": mode, "seconds": seconds, "success": success}


def _spawn(mode: str, root: Path, shards: int) -> dict:
    folder = root / mode
    env = {
        **os.environ,
        "FEEDBACK_DATA_DIR": str(folder),
        "DAGSTER_HOME": str(folder / "home"),
        "FEEDBACK_EMBED_SHARDS": "1" if mode == "one" else str(shards),
        "FEEDBACK_EXECUTOR": "in_process" if mode == "one" else "multiprocess",
    }
    (folder / "home").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(
        Path(__file__).resolve().parents[1] / "dagster.yaml", folder / "home" / "dagster.yaml"
    )
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--root", str(root)],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def _vectors(path: Path):
    import duckdb
    import numpy as np

    with duckdb.connect(str(path), read_only=True) as conn:
        rows = conn.execute(
            f"SELECT feedback_id, text_hash, vector FROM {STAGE} WHERE ds = ? ORDER BY feedback_id",
            [DAY],
        ).fetchall()
    return [r[:2] for r in rows], np.array([r[2] for r in rows], dtype=np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--root", type=Path, default=None)
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    root = args.root or Path(f"/tmp/bench-shards-{args.events}")
    if args.child:
        print(json.dumps(_child(args.child, root)))
        return 0

    os.environ.setdefault("FEEDBACK_PSEUDONYM_KEY", "bench-shards-key")
    os.environ.setdefault("FEEDBACK_START_DATE", "2026-01-01")
    os.environ["FEEDBACK_LANDING_DIR"] = str(root / "landing")
    if not (root / "landing").exists():
        subprocess.run(
            [sys.executable, "-m", "feedback_pipelines.cli.main", "generate", "--days", "1",
             "--end", DAY, "--events-per-day", str(args.events), "--out", str(root / "landing")],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    ingested = root / "ingested" / "warehouse.duckdb"
    if not ingested.exists():
        import dagster as dg

        os.environ["FEEDBACK_DATA_DIR"] = str(ingested.parent)
        from feedback_pipelines.definitions import daily_pipeline_job

        job = daily_pipeline_job().get_subset(
            asset_selection={
                dg.AssetKey(k) for k in ("feedback_events", "ingest_files", "quarantine", "traces")
            }
        )
        assert job.execute_in_process(partition_key=DAY).success
    results = []
    for mode in ("one", "sharded"):
        folder = root / mode
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        shutil.copyfile(ingested, folder / "warehouse.duckdb")
        load = os.getloadavg()[0]
        result = _spawn(mode, root, args.shards)
        result["load"] = load
        results.append(result)
        print(
            f"{mode:8s} {result['seconds']:7.1f}s  ok={result['success']}  load {load:.2f}",
            flush=True,
        )
    (keys_a, a), (keys_b, b) = (
        _vectors(root / "one" / "warehouse.duckdb"),
        _vectors(root / "sharded" / "warehouse.duckdb"),
    )
    assert keys_a == keys_b, "the two runs embedded different rows"
    diff = float(abs(a - b).max()) if len(a) else 0.0
    one, sharded = results[0]["seconds"], results[1]["seconds"]
    print(f"rows {len(a):,}; max |difference| of vectors {diff}")
    print(f"{args.shards} shards / one process: {sharded / one:.2f}x wall time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
