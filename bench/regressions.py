"""Calibration and speed of the regression verdicts, on simulated windows.

    .venv/bin/python bench/regressions.py [--windows 200] [--seed 0]
    .venv/bin/python bench/regressions.py --daily [--releases 500] [--replace]  # regressions_daily

Prints, for the seeded windows of `feedback_pipelines.regressions.calibration`:
* A/A (production-shaped windows, nothing changed): share of windows with any false
  regression / any false improvement, and tests per window;
* power: share of windows where a 20% -> 30% rise in one of ten clusters (500 events per
  version) is flagged, with only negative/positive feedback in the window (11 tests) and with
  corrections, abandonment and latency as well (44 tests sharing the error budget);
* seconds per window of `compute_regressions`.
"""

from __future__ import annotations

import argparse
import math
import time
from functools import partial

from regressions_daily import add_daily_arguments, run_daily

from feedback_pipelines.regressions import calibration as cal


def _ci(share: float, n: int) -> str:
    half = 1.96 * math.sqrt(max(share * (1 - share), 1e-12) / n)
    return f"{share:.1%} (±{half:.1%})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    add_daily_arguments(parser)  # --daily: the window test vs the always-valid verdict
    args = parser.parse_args()
    if args.daily:
        run_daily(args)
        return
    n, s = args.windows, args.seed
    runs = [
        ("A/A, production-shaped", cal.realistic_aa_window, None, range(s, s + n)),
        (
            "power, negative feedback only",
            cal.power_window,
            cal.power_target,
            range(s + 1000, s + 1000 + n),
        ),
        (
            "power, all four metrics",
            partial(cal.power_window, full=True),
            cal.power_target,
            range(s + 1000, s + 1000 + n),
        ),
    ]
    for name, make, target, seeds in runs:
        start = time.perf_counter()
        r = cal.calibrate(make, seeds, target=target)
        seconds = (time.perf_counter() - start) / n
        line = (
            f"{name:32s} windows={r.windows} tests/window={r.tests_per_window:.0f} "
            f"any regression={_ci(r.any_regression, n)} "
            f"any improvement={_ci(r.any_improvement, n)}"
        )
        if target is not None:
            line += f" planted cluster flagged={_ci(r.target_flagged, n)}"
        print(f"{line} ({seconds:.2f} s/window incl. simulation)")


if __name__ == "__main__":
    main()
