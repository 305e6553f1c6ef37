"""Reading the landing zone: `dt=YYYY-MM-DD` folders of JSONL (gzipped or not) and Parquet.

Lines are read as raw bytes into Arrow (no Python object per line) so a million-line file costs
seconds and little memory; only a file with bytes that are not UTF-8 takes the slow, per-line
path, where each bad line is kept with its error instead of failing the file.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from feedback_pipelines.records import MAX_LINE_BYTES

SOURCES = ("traces", "feedback")
SUFFIXES = (".jsonl", ".jsonl.gz", ".json.gz", ".parquet", ".otlp.json")
LINES_SCHEMA = pa.schema(
    [("file", pa.string()), ("line", pa.int64()), ("text", pa.string()), ("error", pa.string())]
)
# A byte that cannot occur in a JSON line (control characters must be escaped in JSON), used
# as the CSV "delimiter" so each physical line is read as one field.
_NO_DELIMITER = "\x1f"


def partition_dir(landing: Path, source: str, ds: str) -> Path:
    """The folder of one source for one day."""
    return landing / source / f"dt={ds}"


def list_files(landing: Path, source: str, ds: str) -> list[Path]:
    """The day's input files of one source, in a stable order."""
    folder = partition_dir(landing, source, ds)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(SUFFIXES))


def landed_partitions(landing: Path) -> dict[str, str]:
    """Every `dt=` folder with files, mapped to a fingerprint of its files (names, sizes, mtimes).

    The sensor compares fingerprints between ticks: a new or changed file changes the day's.
    """
    found: dict[str, list[str]] = {}
    for source in SOURCES:
        root = landing / source
        if not root.is_dir():
            continue
        for folder in root.glob("dt=*"):
            ds = folder.name[3:]
            for p in sorted(folder.iterdir()):
                if p.is_file() and p.name.endswith(SUFFIXES):
                    st = p.stat()
                    found.setdefault(ds, []).append(
                        f"{source}/{p.name}:{st.st_size}:{st.st_mtime_ns}"
                    )
    return {
        ds: hashlib.sha1("\n".join(sorted(v)).encode()).hexdigest()[:16] for ds, v in found.items()
    }


def read_lines(paths: list[Path], root: Path) -> pa.Table:
    """All lines of the files as (file, line, text, error); blank lines are skipped.

    `file` is relative to `root`. A line that cannot be read (bad UTF-8, too long) has its
    `error` set and its text decoded with replacement characters; a file that cannot be read at
    all yields one row with line 0.
    """
    tables = [_read_file(p, str(p.relative_to(root))) for p in paths]
    return pa.concat_tables(tables) if tables else LINES_SCHEMA.empty_table()


def _read_file(path: Path, name: str) -> pa.Table:
    try:
        if path.name.endswith(".parquet"):
            return _read_parquet(path, name)
        return _read_jsonl(path, name)
    except (OSError, EOFError, pa.ArrowInvalid, duckdb.Error) as exc:
        return _rows(name, [0], [""], [f"unreadable file: {type(exc).__name__}: {exc}"[:500]])


def _read_jsonl(path: Path, name: str) -> pa.Table:
    opts = pacsv.ReadOptions(column_names=["text"], block_size=64 << 20)
    parse = pacsv.ParseOptions(
        delimiter=_NO_DELIMITER, quote_char=False, escape_char=False, ignore_empty_lines=False
    )
    convert = pacsv.ConvertOptions(column_types={"text": pa.binary()})
    try:
        raw = pacsv.read_csv(path, read_options=opts, parse_options=parse, convert_options=convert)
        column = raw.column("text").combine_chunks()
        text = column.cast(pa.string())  # validates UTF-8 for the whole file at once
    except pa.ArrowInvalid:
        return _read_jsonl_slow(path, name)
    n = len(text)
    line = pa.array(range(1, n + 1), pa.int64())
    too_long = pc.greater(pc.binary_length(column), MAX_LINE_BYTES)
    error = pc.if_else(
        too_long,
        pa.scalar(f"line longer than {MAX_LINE_BYTES:,} bytes"),
        pa.scalar(None, pa.string()),
    )
    table = pa.table({"file": pa.repeat(name, n), "line": line, "text": text, "error": error})
    keep = pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(text)), 0)
    return table.filter(keep).cast(LINES_SCHEMA)


def _read_jsonl_slow(path: Path, name: str) -> pa.Table:
    opener = gzip.open if path.name.endswith(".gz") else open
    lines, texts, errors = [], [], []
    with opener(path, "rb") as fh:
        for number, raw in enumerate(_split_lines(fh.read()), start=1):
            if not raw.strip():
                continue
            try:
                text, error = raw.decode("utf-8"), None
            except UnicodeDecodeError as exc:
                text = raw.decode("utf-8", errors="replace")
                error = f"invalid UTF-8 bytes at byte {exc.start} of the line"
            if error is None and len(raw) > MAX_LINE_BYTES:
                error = f"line longer than {MAX_LINE_BYTES:,} bytes"
            lines.append(number)
            texts.append(text)
            errors.append(error)
    return _rows(name, lines, texts, errors)


def _split_lines(data: bytes) -> Iterator[bytes]:
    for raw in data.split(b"\n"):
        yield raw.rstrip(b"\r")


def _read_parquet(path: Path, name: str) -> pa.Table:
    con = duckdb.connect()
    try:
        rel = con.sql(
            "SELECT row_number() OVER () AS line, to_json(t)::VARCHAR AS text "
            "FROM read_parquet(?) AS t",
            params=[str(path)],
        )
        tbl = rel.to_arrow_table()
    finally:
        con.close()
    n = tbl.num_rows
    return _rows(name, tbl.column("line").to_pylist(), tbl.column("text"), [None] * n)


def _rows(name: str, lines, texts, errors) -> pa.Table:
    n = len(lines)
    return pa.table(
        {
            "file": pa.array([name] * n, pa.string()),
            "line": pa.array(lines, pa.int64()),
            "text": texts if isinstance(texts, pa.ChunkedArray) else pa.array(texts, pa.string()),
            "error": pa.array(errors, pa.string()),
        }
    ).cast(LINES_SCHEMA)
