"""The command line explains itself: help with examples, one clear line per error, no tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from feedback_pipelines.cli.main import main

COMMANDS = ("generate", "run", "summary", "search", "session", "import")


def _one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_examples(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out, out
    assert f"feedback-pipelines {command}" in out.split("examples:", 1)[1]
    from feedback_pipelines.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert sub.choices[command].description, command  # a paragraph, not only the usage


def test_top_level_help_and_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for command in COMMANDS:
        assert command in out
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith("feedback-pipelines 0.")


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["generate", "--days", "0", "--end", "2026-11-20"], "--days: must be at least 1"),
        (["generate", "--days", "x", "--end", "2026-11-20"], "not a whole number"),
        (["generate", "--days", "2", "--end", "2026-13-01"], "is not a day: use YYYY-MM-DD"),
        (["run", "--start", "2026-11-20"], "required: --end"),
        (["run", "--start", "20-11-2026", "--end", "2026-11-20"], "is not a day"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(argv, needle, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    line = _one_line_error(capsys.readouterr().err)
    assert needle in line and "--help" in line


def test_run_with_a_reversed_range_fails_at_once(pipeline_env, capsys):
    started = time.monotonic()
    assert main(["run", "--start", "2026-11-20", "--end", "2026-11-14"]) == 2
    assert time.monotonic() - started < 5
    line = _one_line_error(capsys.readouterr().err)
    assert "--start 2026-11-20 is after --end 2026-11-14" in line


def test_run_on_a_missing_data_directory_fails(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FEEDBACK_DATA_DIR", str(tmp_path / "nowhere"))
    monkeypatch.delenv("FEEDBACK_LANDING_DIR", raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    assert main(["run", "--start", "2026-06-01", "--end", "2026-06-01"]) == 2
    captured = capsys.readouterr()
    line = _one_line_error(captured.err)
    assert "no landing zone at" in line and "feedback-pipelines generate" in line
    assert "ok" not in captured.out


def test_run_on_days_without_input_fails_unless_allowed(pipeline_env, capsys):
    from feedback_pipelines_tests.fixtures.landing import feedback, trace, write

    write(pipeline_env, "traces", "2026-11-20", "a.jsonl", [trace("t1")])
    write(pipeline_env, "feedback", "2026-11-20", "a.jsonl", [feedback("f1", "t1")])
    assert main(["run", "--start", "2026-06-01", "--end", "2026-06-02"]) == 2
    line = _one_line_error(capsys.readouterr().err)
    assert "no input for 2026-06-01..2026-06-02" in line and "--allow-empty" in line
    assert "2026-11-20" in line  # what the landing zone does hold


def test_run_on_an_empty_landing_zone_fails(pipeline_env, capsys):
    (pipeline_env.landing / "feedback").mkdir(parents=True)
    assert main(["run", "--start", "2026-11-20", "--end", "2026-11-20"]) == 2
    assert "holds no input file" in _one_line_error(capsys.readouterr().err)


def test_run_with_a_bad_start_date_setting_fails(pipeline_env, monkeypatch, capsys):
    monkeypatch.setenv("FEEDBACK_START_DATE", "last year")
    assert main(["run", "--start", "2026-11-20", "--end", "2026-11-20"]) == 2
    assert "FEEDBACK_START_DATE='last year' is not a day" in _one_line_error(
        capsys.readouterr().err
    )


def test_run_outside_the_partitions_fails(pipeline_env, monkeypatch, capsys):
    monkeypatch.setenv("FEEDBACK_START_DATE", "2026-11-01")
    assert main(["run", "--start", "2026-10-30", "--end", "2026-11-02"]) == 2
    assert "FEEDBACK_START_DATE" in _one_line_error(capsys.readouterr().err)
    assert main(["run", "--start", "2026-11-02", "--end", "2999-01-01"]) == 2
    assert "not a partition yet" in _one_line_error(capsys.readouterr().err)


def test_summary_on_a_missing_directory_fails(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FEEDBACK_DATA_DIR", str(tmp_path / "nowhere"))
    assert main(["summary"]) == 1
    assert "no data directory at" in _one_line_error(capsys.readouterr().err)
    (tmp_path / "nowhere").mkdir()
    assert main(["summary"]) == 1
    assert "no warehouse" in _one_line_error(capsys.readouterr().err)


def test_an_unexpected_error_is_one_line_with_a_hint(pipeline_env, monkeypatch, capsys):
    import feedback_pipelines.sources.synthetic as synthetic

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(synthetic, "generate", boom)
    assert main(["generate", "--days", "1", "--end", "2026-11-20"]) == 1
    line = _one_line_error(capsys.readouterr().err)
    assert "disk full" in line and "-v" in line
    assert main(["-v", "generate", "--days", "1", "--end", "2026-11-20"]) == 1
    assert "Traceback" in capsys.readouterr().err  # -v shows it


def test_generate_says_what_to_run_next(tmp_path, capsys):
    out = tmp_path / "landing"
    assert main(["generate", "--days", "1", "--end", "2026-11-20", "--out", str(out),
                 "--events-per-day", "20"]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "next: feedback-pipelines run --start 2026-11-20 --end 2026-11-20" in text
    assert (out / "truth.json").exists()


HOLD_STORE = textwrap.dedent(
    """
    import sys, time
    from feedback_pipelines.vectorstore import open_store
    store = open_store(sys.argv[2], int(sys.argv[3]), path=sys.argv[1], backend="edge")
    print("holding", flush=True)
    time.sleep(120)
    """
)


def test_search_while_a_run_holds_the_store_is_one_clear_line(tmp_path, monkeypatch, capsys):
    from feedback_pipelines.embedding import get_embedder
    from feedback_pipelines.vectorstore import open_store

    monkeypatch.setenv("FEEDBACK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("FEEDBACK_EMBEDDER", "hash")
    monkeypatch.delenv("QDRANT_URL", raising=False)
    embedder = get_embedder("hash")
    store_path = tmp_path / "qdrant"
    open_store(embedder.model_id, embedder.dim, path=store_path, backend="edge").close()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_STORE, str(store_path), embedder.model_id, str(embedder.dim)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        code = main(["search", "refund please"])
    finally:
        holder.kill()
        holder.wait()
    assert code == 1
    line = _one_line_error(capsys.readouterr().err)
    assert "in use by another process" in line and str(store_path) in line
