"""Reading the landing zone: `dt=YYYY-MM-DD` folders of JSONL (gzipped or not) and Parquet.

Lines are read as raw bytes into Arrow (no Python object per line) so a million-line file costs
seconds and little memory; only a block with bytes that are not UTF-8 takes the slow, per-line
path, where each bad line is kept with its error instead of failing the file.

Memory stays bounded whatever a file holds: JSONL is read `BLOCK_SIZE` bytes at a time, a line
longer than MAX_LINE_BYTES is skipped to its end without being held, and a compressed file is
decompressed as a stream and stops at `decompressed_limit`. What is not read becomes a row
with an error (the quarantine's file, line and reason): an oversize line, the rest of a file
that is truncated, corrupt or a compression bomb (its complete lines before that still load),
a file reached through a link that leads out of the landing zone.
"""

from __future__ import annotations

import hashlib
import os
import re
import zlib
from collections.abc import Generator, Iterator
from datetime import date
from pathlib import Path
from typing import BinaryIO, Protocol

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from feedback_pipelines.ingest.records import MAX_LINE_BYTES, RAW_KEEP_CHARS

SOURCES = ("traces", "feedback")
OTLP_SUFFIX = ".otlp.json"
SUFFIXES = (".jsonl", ".jsonl.gz", ".json.gz", ".parquet", OTLP_SUFFIX)
LINES_SCHEMA = pa.schema(
    [("file", pa.string()), ("line", pa.int64()), ("text", pa.string()), ("error", pa.string())]
)
# Bytes read per block: bounds memory whatever the size of a file (with MAX_LINE_BYTES: a block
# holds at most this plus the start of a line carried over from the block before).
BLOCK_SIZE = 16 << 20
# A compressed file may expand to MAX_COMPRESSION_RATIO times its size, and always to
# MIN_DECOMPRESSED_LIMIT; past that it is a compression bomb and the rest of it is not read.
# JSONL gzips 4-7x (the generated data), up to ~100x when each line repeats a 10-25 KB prompt
# (gzip -9; measured); gzip tops out near 1,000x, where bombs sit. Memory does not depend on
# this (files are streamed): it bounds the time, disk and bad lines a small file can cost.
MAX_COMPRESSION_RATIO = 200
MIN_DECOMPRESSED_LIMIT = 64 << 20
# The quarantine reason of a file reached through a link that leads out of the landing zone.
REFUSED_LINK = "refused file: a link to outside the landing zone (not read)"
# A byte that cannot occur in a JSON line (control characters must be escaped in JSON), used
# as the CSV "delimiter" so each physical line is read as one field.
_NO_DELIMITER = "\x1f"
_PARSE = pacsv.ParseOptions(
    delimiter=_NO_DELIMITER, quote_char=False, escape_char=False, ignore_empty_lines=False
)
_CONVERT = pacsv.ConvertOptions(column_types={"text": pa.binary()})
# zlib's window bits for "a gzip or zlib header, detected"; compressed bytes per inflate call,
# decompressed bytes out of one at most, and compressed bytes per call after an error (to find
# what comes before the damage).
_GZIP_OR_ZLIB = 32 + zlib.MAX_WBITS
_INFLATE_INPUT = 1 << 20
_INFLATE_OUTPUT = 1 << 18
_DAMAGE_STEP = 256
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


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


def is_day(text: str) -> bool:
    """Whether `text` is a date written `YYYY-MM-DD` (a `dt=` folder's name, less `dt=`)."""
    if not _DAY.fullmatch(text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _day_folders(landing: Path) -> Iterator[tuple[str, Path, bool]]:
    """Every `dt=` entry of each source: (source, entry, whether it is a valid day folder)."""
    for source in SOURCES:
        root = landing / source
        if root.is_dir():
            for entry in sorted(root.glob("dt=*")):
                yield source, entry, entry.is_dir() and is_day(entry.name[3:])


def landed_partitions(landing: Path) -> dict[str, str]:
    """Every `dt=` folder with files, mapped to a fingerprint of its files (names, sizes, mtimes).

    The sensor compares fingerprints between ticks: a new or changed file changes the day's.
    Entries that are not a folder named for a real day are left out (see `invalid_folders`).
    """
    found: dict[str, list[str]] = {}
    for source, folder, valid in _day_folders(landing):
        if not valid:
            continue
        ds = folder.name[3:]
        for p in sorted(folder.iterdir()):
            if p.is_file() and p.name.endswith(SUFFIXES):
                st = p.stat()
                found.setdefault(ds, []).append(f"{source}/{p.name}:{st.st_size}:{st.st_mtime_ns}")
    return {
        ds: hashlib.sha1("\n".join(sorted(v)).encode()).hexdigest()[:16] for ds, v in found.items()
    }


def invalid_folders(landing: Path) -> list[str]:
    """The `dt=` entries no day will ever read, as `source/dt=...`, sorted.

    A folder named for no real day (`dt=2026-13-45`, `dt=..`, `dt=20261120`) or a file named
    like a day folder: their files would wait for ever, so the sensor reports them.
    """
    return sorted(f"{s}/{entry.name}" for s, entry, valid in _day_folders(landing) if not valid)


def read_lines(paths: list[Path], root: Path) -> pa.Table:
    """All lines of the files as one table (see `iter_line_batches`)."""
    batches = [b for p in paths for b in iter_line_batches(p, root)]
    return pa.concat_tables(batches) if batches else LINES_SCHEMA.empty_table()


def iter_line_batches(
    path: Path, root: Path, block_size: int | None = None, source: str = "traces"
) -> Iterator[pa.Table]:
    """The lines of one file as (file, line, text, error) tables of bounded size.

    `file` is relative to `root`; blank lines are skipped but counted, so `line` is the line
    number a person sees in an editor. A line that cannot be read (bad UTF-8, too long) has its
    `error` set and its text decoded with replacement characters (only its start if too long);
    a compressed file that stops early (truncated, corrupt, or expanding past
    `decompressed_limit`) keeps its complete lines and ends with one row for the rest; a file
    that cannot be read at all, or is a link leading out of `root`, yields one row with line 0.
    """
    name = str(path.relative_to(root))
    try:
        # The file is opened where it resolves to, once that is known to be in the zone (a link
        # changed in between is not followed). Where it leads is not written down: that would
        # leak a name from outside.
        real = path.resolve()
        if not real.is_relative_to(root.resolve()):
            yield _rows(name, [0], [""], [REFUSED_LINK])
            return
        if path.name.endswith(".parquet"):
            yield _read_parquet(real, name)
        elif path.name.endswith(OTLP_SUFFIX):
            # OTLP JSON (the Collector's file exporter): converted to contract records of this
            # source, each keeping the line number it came from (and the file's own name).
            from feedback_pipelines.sources.otlp import landing_lines

            rows = landing_lines(path, source)
            yield _rows(name, [n for n, _ in rows], [t for _, t in rows], [None] * len(rows))
        else:
            yield from _read_jsonl(real, name, block_size or BLOCK_SIZE)
    except (OSError, EOFError, pa.ArrowInvalid, duckdb.Error) as exc:
        yield _rows(name, [0], [""], [f"unreadable file: {type(exc).__name__}: {exc}"[:500]])


def decompressed_limit(compressed_bytes: int) -> int:
    """How many bytes a compressed file of this size may expand to (see MAX_COMPRESSION_RATIO)."""
    return max(MIN_DECOMPRESSED_LIMIT, MAX_COMPRESSION_RATIO * compressed_bytes)


def _read_jsonl(path: Path, name: str, block_size: int) -> Iterator[pa.Table]:
    """The lines of a JSONL file, gzipped or not, in memory bounded by the block size.

    The file is read `block_size` bytes at a time and cut after its last newline, so Arrow
    splits whole lines. The line still open at the cut is carried to the next block unless it is
    already longer than MAX_LINE_BYTES: then the reader skips to its end, keeping only its start.
    A compressed file that stops early keeps its complete lines; the unfinished one and all after
    it are one row, with the line and the uncompressed byte offset where they start.
    """
    max_line = MAX_LINE_BYTES
    too_long = f"line longer than {max_line:,} bytes"
    first = 1  # the number of the next line
    read = 0  # bytes read so far (decompressed)
    pending = b""  # the start of a line whose end is not read yet
    skipping: tuple[int, int, bytes] | None = None  # an oversize line: number, offset, start
    stopped: list[str] = []  # why a compressed file stopped early, if it did
    with open(path, "rb", buffering=0) as fh:
        reader: _Reader = fh
        if path.name.endswith(".gz"):
            reader = _Pieces(_inflate(fh, os.fstat(fh.fileno()).st_size, stopped))
        while True:
            # Arrow's pool recycles the blocks: no fresh pages to fault in for every block.
            block = pa.allocate_buffer(len(pending) + block_size)
            view = memoryview(block).cast("B")
            view[: len(pending)] = pending
            got = _fill(reader, view[len(pending) :])
            if not got:
                break
            read += got
            start, end = 0, len(pending) + got
            if skipping is not None:
                start = _find_newline(view, 0, end) + 1
                if not start:
                    continue
                yield _rows(name, [skipping[0]], [_head(skipping[2])], [too_long])
                first, skipping = skipping[0] + 1, None
            cut = max(start, _rfind_newline(view, start, end) + 1)
            if cut > start:
                first += yield from _block_lines(name, block.slice(start, cut - start), first)
            pending = view[cut:end].tobytes()
            if len(pending) > max_line:
                skipping = (first, read - len(pending), pending[:RAW_KEEP_CHARS])
                pending = b""
    if stopped:
        line, offset = skipping[:2] if skipping else (first, read - len(pending))
        error = (
            f"unreadable file: {stopped[0]}; the rest of the file, from line {line} "
            f"(uncompressed byte {offset:,}), is not read"
        )
        yield _rows(name, [line], [""], [error])
    elif skipping is not None:
        yield _rows(name, [skipping[0]], [_head(skipping[2])], [too_long])
    elif pending:
        yield from _block_lines(name, pa.py_buffer(pending), first)


class _Reader(Protocol):
    def readinto(self, view: memoryview, /) -> int | None: ...


def _fill(reader: _Reader, view: memoryview) -> int:
    """Read into `view` until it is full or the input ends; the bytes read."""
    n = 0
    while n < len(view):
        got = reader.readinto(view[n:])
        if not got:
            break
        n += got
    return n


def _find_newline(view: memoryview, start: int, end: int, step: int = 1 << 16) -> int:
    """The position of the first newline in view[start:end], or -1."""
    for lo in range(start, end, step):
        i = view[lo : min(lo + step, end)].tobytes().find(b"\n")
        if i >= 0:
            return lo + i
    return -1


def _rfind_newline(view: memoryview, start: int, end: int, step: int = 1 << 16) -> int:
    """The position of the last newline in view[start:end], or -1."""
    for hi in range(end, start, -step):
        lo = max(start, hi - step)
        i = view[lo:hi].tobytes().rfind(b"\n")
        if i >= 0:
            return lo + i
    return -1


class _Pieces:
    """`readinto` over an iterator of byte strings (the decompressed pieces of a file)."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self._pieces = pieces
        self._rest = memoryview(b"")

    def readinto(self, view: memoryview) -> int:
        n = 0
        while n < len(view):
            if not self._rest:
                piece = next(self._pieces, b"")
                if not piece:
                    break
                self._rest = memoryview(piece)
            k = min(len(self._rest), len(view) - n)
            view[n : n + k] = self._rest[:k]
            self._rest = self._rest[k:]
            n += k
        return n


def _inflate(fh: BinaryIO, size: int, stopped: list[str]) -> Iterator[bytes]:
    """The bytes of a gzip file of `size` bytes, decompressed in pieces of bounded size.

    Stops early, saying why in `stopped`, past `decompressed_limit(size)` bytes, at the end of
    truncated data, or at corrupt data: after an error, the data since the last good call is
    decoded again in small steps, so what comes before the damage is kept. Members of a
    concatenated gzip file follow each other; zero bytes padding the end are ignored (as `gzip`
    does).
    """
    limit = decompressed_limit(size)
    inflater = zlib.decompressobj(_GZIP_OR_ZLIB)
    data = b""  # compressed bytes read and not decoded yet (what precedes fh.tell())
    step = _INFLATE_INPUT
    full = False  # the last call filled its output: more may come without new input
    produced = 0
    while True:
        if not data and not full:
            data = fh.read(step)
            if not data:
                if not inflater.eof:
                    stopped.append("compressed data ends early (truncated file?)")
                return
        if inflater.eof:
            data = data.lstrip(b"\0")
            if not data:
                continue
            inflater = zlib.decompressobj(_GZIP_OR_ZLIB)  # the next member
        want = min(_INFLATE_OUTPUT, limit + 1 - produced)
        before = inflater.copy()
        try:
            out = inflater.decompress(data, want)
        except zlib.error as exc:
            if step == _DAMAGE_STEP:
                stopped.append(f"corrupt compressed data ({exc})")
                return
            # Again from the last good state, a few bytes at a time: up to the damage.
            inflater, step, full = before, _DAMAGE_STEP, False
            fh.seek(-len(data), os.SEEK_CUR)
            data = b""
            continue
        data = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
        full = len(out) == want
        produced += len(out)
        if produced > limit:
            if head := out[: len(out) - (produced - limit)]:
                yield head
            stopped.append(
                f"decompresses to more than {limit:,} bytes, the limit for a {size:,}-byte file "
                f"({MAX_COMPRESSION_RATIO}x its size, at least {MIN_DECOMPRESSED_LIMIT:,})"
            )
            return
        if out:
            yield out


def _head(raw: bytes) -> str:
    """The start of an oversize line, as text for the quarantine."""
    return raw[:RAW_KEEP_CHARS].decode("utf-8", errors="replace")


def _block_lines(name: str, block: pa.Buffer, first: int) -> Generator[pa.Table, None, int]:
    """Yield the lines of a block of whole lines as tables; return how many lines it held."""
    try:
        table = pacsv.read_csv(
            pa.BufferReader(block),
            # One thread: the caller reads ahead on its own thread while DuckDB works, and
            # Arrow's parallel CSV parsing costs about twice the CPU for this one-column split.
            read_options=pacsv.ReadOptions(
                column_names=["text"], block_size=block.size + 1, use_threads=False
            ),
            parse_options=_PARSE,
            convert_options=_CONVERT,
        )
        columns = table.column(0).chunks
    except pa.ArrowInvalid:
        # A line holding the separator byte (or no line at all): this block is split here.
        data = block.to_pybytes()
        raw = [r.rstrip(b"\r") for r in data.split(b"\n")]
        if data.endswith(b"\n"):
            raw.pop()
        columns = [pa.array(raw, pa.binary())]
    count = 0
    for column in columns:
        yield _lines_table(name, column, first + count)
        count += len(column)
    return count


def _lines_table(name: str, column: pa.Array, first: int) -> pa.Table:
    n = len(column)
    too_long = pc.greater(pc.binary_length(column), MAX_LINE_BYTES)
    long_error = f"line longer than {MAX_LINE_BYTES:,} bytes"
    if too_long.true_count:  # only the start of a long line is kept, for the quarantine
        column = pc.if_else(too_long, pc.binary_slice(column, 0, RAW_KEEP_CHARS), column)
    try:
        text = column.cast(pa.string())  # validates UTF-8 for the whole batch at once
        error = pc.if_else(too_long, pa.scalar(long_error), pa.scalar(None, pa.string()))
    except pa.ArrowInvalid:
        texts, errors = (
            zip(*(_decode(v) for v in column.to_pylist()), strict=True) if n else ((), ())
        )
        long = too_long.to_pylist()
        errors = [long_error if long[i] else e for i, e in enumerate(errors)]
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
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        text = raw.decode("utf-8", errors="replace")
        return text, f"invalid UTF-8 bytes at byte {exc.start} of the line"


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
