"""The console of `feedback-pipelines run`: one line per day, live progress, warnings, an ETA.

Two renderings of the same calls: on a terminal a live display (rich) with the day, the step,
the step's own counts when it reports them ("embedded 1,200/4,000 texts") and the time left;
elsewhere (CI logs, a pipe) plain lines, one per finished day and per long step.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from dataclasses import dataclass, field

#: Steps that took longer than this get their own line in plain output.
LONG_STEP_SECONDS = 10.0
_COUNTS = re.compile(r"(\d[\d,]*)\s*/\s*(\d[\d,]*)")


def duration(seconds: float) -> str:
    """`42s`, `3m05s`, `1h02m`."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def counts_in(text: str) -> tuple[int, int] | None:
    """`(done, total)` from a progress message such as "embedded 1,200/4,000 texts"."""
    match = _COUNTS.search(text)
    if not match:
        return None
    done, total = (int(g.replace(",", "")) for g in match.groups())
    return (done, total) if 0 <= done <= total and total > 0 else None


@dataclass
class Timeline:
    """Days done and their durations: the ETA of the rest."""

    days: int
    started: float = field(default_factory=time.monotonic)
    durations: list[float] = field(default_factory=list)
    day_started: float = 0.0

    def eta(self, now: float | None = None) -> float | None:
        """Seconds left, from the mean day so far (None before the first day ends)."""
        if not self.durations:
            return None
        now = time.monotonic() if now is None else now
        mean = sum(self.durations) / len(self.durations)
        left = self.days - len(self.durations)
        current = now - self.day_started if self.day_started else 0.0
        return max(0.0, mean * left - min(current, mean))


def console_stream():
    """A stream to the console that Dagster's compute-log capture cannot take over.

    During a run Dagster points file descriptors 1 and 2 at the run's compute-log files (and
    echoes them back with `tail -F`), so what the display wrote would land in every run's
    stdout log, late and interleaved. A duplicate of the descriptor, taken before any run,
    still reaches the terminal directly.
    """
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # replaced by a test's capture
        return sys.stdout
    sys.stdout.flush()
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    return open(os.dup(fd), "w", buffering=1, encoding=encoding, errors="replace")


class Display:
    """Plain lines (the base: CI logs, pipes, `-v`)."""

    def __init__(self, stream=None):
        self.stream = stream or console_stream()
        self.lock = threading.Lock()
        self.timeline = Timeline(0)

    def line(self, text: str) -> None:
        """Print one line above any live display."""
        with self.lock:
            print(text, file=self.stream, flush=True)

    def warn(self, text: str) -> None:
        """A warning a person should read."""
        self.line(f"WARN  {text}")

    # The run's life cycle ------------------------------------------------------------------
    def start(self, days: int, steps: int) -> None:
        """The command is about to run `days` days of `steps` steps each."""
        self.timeline = Timeline(days)
        self.steps = steps

    def day_started(self, index: int, ds: str) -> None:
        """Day `index` (1-based) starts."""
        self.timeline.day_started = time.monotonic()
        self.index, self.ds, self.step_index = index, ds, 0
        self.started_steps: set[str] = set()

    def step_started(self, step: str) -> None:
        """A step of the current day starts (a retry of a step does not count again)."""
        self.started_steps.add(step)
        self.step_index = len(self.started_steps)

    def step_message(self, step: str, text: str) -> None:
        """The step logged something (progress lines carry counts)."""

    def step_finished(self, step: str, seconds: float, ok: bool, note: str = "") -> None:
        """A step ended."""
        if not ok:
            return
        if seconds >= LONG_STEP_SECONDS:
            self.line(f"      {step} {duration(seconds)}" + (f"  ({note})" if note else ""))

    def day_finished(self, index: int, ds: str, status: str, seconds: float, note: str) -> None:
        """Day `index` ended with `status` (ok / FAILED / stopped)."""
        self.timeline.durations.append(seconds)
        self.timeline.day_started = 0.0
        eta = self.timeline.eta()
        rest = f"  ETA {duration(eta)}" if eta and index < self.timeline.days else ""
        self.line(
            f"[{index}/{self.timeline.days}] {ds}  {status} in {duration(seconds)}"
            + (f"  {note}" if note else "")
            + rest
        )

    def stop(self) -> None:
        """The command is done with the display."""


class LiveDisplay(Display):
    """A live display on a terminal (rich): days bar with ETA, current step, its counts."""

    def __init__(self):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        super().__init__()
        self.console = Console(file=self.stream, highlight=False)
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(bar_width=28),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[extra]}"),
            console=self.console,
            transient=True,
            refresh_per_second=4,
        )
        self.days_task = None
        self.step_task = None

    def line(self, text: str) -> None:  # noqa: D102
        with self.lock:
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def start(self, days: int, steps: int) -> None:  # noqa: D102
        super().start(days, steps)
        self.progress.start()
        self.days_task = self.progress.add_task("days", total=days, extra="")
        self.step_task = self.progress.add_task("", total=steps, extra="", visible=False)
        threading.Thread(target=self._tick, daemon=True).start()

    def _tick(self) -> None:
        while self.days_task is not None:
            eta = self.timeline.eta()
            extra = f"ETA {duration(eta)}" if eta is not None else "ETA after the first day"
            try:
                self.progress.update(self.days_task, extra=extra)
            except Exception:  # the display was stopped
                return
            time.sleep(1)

    def day_started(self, index: int, ds: str) -> None:  # noqa: D102
        super().day_started(index, ds)
        self.progress.reset(self.step_task, total=self.steps, visible=True)
        self.progress.update(self.step_task, description=f"{ds} starting", extra="")

    def step_started(self, step: str) -> None:  # noqa: D102
        super().step_started(step)
        self.current_step = step
        self.progress.update(
            self.step_task,
            description=f"{self.ds} step {self.step_index}/{self.steps} {step}",
            completed=self.step_index - 1,
            extra="",
        )

    def step_message(self, step: str, text: str) -> None:  # noqa: D102
        found = counts_in(text)
        if found:
            extra = f"{found[0]:,}/{found[1]:,}"
            words = text.split()
            if words:
                extra = f"{words[0]} {extra}"
        else:
            extra = text if len(text) <= 60 else text[:59] + "…"
        self.progress.update(self.step_task, extra=extra)

    def step_finished(self, step: str, seconds: float, ok: bool, note: str = "") -> None:  # noqa: D102
        self.progress.update(self.step_task, completed=self.step_index, extra="")

    def day_finished(self, index: int, ds: str, status: str, seconds: float, note: str) -> None:  # noqa: D102
        super().day_finished(index, ds, status, seconds, note)
        self.progress.update(self.days_task, completed=index)
        self.progress.update(self.step_task, visible=False)

    def stop(self) -> None:  # noqa: D102
        self.days_task = None
        self.progress.stop()


def make_display(verbose: bool) -> Display:
    """A live display on a terminal; plain lines in a pipe, in CI, or with -v."""
    if not verbose and sys.stdout.isatty() and os.environ.get("TERM") != "dumb":
        try:
            return LiveDisplay()
        except ImportError:  # rich comes with dagster; without it, plain lines
            pass
    return Display()
