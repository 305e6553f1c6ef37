"""`tables.memory_limit`: lowers DuckDB's limit for a block and sets back what was there."""

from __future__ import annotations

import duckdb
import pytest

from feedback_pipelines.tables import memory_limit

SHOW = "SELECT current_setting('memory_limit')"


def _limit(conn: duckdb.DuckDBPyConnection) -> str:
    return conn.execute(SHOW).fetchone()[0]


def test_memory_limit_lowers_for_the_block_and_sets_back():
    with duckdb.connect() as conn:
        default = _limit(conn)
        with memory_limit(conn, "1GB"):
            assert _limit(conn) == "953.6 MiB"
        assert _limit(conn) == default
        with pytest.raises(RuntimeError), memory_limit(conn, "1GB"):
            raise RuntimeError("a failing read")
        assert _limit(conn) == default

        conn.execute("SET memory_limit = '500MB'")  # lower already: kept as it is
        with memory_limit(conn, "1GB"):
            assert _limit(conn) == "476.8 MiB"
        assert _limit(conn) == "476.8 MiB"

        conn.execute("SET memory_limit = '4GB'")  # set higher by someone: lowered, then back
        with memory_limit(conn, "1GB"):
            assert _limit(conn) == "953.6 MiB"
        assert _limit(conn) == "3.7 GiB"  # set back as shown (to within 0.1 GiB)
