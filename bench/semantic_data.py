"""Real texts for the semantic benchmarks, shaped like what the pipeline embeds.

Built from the real public sets the tests carry (feedback_pipelines_tests/data/real): FeedbackQA
questions with each rater's explanation, Open Assistant prompts with their replies (the reply
plays the role of a correction), LAMP instructions with the writers' edits. Each text is an
`interaction_text(request, comment, correction)`, as the pipeline embeds it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from feedback_pipelines_tests.fixtures.real_sets import varied_texts  # noqa: E402

#: How many of the texts of the last `bench_texts` call are real (the rest are recombined).
REAL_TEXTS = 0


def shared_data_dir() -> Path:
    """The real sets: FEEDBACK_SHARED_DATA if set, else the copies in the tests' data folder."""
    explicit = os.environ.get("FEEDBACK_SHARED_DATA")
    path = Path(explicit) if explicit else ROOT / "feedback_pipelines_tests" / "data" / "real"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found; set FEEDBACK_SHARED_DATA")
    return path


def bench_texts(n: int = 5000) -> list[str]:
    """`n` distinct interaction texts from the real public sets, in a fixed order."""
    real = shared_data_dir()
    sets = varied_texts(real)
    texts = sets["feedbackqa"] + sets["oasst"] + sets["lamp"]
    unique = list(dict.fromkeys(t for t in texts if t))
    real_count = len(unique)
    global REAL_TEXTS
    REAL_TEXTS = real_count
    seen = set(unique)
    rng = np.random.default_rng(0)
    while len(unique) < n:
        # Not enough distinct texts: pair a request with another text's comment (real words).
        a, b = rng.integers(0, real_count, size=2)
        text = unique[a].split("\n")[0] + "\n" + unique[b].split("\n")[-1]
        if text not in seen:
            seen.add(text)
            unique.append(text)
    return unique[:n]


def cache_dir() -> Path:
    """Where benches keep computed vectors between runs (not in the repo)."""
    base = Path(os.environ.get("FEEDBACK_BENCH_CACHE", "/tmp/feedback_pipelines_bench"))
    base.mkdir(parents=True, exist_ok=True)
    return base
