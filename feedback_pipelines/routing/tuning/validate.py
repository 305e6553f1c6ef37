"""The export rules, checked on the files as written: what an upload or `load_dataset` would reject.

The asset check `exports_consistent` and the tests run this over every export folder, so an
export that breaks OpenAI's chat or preference format, repeats an example (in a file, or across
a dataset's train, validation and eval files, JSONL or Parquet), leaks PII, or disagrees with
its data card fails here before anyone trains on it.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from feedback_pipelines.routing.tuning import gates

ROLES = {"system", "developer", "user", "assistant", "tool"}
MESSAGE_KEYS = {"role", "content", "name", "weight", "tool_calls", "tool_call_id"}
_CHAT_KEYS = {"messages", "tools", "parallel_tool_calls", "metadata"}
_PREFERENCE_KEYS = {"input", "preferred_output", "non_preferred_output", "metadata"}
REQUIRED = ("sft.jsonl", "preference.jsonl", "eval.jsonl", "datacard.json")


def _message_problems(messages: object, where: str, need_assistant: bool = True) -> list[str]:
    if not isinstance(messages, list) or not messages:
        return [f"{where}: messages must be a non-empty list"]
    problems = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            problems.append(f"{where}: message {i} is not an object")
            continue
        if extra := set(m) - MESSAGE_KEYS:
            problems.append(f"{where}: message {i} has unrecognized keys {sorted(extra)}")
        if m.get("role") not in ROLES:
            problems.append(f"{where}: message {i} has unrecognized role {m.get('role')!r}")
        content = m.get("content")
        if "tool_calls" not in m and not (isinstance(content, str) and content.strip()):
            problems.append(f"{where}: message {i} content must be a non-empty string")
    if need_assistant and not any(
        isinstance(m, dict) and m.get("role") == "assistant" for m in messages
    ):
        problems.append(f"{where}: no assistant message to learn from")
    return problems


def _chat_problems(obj: dict, where: str) -> list[str]:
    extra = set(obj) - _CHAT_KEYS
    problems = [f"{where}: unrecognized keys {sorted(extra)}"] if extra else []
    return problems + _message_problems(obj.get("messages"), where)


def _preference_problems(obj: dict, where: str) -> list[str]:
    problems = []
    if extra := set(obj) - _PREFERENCE_KEYS:
        problems.append(f"{where}: unrecognized keys {sorted(extra)}")
    prompt = obj.get("input")
    if not isinstance(prompt, dict):
        problems.append(f"{where}: input must be an object with messages")
    else:
        messages = prompt.get("messages")
        problems += _message_problems(messages, f"{where} input", need_assistant=False)
        if isinstance(messages, list) and messages and isinstance(messages[-1], dict):
            if messages[-1].get("role") == "assistant":
                problems.append(f"{where}: input must not end with an assistant turn")
    outputs = []
    for side in ("preferred_output", "non_preferred_output"):
        out = obj.get(side)
        ok = (
            isinstance(out, list)
            and len(out) == 1
            and isinstance(out[0], dict)
            and out[0].get("role") == "assistant"
            and isinstance(out[0].get("content"), str)
            and out[0]["content"].strip()
        )
        if not ok:
            problems.append(f"{where}: {side} must be one assistant message with text")
        outputs.append(out[0]["content"] if ok else None)
    if outputs[0] is not None and outputs[0] == outputs[1]:
        problems.append(f"{where}: preferred and non-preferred outputs are identical")
    return problems


def _read_jsonl(path: Path, problems: list[str]) -> list[tuple[int, dict]]:
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        problems.append(f"{path.name}: not valid UTF-8")
        return rows
    for n, line in enumerate(lines, 1):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{path.name}:{n}: not JSON ({exc.msg})")
            continue
        if not isinstance(obj, dict):
            problems.append(f"{path.name}:{n}: not a JSON object")
            continue
        rows.append((n, obj))
    return rows


# Files whose examples must be unique together: a dataset's train and validation files, and
# the eval cases, which must not be training examples either (an eval case is compared with
# SFT examples as the chat it would be). Earlier files in this order are the originals.
DEDUP_ORDER = (
    "sft.jsonl",
    "sft_validation.jsonl",
    "preference.jsonl",
    "preference_validation.jsonl",
    "eval.jsonl",
)


def _example_key(name: str, obj: dict) -> str:
    """What makes an example itself: its fields but `metadata`; eval cases as chats."""
    if name.startswith("eval") and isinstance(obj.get("input"), list):
        chat = [*obj["input"], {"role": "assistant", "content": obj.get("ideal")}]
        return json.dumps({"messages": chat}, sort_keys=True)
    return json.dumps({k: v for k, v in obj.items() if k != "metadata"}, sort_keys=True)


def _duplicates(rows: dict[str, list[tuple[int, str]]], problems: list[str]) -> None:
    """Flag an example seen before in the same file or in an earlier file of its group."""
    seen: dict[str, str] = {}
    for name, keyed in rows.items():
        for n, key in keyed:
            where = f"{name}:{n}"
            first = seen.get(key)
            if first is None:
                seen[key] = where
            elif first.rsplit(":", 1)[0] == name:
                problems.append(f"{where}: duplicate example")
            else:
                problems.append(f"{where}: duplicate of {first}")


def _both_ways(rows: dict[str, list[tuple[int, dict]]]) -> list[str]:
    """Preference pairs whose two answers to one prompt are also exported the other way.

    One training set must not teach A over B and B over A (`votes.one_way`).
    """
    seen: dict[tuple[str, str, str], str] = {}
    problems = []
    for name in sorted(rows):
        for n, obj in rows[name]:
            try:
                key = (
                    json.dumps(obj["input"]["messages"], sort_keys=True),
                    obj["preferred_output"][0]["content"],
                    obj["non_preferred_output"][0]["content"],
                )
            except (KeyError, IndexError, TypeError):
                continue  # a malformed pair: `_preference_problems` says so
            other = seen.get((key[0], key[2], key[1]))
            if other is not None:
                problems.append(f"{name}:{n}: the same two answers the other way in {other}")
            seen.setdefault(key, f"{name}:{n}")
    return problems


def _parquet_problems(folder: Path) -> list[str]:
    """Copies among a Parquet dataset's rows, within a split file and across its splits."""
    from feedback_pipelines.routing.tuning.writer import SHAPES

    problems: list[str] = []
    with duckdb.connect() as conn:
        for dataset_dir in sorted(p for p in (folder / "parquet").glob("*") if p.is_dir()):
            columns = [c for c, _ in SHAPES.get(dataset_dir.name, [])]
            rows: dict[str, list[tuple[int, str]]] = {}
            splits = {"train": 0, "validation": 1, "test": 2}
            for path in sorted(
                dataset_dir.glob("*.parquet"), key=lambda p: (splits.get(p.stem, 3), p.name)
            ):
                name = path.relative_to(folder).as_posix()
                keys = _row_keys(conn, path, columns)
                rows[name] = list(enumerate(keys, 1))
            _duplicates(rows, problems)
    return problems


def _row_keys(conn: duckdb.DuckDBPyConnection, path: Path, columns: list[str]) -> list[str]:
    """Each row of a Parquet file as JSON of `columns` (default: all) that it has, in order.

    DuckDB writes the JSON: ~6x faster than rows as Python dicts through `json.dumps`. Equal
    rows of one dataset (one schema, columns in one order) give equal text.
    """
    source = "read_parquet(?, file_row_number = true)"
    names = [r[0] for r in conn.execute(f"DESCRIBE SELECT * FROM {source}", [str(path)]).fetchall()]
    keep = [c for c in (columns or names) if c in names and c != "file_row_number"]
    listed = ", ".join('"' + c.replace('"', '""') + '"' for c in keep) or "NULL AS nothing"
    sql = f"SELECT to_json(t) FROM (SELECT {listed} FROM {source} ORDER BY file_row_number) t"
    return [key for (key,) in conn.execute(sql, [str(path)]).fetchall()]


def validate_export(folder: Path) -> tuple[dict[str, int], list[str]]:
    """Rows per JSONL file and every problem found, one line each (none: the export is good).

    Checks each JSONL line's format by its dataset (chat for SFT, preference pairs), a pair
    also exported the other way, exact duplicate examples within each file and across the
    files that must not share one (a dataset's train and validation files, eval cases and SFT
    examples; the same for each Parquet dataset's split files), PII in any string but ids
    (`gates.json_texts`), and the data card: every file it lists exists with its row count,
    each of its `counts` is a JSONL file at the root with that many lines, and each split it
    reports has a file.
    """
    folder = Path(folder)
    problems = [f"missing {name}" for name in REQUIRED if not (folder / name).exists()]
    counts: dict[str, int] = {}
    keyed: dict[str, list[tuple[int, str]]] = {}
    jsonl_rows: dict[str, list[tuple[int, dict]]] = {}
    for path in sorted(folder.rglob("*.jsonl")):
        name = path.relative_to(folder).as_posix()
        rows = _read_jsonl(path, problems)
        counts[name.removesuffix(".jsonl")] = len(rows)
        for n, obj in rows:
            where = f"{name}:{n}"
            if name.startswith("sft"):
                problems += _chat_problems(obj, where)
            elif name.startswith("preference"):
                problems += _preference_problems(obj, where)
            problems += [f"{where}: PII found: {hit}" for hit in _pii(obj)]
        if name.startswith(("sft", "preference", "eval")):
            keyed[name] = [(n, _example_key(name, obj)) for n, obj in rows]
            jsonl_rows[name] = rows
    problems += _both_ways(
        {n: rows for n, rows in jsonl_rows.items() if n.startswith("preference")}
    )
    order = {name: i for i, name in enumerate(DEDUP_ORDER)}
    for group in (("sft", "eval"), ("preference",)):
        names = sorted(
            (n for n in keyed if n.startswith(group)), key=lambda n: (order.get(n, 99), n)
        )
        _duplicates({n: keyed[n] for n in names}, problems)
    problems += _parquet_problems(folder)
    card_path = folder / "datacard.json"
    if card_path.exists():
        problems += _card_problems(folder, card_path, counts)
    return counts, problems


def _pii(obj: object) -> list[str]:
    return [hit for text in gates.json_texts(obj) for hit in gates.pii_hits(text)]


def _card_problems(folder: Path, card_path: Path, counts: dict[str, int]) -> list[str]:
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return ["datacard.json: not JSON"]
    problems = [f"datacard.json: PII found: {hit}" for hit in _pii(card)]
    recorded = card.get("counts")
    if not isinstance(recorded, dict):
        return [*problems, 'datacard.json: no "counts" object']
    for name in sorted({"sft", "preference", "eval"} | recorded.keys()):
        if name not in counts or "/" in name:
            problems.append(
                f"datacard.json: counts.{name} has no {name}.jsonl at the export root "
                "(counts are the JSONL files, line for line)"
            )
        elif recorded.get(name) != counts[name]:
            problems.append(
                f"datacard.json: counts.{name} is {recorded.get(name)!r}, "
                f"the file has {counts[name]}"
            )
    listed = {(f.get("dataset"), f.get("split")): f.get("rows") for f in card.get("files", [])}
    for dataset, splits in (card.get("splits") or {}).items():
        for split, n in (splits or {}).items():
            if listed.get((dataset, split)) != n:
                problems.append(
                    f"datacard.json: splits.{dataset}.{split} ({n} rows) matches no file "
                    "the card lists"
                )
    for entry in card.get("files", []):
        path = folder / entry["path"]
        if not path.exists():
            problems.append(f"datacard.json lists {entry['path']}, which does not exist")
            continue
        n = (
            counts.get(entry["path"].removesuffix(".jsonl"), 0)
            if entry["format"] == "jsonl"
            else pq.read_metadata(path).num_rows
        )
        if n != entry["rows"]:
            problems.append(f"{entry['path']}: {n} rows, the data card says {entry['rows']}")
    return problems
