"""One training or eval example, with the lineage every export row carries."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from functools import lru_cache

from feedback_pipelines.routing.tuning.events import Event
from feedback_pipelines.routing.tuning.messages import normalize_text

# uuid5 namespace of example ids: the same feedback gives the same id on every run.
EXAMPLE_NAMESPACE = uuid.UUID("6f1d7c52-3a0e-5b8e-9c1f-2d4b7a9e0c35")

DATASETS = ("sft", "preference", "unpaired", "eval")
SPLITS = ("train", "validation", "test")


#: Sources of the pairs votes make (`votes`): one answer preferred over another by people who
#: saw both.
VOTED = frozenset({"pairwise_vote", "ranking"})


@dataclass
class Example:
    """An example of one dataset, built from one feedback event (or a liked/disliked pair).

    Attributes:
        dataset: `sft`, `preference`, `unpaired` or `eval`.
        source: Where the target came from: `correction`, `liked_vs_disliked`,
            `pairwise_vote`, `ranking`, `liked_response`, `preferred_response` (eval), or the plain
            signal's kind (`thumbs_up`, `rating`, ...).
        event: The anchor event: the correction, the disliked or rejected event of a pair
            (its prompt is the pair's prompt), or the event of an unpaired example.
        prompt: The cleaned input messages (ending with the user turn answered).
        completion: SFT target, preferred answer, unpaired completion or eval reference.
        rejected: The non-preferred answer of a preference pair.
        label: The unpaired example's label (liked = True).
        paired: The other event of a pair: the liked one, or the vote's chosen answer's.
        split: `train`, `validation` or `test` (test = held out as eval cases).
        group: Id of the near-duplicate group the split was decided for.
    """

    dataset: str
    source: str
    event: Event
    prompt: list[dict[str, str]]
    completion: str
    rejected: str | None = None
    label: bool | None = None
    paired: Event | None = None
    split: str = "train"
    group: str = ""

    @property
    def example_id(self) -> str:
        """Deterministic id: uuid5 of dataset, source and the feedback ids."""
        paired = self.paired.feedback_id if self.paired else ""
        return _example_id(f"{self.dataset}:{self.source}:{self.event.feedback_id}:{paired}")

    @property
    def feedback_ids(self) -> list[str]:
        """Every feedback event this example was made from."""
        ids = [self.event.feedback_id]
        if self.paired:
            ids.append(self.paired.feedback_id)
        return ids

    @property
    def texts(self) -> list[str]:
        """Every text the example would publish (for the PII gate)."""
        out = [m["content"] for m in self.prompt] + [self.completion]
        if self.rejected is not None:
            out.append(self.rejected)
        return out

    def content_key(self) -> str:
        """Identity of the example's content after whitespace and case folding."""
        prompt = [(m["role"], normalize_text(m["content"])) for m in self.prompt]
        return json.dumps(
            [
                prompt,
                normalize_text(self.completion),
                normalize_text(self.rejected) if self.rejected is not None else None,
                self.label,
            ]
        )


@lru_cache(maxsize=2**21)
def _example_id(key: str) -> str:
    """uuid5 of a key, memoized: sorting and writing a 100k-event export ask ~270k times."""
    return str(uuid.uuid5(EXAMPLE_NAMESPACE, key))
