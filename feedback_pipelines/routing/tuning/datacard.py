"""The data card: what an export holds, where it came from, and what was filtered out, by count.

`datacard.json` is for scripts: its `counts` are the JSONL example files at the export root,
line for line (which the independent checker verifies), `parquet_rows` the Parquet-only rows,
`splits` the rows of each split that has a file. It also states the export mode (cumulative
snapshot or the day's new examples), the license, intended use, known limitations, label
balance, how to load the files, and the package version and run that wrote them.
`datacard.md` says the same for a person; `README.md` is that text under the `datasets` configs
(see `loading`). Nothing depends on the clock: a rerun writes the same bytes, except the run id
when an orchestrator run wrote the export (None outside one).
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from importlib import metadata
from typing import TYPE_CHECKING

from feedback_pipelines.routing.tuning.examples import DATASETS, SPLITS
from feedback_pipelines.routing.tuning.loading import loading_snippets
from feedback_pipelines.routing.tuning.settings import EXPORT_MODES

if TYPE_CHECKING:
    from feedback_pipelines.routing.tuning.exportfiles import Export
    from feedback_pipelines.routing.tuning.pipeline import TuningSets

FORMATS = {
    "sft.jsonl": "OpenAI chat fine-tuning: {messages}; the assistant turn is the user's correction",
    "sft_validation.jsonl": "the validation split of the same",
    "preference.jsonl": (
        "OpenAI preference fine-tuning: {input: {messages}, preferred_output, non_preferred_output}"
    ),
    "preference_validation.jsonl": "the validation split of the same",
    "eval.jsonl": (
        "held-out cases of regressed clusters (and of every subtopic of a regressed theme): "
        "{input: messages, ideal: reference answer, metadata}"
    ),
    "candidates/": "per-cluster prompt-tuning cases with fixes where known, ranked by impact",
    "excluded.jsonl": "{dataset, feedback_id, filter}: every example a gate left out, and why",
    "parquet/": (
        "TRL shapes with lineage columns: sft `messages`; preference `prompt`/`chosen`/"
        "`rejected`; unpaired `prompt`/`completion`/`label`; eval `prompt`/`completion`; "
        "load with datasets.load_dataset('parquet', data_dir='parquet/<dataset>')"
    ),
    "README.md": (
        "this card under a `datasets` configs header: load_dataset('<export>', '<dataset>') "
        "loads the JSONL files (sft, preference, eval)"
    ),
    "parquet/README.md": (
        "`datasets` configs of the Parquet files: load_dataset('<export>/parquet', '<dataset>')"
    ),
}

INTENDED_USE = [
    "fine-tuning the product's assistant on what its users corrected (SFT) and preferred "
    "(preference / DPO; unpaired liked or disliked answers for KTO)",
    "measuring a fix on held-out cases of the clusters that regressed (eval.jsonl)",
    "tuning prompts cluster by cluster, highest impact first (candidates/)",
    "not for: models or people outside the license, profiling the users behind the "
    "feedback, or a benchmark of general ability (the eval covers regressed clusters only)",
]

LIMITATIONS = [
    "labels come from the users who chose to give feedback: not a sample of all traffic, and a "
    "user's correction can itself be wrong",
    "corrections that disagree and answers judged both ways are left out rather than resolved, "
    "so disputed cases are under-represented",
    "near duplicates and split groups are found with an English sentence-embedding model "
    "(cosine thresholds in `settings`): paraphrases below the threshold stay, other languages "
    "are matched less reliably, and only this window is compared, not earlier exports",
    "personal data is removed by patterns (redaction, then a stricter gate that drops "
    "examples): names, addresses and free-form identifiers are not detected",
    "eval cases exist only for clusters that regressed in this window, or whose theme did",
]
#: Said when rankings of answers made pairs (`votes`).
RANKING_LIMITATION = (
    "a ranking of k answers gives k(k-1)/2 pairs, each answer over each one ranked below it: a "
    "conversation with many ranked answers weighs more, and its pairs share answers (they are "
    "one split group)"
)
MODE_LIMITATIONS = {
    "cumulative": "each export repeats most of the day before's examples (same window, one "
    "day later): use one export, never several concatenated",
    "incremental": "a group's split is decided within each day's window: near-identical "
    "requests exported on days further apart than the window may sit on both sides once the "
    "days are concatenated; a voted pair is exported once: when its majority changes side "
    "after that, the new way is not exported but queued for review (`vote_reversed`), so "
    "the earlier export keeps the old way until a person retracts it",
}


def _version() -> str:
    try:
        return metadata.version("feedback_pipelines")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a checkout
        return "unknown"


def _count(values) -> dict:
    """Each value's count, in order ("(none)" for None, after the numbers when mixed)."""
    counted = Counter(v if v is not None else "(none)" for v in values)
    return dict(sorted(counted.items(), key=lambda kv: (isinstance(kv[0], str), kv[0])))


def build_datacard(sets: TuningSets, export: Export, index: list[dict]) -> dict:
    """The data card of an export, as a JSON-able dict (stable key order)."""
    examples = {"sft", "preference", "eval"}
    counts = {
        _jsonl_key(f.path): f.rows
        for f in export.files
        if f.format == "jsonl" and f.dataset in examples and "/" not in f.path
    }
    parquet_rows: dict[str, dict[str, int]] = {}
    splits: dict[str, dict[str, int]] = {d: {} for d in DATASETS}
    for f in export.files:
        if f.dataset in DATASETS and f.split and f.rows:
            splits[f.dataset][f.split] = f.rows
            if f.format == "parquet":
                parquet_rows.setdefault(f.dataset, {})[f.split] = f.rows
    splits = {d: {s: splits[d][s] for s in SPLITS if s in splits[d]} for d in DATASETS}
    exported = [x for x in sets.examples if not (x.dataset == "sft" and x.split == "test")]
    days = (date.fromisoformat(sets.window_end) - date.fromisoformat(sets.window_start)).days + 1
    mode = sets.settings.export_mode
    return {
        "name": f"feedback_pipelines tuning export {sets.ds}",
        "partition": sets.ds,
        "window": {"start": sets.window_start, "end": sets.window_end, "days": days},
        "mode": {
            "export": mode,
            "meaning": EXPORT_MODES[mode],
            "other_mode": (
                "set FEEDBACK_EXPORT_MODE (PipelineConfig.export_mode, TuningSettings.export_mode) "
                "to " + next(m for m in EXPORT_MODES if m != mode)
            ),
            "earlier_examples_left_out": sets.earlier_left_out,
        },
        "generator": {
            "package": "feedback_pipelines",
            "version": _version(),
            "run_id": sets.run_id,
        },
        "license": sets.settings.license,
        "intended_use": INTENDED_USE,
        "known_limitations": [
            *LIMITATIONS,
            *([RANKING_LIMITATION] if sets.votes.get("ranked") else []),
            MODE_LIMITATIONS[mode],
            *sets.notes,
        ],
        "counts": counts,
        "parquet_rows": parquet_rows,
        "splits": splits,
        "held_out_as_eval": {
            "sft": len(sets.of("sft", "test")),
            "note": (
                "corrections held out with their groups: they are the references of the eval "
                "cases in eval.jsonl, not SFT rows"
            ),
        },
        "label_balance": {
            "unpaired": {
                split: {
                    "true": sum(bool(x.label) for x in sets.of("unpaired", split)),
                    "false": sum(not x.label for x in sets.of("unpaired", split)),
                }
                for split in SPLITS
                if sets.of("unpaired", split)
            },
            "preference_by_source": {
                split: _count(x.source for x in sets.of("preference", split))
                for split in SPLITS
                if sets.of("preference", split)
            },
        },
        "candidates": {
            "files": sum(
                f.dataset == "candidates" and f.path != "candidates/index.jsonl"
                for f in export.files
            ),
            "cases": len(sets.candidates),
        },
        "files": [
            {
                "path": f.path,
                "format": f.format,
                "dataset": f.dataset,
                "split": f.split,
                "rows": f.rows,
            }
            for f in export.files
        ],
        "formats": FORMATS,
        "sources": {
            "tables": [
                "feedback_events",
                "traces",
                "cluster_assignments",
                "feedback_clusters",
                "version_regressions",
                "feedback_embeddings",
            ],
            "input": sets.input_summary(),
            "votes": sets.votes,
            "examples_by_source": {
                d: _count(x.source for x in exported if x.dataset == d) for d in DATASETS
            },
        },
        "model_versions": {
            d: _count(x.event.model_version for x in exported if x.dataset == d) for d in DATASETS
        },
        "prompt_versions": {
            d: _count(x.event.prompt_version for x in exported if x.dataset == d) for d in DATASETS
        },
        "clusters": {
            "clustering_available": sets.clustering,
            "regressed": sets.regressed,
            "regressed_themes": [
                {"topic_id": t.topic_id, "label": t.label, "clusters": list(t.clusters)}
                for t in sets.regressed_themes
            ],
            "examples_by_cluster": _count(
                x.event.cluster_id for x in exported if x.dataset in ("sft", "preference")
            )
            if sets.clustering
            else {},
            "ranking": index,
        },
        "filters": sets.log.as_records(),
        "conflicting_corrections": len(sets.conflicts),
        "splitting": {
            "method": (
                "groups = connected components of same trace, same request (folded), request "
                "cosine >= group_similarity, and the two sides of a pair; a group's split is a "
                "hash of the seed and its earliest event (cumulative exports: when no group "
                "with examples draws validation, the lowest draw goes there, of the groups no "
                "larger than average in events that leave every dataset train examples); "
                "test = eval holdout of regressed clusters"
            ),
            "seed": sets.settings.seed,
            "groups": sets.splits.groups,
            "largest_group": sets.splits.largest_group,
            "validation_fraction": sets.settings.validation_fraction,
            "validation_by_fallback": sets.splits.validation_fallback,
            "eval_fraction": sets.settings.eval_fraction,
            "test_groups_by_cluster": {
                str(k): v for k, v in sorted(sets.splits.test_groups_by_cluster.items())
            },
            "candidates_held_out_with_eval": sets.held_out_candidates,
        },
        "embedding": sets.embedding,
        "loading": loading_snippets(sets.ds, export),
        "settings": sets.settings.as_dict(),
        "lineage": (
            "Every example has a row in the warehouse table tuning_candidates (ds, example_id, "
            "dataset, split, file, line, feedback_id, trace_id, session_id, paired ids, "
            "cluster_id, versions); Parquet rows carry the same ids as columns. A pair from a "
            "ranking of answers has no feedback event: its feedback ids are "
            "rank:<group>:<chosen trace>><rejected trace>:<side>, its trace ids the two answers"
        ),
        "privacy": (
            "Only redacted text is exported; any example still holding PII-looking text "
            "after redaction is dropped (see filters.pii)"
        ),
        "notes": sets.notes,
    }


def _jsonl_key(path: str) -> str:
    """`sft_validation.jsonl` -> `sft_validation`."""
    return path.rsplit("/", 1)[-1].removesuffix(".jsonl")


def _table(headers: list[str], rows: list[list]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        out.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(out)


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _regressed_words(clusters: dict) -> str:
    """Which clusters the eval cases come from, a flagged theme's subtopics named as such."""
    regressed = clusters.get("regressed") or []
    if not regressed:
        return "No cluster regressed in this window, so there are no eval cases."
    themes = [
        f"{len(t['clusters'])} subtopics of the theme “{t['label'] or t['topic_id']}”"
        for t in clusters.get("regressed_themes", [])
    ]
    via = f", of them {'; '.join(themes)}" if themes else ""
    return f"Eval cases come from the {len(regressed)} regressed cluster(s){via}."


def _votes_words(votes: dict) -> list[str]:
    """What the side-by-side votes came to, as a paragraph (none when there were none)."""
    if not votes.get("votes"):
        return []

    def n(count: int, word: str) -> str:
        return f"{count} {word}" + ("" if count == 1 else "s")

    decided = votes["compared"] - votes["split"]
    ranked = (
        f" ({votes['ranked']} of them implied by rankings of answers: each answer over each "
        "one ranked below it)"
        if votes.get("ranked")
        else ""
    )
    return [
        f"Side-by-side votes: {n(votes['votes'], 'vote')}{ranked} on "
        f"{n(votes['compared'], 'pair')} "
        f"of answers; {decided} decided by majority ({votes['single']} by a single vote, "
        f"{votes['unanimous']} unanimous over several, {n(votes['outvoted'], 'vote')} "
        f"outvoted), {votes['split']} split evenly and left out; {votes['pairs']} passed the "
        "pair gates, before the duplicate gate.",
        "",
    ]


def render_markdown(card: dict) -> str:
    """The data card for people: the same facts as the JSON, in tables."""
    w, mode, gen = card["window"], card["mode"], card["generator"]
    balance = card["label_balance"]["unpaired"]
    lines = [
        f"# {card['name']}",
        "",
        f"Feedback from {w['start']} to {w['end']} ({w['days']} days), "
        f"{card['sources']['input']['events']} events, "
        f"{card['sources']['input']['corrections']} corrections.",
        "",
        f"**Export mode: {mode['export']}**: {mode['meaning']}. The other mode: "
        f"{mode['other_mode']}."
        + (
            " Left out as earlier days' examples: " + _kv(mode["earlier_examples_left_out"]) + "."
            if mode["earlier_examples_left_out"]
            else ""
        ),
        "",
        f"Written by {gen['package']} {gen['version']}"
        + (f", run {gen['run_id']}" if gen["run_id"] else "")
        + ".",
        "",
        "## License and intended use",
        "",
        f"License: {card['license']}.",
        "",
        *(f"- {u}" for u in card["intended_use"]),
        "",
        "## Known limitations",
        "",
        *(f"- {u}" for u in card["known_limitations"]),
        "",
        "## Loading",
        "",
        "```python",
        card["loading"]["datasets"].rstrip("\n"),
        "```",
        "",
        "```sh",
        card["loading"]["openai_cli"].rstrip("\n"),
        "```",
        "",
        "## Files",
        "",
        _table(
            ["file", "dataset", "split", "rows"],
            [[f["path"], f["dataset"], f["split"] or "", f["rows"]] for f in card["files"]],
        ),
        "",
        "## Splits",
        "",
        "Rows of each split that has a file (`counts` are the JSONL files at the root, line for "
        "line; `parquet_rows` the Parquet files).",
        "",
        _table(
            ["dataset", *SPLITS],
            [
                [d, *(card["splits"][d].get(s, "") for s in SPLITS)]
                for d in DATASETS
                if card["splits"][d]
            ],
        ),
        "",
        f"Held out as eval: {card['held_out_as_eval']['sft']} SFT example(s), "
        f"{card['held_out_as_eval']['note']}. {_regressed_words(card['clusters'])}",
        "",
        "## Label balance",
        "",
        (
            _table(
                ["unpaired split", "label true (liked)", "label false (disliked)"],
                [[s, b["true"], b["false"]] for s, b in balance.items()],
            )
            if balance
            else "No unpaired examples."
        ),
        "",
        "Preference pairs by source: "
        + (
            "; ".join(
                f"{s}: {_kv(v)}" for s, v in card["label_balance"]["preference_by_source"].items()
            )
            or "none"
        )
        + ".",
        "",
        *_votes_words(card["sources"].get("votes") or {}),
        f"Split method: {card['splitting']['method']}. Seed {card['splitting']['seed']}, "
        f"{card['splitting']['groups']} groups (largest {card['splitting']['largest_group']}).",
        "",
        "## Filters applied",
        "",
        _table(
            ["filter", "what it removes", "removed"],
            [
                [
                    f["filter"],
                    f["description"],
                    ", ".join(f"{d}: {n}" for d, n in f["removed"].items()) or "0",
                ]
                for f in card["filters"]
            ],
        ),
        "",
        "## Sources and versions",
        "",
        _table(
            ["dataset", "by source", "model versions", "prompt versions"],
            [
                [
                    d,
                    _kv(card["sources"]["examples_by_source"][d]),
                    _kv(card["model_versions"][d]),
                    _kv(card["prompt_versions"][d]),
                ]
                for d in DATASETS
            ],
        ),
        "",
        "## Clusters by impact",
        "",
        "Basis of each impact: `regression` (a flagged regression: candidate events x rate "
        "increase), `theme_regression` (the rate rose, not flagged, in a theme flagged as a "
        "whole), `increase_not_significant` (the rate rose, not flagged), `no_increase` "
        "(compared, no rise), `not_compared` (no comparison for the cluster), "
        "`cluster_vs_window` (no regression results: events x excess over the window's "
        "negative rate).",
        "",
    ]
    ranking = card["clusters"]["ranking"]
    if ranking:
        lines.append(
            _table(
                ["rank", "cluster", "label", "impact", "basis", "regressed", "cases", "with fix"],
                [
                    [
                        r["rank"],
                        r["cluster_id"],
                        r["label"],
                        r["impact"],
                        r["basis"],
                        "yes" if r["regressed"] else "",
                        r["cases"],
                        r["with_fix"],
                    ]
                    for r in ranking
                ],
            )
        )
    else:
        lines.append("No clusters (clustering unavailable for this window).")
    emb = card["embedding"]
    lines += [
        "",
        "## Similarity",
        "",
        f"Embedding model: {emb.get('model_id', 'n/a')}; search: {emb.get('search', 'n/a')}; "
        f"texts embedded {emb.get('texts_embedded', 0)}, reused {emb.get('texts_reused', 0)}.",
        "",
        "## Lineage",
        "",
        card["lineage"] + ". Examples a gate removed are listed in `excluded.jsonl`.",
        "",
        card["privacy"] + ".",
        "",
    ]
    if card["notes"]:
        lines += ["## Notes", "", *(f"- {n}" for n in card["notes"]), ""]
    return "\n".join(lines)


def _kv(d: dict) -> str:
    return ", ".join(f"{k}: {v}" for k, v in d.items())
