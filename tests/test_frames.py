"""DuckDB results read through Arrow: the types .df() gives, text without a string per row."""

from __future__ import annotations

import duckdb
import pandas as pd

from cemlib.frames import fetch_frame, fetch_objects

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
