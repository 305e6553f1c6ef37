"""The content-hash vector tables every stage shares (`feedback_pipelines.vector_tables`)."""

from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pytest

from feedback_pipelines.recall.embeddings import read_day_vectors, write_day
from feedback_pipelines.schema import TEXT_VECTORS, TEXT_VECTORS_DDL
from feedback_pipelines.vector_tables import read_vectors, save_vectors, vector_array


def test_round_trip_keeps_first_vector_and_reads_only_what_is_held(tmp_path):
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    assert read_vectors(conn, TEXT_VECTORS, ["a"]) == {}  # no table yet: nothing held
    rng = np.random.default_rng(0)
    first = {h: rng.standard_normal(8).astype(np.float32) for h in ("a", "b", "c")}
    assert save_vectors(conn, TEXT_VECTORS, TEXT_VECTORS_DDL, "m", first) == 3
    again = {"a": np.zeros(8, dtype=np.float32), "d": np.ones(8, dtype=np.float32)}
    save_vectors(conn, TEXT_VECTORS, TEXT_VECTORS_DDL, "m", again)
    got = read_vectors(conn, TEXT_VECTORS, ["a", "d", "zz", "a"])
    assert sorted(got) == ["a", "d"]
    np.testing.assert_array_equal(got["a"], first["a"])  # the first vector of a hash is kept
    np.testing.assert_array_equal(got["d"], again["d"])
    assert got["a"].dtype == np.float32
    assert conn.execute(f"SELECT count(*) FROM {TEXT_VECTORS}").fetchone()[0] == 4


def test_reads_one_vector_per_hash_from_a_table_with_repeats(tmp_path):
    """`feedback_embeddings` holds a row per event: many rows share a hash."""
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    conn.execute("CREATE TABLE e (text_hash VARCHAR, vector FLOAT[])")
    conn.execute("INSERT INTO e VALUES ('h', [1, 2]), ('h', [1, 2]), ('g', [3, 4])")
    got = read_vectors(conn, "e", ["h", "g"])
    assert {h: v.tolist() for h, v in got.items()} == {"h": [1.0, 2.0], "g": [3.0, 4.0]}


def test_a_day_of_vectors_is_written_as_one_arrow_column_bit_for_bit(tmp_path):
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((5, 8)).astype(np.float32)
    frame = pd.DataFrame(
        {
            "ds": [date(2026, 11, 20)] * 5,
            "feedback_id": [f"f{k}" for k in range(5)],
            "model_id": "m",
            "text_hash": [f"h{k}" for k in range(5)],
            "text": [f"text {k}" for k in range(5)],
            "vector": list(vectors),
        }
    )
    assert write_day(conn, "2026-11-20", frame, 8) == 5
    back = read_day_vectors(conn, "2026-11-20")
    np.testing.assert_array_equal(np.stack(back["vector"]), vectors)
    assert write_day(conn, "2026-11-20", frame.iloc[:0], 8) == 0  # an empty day empties it
    assert read_day_vectors(conn, "2026-11-20").empty
    with pytest.raises(ValueError, match="6-d vectors where 8-d"):
        vector_array([np.zeros(6, np.float32)], 8)
    with pytest.raises(ValueError):  # rows of different lengths
        vector_array([np.zeros(6, np.float32), np.zeros(8, np.float32)])
