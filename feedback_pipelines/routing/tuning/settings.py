"""The knobs of the tuning sets and the review queue, with the defaults the data card reports.

Every threshold here is written into `datacard.json`, so whoever trains on an export can see
exactly which filters made it; change a default only with a measurement behind it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

#: What a day's export holds (`TuningSettings.export_mode`).
EXPORT_MODES = {
    "cumulative": (
        "a snapshot: every example of the trailing window of feedback ending at the partition; "
        "consecutive days' exports share most examples, so train on one export (the latest), "
        "never on several concatenated"
    ),
    "incremental": (
        "the day's new examples: only those whose newest feedback event is of the partition "
        "day (the window is still read for pairs, duplicates, conflicts and splits); "
        "concatenate the daily exports of the days you want, each example is in one of them"
    ),
}
DEFAULT_LICENSE = (
    "proprietary: internal use only, under the terms users accepted when giving feedback"
)


@dataclass(frozen=True)
class TuningSettings:
    """Thresholds, fractions and the seed of one export.

    Similarities are cosines of L2-normalized MiniLM vectors. Defaults measured on LAMP's
    writer edits and the synthetic phrasebank: requests differing only in a greeting score
    0.95-1.0, requests of one template with other slot values 0.90-0.97; edits of one
    paragraph by different writers score 0.56-0.88 (median 0.76) against each other, while
    two different corrections of one topic score at most 0.70 (median 0.30).

    Attributes:
        seed: Seeds the split and every sample; the same seed gives the same files.
        near_duplicate: Two examples whose requests and targets both reach this cosine (same
            conversation context) are near duplicates: only the earliest is kept.
        same_request: Requests at or above this cosine count as near-identical: they pair a
            liked with a disliked answer, and corrections to them may conflict.
        group_similarity: Requests at or above this cosine stay on one side of a split.
        conflict_below: Two corrections to near-identical requests disagree when their own
            cosine is below this.
        min_correction_chars: A correction with fewer visible characters is too short.
        max_correction_chars: A correction with more characters is too long.
        max_response_chars: A model answer longer than this is not used as an example.
        max_example_tokens: Cap on an example's estimated tokens (OpenAI's chat fine-tuning
            limit is 16,385 per example).
        chars_per_token: The conservative estimate of characters per token for that cap.
        validation_fraction: Share of groups held out as the validation split.
        eval_fraction: Share of the groups of a regressed cluster held out as eval cases
            (at least one group per regressed cluster that has a reference answer).
        liked_kinds / disliked_kinds: Plain signals that become unpaired examples and
            liked-vs-disliked pairs; ratings count by `liked_min_score` / `disliked_max_score`.
        max_candidates_per_cluster: Failing cases written per prompt-tuning candidate file.
        review_sample_per_cluster: Negative events sampled from each newly regressed cluster.
        review_split_votes: Pairs of answers voted as often each way queued for review a day.
        exclude_conflicts: Keep conflicting corrections out of the training sets (they go to
            review instead).
        export_mode: `cumulative` (default: each export is a snapshot of the window) or
            `incremental` (each export holds only the examples new on its day); see
            `EXPORT_MODES`.
        license: The license or terms the data card states for the exported data.
    """

    seed: int = 0
    near_duplicate: float = 0.95
    same_request: float = 0.95
    group_similarity: float = 0.90
    conflict_below: float = 0.60
    min_correction_chars: int = 3
    max_correction_chars: int = 16_000
    max_response_chars: int = 16_000
    max_example_tokens: int = 16_385
    chars_per_token: float = 3.0
    validation_fraction: float = 0.10
    eval_fraction: float = 0.30
    liked_kinds: tuple[str, ...] = ("thumbs_up",)
    disliked_kinds: tuple[str, ...] = ("thumbs_down",)
    liked_min_score: float = 4.0
    disliked_max_score: float = 2.0
    max_candidates_per_cluster: int = 200
    review_sample_per_cluster: int = 5
    review_split_votes: int = 5
    exclude_conflicts: bool = True
    export_mode: str = "cumulative"
    license: str = DEFAULT_LICENSE

    def __post_init__(self) -> None:
        if self.export_mode not in EXPORT_MODES:
            raise ValueError(
                f"export_mode must be one of {sorted(EXPORT_MODES)}, not {self.export_mode!r}"
            )
        if not self.license.strip():
            raise ValueError("license must say something (the data card states it)")

    def as_dict(self) -> dict:
        """The settings as plain JSON-able values (for the data card)."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        return out
