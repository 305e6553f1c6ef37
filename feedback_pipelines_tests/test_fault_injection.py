"""Kill the run at each step, run again: the tables and the Qdrant points end as a clean run's.

One landing zone, two data directories. The clean one runs once. The other is killed with
SIGKILL as each step starts (ingest, embeddings, Qdrant upsert, clustering, regressions,
routing, report), each time by the next run over what the previous kill left; a last run
finishes. The first is killed while a step holds the `stores` pool's slot: the wedge a dead
process leaves (its run STARTED for ever, the slot claimed), which the next run must find,
mark failed and free. Every run must start and end on its own (bounded waits, no wedge), and
the end state must equal the clean run's: every warehouse table row for row, the vector
store's point ids, and the report, export and review files.
"""

from __future__ import annotations

import hashlib
import signal
import subprocess
from pathlib import Path

import dagster as dg
import pytest

from feedback_pipelines_tests.fixtures.cli import (
    DAY,
    assert_same_end_state,
    cli,
    environment,
    generate,
    instance_of,
    run,
    stop_while_holding,
    wait_for_step,
)

pytestmark = pytest.mark.slow

# The steps of the daily job, in the order they run.
STEPS = (
    "landing_ingest",
    "feedback_embeddings.embed_shard[shard_0]",
    "topic_clusters",
    "qdrant_feedback",
    "version_regressions",
    "routing",
    "review_report",
)


def files(env: dict) -> dict[str, str]:
    """Digest of every output file, without the lines that name a run or the clock."""
    root = Path(env["FEEDBACK_DATA_DIR"])
    with instance_of(env) as instance:
        runs = [r.dagster_run.run_id.encode() for r in instance.get_run_records()]
    volatile = (b"enerated", *runs)
    out = {}
    for folder in ("exports", "review", "reports"):
        for path in sorted((root / folder).rglob("*")):
            if path.is_file():
                lines = path.read_bytes().splitlines()
                kept = [x for x in lines if not any(k in x for k in volatile)]
                out[str(path.relative_to(root))] = hashlib.sha256(b"\n".join(kept)).hexdigest()
    return out


def test_a_run_killed_at_any_step_resumes_to_the_clean_result(tmp_path):
    landing = generate(tmp_path / "gen", days=1)
    clean = environment(tmp_path / "clean", landing)
    done = run(clean, "--start", DAY, "--end", DAY)
    assert done.returncode == 0, done.stdout + done.stderr

    env = environment(tmp_path / "killed", landing)
    killed, outputs = [], []
    for step in STEPS:
        proc = subprocess.Popen(
            [*cli(), "run", "--start", DAY, "--end", DAY, "--wait-timeout", "120", "-v"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        outputs.append(seen := [])
        try:
            if killed:
                killed.append(wait_for_step(step, proc, seen=seen))
            else:  # frozen while holding the pool's slot, then killed: the wedge
                killed.append(stop_while_holding(env, "stores", proc))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        if len(killed) == 1:
            with instance_of(env) as instance:
                assert instance.get_run_by_id(killed[0]).status == dg.DagsterRunStatus.STARTED
                holders = instance.event_log_storage.get_concurrency_info("stores").claimed_slots
                assert [s.run_id for s in holders] == killed
    # the next run found the dead one, said so and freed its slot before it ran a step
    said = "".join(outputs[1])
    assert f"run {killed[0][:8]}" in said and "marked it failed" in said, said[-3000:]
    last = run(env, "--start", DAY, "--end", DAY, "--wait-timeout", "120", timeout=900)
    assert last.returncode == 0, last.stdout + last.stderr

    with instance_of(env) as instance:  # every killed run was found dead and closed
        statuses = [instance.get_run_by_id(run_id).status for run_id in killed]
    assert all(s in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.SUCCESS) for s in statuses)
    # A short last step can end before the signal lands; the kill must land in most.
    assert statuses[0] == dg.DagsterRunStatus.FAILURE
    assert statuses.count(dg.DagsterRunStatus.FAILURE) >= len(STEPS) - 2, statuses
    with instance_of(env) as instance:
        assert instance.event_log_storage.get_concurrency_info("stores").claimed_slots == []
    assert_same_end_state(env, clean)
    assert files(env) == files(clean)
