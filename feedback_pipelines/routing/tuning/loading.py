"""How an export loads: `datasets` configs for both folders, and the snippets the data card prints.

The export root holds several datasets side by side (the contract puts sft.jsonl,
preference.jsonl and eval.jsonl there), and the Parquet copies sit below it, so
`load_dataset("json", data_dir=<export>)` cannot work: it reads every file under the folder,
Parquet included, as one dataset. The Hugging Face convention for a folder of several datasets
is a `README.md` whose YAML header lists `configs` with their `data_files`:
`load_dataset("<export>", "sft")` then reads exactly sft.jsonl and sft_validation.jsonl. The
export root has one for the JSONL files, `parquet/` one for the Parquet files (`datasets` reads
one format per folder), and each `parquet/<dataset>/` still loads on its own with
`load_dataset("parquet", data_dir=...)` as the contract says. A split without rows is left out
of the configs, because `datasets` refuses an empty data file.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from feedback_pipelines.routing.tuning.exportfiles import Export

# JSONL datasets at the export root, in the order `load_dataset(<export>)` prefers them.
JSONL_DATASETS = ("sft", "preference", "eval")
PARQUET_DATASETS = ("sft", "preference", "unpaired", "eval")
_SPLIT_ORDER = ("train", "validation", "test")


def configs(export: Export, fmt: str) -> dict[str, list[tuple[str, str]]]:
    """Config name -> [(split, path)] of the files with rows, paths relative to their folder.

    Args:
        export: What the writer wrote.
        fmt: `jsonl` (the export root) or `parquet` (the `parquet/` folder).
    """
    names = JSONL_DATASETS if fmt == "jsonl" else PARQUET_DATASETS
    out: dict[str, list[tuple[str, str]]] = {}
    for name in names:
        files = [
            f
            for f in export.files
            if f.format == fmt and f.dataset == name and f.split and f.rows > 0
            and (fmt == "parquet" or "/" not in f.path)
        ]  # fmt: skip
        files.sort(key=lambda f: _SPLIT_ORDER.index(f.split))
        if files:
            out[name] = [
                (f.split, f.path.removeprefix("parquet/") if fmt == "parquet" else f.path)
                for f in files
            ]
    return out


def readme_header(found: dict[str, list[tuple[str, str]]]) -> str:
    """The YAML front matter of a dataset card listing these configs (the first is default)."""
    if not found:
        return ""
    lines = ["---", "configs:"]
    for k, (name, files) in enumerate(found.items()):
        lines.append(f"- config_name: {name}")
        if k == 0:
            lines.append("  default: true")
        lines.append("  data_files:")
        for split, path in files:
            lines += [f"  - split: {split}", f"    path: {json.dumps(path)}"]
    return "\n".join([*lines, "---", "", ""])


def loading_snippets(ds: str, export: Export) -> dict[str, str]:
    """Code that loads this export: with `datasets` (Python) and with the OpenAI CLI (shell)."""
    folder = f"exports/dt={ds}"
    jsonl, parquet = configs(export, "jsonl"), configs(export, "parquet")
    py = [
        "from datasets import load_dataset",
        "",
        f'export = "{folder}"  # this folder, from the data directory',
    ]
    what = {
        "sft": "OpenAI chat JSONL: messages",
        "preference": "OpenAI preference JSONL: input, preferred_output, non_preferred_output",
        "eval": "eval cases: input, ideal, metadata",
    }
    variable = {"sft": "sft", "preference": "preference", "eval": "cases"}
    for name in jsonl:
        py.append(f'{variable[name]} = load_dataset(export, "{name}")  # {what[name]}')
    trl = {
        "sft": "messages",
        "preference": "prompt, chosen, rejected",
        "unpaired": "prompt, completion, label (KTO)",
        "eval": "prompt, completion",
    }
    for name in parquet:
        py.append(f'trl_{name} = load_dataset(f"{{export}}/parquet", "{name}")  # {trl[name]}')
    if parquet:
        first = next(iter(parquet))
        py.append(
            f'# one dataset\'s Parquet folder alone: load_dataset("parquet", '
            f'data_dir=f"{{export}}/parquet/{first}")'
        )
    py.append(
        '# not load_dataset("json", data_dir=export): it would read every dataset (and the '
        "Parquet files) as one"
    )
    upload = "openai files upload {} --purpose fine-tune --transform id --raw-output"
    sh = [
        f"cd {folder}",
        "# the OpenAI CLI (github.com/openai/openai-cli); BASE_MODEL: a model your account can "
        "fine-tune",
    ]
    for name, method in (("sft", None), ("preference", "dpo")):
        files = dict(jsonl.get(name, []))
        if "train" not in files:
            continue
        var = name.upper()
        sh.append(f"{var}_TRAIN=$({upload.format(files['train'])})")
        job = f'openai fine-tuning jobs create --model BASE_MODEL --training-file "${var}_TRAIN"'
        if "validation" in files:
            sh.append(f"{var}_VALID=$({upload.format(files['validation'])})")
            job += f' --validation-file "${var}_VALID"'
        if method:
            job += f" --method.type {method}"
        sh.append(job)
    return {"datasets": "\n".join(py) + "\n", "openai_cli": "\n".join(sh) + "\n"}
