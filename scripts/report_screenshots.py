"""Full-page screenshots of written reports, desktop (1280 px) and phone (390 px), in Chromium.

    .venv/bin/python scripts/report_screenshots.py OUT_DIR NAME=data/reports/dt=DAY/report.html ...

Uses the tests' headless Chromium driver (`make system-deps` installs Chromium). Prints each
page's height and any sideways overflow (0 = no horizontal scroll) or console problem.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from feedback_pipelines_tests.fixtures.chromium import Chromium  # noqa: E402

VIEWPORTS = {"desktop": (1280, 900, False), "phone": (390, 844, True)}


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    with Chromium(timeout=60) as browser:
        browser.open_page(1280, 900)
        for spec in argv[1:]:
            name, path = spec.split("=", 1)
            for label, (width, height, mobile) in VIEWPORTS.items():
                browser.set_viewport(width, height, mobile)
                browser.navigate(Path(path).resolve().as_uri())
                tall = browser.evaluate("document.documentElement.scrollHeight")
                overflow = browser.evaluate(
                    "document.documentElement.scrollWidth - document.documentElement.clientWidth"
                )
                shot = browser.screenshot(out / f"{name}-{label}.png")
                print(f"{shot}  height {tall}px  overflow {overflow}px  {browser.problems()[:3]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
