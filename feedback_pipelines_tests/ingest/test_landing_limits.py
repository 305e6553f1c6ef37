"""Nothing lost, nothing leaked: oversize lines, compression bombs, damaged gzip, links out of
the landing zone and misnamed day folders, through the real `ingest_day` on DuckDB files."""

from __future__ import annotations

import gzip
import json
import logging
import os
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from feedback_pipelines.ingest import landing
from feedback_pipelines.ingest.day import ingest_day

DAY = "2026-11-20"


def trace(tid: str) -> dict:
    return {
        "trace_id": tid,
        "session_id": "s1",
        "user_id": "u1",
        "timestamp": "2026-11-20T09:00:00Z",
        "model_version": "nimbus-1",
        "messages": [{"role": "user", "content": f"question for {tid}"}],
        "response": f"answer {tid}",
    }


def lines_of(*tids: str) -> bytes:
    return b"".join(json.dumps(trace(t)).encode() + b"\n" for t in tids)


def put(root: Path, name: str, data: bytes, source: str = "traces", ds: str = DAY) -> Path:
    folder = root / source / f"dt={ds}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path


def ingest(tmp_path: Path, root: Path) -> tuple[list[str], list[tuple]]:
    """Ingest DAY; the trace ids loaded and the quarantine rows (file, line, error, raw)."""
    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    try:
        ingest_day(conn, root, DAY, "test-key")
        loaded = [r[0] for r in conn.execute("SELECT trace_id FROM traces ORDER BY 1").fetchall()]
        quarantined = conn.execute(
            "SELECT file, line, error, raw FROM quarantine ORDER BY file, line"
        ).fetchall()
    finally:
        conn.close()
    return loaded, quarantined


def ids(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i:02d}" for i in range(1, n + 1)]


def test_a_200_mb_line_is_quarantined_and_the_rest_of_the_day_loads(tmp_path):
    root = tmp_path / "landing"
    big = b'{"trace_id": "huge", "response": "' + b"x" * (200 << 20) + b'"}\n'
    put(root, "a.jsonl", lines_of("a1", "a2") + big + lines_of("a3"))
    put(root, "b.jsonl", lines_of("b1"))
    loaded, quarantined = ingest(tmp_path, root)
    assert loaded == ["a1", "a2", "a3", "b1"]
    ((file, line, error, raw),) = quarantined
    assert (file, line) == (f"traces/dt={DAY}/a.jsonl", 3)
    assert error == "line longer than 2,000,000 bytes"
    assert raw.startswith('{"trace_id": "huge"') and len(raw) <= 2000


@pytest.mark.parametrize("block_size", [1000, landing.BLOCK_SIZE])
@pytest.mark.parametrize("gz", [False, True])
def test_oversize_lines_keep_their_numbers_whatever_the_blocks(
    tmp_path, monkeypatch, block_size, gz
):
    """With a small line limit: lines over it, across and within read blocks, at the end."""
    monkeypatch.setattr(landing, "MAX_LINE_BYTES", 5000)
    monkeypatch.setattr(landing, "BLOCK_SIZE", block_size)
    root = tmp_path / "landing"
    long = b'{"x": "' + b"y" * 20_000 + b'"}\n'
    data = lines_of("t1") + long + long + b"\n" + lines_of("t2", "t3") + long.rstrip(b"\n")
    name = "a.jsonl.gz" if gz else "a.jsonl"
    path = put(root, name, gzip.compress(data) if gz else data)
    # What goes on to DuckDB holds only the start of a long line.
    texts = [t for b in landing.iter_line_batches(path, root) for t in b.column("text").to_pylist()]
    assert max(map(len, texts)) <= 2000
    loaded, quarantined = ingest(tmp_path, root)
    assert loaded == ["t1", "t2", "t3"]
    assert [(line, error) for _, line, error, _ in quarantined] == [
        (n, "line longer than 5,000 bytes") for n in (2, 3, 7)
    ]
    assert all(raw.startswith('{"x": "yyy') for *_, raw in quarantined)


def test_a_gzip_bomb_keeps_the_lines_before_it_and_quarantines_the_rest(tmp_path, monkeypatch):
    """64 MiB of zeros in a 64 KB file, read up to 8 MiB (100x, at least 8 MiB): not past that."""
    monkeypatch.setattr(landing, "MAX_COMPRESSION_RATIO", 100, raising=False)
    monkeypatch.setattr(landing, "MIN_DECOMPRESSED_LIMIT", 8 << 20, raising=False)
    root = tmp_path / "landing"
    good = lines_of(*ids("t", 17))
    bomb = gzip.compress(good + b"\0" * (64 << 20) + b"\n" + lines_of("after"))
    assert len(bomb) < 100_000
    put(root, "bomb.jsonl.gz", bomb)
    put(root, "plain.jsonl", lines_of("p1"))
    loaded, quarantined = ingest(tmp_path, root)
    assert loaded == ["p1", *ids("t", 17)]
    ((file, line, error, _),) = quarantined
    assert (file, line) == (f"traces/dt={DAY}/bomb.jsonl.gz", 18)
    assert error.startswith("unreadable file: decompresses to more than 8,388,608 bytes")
    assert f"from line 18 (uncompressed byte {len(good):,})" in error


def test_a_truncated_gzip_keeps_every_complete_line(tmp_path):
    root = tmp_path / "landing"
    good = lines_of(*ids("t", 17))
    # The 18th line is incompressible, so cutting the file in its middle cuts that line.
    last = json.dumps(trace("t18") | {"response": os.urandom(50_000).hex()}).encode() + b"\n"
    whole = gzip.compress(good + last)
    cut = whole[: len(whole) * 2 // 3]
    put(root, "cut.jsonl.gz", cut)
    loaded, quarantined = ingest(tmp_path, root)
    assert loaded == ids("t", 17)
    ((file, line, error, raw),) = quarantined
    assert (file, line, raw) == (f"traces/dt={DAY}/cut.jsonl.gz", 18, "")
    assert error.startswith("unreadable file: compressed data ends early")
    assert f"from line 18 (uncompressed byte {len(good):,})" in error


@pytest.mark.parametrize("damage", ["bad second member", "bytes overwritten"])
def test_corrupt_gzip_keeps_the_lines_before_the_damage(tmp_path, damage):
    root = tmp_path / "landing"
    good = lines_of(*ids("t", 17))
    rest = lines_of(*ids("r", 30))
    if damage == "bad second member":  # gzip members follow each other; the second is bad
        data = gzip.compress(good) + b"\x1f\x8c" + gzip.compress(rest)[2:]
    else:  # deflate data overwritten; zlib sees it at once or at the end (its CRC)
        member = bytearray(gzip.compress(good + rest))
        member[-40:-30] = b"\xff" * 10
        data = bytes(member)
    put(root, "bad.jsonl.gz", data)
    loaded, quarantined = ingest(tmp_path, root)
    kept = [t for t in loaded if t.startswith("r")]
    assert sorted(set(loaded) - set(kept)) == ids("t", 17)
    assert kept == ids("r", len(kept)) and len(kept) < 30  # the lines before the damage
    ((_, line, error, _),) = quarantined
    assert error.startswith("unreadable file: corrupt compressed data")
    assert line == 18 + len(kept)
    if damage == "bad second member":
        assert f"from line 18 (uncompressed byte {len(good):,})" in error


@pytest.mark.parametrize("how", ["absolute link", "relative link with ..", "linked day folder"])
def test_a_link_out_of_the_landing_zone_is_refused(tmp_path, how):
    root = tmp_path / "landing"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.jsonl").write_bytes(lines_of("secret"))
    put(root, "ok.jsonl", lines_of("ok"))
    folder = root / "traces" / f"dt={DAY}"
    if how == "absolute link":
        (folder / "evil.jsonl").symlink_to(outside / "secret.jsonl")
        name = f"traces/dt={DAY}/evil.jsonl"
    elif how == "relative link with ..":
        (folder / "evil.jsonl").symlink_to(Path("../../../outside/secret.jsonl"))
        assert (folder / "evil.jsonl").read_bytes()  # the link does lead to the file
        name = f"traces/dt={DAY}/evil.jsonl"
    else:
        (root / "feedback").mkdir()
        (root / "feedback" / f"dt={DAY}").symlink_to(outside, target_is_directory=True)
        (outside / "secret.jsonl").write_bytes(
            json.dumps(
                {"feedback_id": "f1", "trace_id": "ok", "timestamp": "2026-11-20T09:00:00Z"}
                | {"kind": "thumbs_up"}
            ).encode()
            + b"\n"
        )
        name = f"feedback/dt={DAY}/secret.jsonl"
    loaded, quarantined = ingest(tmp_path, root)
    assert loaded == ["ok"]
    ((file, line, error, raw),) = quarantined
    assert (file, line, raw) == (name, 0, "")
    assert error.startswith("refused file: a link to outside the landing zone")
    assert str(outside) not in error  # where it leads is not written to the warehouse
    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    assert conn.execute("SELECT count(*) FROM feedback_events").fetchall() == [(0,)]
    conn.close()


def test_links_inside_the_landing_zone_and_a_linked_root_still_load(tmp_path):
    real = tmp_path / "real-landing"
    put(real, "a.jsonl", lines_of("a1"))
    (real / "traces" / f"dt={DAY}" / "b.jsonl").symlink_to(Path("a.jsonl"))
    put(real, "c.jsonl", lines_of("c1"), ds="2026-11-19")
    (real / "traces" / f"dt={DAY}" / "c.jsonl").symlink_to(Path("..") / "dt=2026-11-19" / "c.jsonl")
    root = tmp_path / "landing"
    root.symlink_to(real, target_is_directory=True)
    loaded, quarantined = ingest(tmp_path, root)
    assert loaded == ["a1", "c1"]
    assert quarantined == []


def test_misnamed_day_folders_are_reported_once(tmp_path, monkeypatch):
    from feedback_pipelines.definitions import defs

    definitions = defs()
    sensor = definitions.resolve_sensor_def("landing_sensor")
    monkeypatch.setenv("FEEDBACK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("FEEDBACK_LANDING_DIR", raising=False)
    # The definitions bind the key by EnvVar when it was set as they loaded (earlier tests).
    monkeypatch.setenv("FEEDBACK_PSEUDONYM_KEY", "test-secret-key")
    root = tmp_path / "data" / "landing"
    put(root, "a.jsonl", lines_of("t1"))
    put(root, "a.jsonl", lines_of("t2"), ds="2026-13-45")
    put(root, "a.jsonl", lines_of("t3"), ds="20261120")  # Python's fromisoformat takes it
    (root / "feedback" / "dt=..").mkdir(parents=True)
    (root / "feedback" / "dt=2026-11-21").write_bytes(b"a file, not a folder")
    bad = ["feedback/dt=..", "feedback/dt=2026-11-21", "traces/dt=2026-13-45", "traces/dt=20261120"]

    def tick(cursor):
        records: list[logging.LogRecord] = []
        handler = logging.Handler()
        handler.emit = records.append
        with dg.DagsterInstance.ephemeral() as instance:
            context = dg.build_sensor_context(
                instance=instance,
                cursor=cursor,
                definitions=definitions,
                resources=definitions.resources,
            )
            context.log.addHandler(handler)  # the sensor's log, as the UI shows it
            result = sensor.evaluate_tick(context)
        warned = [r.getMessage() for r in records if r.levelno == logging.WARNING]
        return [r.partition_key for r in result.run_requests], warned, result.cursor

    runs, warned, cursor = tick(None)
    assert runs == [DAY]
    assert len(warned) == 1 and all(folder in warned[0] for folder in bad)
    runs, warned, cursor = tick(cursor)
    assert (runs, warned) == ([], [])  # reported once, not on every tick
    # A new bad folder is reported, alone; one fixed and broken again is reported again.
    (root / "traces" / "dt=2026-02-30").mkdir()
    runs, warned, cursor = tick(cursor)
    assert len(warned) == 1 and "traces/dt=2026-02-30" in warned[0]
    assert "traces/dt=2026-13-45" not in warned[0]
    # The pure functions the sensor uses.
    assert landing.invalid_folders(root) == sorted([*bad, "traces/dt=2026-02-30"])
    assert list(landing.landed_partitions(root)) == [DAY]


def test_refused_and_unreadable_files_have_their_own_report_category():
    from feedback_pipelines.ingest.records import quarantine_category_sql

    errors = [
        "refused file: a link to outside the landing zone (not read)",
        "unreadable file: decompresses to more than 64 bytes from line 3 (uncompressed byte 9)",
    ]
    con = duckdb.connect()
    rows = con.execute(
        f"SELECT {quarantine_category_sql()} FROM (SELECT unnest(?) AS error)", [errors]
    ).fetchall()
    assert [r[0] for r in rows] == ["refused file", "unreadable file"]
