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
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from feedback_pipelines.ingest.records import MAX_LINE_BYTES

SOURCES = ("traces", "feedback")
OTLP_SUFFIX = ".otlp.json"
SUFFIXES = (".jsonl", ".jsonl.gz", ".json.gz", ".parquet", OTLP_SUFFIX)
LINES_SCHEMA = pa.schema(
    [("file", pa.string()), ("line", pa.int64()), ("text", pa.string()), ("error", pa.string())]
)
# A byte that cannot occur in a JSON line (control characters must be escaped in JSON), used
# as the CSV "delimiter" so each physical line is read as one field.
_NO_DELIMITER = "\x1f"
# Bytes read per batch: bounds memory whatever the size of a file.
BLOCK_SIZE = 16 << 20


def partition_dir(landing: Path, source: str, ds: str) -> Path:
    """The folder of one source for one day."""
    return landing / source / f"dt={ds}"


def list_files(landing: Path, source: str, ds: str) -> list[Path]:
    """The day's input files of one source, in a stable order.

    OpenTelemetry files (`*.otlp.json`) land with the traces but also carry feedback (their
    `gen_ai.evaluation.result` events), so they are read for both sources.
    """
    found = []
    for folder_source in {source, "traces"} if source == "feedback" else {source}:
        folder = partition_dir(landing, folder_source, ds)
        if folder.is_dir():
            found += [
                p
                for p in folder.iterdir()
                if p.is_file()
                and p.name.endswith(SUFFIXES)
                and (folder_source == source or p.name.endswith(OTLP_SUFFIX))
            ]
    return sorted(found)


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
    """All lines of the files as one table (see `iter_line_batches`)."""
    batches = [b for p in paths for b in iter_line_batches(p, root)]
    return pa.concat_tables(batches) if batches else LINES_SCHEMA.empty_table()


def iter_line_batches(
    path: Path, root: Path, block_size: int = BLOCK_SIZE, source: str = "traces"
) -> Iterator[pa.Table]:
    """The lines of one file as (file, line, text, error) tables of bounded size.

    `file` is relative to `root`; blank lines are skipped but counted, so `line` is the line
    number a person sees in an editor. A line that cannot be read (bad UTF-8, too long) has its
    `error` set and its text decoded with replacement characters; a file that cannot be read at
    all yields one row with line 0.
    """
    name = str(path.relative_to(root))
    try:
        if path.name.endswith(".parquet"):
            yield _read_parquet(path, name)
        elif path.name.endswith(OTLP_SUFFIX):
            # OTLP JSON (the Collector's file exporter): converted to contract records of this
            # source, each keeping the line number it came from.
            from feedback_pipelines.sources.otlp import landing_lines

            rows = landing_lines(path, source)
            yield _rows(name, [n for n, _ in rows], [t for _, t in rows], [None] * len(rows))
        else:
            yield from _read_jsonl(path, name, block_size)
    except (OSError, EOFError, pa.ArrowInvalid, duckdb.Error) as exc:
        yield _rows(name, [0], [""], [f"unreadable file: {type(exc).__name__}: {exc}"[:500]])


def _read_jsonl(path: Path, name: str, block_size: int) -> Iterator[pa.Table]:
    # One thread: the caller reads ahead on its own thread while DuckDB works, and Arrow's
    # parallel CSV parsing costs about twice the CPU for this one-column split.
    opts = pacsv.ReadOptions(column_names=["text"], block_size=block_size, use_threads=False)
    parse = pacsv.ParseOptions(
        delimiter=_NO_DELIMITER, quote_char=False, escape_char=False, ignore_empty_lines=False
    )
    convert = pacsv.ConvertOptions(column_types={"text": pa.binary()})
    first = 1
    try:
        reader = pacsv.open_csv(
            path, read_options=opts, parse_options=parse, convert_options=convert
        )
        for batch in reader:
            column = batch.column(0)
            yield _lines_table(name, column, first)
            first += len(column)
    except pa.ArrowInvalid:
        # A line holding the separator byte: read the rest of the file line by line.
        yield _read_jsonl_slow(path, name, skip=first - 1)


def _lines_table(name: str, column: pa.Array, first: int) -> pa.Table:
    n = len(column)
    try:
        text = column.cast(pa.string())  # validates UTF-8 for the whole batch at once
        error = pc.if_else(
            pc.greater(pc.binary_length(column), MAX_LINE_BYTES),
            pa.scalar(f"line longer than {MAX_LINE_BYTES:,} bytes"),
            pa.scalar(None, pa.string()),
        )
    except pa.ArrowInvalid:
        texts, errors = (
            zip(*(_decode(v) for v in column.to_pylist()), strict=True) if n else ((), ())
        )
        text, error = pa.array(texts, pa.string()), pa.array(errors, pa.string())
    line = pa.array(np.arange(first, first + n, dtype=np.int64))
    table = pa.table({"file": pa.repeat(name, n), "line": line, "text": text, "error": error})
    blank = _blank_lines(text)
    if len(blank):
        keep = np.ones(n, dtype=bool)
        keep[blank] = False
        table = table.filter(pa.array(keep))
    return table.cast(LINES_SCHEMA)


def _blank_lines(text: pa.Array) -> np.ndarray:
    """Positions of the lines holding only whitespace.

    Only lines that do not start with `{` can be blank, so the whitespace trim (a copy) runs on
    those few instead of on every line.
    """
    maybe = pc.indices_nonzero(pc.invert(pc.starts_with(text, "{")))
    if not len(maybe):
        return np.empty(0, dtype=np.int64)
    trimmed = pc.utf8_trim_whitespace(text.take(maybe))
    blank = pc.equal(pc.utf8_length(trimmed), 0)
    return maybe.filter(blank).to_numpy(zero_copy_only=False).astype(np.int64)


def _decode(raw: bytes) -> tuple[str, str | None]:
    try:
        text, error = raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        text = raw.decode("utf-8", errors="replace")
        error = f"invalid UTF-8 bytes at byte {exc.start} of the line"
    if error is None and len(raw) > MAX_LINE_BYTES:
        error = f"line longer than {MAX_LINE_BYTES:,} bytes"
    return text, error


def _read_jsonl_slow(path: Path, name: str, skip: int = 0) -> pa.Table:
    opener = gzip.open if path.name.endswith(".gz") else open
    lines, texts, errors = [], [], []
    with opener(path, "rb") as fh:
        for number, raw in enumerate(_split_lines(fh.read()), start=1):
            if number <= skip or not raw.strip():
                continue
            text, error = _decode(raw)
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
