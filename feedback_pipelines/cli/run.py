"""`feedback-pipelines run`: materialize every asset of a range of days, as one Dagster backfill.

Each day is one run of the `daily_pipeline` job in this process (the embedded stores take one
writer process, and one process pays the model and JIT start-up once), oldest day first, all
tagged with one backfill id and recorded as that backfill in DAGSTER_HOME: the UI shows one
unit, and the newest day is the latest materialization. Each run also carries the fingerprint
of the day's landing files, so `landing_sensor` does not run those files again when
`dagster dev` starts.

Nothing can wedge it: runs whose process died are marked failed and their pool slots freed
first; every wait (for another run, for a pool) says what it waits for and gives up after
`--wait-timeout`; Ctrl-C (or SIGTERM) stops the current run cleanly, a second one at once.
"""

from __future__ import annotations

import argparse
import os
import select
import shutil
import signal
import threading
import time
import uuid
import warnings
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from feedback_pipelines import config
from feedback_pipelines.cli.common import CLIError, HelpFormatter, day_arg
from feedback_pipelines.cli.progress import Display, duration, make_display

EXAMPLES = """\
examples:
  feedback-pipelines run --start 2026-11-14 --end 2026-11-20
  feedback-pipelines run --start 2026-11-20 --end 2026-11-20 -v     # with Dagster's own log
  FEEDBACK_DATA_DIR=/srv/feedback feedback-pipelines run --start 2026-11-01 --end 2026-11-30

exit status: 0 every day ran; 1 a day failed, had no input (unless --allow-empty) or a wait
timed out; 2 bad arguments or nothing to run; 130 stopped by Ctrl-C. Runs are recorded in
DAGSTER_HOME (default ./.dagster_home): browse them with `make dev` or `dagster dev`.
"""

DEFAULT_WAIT_TIMEOUT = 900.0
_BLOCKED = "Step blocked by limit for pool "


def add_run_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add `run --start D --end D [--allow-empty] [--wait-timeout S] [-v]`."""
    parser = sub.add_parser(
        "run",
        help="materialize every asset for a range of days (one Dagster backfill)",
        description=(
            "Runs the daily_pipeline job for each day from --start to --end, oldest first, "
            "through the project's Dagster Definitions: ingest, embeddings, Qdrant, topics, "
            "regressions, exports, review queue and the report. The runs are recorded in "
            "DAGSTER_HOME as one backfill, and landing_sensor will not run the same files "
            "again. Input is read from $FEEDBACK_LANDING_DIR (default "
            "$FEEDBACK_DATA_DIR/landing)."
        ),
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--start", type=day_arg, required=True, help="first day, YYYY-MM-DD")
    parser.add_argument("--end", type=day_arg, required=True, help="last day, YYYY-MM-DD")
    parser.add_argument(
        "--allow-empty",
        action="store_true",
        help="a day without input files is not an error (it is written empty, with a warning)",
    )
    parser.add_argument(
        "--wait-timeout",
        type=float,
        default=DEFAULT_WAIT_TIMEOUT,
        metavar="SECONDS",
        help="give up waiting for another run or a concurrency pool after this long "
        f"(default {DEFAULT_WAIT_TIMEOUT:.0f})",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS,
        help="show Dagster's own log (DEBUG) instead of the progress display",
    )
    parser.set_defaults(func=run_command)
    return parser


def ensure_dagster_home() -> Path:
    """DAGSTER_HOME (default ./.dagster_home), created, with the project's dagster.yaml in it."""
    home = Path(os.environ.get("DAGSTER_HOME") or ".dagster_home").absolute()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    target = home / "dagster.yaml"
    if not target.exists():
        package = Path(__file__).resolve().parents[1]
        for source in (package / "dagster.yaml", package.parent / "dagster.yaml"):
            if source.exists():
                shutil.copyfile(source, target)
                break
    return home


def days_between(start: date, end: date) -> list[str]:
    """Every day from start to end, as partition keys."""
    return [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]


def _span(days: list[str]) -> str:
    return days[0] if len(days) == 1 else f"{days[0]}..{days[-1]}"


def check_range(start: date, end: date) -> list[str]:
    """The days to run, or a clear error for a range that cannot run."""
    if start > end:
        raise CLIError(f"--start {start} is after --end {end}: nothing to run (swapped?)", 2)
    try:
        first = date.fromisoformat(config.start_date())
    except ValueError:
        value = os.environ.get("FEEDBACK_START_DATE")
        raise CLIError(f"FEEDBACK_START_DATE={value!r} is not a day: use YYYY-MM-DD", 2) from None
    if start < first:
        raise CLIError(
            f"{start} is before the first daily partition, {first} (FEEDBACK_START_DATE): "
            f"set FEEDBACK_START_DATE={start} to run it",
            2,
        )
    last = datetime.now(UTC).date() - timedelta(days=1)
    if end > last:
        raise CLIError(
            f"{end} is not a partition yet: the last one is {last} (a day becomes a partition "
            "once it is over, in UTC)",
            2,
        )
    return days_between(start, end)


def check_input(days: list[str], allow_empty: bool) -> tuple[dict[str, str], list[str]]:
    """The landing fingerprints of every day with files, and the days without any.

    A missing or empty landing zone is an error; so is a range with no input at all, unless
    `allow_empty`.
    """
    from feedback_pipelines.ingest.landing import landed_partitions

    landing = config.landing_dir()
    if not landing.is_dir():
        raise CLIError(
            f"no landing zone at {landing}: nothing to run. Put input there, write a synthetic "
            f"week with `feedback-pipelines generate --days 7 --end {days[-1]}`, or point "
            "FEEDBACK_DATA_DIR (or FEEDBACK_LANDING_DIR) at your data",
            2,
        )
    landed = landed_partitions(landing)
    if not landed:
        raise CLIError(
            f"the landing zone {landing} holds no input file (expected "
            "traces/dt=YYYY-MM-DD/*.jsonl and feedback/dt=YYYY-MM-DD/*.jsonl)",
            2,
        )
    empty = [d for d in days if d not in landed]
    if empty and len(empty) == len(days) and not allow_empty:
        have = sorted(landed)
        raise CLIError(
            f"no input for {_span(days)} in {landing} (it holds {_span([have[0], have[-1]])}); "
            "pass --allow-empty to run those days anyway",
            2,
        )
    return landed, empty


# --- signals -------------------------------------------------------------------------------------
class StopRequested(KeyboardInterrupt):
    """Raised in the main thread to end a run that waits (for a pool) and cannot hear Ctrl-C."""


class SignalBridge:
    """Lets the watcher thread see SIGINT/SIGTERM while Dagster's handlers swallow them.

    Dagster replaces the SIGINT handler during a run with one that only sets a flag, checked
    when a step starts: a step waiting for a pool never sees it. The wakeup fd receives every
    signal whatever the handler, so the watcher can act; SIGUSR1 raises `StopRequested` in the
    main thread to end such a wait.
    """

    def __init__(self):
        self.active = threading.current_thread() is threading.main_thread()
        self.read_fd, self.write_fd = os.pipe()
        if not self.active:  # signals reach the main thread only: nothing to bridge
            return
        os.set_blocking(self.read_fd, False)
        os.set_blocking(self.write_fd, False)
        self.previous_fd = signal.set_wakeup_fd(self.write_fd, warn_on_full_buffer=False)
        self.previous_usr1 = signal.signal(signal.SIGUSR1, self._stop)
        self.previous_term = signal.signal(signal.SIGTERM, signal.default_int_handler)

    @staticmethod
    def _stop(signo, frame):
        raise StopRequested()

    def wait(self, timeout: float) -> list[int]:
        """Signals received within `timeout` seconds (empty when none)."""
        ready, _, _ = select.select([self.read_fd], [], [], timeout)
        if not ready:
            return []
        try:
            return list(os.read(self.read_fd, 512))
        except BlockingIOError:
            return []

    def close(self) -> None:
        """Restore the handlers."""
        if self.active:
            signal.set_wakeup_fd(self.previous_fd)
            signal.signal(signal.SIGUSR1, self.previous_usr1)
            signal.signal(signal.SIGTERM, self.previous_term)
        os.close(self.read_fd)
        os.close(self.write_fd)


# --- one day -------------------------------------------------------------------------------------
class RunWatcher(threading.Thread):
    """Follows one run's event log: progress, warnings, pool waits, Ctrl-C."""

    def __init__(
        self, instance, run_id: str, ds: str, display: Display, bridge, timeout: float, warned
    ):
        super().__init__(daemon=True, name=f"watch-{run_id[:8]}")
        self.instance, self.run_id, self.ds = instance, run_id, ds
        self.display, self.bridge, self.timeout = display, bridge, timeout
        self.done = threading.Event()
        self.interrupted = False
        self.error: str | None = None
        self.blocked: dict[str, tuple[str, float]] = {}
        from feedback_pipelines.defs.ordering import WAITS_FOR

        self.ordered: set[str] = set()  # steps that said they wait for an earlier day
        self.waits_for = WAITS_FOR
        self.told: set[str] = set()
        self.warned: set[str] = warned  # shared by the days: a warning is shown once
        self.last_reap = 0.0

    def stop(self) -> None:
        """End the watch (the run returned) and drain what is left."""
        self.done.set()
        self.join(timeout=10)

    def run(self) -> None:  # noqa: D102
        cursor = None
        while True:
            finished = self.done.is_set()
            for signo in self.bridge.wait(0 if finished else 0.5):
                if signo in (signal.SIGINT, signal.SIGTERM):
                    self._interrupt()
            try:
                page = self.instance.get_records_for_run(self.run_id, cursor=cursor, limit=1000)
            except Exception:  # the run is not recorded yet
                page = None
            if page is not None:
                for record in page.records:
                    self._handle(record.event_log_entry)
                cursor = page.cursor
                if page.has_more:
                    continue
            if finished:
                return
            self._check_blocked()

    def _handle(self, entry) -> None:
        event = entry.dagster_event
        step = entry.step_key or ""
        if event is None:  # a step's own log line
            message = entry.user_message or ""
            if entry.level >= 30:
                key = message.replace(self.ds, "<day>")
                if key not in self.warned:
                    self.warned.add(key)
                    self.display.warn(f"{self.ds} {step}: {message}" if step else message)
            elif step:
                if message.startswith(self.waits_for):
                    self.ordered.add(step)
                self.display.step_message(step, message)
            return
        kind = event.event_type_value
        if self.interrupted and kind in ("STEP_START", "STEP_UP_FOR_RETRY"):
            # Dagster retries an interrupted step that has a retry policy: stop it again, now
            # or while it waits for its retry, until the run gives up.
            self._stop_main()
        if kind == "STEP_START":
            self.blocked.pop(step, None)
            self.display.step_started(step)
        elif kind == "STEP_SUCCESS":
            seconds = event.event_specific_data.duration_ms / 1000
            self.display.step_finished(step, seconds, True)
        elif kind == "STEP_FAILURE":
            self.display.step_finished(step, 0.0, False)
        elif kind == "STEP_UP_FOR_RETRY" and step in self.ordered:
            self.ordered.discard(step)  # waits for an earlier day (defs.ordering), not a failure
        elif kind == "STEP_UP_FOR_RETRY" and not self.interrupted:
            self.display.warn(f"{self.ds} {step}: failed, retrying ({event.message})")
        elif kind == "ENGINE_EVENT" and (event.message or "").startswith(_BLOCKED):
            pool = event.message[len(_BLOCKED) :].strip()
            self.blocked.setdefault(step, (pool, time.monotonic()))

    def _check_blocked(self) -> None:
        from feedback_pipelines.cli.runs import describe_holders, reap_dead_runs

        now = time.monotonic()
        for step, (pool, since) in list(self.blocked.items()):
            if now - self.last_reap > 5:
                self.last_reap = now
                reap_dead_runs(self.instance, self.display.line)
            holders = describe_holders(self.instance, pool, exclude=self.run_id)
            if step not in self.told:
                self.told.add(step)
                self.display.line(
                    f"      {step} waits for pool {pool}, held by {holders}; giving up after "
                    f"{duration(self.timeout)} (Ctrl-C to stop)"
                )
            if now - since > self.timeout and self.error is None:
                self.error = (
                    f"gave up after {duration(self.timeout)} waiting for pool {pool}, held by "
                    f"{holders}. If that run is not running any more, stop it in the Dagster UI "
                    "(Runs > Terminate) and run again; --wait-timeout sets the bound"
                )
                self._abort_wait()

    def _abort_wait(self) -> None:
        if self.blocked:
            self._stop_main()

    @staticmethod
    def _stop_main() -> None:
        """Raise `StopRequested` in the main thread (see `SignalBridge`)."""
        os.kill(os.getpid(), signal.SIGUSR1)

    def _interrupt(self) -> None:
        if self.interrupted:  # the second Ctrl-C: stop now, leave the records consistent
            self.display.line("stopping now")
            run = self.instance.get_run_by_id(self.run_id)
            if run is not None and not run.is_finished:
                self.instance.report_run_canceled(run, "Stopped by a second Ctrl-C.")
                self.instance.event_log_storage.free_concurrency_slots_for_run(self.run_id)
            os._exit(130)
        self.interrupted = True
        self.display.line(
            f"stopping {self.ds} (Ctrl-C again to stop at once; the day can be run again)"
        )
        run = self.instance.get_run_by_id(self.run_id)
        if run is not None and not run.is_finished:
            self.instance.report_run_canceling(run, "Stop requested (Ctrl-C) on the command line.")
        self._abort_wait()


def _metadata(result) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for event in result.get_asset_materialization_events():
        mat = event.step_materialization_data.materialization
        out[mat.asset_key.to_user_string()] = {k: v.value for k, v in mat.metadata.items()}
    return out


def day_note(result) -> str:
    """What the day produced, in a few numbers."""
    meta = _metadata(result)

    def get(asset: str, key: str) -> int | None:
        value = meta.get(asset, {}).get(key)
        return int(value) if isinstance(value, int | float) else None

    parts = []
    for asset, key, one, many in (
        ("feedback_events", "dagster/row_count", "feedback event", "feedback events"),
        ("feedback_clusters", "subtopics", "subtopic", "subtopics"),
        ("feedback_topics", "themes", "theme", "themes"),
        ("version_regressions", "regressions", "regression", "regressions"),
        ("tuning_candidates", "dagster/row_count", "tuning example", "tuning examples"),
        ("review_queue", "dagster/row_count", "for review", "for review"),
    ):
        value = get(asset, key)
        if value is not None:
            parts.append(f"{value:,} {one if value == 1 else many}")
    return ", ".join(parts)


def _first_line(text: str) -> str:
    text = (text or "").strip()
    return text.splitlines()[0] if text else ""


# --- the command ---------------------------------------------------------------------------------
def logging_config(verbose: int) -> dict:
    """Dagster's console log: everything with -v, nothing otherwise (the display reports)."""
    level = "DEBUG" if verbose else "CRITICAL"
    return {"loggers": {"console": {"config": {"log_level": level}}}}


def quiet_libraries() -> None:
    """No library warnings on the console without -v (the run's own warnings are shown)."""
    import logging

    warnings.filterwarnings("ignore")
    logging.getLogger().addHandler(logging.NullHandler())
    logging.getLogger().setLevel(logging.ERROR)


def run_command(args: argparse.Namespace) -> int:
    """Handler of `run`."""
    verbose = getattr(args, "verbose", 0)
    days = check_range(args.start, args.end)
    display = make_display(bool(verbose))
    display.line(f"feedback-pipelines run: {len(days)} day(s), {_span(days)}")
    landed, empty = check_input(days, args.allow_empty)
    if empty:
        display.warn(
            f"no input for {', '.join(empty)}: those days will be written empty"
            + ("" if args.allow_empty else " and the command will exit with status 1")
        )
    if not verbose:
        quiet_libraries()
    display.line("loading the pipeline (Dagster definitions)…")
    started = time.perf_counter()
    import dagster as dg

    from feedback_pipelines.cli.runs import (
        BACKFILL_TAG,
        RANGE_TAG,
        WaitTimeout,
        new_backfill_id,
        process_tags,
        reap_dead_runs,
        record_backfill,
        wait_for_other_runs,
    )
    from feedback_pipelines.definitions import daily_pipeline_job

    home = ensure_dagster_home()
    job = daily_pipeline_job()
    backfill_id = new_backfill_id()
    display.line(
        f"loaded in {duration(time.perf_counter() - started)}; recording the runs in "
        f"DAGSTER_HOME={home} as backfill {backfill_id}"
    )
    with dg.DagsterInstance.get() as instance:
        reap_dead_runs(instance, display.line)
        try:
            wait_for_other_runs(instance, args.wait_timeout, display.line)
        except WaitTimeout as exc:
            raise CLIError(str(exc)) from exc
        base_tags = {
            **process_tags(),
            BACKFILL_TAG: backfill_id,
            RANGE_TAG: f"{days[0]}..{days[-1]}",
        }
        outcomes: list[tuple[str, str]] = []
        try:
            _run_days(instance, job, days, landed, base_tags, display, args, verbose, outcomes)
        except KeyboardInterrupt:
            outcomes.append(("", "stopped"))
            raise
        except BaseException:
            outcomes.append(("", "gave up"))
            raise
        finally:
            record_backfill(
                instance,
                backfill_id,
                job.name,
                days,
                backfill_status(outcomes),
                time.time() - (time.perf_counter() - started),
            )
    return _conclude(days, outcomes, empty, args.allow_empty, display, started)


def backfill_status(outcomes: list[tuple[str, str]]) -> str:
    """The backfill's final status from the days' outcomes."""
    statuses = {status for _, status in outcomes}
    if "stopped" in statuses:
        return "CANCELED"
    if "gave up" in statuses:
        return "FAILED"
    return "COMPLETED_FAILED" if "FAILED" in statuses else "COMPLETED_SUCCESS"


def _run_days(instance, job, days, landed, base_tags, display, args, verbose, outcomes):
    from feedback_pipelines.defs.automation import LANDING_FINGERPRINT_TAG

    warned: set[str] = set()
    bridge = SignalBridge()
    # Every op once, and each embedding shard beyond the first as a step of its own.
    steps = sum(1 for _ in job.graph.iterate_op_defs()) + config.embed_shards() - 1
    display.start(len(days), steps)
    try:
        for index, ds in enumerate(days, 1):
            tags = dict(base_tags)
            if ds in landed:
                tags[LANDING_FINGERPRINT_TAG] = landed[ds]
            run_id = str(uuid.uuid4())
            display.day_started(index, ds)
            watcher = RunWatcher(instance, run_id, ds, display, bridge, args.wait_timeout, warned)
            watcher.start()
            day_started = time.perf_counter()
            try:
                result = execute_day(instance, job, ds, run_id, tags, logging_config(verbose))
            except StopRequested:  # raised outside Dagster's own handling: the run is over
                result = None
            finally:
                watcher.stop()
            seconds = time.perf_counter() - day_started
            success = result is not None and result.success
            if watcher.error and not success:
                status = "gave up"
            elif watcher.interrupted and not success:
                status = "stopped"
            else:
                status = "ok" if success else "FAILED"
            note = day_note(result) if result is not None and status == "ok" else ""
            display.day_finished(index, ds, status, seconds, note)
            if result is not None:
                _report_checks_and_failures(result, ds, display, failures=status == "FAILED")
            outcomes.append((ds, status))
            if watcher.error and status == "gave up":
                display.stop()
                raise CLIError(watcher.error)
            if watcher.interrupted:
                break
    finally:
        display.stop()
        bridge.close()


def execute_day(instance, job, ds: str, run_id: str, tags: dict, run_config: dict):
    """One day's run: in this process, or through the job's executor (FEEDBACK_EXECUTOR).

    With the in-process executor the steps run here and the model loads once for all days;
    any other executor runs each step in a process (or pod) of its own, so embedding shards
    run side by side.
    """
    import dagster as dg

    if job.executor_def is dg.in_process_executor:
        return job.execute_in_process(
            partition_key=ds,
            instance=instance,
            raise_on_error=False,
            run_id=run_id,
            tags=tags,
            run_config=run_config,
        )
    from dagster._core.execution.api import execute_run

    run = instance.create_run_for_job(
        job_def=job,
        run_id=run_id,
        run_config=run_config,
        tags={**tags, "dagster/partition": ds},
    )
    from feedback_pipelines.definitions import daily_pipeline_job

    return execute_run(dg.reconstructable(daily_pipeline_job), run, instance)


def _report_checks_and_failures(result, ds: str, display: Display, failures: bool) -> None:
    for evaluation in result.get_asset_check_evaluations():
        if evaluation.passed:
            continue
        severity = getattr(evaluation.severity, "value", str(evaluation.severity))
        label = "WARN " if severity == "WARN" else "FAIL "
        text = _first_line(evaluation.description or "")
        text = text if len(text) <= 200 else text[:199] + "…"
        display.line(f"{label} {ds} {evaluation.check_name}: {text}")
    for event in result.get_step_failure_events() if failures else ():
        error = event.step_failure_data.error if event.step_failure_data else None
        message = _first_line(error.message if error else event.message or "")
        display.line(f"FAIL  {ds} step {event.step_key}: {message}")


def _conclude(days, outcomes, empty, allow_empty, display, started) -> int:
    elapsed = duration(time.perf_counter() - started)
    done = [ds for ds, status in outcomes if status == "ok"]
    failed = [ds for ds, status in outcomes if status == "FAILED"]
    stopped = [ds for ds, status in outcomes if status == "stopped"]
    report = config.data_dir() / "reports" / f"dt={days[-1]}" / "report.html"
    if stopped or len(outcomes) < len(days):
        display.line(
            f"stopped after {elapsed}: {len(done)} of {len(days)} days done. Run the same "
            "command again to finish (each day is rewritten whole)"
        )
        return 130
    if failed:
        display.line(
            f"{len(failed)} of {len(days)} days FAILED ({', '.join(failed)}) in {elapsed}: see "
            "the lines above, and the runs in the Dagster UI (`make dev`)"
        )
        return 1
    display.line(f"done: {len(done)} of {len(days)} days in {elapsed}")
    if report.exists():
        display.line(f"report: {report}")
    if empty and not allow_empty:
        display.line(
            f"no input for {', '.join(empty)}: written empty. Exit status 1; pass --allow-empty "
            "if that is expected"
        )
        return 1
    return 0
