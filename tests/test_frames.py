"""DuckDB results read through Arrow: the types .df() gives, text without a string per row."""

from __future__ import annotations

import duckdb
import pandas as pd
import pyarrow as pa

from cemlib.frames import fetch_frame, fetch_objects, own_buffers

QUERY = """
SELECT * FROM (VALUES
  ('a', 1, TIMESTAMP '2025-01-02 03:04:05', 1.5::DOUBLE, NULL::INT, DATE '2020-01-01', true),
  (NULL, 2, NULL, NULL, 3, NULL, NULL),
  ('a', 3, TIMESTAMP '2025-02-02 00:00:00', 2.0::DOUBLE, NULL, DATE '2020-01-02', false)
) t(s, i, ts, d, ni, dd, b) WHERE i > ?
"""


def test_objects_are_what_df_gives_with_one_string_per_distinct_value():
    con = duckdb.connect()
    con.execute("SELECT 1").fetchone()  # a half-read result on the connection is fine
    want = con.execute(QUERY, [0]).df()
    got = fetch_objects(con, QUERY, [0])
    pd.testing.assert_frame_equal(got, want)
    assert got["s"].iloc[0] is got["s"].iloc[2]  # shared, not one object per row
    assert got["s"].iloc[1] is None


def test_arrow_text_keeps_the_values_and_other_types():
    con = duckdb.connect()
    want = con.execute(QUERY, [0]).df()
    got = fetch_frame(con, QUERY, [0])
    assert str(got["s"].dtype) == "string"
    assert got["s"].tolist()[0] == "a" and got["s"].isna().tolist() == [False, True, False]
    pd.testing.assert_frame_equal(got.drop(columns="s"), want.drop(columns="s"))


def _addresses(array) -> set[int]:
    data = array.__arrow_array__()
    return {b.address for chunk in data.chunks for b in chunk.buffers() if b is not None}


def test_own_buffers_copies_a_column_out_of_the_duckdb_result():
    con = duckdb.connect()
    n = 200_000
    frame = fetch_frame(
        con,
        "SELECT lpad(i::VARCHAR, 10, '0') AS id, repeat('x', 50) || i AS other "
        f"FROM range({n}) r(i) ORDER BY i",
    )
    ids = frame["id"].array
    before = pa.total_allocated_bytes()
    own = own_buffers(ids)
    # DuckDB's result is not in pyarrow's pool: the copy is, 10 bytes of text an id and more
    assert pa.total_allocated_bytes() - before >= n * 10
    assert not _addresses(own) & _addresses(ids)  # nothing shared with the result
    assert own.dtype == ids.dtype and len(own) == n and own.__arrow_array__().num_chunks == 1
    assert own[0] == "0000000000" and own[n - 1] == f"{n - 1:010d}"
    assert (pd.Series(own) == pd.Series(ids)).all()
    series = own_buffers(frame["id"].rename("x"))
    assert series.name == "x" and series.index.equals(frame.index)
    plain = pd.array([1, 2, 3])
    assert own_buffers(plain) is plain  # not Arrow: returned as it is
