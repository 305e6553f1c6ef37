"""Real votes arriving over days: what concatenated incremental exports hold, pair by pair.

llmfao's crowd votes (5,460 decisive ones, in `feedback_pipelines_tests/data/real/llmfao`) are
imported and ingested as one day, then each vote is moved to one of `--days` days by a hash of
its id (a crowd voting over a week, in no order), and the incremental exports are built day by
day as the `routing` asset builds them: files, then `tuning_candidates`, which the next day
reads. Printed: the preference lines of all days concatenated, the same pair of texts twice,
pairs exported both ways, and the reversals queued for review; once with the earlier exports
read (`read_exported_votes`: what the pipeline does) and once without (every day on its own,
as before they were read):

    PYTHONPATH=. .venv/bin/python bench/incremental_votes.py [--root /tmp/votes] [--days 7]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

LLMFAO = Path(__file__).resolve().parents[1] / "feedback_pipelines_tests/data/real/llmfao"
END = date(2026, 11, 20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=Path("/tmp/bench-incremental-votes"))
    parser.add_argument("--days", type=int, default=7)
    args = parser.parse_args()
    shutil.rmtree(args.root, ignore_errors=True)
    os.environ["FEEDBACK_DATA_DIR"] = str(args.root / "data")

    import dagster as dg
    import duckdb
    import pandas as pd

    from feedback_pipelines.defs.ingest import landing_ingest
    from feedback_pipelines.embedding import get_embedder
    from feedback_pipelines.resources.settings import PipelineConfig
    from feedback_pipelines.resources.warehouse import WarehouseResource
    from feedback_pipelines.routing.day import read_events, read_exported_votes, tuning_frame
    from feedback_pipelines.routing.tuning import TuningSettings, build_tuning_sets, write_export
    from feedback_pipelines.routing.tuning.similarity import TextVectorCache, exact_neighbours
    from feedback_pipelines.routing.tuning.votes import pair_texts
    from feedback_pipelines.schema import TUNING_DDL
    from feedback_pipelines.sources.public_sets import import_public_set
    from feedback_pipelines.tables import write_partition

    days = [(END - timedelta(days=args.days - 1 - i)).isoformat() for i in range(args.days)]
    import_public_set("llmfao", LLMFAO, args.root / "data" / "landing", END)
    resources = {"settings": PipelineConfig(), "warehouse": WarehouseResource()}
    assert dg.materialize([landing_ingest], partition_key=END.isoformat(), resources=resources)
    warehouse = args.root / "data" / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as conn:
        events = read_events(conn, END.isoformat(), END.isoformat(), columns="*")
    moved = [
        int(hashlib.sha256(str(v).encode()).hexdigest(), 16) % args.days for v in events["vote_id"]
    ]
    stamps = pd.to_datetime(events["timestamp"])
    events["ds"] = pd.to_datetime([days[k] for k in moved])
    events["timestamp"] = events["ds"] + (stamps - stamps.dt.normalize())
    events = events.sort_values(["timestamp", "feedback_id"], kind="mergesort")
    vectors = TextVectorCache(get_embedder().embed)
    settings = TuningSettings(export_mode="incremental")
    print("| earlier exports | lines | the same pair again | pairs both ways | reversals queued |")
    print("|---|---:|---:|---:|---:|")
    for read in (False, True):
        with duckdb.connect(str(warehouse)) as conn:
            conn.execute("DROP TABLE IF EXISTS tuning_candidates")
        lines, queued = [], 0
        for ds in days:
            with duckdb.connect(str(warehouse)) as conn:
                earlier = read_exported_votes(conn, ds) if read else {}
            sets = build_tuning_sets(
                events[events["ds"] <= pd.Timestamp(ds)], vectors=vectors,
                neighbours=exact_neighbours, ds=ds, window_start=days[0], settings=settings,
                exported_votes=earlier,
            )  # fmt: skip
            folder = args.root / ("read" if read else "alone") / f"dt={ds}"
            export = write_export(sets, folder)
            with duckdb.connect(str(warehouse)) as conn:
                write_partition(conn, "tuning_candidates", TUNING_DDL, tuning_frame(export), ds)
            for name in ("preference.jsonl", "preference_validation.jsonl"):
                lines += [json.loads(x) for x in (folder / name).read_text().splitlines()]
            queued += len(sets.reversed_votes)
        keys = Counter(
            pair_texts(
                o["input"]["messages"],
                o["preferred_output"][0]["content"],
                o["non_preferred_output"][0]["content"],
            )
            for o in lines
        )
        again = sum(n - 1 for n in keys.values() if n > 1)
        both = sum((p, r, c) in keys for p, c, r in keys if c < r)
        name = "read (the pipeline)" if read else "not read (each day alone)"
        print(f"| {name} | {len(lines):,} | {again} | {both} | {queued} |", flush=True)


if __name__ == "__main__":
    main()
