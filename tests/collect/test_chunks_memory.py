"""The collection's memory cap (``chunks.capped_memory``): DuckDB spills past it, and leaving
the block after a spill restores what can be restored."""

from __future__ import annotations

import duckdb

from cemlib.collect.chunks import capped_memory


def test_leaving_the_cap_after_a_spill_restores_the_limit_and_keeps_the_folder(tmp_path):
    """A million-person collection spills; restoring ``temp_directory`` then raised "Cannot
    switch temporary directory after the current one has been used" and failed stage 00 after
    every table was loaded. The folder stays (DuckDB's rule), the memory limit comes back."""
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("SET threads = 1")
    before = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    spill = tmp_path / "spill"
    with capped_memory(con, "100MB", spill):
        con.execute(
            "CREATE TABLE t AS SELECT range AS i, md5(range::VARCHAR) AS s "
            "FROM range(2000000) ORDER BY s"
        )
        assert any(spill.iterdir())  # it did spill
    assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0] == before
    assert con.execute("SELECT count(*) FROM t").fetchone()[0] == 2_000_000
    # a cap that was never used to spill is taken back whole
    con2 = duckdb.connect(str(tmp_path / "w2.duckdb"))
    folder = con2.execute("SELECT current_setting('temp_directory')").fetchone()[0]
    with capped_memory(con2, "1GB", tmp_path / "unused"):
        con2.execute("CREATE TABLE u AS SELECT 1 AS x")
    assert con2.execute("SELECT current_setting('temp_directory')").fetchone()[0] == folder
