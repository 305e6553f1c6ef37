"""Eval cases: the held-out (test) examples of regressed clusters, each with a reference answer.

A regressed cluster is where a fix must be measured, so its cases are kept out of training
(see `splits.assign_splits`). The unit held out is a group of near-identical requests, so an
event the clustering put elsewhere (or left as noise) that asks the same thing is held out
with it and becomes a case too; `metadata.regressed_cluster` names the cluster it was held
out for. The reference is the user's correction, or else an answer users liked, or the answer a
side-by-side vote preferred; never an answer that lost a vote of the window. As for a
correction, a voted case's event (and its `model_version`) is the answer judged worse.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from feedback_pipelines.routing.tuning.examples import VOTED, Example


def reference_source(x: Example, beaten: Collection[str] = ()) -> str | None:
    """What an example is as an eval case's reference (`source`), or None when it is none.

    `beaten`: answers (trace ids) that lost a side-by-side vote: no reference, liked or not.
    """
    if x.dataset == "sft":
        return "correction"
    if x.dataset == "unpaired" and x.label and x.event.trace_id not in beaten:
        return "liked_response"
    if (
        x.dataset == "preference"
        and x.source in VOTED
        and x.paired is not None
        and x.paired.trace_id not in beaten
    ):
        return "preferred_response"
    return None


def eval_cases(examples: Sequence[Example], beaten: Collection[str] = ()) -> list[Example]:
    """One eval case per held-out example with a reference answer, corrections first."""
    out = []
    for x in examples:
        source = reference_source(x, beaten) if x.split == "test" else None
        if source is None:
            continue
        out.append(
            Example("eval", source, x.event, x.prompt, x.completion, split="test", group=x.group)
        )
    out.sort(key=lambda x: (x.source != "correction", x.event.timestamp, x.event.feedback_id))
    return out
