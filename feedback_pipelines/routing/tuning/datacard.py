"""The data card: what an export holds, where it came from, and what was filtered out, by count.

`datacard.json` is for scripts (its `counts` match the JSONL files line for line, which the
independent checker verifies); `datacard.md` says the same for a person. Nothing in either
depends on the clock, so a rerun writes the same bytes.
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from importlib import metadata
from typing import TYPE_CHECKING

from feedback_pipelines.routing.tuning.examples import DATASETS, SPLITS

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
        "held-out cases of regressed clusters: {input: messages, ideal: reference answer, metadata}"
    ),
    "candidates/": "per-cluster prompt-tuning cases with fixes where known, ranked by impact",
    "excluded.jsonl": "{dataset, feedback_id, filter}: every example a gate left out, and why",
    "parquet/": (
        "TRL shapes with lineage columns: sft `messages`; preference `prompt`/`chosen`/"
        "`rejected`; unpaired `prompt`/`completion`/`label`; eval `prompt`/`completion`; "
        "load with datasets.load_dataset('parquet', data_dir='parquet/<dataset>')"
    ),
}


def _version() -> str:
    try:
        return metadata.version("feedback_pipelines")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a checkout
        return "unknown"


def _count(values) -> dict:
    return dict(sorted(Counter(v if v is not None else "(none)" for v in values).items()))


def build_datacard(sets: TuningSets, export: Export, index: list[dict]) -> dict:
    """The data card of an export, as a JSON-able dict (stable key order)."""
    counts = {
        _jsonl_key(f.path): f.rows
        for f in export.files
        if f.format == "jsonl" and f.dataset not in ("candidates", "excluded")
    }
    counts["unpaired"] = sum(
        f.rows for f in export.files if f.dataset == "unpaired" and f.format == "parquet"
    )
    counts["candidates"] = len(sets.candidates)
    splits = {d: {s: len(sets.of(d, s)) for s in SPLITS if sets.of(d, s)} for d in DATASETS}
    exported = [x for x in sets.examples if not (x.dataset == "sft" and x.split == "test")]
    days = (date.fromisoformat(sets.window_end) - date.fromisoformat(sets.window_start)).days + 1
    return {
        "name": f"feedback_pipelines tuning export {sets.ds}",
        "partition": sets.ds,
        "window": {"start": sets.window_start, "end": sets.window_end, "days": days},
        "generator": {"package": "feedback_pipelines", "version": _version()},
        "counts": counts,
        "splits": splits,
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
                "cluster_assignments",
                "feedback_clusters",
                "version_regressions",
                "feedback_embeddings",
            ],
            "input": sets.input_summary(),
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
                "hash of the seed and its earliest event; test = eval holdout of regressed "
                "clusters"
            ),
            "seed": sets.settings.seed,
            "groups": sets.splits.groups,
            "largest_group": sets.splits.largest_group,
            "validation_fraction": sets.settings.validation_fraction,
            "eval_fraction": sets.settings.eval_fraction,
            "test_groups_by_cluster": {
                str(k): v for k, v in sorted(sets.splits.test_groups_by_cluster.items())
            },
            "candidates_held_out_with_eval": sets.held_out_candidates,
        },
        "embedding": sets.embedding,
        "settings": sets.settings.as_dict(),
        "lineage": (
            "Every example has a row in the warehouse table tuning_candidates (ds, example_id, "
            "dataset, split, file, line, feedback_id, trace_id, session_id, paired ids, "
            "cluster_id, versions); Parquet rows carry the same ids as columns"
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


def render_markdown(card: dict) -> str:
    """The data card for people: the same facts as the JSON, in tables."""
    w = card["window"]
    lines = [
        f"# {card['name']}",
        "",
        f"Feedback from {w['start']} to {w['end']} ({w['days']} days), "
        f"{card['sources']['input']['events']} events, "
        f"{card['sources']['input']['corrections']} corrections.",
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
        _table(
            ["dataset", *SPLITS],
            [[d, *(card["splits"][d].get(s, 0) for s in SPLITS)] for d in DATASETS],
        ),
        "",
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
