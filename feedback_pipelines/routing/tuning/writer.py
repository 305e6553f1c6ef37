"""Write an export folder: JSONL for OpenAI, Parquet for TRL, candidates, the data card.

Bytes are deterministic: rows sorted by example id, keys in a fixed order, Parquet written
from an explicit Arrow schema (no pandas index metadata), no wall-clock time anywhere. The
folder is built beside the old one and swapped in, so a reader never sees half an export and a
rerun leaves no file of a cluster that is gone.

Layout of `exports/dt=YYYY-MM-DD/`::

    sft.jsonl, sft_validation.jsonl                 OpenAI chat fine-tuning (train, validation)
    preference.jsonl, preference_validation.jsonl   OpenAI preference fine-tuning
    eval.jsonl                                      held-out cases: {input, ideal, metadata}
    candidates/cluster=<id>.jsonl, candidates/index.jsonl
    excluded.jsonl                                  {dataset, feedback_id, filter}: what a
                                                    gate left out, and which one
    parquet/sft/{train,validation}.parquet          TRL `messages`
    parquet/preference/{train,validation,test}.parquet   TRL `prompt`/`chosen`/`rejected`
    parquet/unpaired/{train,validation,test}.parquet     TRL `prompt`/`completion`/`label`
    parquet/eval/test.parquet                       TRL `prompt`/`completion` (the reference)
    parquet/README.md                               `datasets` configs of the Parquet files
    datacard.json, datacard.md
    README.md                                       the card under `datasets` configs of the
                                                    JSONL files (see `loading`)

JSONL files are always written (an empty file says "none today"); a Parquet split file only
when it has rows, because `datasets.load_dataset` fails on an empty split. Both folders load by
config name: `load_dataset("<export>", "sft")`, `load_dataset("<export>/parquet", "unpaired")`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from feedback_pipelines.files import staging_folder, swap_folder
from feedback_pipelines.routing.tuning.datacard import build_datacard, render_markdown
from feedback_pipelines.routing.tuning.examples import EXAMPLE_NAMESPACE, Example
from feedback_pipelines.routing.tuning.exportfiles import Export, ExportFile
from feedback_pipelines.routing.tuning.loading import configs, readme_header
from feedback_pipelines.routing.tuning.pipeline import RegressedTheme, TuningSets

MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])
MESSAGES = pa.list_(MESSAGE)
LINEAGE = [
    ("example_id", pa.string()),
    ("feedback_id", pa.string()),
    ("trace_id", pa.string()),
    ("paired_feedback_id", pa.string()),
    ("paired_trace_id", pa.string()),
    ("source", pa.string()),
    ("group_id", pa.string()),
    ("cluster_id", pa.int64()),
    ("model_version", pa.string()),
    ("prompt_version", pa.string()),
]
SHAPES: dict[str, list[tuple[str, pa.DataType]]] = {
    "sft": [("messages", MESSAGES)],
    "preference": [("prompt", MESSAGES), ("chosen", MESSAGES), ("rejected", MESSAGES)],
    "unpaired": [("prompt", MESSAGES), ("completion", MESSAGES), ("label", pa.bool_())],
    "eval": [("prompt", MESSAGES), ("completion", MESSAGES)],
}
# (dataset, split) -> JSONL file name, for the files OpenAI takes.
JSONL_FILES = {
    ("sft", "train"): "sft.jsonl",
    ("sft", "validation"): "sft_validation.jsonl",
    ("preference", "train"): "preference.jsonl",
    ("preference", "validation"): "preference_validation.jsonl",
    ("eval", "test"): "eval.jsonl",
}
PARQUET_SPLITS = {
    "sft": ("train", "validation"),
    "preference": ("train", "validation", "test"),
    "unpaired": ("train", "validation", "test"),
    "eval": ("test",),
}


def _assistant(text: str | None) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text or ""}]


def _prompt(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def jsonl_record(
    x: Example,
    labels: dict[int, str],
    held_out_for: dict[str, int],
    theme_of: Mapping[int, RegressedTheme] | None = None,
) -> dict:
    """The OpenAI-format object of an example (no ids: lineage lives in the table).

    `theme_of`: a flagged theme by each of its subtopics; an eval case held out for one of
    them names the theme too (`regressed_theme`), the regression it measures a fix of.
    """
    if x.dataset == "sft":
        return {"messages": [*_prompt(x.prompt), *_assistant(x.completion)]}
    if x.dataset == "preference":
        return {
            "input": {"messages": _prompt(x.prompt)},
            "preferred_output": _assistant(x.completion),
            "non_preferred_output": _assistant(x.rejected),
        }
    if x.dataset == "eval":
        regressed = held_out_for.get(x.event.feedback_id)
        theme = (theme_of or {}).get(regressed)
        return {
            "input": _prompt(x.prompt),
            "ideal": x.completion,
            "metadata": {
                "reference_source": x.source,
                "regressed_cluster": regressed,
                "regressed_cluster_label": labels.get(regressed, ""),
                "regressed_theme": theme.topic_id if theme else None,
                "regressed_theme_label": theme.label if theme else "",
                "cluster_id": x.event.cluster_id,
                "model_version": x.event.model_version,
                "prompt_version": x.event.prompt_version,
            },
        }
    raise ValueError(f"no JSONL shape for dataset {x.dataset!r}")


def parquet_record(x: Example) -> dict:
    """The TRL-shaped row of an example, with its lineage columns."""
    if x.dataset == "sft":
        shape = {"messages": [*_prompt(x.prompt), *_assistant(x.completion)]}
    elif x.dataset == "preference":
        shape = {
            "prompt": _prompt(x.prompt),
            "chosen": _assistant(x.completion),
            "rejected": _assistant(x.rejected),
        }
    elif x.dataset == "unpaired":
        shape = {
            "prompt": _prompt(x.prompt),
            "completion": _assistant(x.completion),
            "label": bool(x.label),
        }
    else:
        shape = {"prompt": _prompt(x.prompt), "completion": _assistant(x.completion)}
    return {
        **shape,
        "example_id": x.example_id,
        "feedback_id": x.event.feedback_id,
        "trace_id": x.event.trace_id,
        "paired_feedback_id": x.paired.feedback_id if x.paired else None,
        "paired_trace_id": x.paired.trace_id if x.paired else None,
        "source": x.source,
        "group_id": x.group,
        "cluster_id": x.event.cluster_id,
        "model_version": x.event.model_version,
        "prompt_version": x.event.prompt_version,
    }


def dumps(obj: object) -> str:
    """One JSON line: UTF-8 text kept as is, keys in insertion order."""
    return json.dumps(obj, ensure_ascii=False)


def write_jsonl(path: Path, records: Iterable[object]) -> int:
    """Write records one a line (an empty file for none); returns the count."""
    lines = [dumps(r) for r in records]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes("".join(line + "\n" for line in lines).encode("utf-8"))
    return len(lines)


def write_parquet(path: Path, dataset: str, rows: list[dict]) -> int:
    """Write TRL-shaped rows with a fixed schema (zstd); returns the count."""
    schema = pa.schema([*SHAPES[dataset], *LINEAGE])
    table = pa.Table.from_pylist(rows, schema=schema)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd")
    return table.num_rows


def _table_row(
    sets: TuningSets, x: Example, file: str, line: int, prompts: dict[int, str] | None = None
) -> dict:
    """The `tuning_candidates` row of an example.

    `prompts` memoizes prompt JSON by the prompt list's id: the examples, alive while the
    export is written, share prompt lists (one per distinct trace messages text).
    """
    prompt = None if prompts is None else prompts.get(id(x.prompt))
    if prompt is None:
        prompt = dumps(_prompt(x.prompt))
        if prompts is not None:
            prompts[id(x.prompt)] = prompt
    return {
        "ds": sets.ds,
        "example_id": x.example_id,
        "dataset": x.dataset,
        "split": x.split,
        "source": x.source,
        "file": file,
        "line": line,
        "feedback_id": x.event.feedback_id,
        "trace_id": x.event.trace_id,
        "session_id": x.event.session_id,
        "paired_feedback_id": x.paired.feedback_id if x.paired else None,
        "paired_trace_id": x.paired.trace_id if x.paired else None,
        "group_id": x.group,
        "cluster_id": x.event.cluster_id,
        "model_version": x.event.model_version,
        "prompt_version": x.event.prompt_version,
        "prompt": prompt,
        "completion": x.completion,
        "rejected": x.rejected,
        "label": x.label,
    }


def _write_candidates(sets: TuningSets, folder: Path, export: Export) -> list[dict]:
    """Per-cluster candidate files and their ranked index; returns the index."""
    by_cluster: dict[int, list[dict]] = {}
    for row in sets.candidates:
        by_cluster.setdefault(row["cluster_id"], []).append(row)
    index = []
    for record in sets.ranking:
        c = record["cluster_id"]
        rows = by_cluster.get(c, [])
        name = f"candidates/cluster={c}.jsonl" if rows else None
        if rows:
            write_jsonl(folder / name, rows)
            export.files.append(ExportFile(name, "jsonl", "candidates", None, len(rows)))
            for line, row in enumerate(rows, 1):
                export.table.append(
                    {
                        "ds": sets.ds,
                        "example_id": str(
                            uuid.uuid5(EXAMPLE_NAMESPACE, f"candidates:{row['feedback_id']}")
                        ),
                        "dataset": "candidates",
                        "split": None,
                        "source": row["fix_source"],
                        "file": name,
                        "line": line,
                        "feedback_id": row["feedback_id"],
                        "trace_id": row["trace_id"],
                        "session_id": row["session_id"],
                        "paired_feedback_id": None,
                        "paired_trace_id": None,
                        "group_id": sets.splits.group_of.get(row["feedback_id"]),
                        "cluster_id": c,
                        "model_version": row["model_version"],
                        "prompt_version": row["prompt_version"],
                        "prompt": dumps(row["messages"]),
                        "completion": row["fix"],
                        "rejected": row["response"],
                        "label": None,
                    }
                )
        index.append(
            {
                **{k: record[k] for k in ("rank", "cluster_id", "label", "impact", "basis")},
                "volume": record["volume"],
                "increase": record["increase"],
                "events": record["events"],
                "negatives": record["negatives"],
                "negative_rate": record["negative_rate"],
                "candidate_version": record["candidate_version"],
                "baseline_version": record["baseline_version"],
                "regressed": record["cluster_id"] in sets.regressed,
                "file": name,
                "cases": len(rows),
                "with_fix": sum(r["fix"] is not None for r in rows),
            }
        )
    write_jsonl(folder / "candidates" / "index.jsonl", index)
    export.files.append(
        ExportFile("candidates/index.jsonl", "jsonl", "candidates", None, len(index))
    )
    return index


def write_export(sets: TuningSets, folder: Path) -> Export:
    """Write every file of one export into `folder` (replacing it whole) and the data card.

    Returns:
        The files written with their row counts, and the `tuning_candidates` rows.
    """
    folder = Path(folder)
    staging = staging_folder(folder)
    export = Export(folder)
    labels = {r["cluster_id"]: r["label"] for r in sets.ranking}
    theme_of = {c: t for t in sets.regressed_themes for c in t.clusters}
    prompts: dict[int, str] = {}

    for (dataset, split), name in JSONL_FILES.items():
        rows = sets.of(dataset, split)
        held = sets.splits.held_out_for
        n = write_jsonl(staging / name, (jsonl_record(x, labels, held, theme_of) for x in rows))
        export.files.append(ExportFile(name, "jsonl", dataset, split, n))
        for line, x in enumerate(rows, 1):
            export.table.append(_table_row(sets, x, name, line, prompts))
    for dataset, splits in PARQUET_SPLITS.items():
        for split in splits:
            rows = sets.of(dataset, split)
            if not rows:
                continue  # `datasets` refuses an empty split file ("corresponds to no data")
            name = f"parquet/{dataset}/{split}.parquet"
            n = write_parquet(staging / name, dataset, [parquet_record(x) for x in rows])
            export.files.append(ExportFile(name, "parquet", dataset, split, n))
            if (dataset, split) not in JSONL_FILES:
                for line, x in enumerate(rows, 1):
                    export.table.append(_table_row(sets, x, name, line, prompts))
    index = _write_candidates(sets, staging, export)
    excluded = [
        {"dataset": dataset, "feedback_id": fid, "filter": name}
        for (dataset, fid), name in sorted(sets.log.dropped.items())
    ]
    write_jsonl(staging / "excluded.jsonl", excluded)
    export.files.append(ExportFile("excluded.jsonl", "jsonl", "excluded", None, len(excluded)))

    card = build_datacard(sets, export, index)
    (staging / "datacard.json").write_text(
        json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    markdown = render_markdown(card)
    (staging / "datacard.md").write_text(markdown, encoding="utf-8")
    (staging / "README.md").write_text(
        readme_header(configs(export, "jsonl")) + markdown, encoding="utf-8"
    )
    parquet = configs(export, "parquet")
    if parquet:
        (staging / "parquet" / "README.md").write_text(
            readme_header(parquet)
            + f"# Parquet copies of {card['name']}\n\nTRL shapes with lineage columns, one "
            "config per dataset: `load_dataset('<export>/parquet', '<dataset>')`. The data card "
            "is `../datacard.md`.\n",
            encoding="utf-8",
        )
    swap_folder(staging, folder)
    export.table.sort(key=lambda r: (r["dataset"], r["file"], r["line"]))
    return export
