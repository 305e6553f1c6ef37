"""A generated day at volume through the whole daily job: each step's time and peak memory.

    PYTHONPATH=. .venv/bin/python bench/day.py [--events 100000] [--days 1] [--root DIR]
        [--reuse] [--only routing] [--seed 7]

Generates `--days` days of `--events` feedback events each ending on 2026-11-20
(`feedback-pipelines generate`), then runs the real `daily_pipeline` in process for each day,
oldest first, and prints for the last day every step's wall time, CPU time and peak RSS beside
the embedding step's. `--days 14` is the 14-day window at volume (the routing step then reads
14 x `--events` events; the earlier days are run but only the last is reported).

`--resume` keeps an existing `--root` and runs only the days that have no report yet (a
14-day window stopped part-way goes on where it stopped; `--through DAY` stops after DAY, e.g. to
time only the last day on other code). `--reuse` keeps an existing `--root`
(its landing zone and warehouse) and runs only the last day again (or `--day DAY`); with
`--only routing` (comma-separated asset keys) just those steps run, e.g. to time the routing
step of one code version against the warehouse another version built:

    PYTHONPATH=<other checkout> .venv/bin/python bench/day.py --root /tmp/day20k --reuse \
        --only tuning_candidates,review_queue

Peak RSS per step: the kernel's high-water mark (VmHWM) is reset before each step
(`/proc/self/clear_refs`, value 5) and read after it, so the figure is the step's own peak.
Load average is printed too: on a shared machine wall times are only comparable at equal load.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

END = date(2026, 11, 20)


def _status(field: str) -> int:
    """A /proc/self/status figure in kB (VmRSS, VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _system() -> float:
    """CPU seconds the kernel spent for this process (page faults, I/O): a share of "CPU s".

    Mostly first touches of new memory: ~0.5 s per GB on 4 KB pages, ~5 s on the 2 MB pages
    numpy asks for unless the project is imported (SCALE.md, "numpy's huge pages").
    """
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime


def _reset_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:  # not Linux, or not allowed: the peak is then the process's
        pass


def _generate(landing: Path, days: int, events: int, seed: int) -> None:
    cmd = [
        sys.executable, "-m", "feedback_pipelines.cli.main", "generate", "--days", str(days),
        "--end", END.isoformat(), "--events-per-day", str(events), "--out", str(landing),
        "--seed", str(seed),
    ]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    print(f"generated {days} day(s) x {events:,} events in {time.perf_counter() - started:.1f}s")


def _run(ds: str, selection: list[str] | None, report: bool) -> list[dict]:
    """Run the daily job (or a selection) for one day; per step: seconds, CPU, peak RSS."""
    import dagster as dg

    from feedback_pipelines.definitions import defs

    job = defs().resolve_job_def("daily_pipeline")
    if selection:
        job = job.get_subset(asset_selection={dg.AssetKey(k) for k in selection})
    rows: list[dict] = []
    state: dict = {}
    embedded: dict[str, float] = {}

    def hook(event) -> None:
        """Called on every event in the run's thread: time and reset at step boundaries."""
        dagster_event = event.dagster_event
        if dagster_event is None or not dagster_event.step_key:
            return
        kind = dagster_event.event_type_value
        if kind == "ASSET_MATERIALIZATION":
            metadata = dagster_event.step_materialization_data.materialization.metadata
            if "embedding_seconds" in metadata:  # a step that embeds texts of its own
                embedded[dagster_event.step_key] = float(metadata["embedding_seconds"].value)
        elif kind == "STEP_START":
            _reset_peak()
            state[dagster_event.step_key] = (time.perf_counter(), time.process_time(), _system())
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE") and dagster_event.step_key in state:
            wall0, cpu0, sys0 = state.pop(dagster_event.step_key)
            rows.append(
                {
                    "step": dagster_event.step_key,
                    "seconds": time.perf_counter() - wall0,
                    "cpu": time.process_time() - cpu0,
                    "sys": _system() - sys0,
                    "peak_mb": _status("VmHWM") / 1024,
                    "ok": kind == "STEP_SUCCESS",
                    "embed_s": embedded.get(dagster_event.step_key, 0.0),
                }
            )

    instance = dg.DagsterInstance.ephemeral()
    started = time.perf_counter()
    with _listening(instance, hook):
        result = job.execute_in_process(
            partition_key=ds, instance=instance, raise_on_error=False, run_config=_QUIET
        )
    total = time.perf_counter() - started
    if report:
        rows.append(
            {"step": "(whole run)", "seconds": total, "cpu": float("nan"), "sys": float("nan"),
             "peak_mb": _status("VmHWM") / 1024, "ok": result.success, "embed_s": 0.0}
        )  # fmt: skip
    if not result.success:
        failed = [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        print(f"{ds}: run FAILED at {failed}", file=sys.stderr)
    return rows


# Dagster's console log at INFO: the steps' own progress lines, without the DEBUG events.
_QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


class _listening:
    """Subscribe `hook` to every event the instance stores while the block runs."""

    def __init__(self, instance, hook) -> None:
        self.instance, self.hook = instance, hook

    def __enter__(self):
        storage = self.instance.event_log_storage
        self._store = storage.store_event
        hook, store = self.hook, self._store

        def store_event(event):
            hook(event)
            return store(event)

        storage.store_event = store_event
        return self

    def __exit__(self, *exc) -> None:
        self.instance.event_log_storage.store_event = self._store


EMBEDDING = "feedback_embeddings."  # the stage's steps: plan, shards, commit


def _table(rows: list[dict], events: int) -> str:
    """Each step beside the embedding stage, and every other step's time beside it.

    A step that embeds texts itself says how long in its metadata (`embedding_seconds`:
    routing's answers and bare requests, the topic labels' keyphrases, new complaint texts); the
    last two lines count that time as embedding.
    """
    stage = [r for r in rows if r["step"].startswith(EMBEDDING)]
    embed = sum(r["seconds"] for r in stage) or None
    embed_cpu = sum(r["cpu"] for r in stage)
    lines = ["| step | seconds | CPU s | of which system | peak RSS MB | x embedding |"]
    lines.append("|---|---:|---:|---:|---:|---:|")
    others = elsewhere = others_cpu = 0.0
    for r in rows:
        if not r["step"].startswith(EMBEDDING) and r["step"] != "(whole run)":
            others += r["seconds"]
            others_cpu += r["cpu"]
            elsewhere += r["embed_s"]
        ratio = f"{r['seconds'] / embed:.2f}" if embed else ""
        flag = "" if r["ok"] else " FAILED"
        lines.append(
            f"| {r['step']}{flag} | {r['seconds']:.1f} | {r['cpu']:.1f} | {r['sys']:.1f} "
            f"| {r['peak_mb']:.0f} "
            f"| {ratio} |"
        )
    if embed:
        lines.append(
            f"| embedding stage (plan + shards + commit) | {embed:.1f} | {embed_cpu:.1f} "
            "| | | 1.00 |"
        )
        lines.append(
            f"| every non-embedding step | {others:.1f} | {others_cpu:.1f} | | | "
            f"{others / embed:.2f} |"
        )
        if elsewhere:
            # CPU of the embedding inside other steps: its seconds at the stage's cores per
            # second (an estimate; the steps time it, not its CPU)
            inner = elsewhere * embed_cpu / embed
            work, rest = embed + elsewhere, others - elsewhere
            lines.append(
                f"| all embedding (the stage + {elsewhere:.1f}s inside other steps) | {work:.1f} "
                f"| ~{embed_cpu + inner:.1f} | | | 1.00 |"
            )
            lines.append(
                f"| all other work | {rest:.1f} | ~{others_cpu - inner:.1f} | | "
                f"| {rest / work:.2f} |"
            )
            lines.append(
                "| all other work, by CPU s | | | | "
                f"| ~{(others_cpu - inner) / (embed_cpu + inner):.2f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="feedback events per day")
    parser.add_argument("--days", type=int, default=1, help="days generated and run (window)")
    parser.add_argument("--root", type=Path, default=None, help="working folder (default: tmp)")
    parser.add_argument("--reuse", action="store_true", help="keep --root; rerun the last day")
    parser.add_argument(
        "--resume", action="store_true", help="keep --root; run only the days without a report"
    )
    parser.add_argument("--through", default="", help="with --resume: stop after this day")
    parser.add_argument("--day", default="", help="with --reuse: the day to rerun (not the last)")
    parser.add_argument("--only", default="", help="comma-separated asset keys to run")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    root = args.root or Path(f"/tmp/bench-day-{args.events}x{args.days}")
    data, home = root / "data", root / "dagster_home"
    for p in (data, home):
        p.mkdir(parents=True, exist_ok=True)
    os.environ["FEEDBACK_DATA_DIR"] = str(data)
    os.environ["DAGSTER_HOME"] = str(home)
    os.environ.setdefault("FEEDBACK_PSEUDONYM_KEY", "bench-day-key")
    os.environ.pop("FEEDBACK_LANDING_DIR", None)
    os.environ.setdefault("FEEDBACK_START_DATE", "2026-01-01")
    days = [(END - timedelta(days=args.days - 1 - i)).isoformat() for i in range(args.days)]
    if args.resume:  # a long window stopped part-way: its finished days have their report
        days = [d for d in days if not (data / "reports" / f"dt={d}" / "report.html").exists()]
        days = [d for d in days if not args.through or d <= args.through]
    elif not args.reuse:
        _generate(data / "landing", args.days, args.events, args.seed)
    else:
        days = [args.day] if args.day else days[-1:]
    selection = [k.strip() for k in args.only.split(",") if k.strip()] or None
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    for ds in days:
        started = time.perf_counter()
        rows = _run(ds, selection, report=ds == days[-1])
        print(f"{ds}: {time.perf_counter() - started:.1f}s", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f} (1 min)")
    print(_table(rows, args.events))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
