import datetime as dt

import pandas as pd
import pytest

from cemlib.warehouse import SCHEMAS, Warehouse


def test_write_read_roundtrip_with_stamps(tmp_path):
    df = pd.DataFrame({"id": [1, 2, 3], "name": ["а", "б", "в"]})
    with Warehouse(tmp_path / "w.duckdb") as wh:
        n = wh.write_table("raw", "things", df, run_id="r1", as_of="2025-06-30")
        assert n == 3
        back = wh.read_table("raw", "things")
        assert back.to_dict("list") == {"id": [1, 2, 3], "name": ["а", "б", "в"]}
        stamped = wh.read_table("raw", "things", stamps=True)
        assert set(stamped["_run_id"]) == {"r1"}
        assert wh.stamp("raw", "things") == ("r1", dt.date(2025, 6, 30))
        assert set(SCHEMAS) <= set(
            wh.sql("SELECT schema_name FROM duckdb_schemas()")["schema_name"]
        )


def test_rewrite_replaces_whole_table(tmp_path):
    with Warehouse(tmp_path / "w.duckdb") as wh:
        wh.write_table("raw", "t", pd.DataFrame({"a": range(10)}), run_id="r1", as_of="2025-01-01")
        wh.write_table("raw", "t", pd.DataFrame({"a": range(4)}), run_id="r2", as_of="2025-01-02")
        assert len(wh.read_table("raw", "t")) == 4
        log = wh.read_table("meta", "table_log")
        assert list(log["n_rows"]) == [10, 4]


def test_write_tables_is_atomic(tmp_path):
    path = tmp_path / "w.duckdb"
    with Warehouse(path) as wh:
        wh.write_table("clean", "a", pd.DataFrame({"x": [1]}), run_id="old", as_of="2025-01-01")
    bad = pd.DataFrame({"x": [1]})
    with Warehouse(path) as wh, pytest.raises(ValueError):
        wh.write_tables(
            "clean",
            {"a": pd.DataFrame({"x": [1, 2]}), "bad name!": bad},
            run_id="new",
            as_of="2025-01-02",
        )
    with Warehouse(path, read_only=True) as wh:
        assert wh.stamp("clean", "a")[0] == "old"
        assert len(wh.read_table("clean", "a")) == 1


def test_missing_table_names_it(tmp_path):
    with Warehouse(tmp_path / "w.duckdb") as wh, pytest.raises(KeyError, match="marts.nothing"):
        wh.read_table("marts", "nothing")


def test_a_warehouse_another_process_holds_is_one_line_naming_it(tmp_path):
    import subprocess
    import sys
    import time

    from cemlib.errors import InputError

    path, marker = tmp_path / "cem.duckdb", tmp_path / "open"
    code = (f"import duckdb, pathlib, time; c = duckdb.connect({str(path)!r}); "
            f"pathlib.Path({str(marker)!r}).write_text('x'); time.sleep(60)")  # fmt: skip
    holder = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 30
        while not marker.is_file() and time.monotonic() < deadline:
            time.sleep(0.1)
        with pytest.raises(InputError) as err, Warehouse(path) as wh:
            wh.sql("SELECT 1")
        assert str(err.value).startswith(f"{path}: the warehouse is open in another process")
        assert f"(PID {holder.pid})" in str(err.value)
    finally:
        holder.kill()
        holder.wait()


def test_a_stage_on_a_mistyped_path_leaves_no_empty_warehouse(tmp_path):
    """Stages after collect open with ``create=False``: a missing file is one InputError line and
    no empty DuckDB file (nor its folder) appears at the mistyped path."""
    from cemlib.engine.lake import open_store
    from cemlib.errors import InputError

    typo = tmp_path / "dta" / "cem.duckdb"
    with pytest.raises(InputError, match="no warehouse at this path") as err:
        _ = Warehouse(typo, create=False).con
    assert str(typo) in str(err.value)
    with pytest.raises(InputError, match="collect stage"):
        _ = open_store("duckdb", typo).con
    with pytest.raises(InputError):
        _ = Warehouse(typo, read_only=True).con
    assert not typo.exists() and not typo.parent.exists()
    Warehouse(typo).con.execute("SELECT 1")  # collect's default still creates it
    assert typo.is_file()
