"""The memory budget of a stage: sizes, the estimate from row counts, the refusal before a
stage starts, and the run config's memory_limit / temp_directory reaching DuckDB."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from cemlib import budget
from cemlib.cli import main
from cemlib.errors import InputError
from cemlib.pipeline import load_config
from cemlib.pipeline.runner import RunResult
from cemlib.pipeline.stages import STAGES
from cemlib.warehouse import Warehouse
from tests.pipeline.conftest import OK_CELLS, write_notebook

GIB = 1024**3


def _setting(con, name: str) -> str:
    return con.execute(f"SELECT current_setting('{name}')").fetchone()[0]


def test_sizes_parse_in_decimal_binary_units_and_shares_of_ram():
    assert budget.parse_size("12GB") == 12 * 1000**3
    assert budget.parse_size("12 GiB") == 12 * GIB
    assert budget.parse_size("800MB") == 800 * 1000**2
    assert budget.parse_size(2_000_000) == 2_000_000
    assert budget.parse_size("50%") == pytest.approx(budget.machine_memory() / 2, rel=1e-6)
    for bad in ("lots", "12 parsecs", "0GB", "150%", -5, True):
        with pytest.raises(ValueError):
            budget.parse_size(bad)


def test_calibration_is_the_line_through_two_measured_sizes():
    cost = budget.calibrate([(100_000, 1.0 * GIB), (1_100_000, 3.0 * GIB)], ("x.y",), margin=1.0)
    assert cost.bytes_per_row == pytest.approx(2 * GIB / 1_000_000)
    assert cost.fixed == pytest.approx(0.8 * GIB)
    assert cost.fixed + cost.bytes_per_row * 2_100_000 == pytest.approx(5.0 * GIB)
    raised = budget.calibrate([(100_000, 1.0 * GIB), (1_100_000, 3.0 * GIB)], ("x.y",))
    assert raised.estimate(2_100_000) > 5.0 * GIB  # errs towards refusing
    with pytest.raises(ValueError):
        budget.calibrate([(10, 1.0)], ("x.y",))


def test_estimate_runs_through_three_measured_sizes_and_errs_upward_past_them():
    # a stage whose cost flattens: 1 GiB at 100k rows, 3 GiB at 1.1M, 7 GiB at 5.1M (not 9)
    pts = [(100_000, 1.0 * GIB), (1_100_000, 3.0 * GIB), (5_100_000, 7.0 * GIB)]
    cost = budget.calibrate(pts, ("x.y",))
    for rows, peak in pts:  # at a measured size: the peak raised by the run-to-run spread
        assert cost.estimate(rows) == pytest.approx(budget.NOISE * peak)
    # between sizes: on the segment between them
    assert cost.estimate(2_100_000) == pytest.approx(budget.NOISE * 4.0 * GIB)
    # past the largest: the last segment's slope (1 GiB per 1M rows), raised
    beyond = budget.NOISE * (7.0 + budget.BEYOND * 1.0) * GIB
    assert cost.estimate(6_100_000) == pytest.approx(beyond)
    assert cost.estimate(6_100_000) > 8.0 * GIB


def test_the_stage_costs_hold_the_measured_million_below_twelve_gib_for_identity():
    """Issue 13: the line through 20,000 and 200,000 people put identity at a million at
    13.6 GiB against 10.83 measured, so memory_limit=12GiB refused a run that fits."""
    cost = budget.COSTS["02_profiles"]
    rows, peak = max(cost.points)
    assert peak == pytest.approx(10.83 * GIB)
    assert peak < cost.estimate(rows) < 12 * GIB
    for name, c in budget.COSTS.items():  # every measured peak is under its estimate
        for r, b in c.points:
            assert c.estimate(r) >= b, name


def test_estimate_counts_the_input_rows_of_the_warehouse(tmp_path):
    path = tmp_path / "cem.duckdb"
    with Warehouse(path) as wh:
        for name, n in (("crm_contacts", 3000), ("web_events", 7000)):
            wh.write_table(
                "clean", name, pd.DataFrame({"x": range(n)}), run_id="r", as_of="2025-06-30"
            )
    costs = {"02_profiles": budget.StageCost(("clean.crm_contacts", "clean.web_events",
                                              "clean.pos_receipts"), 1000.0, 10.0)}  # fmt: skip
    need, rows = budget.estimate("02_profiles", warehouse=path, costs=costs)
    assert rows == 10_000 and need == 1000.0 + 10.0 * 10_000
    # the stage before has not written its tables yet: no estimate, no refusal
    assert budget.estimate("02_profiles", warehouse=tmp_path / "none.duckdb", costs=costs) is None
    line = budget.refusal("02_profiles", 50_000, warehouse=path, costs=costs)
    assert line.startswith("does not fit: 02_profiles needs about 0 MiB for 10,000 input rows")
    assert "memory_limit is 0 MiB" in line and "raise memory_limit" in line
    assert budget.refusal("02_profiles", 200_000, warehouse=path, costs=costs) is None


def test_memory_limit_setting_is_checked_with_the_config():
    cfg = load_config(None, ["memory_limit=6GB", "temp_directory=/tmp/spill"])
    assert cfg.memory_limit == "6GB" and cfg.memory_limit_bytes == 6 * 1000**3
    assert cfg.to_dict()["memory_limit"] == "6GB"
    assert load_config(None, []).memory_limit_bytes == budget.default_memory_limit()
    with pytest.raises(InputError, match="'memory_limit'.*expected a size"):
        load_config(None, ["memory_limit=plenty"])


def test_a_stage_that_cannot_fit_is_refused_in_one_line_before_it_starts(tmp_path, capsys):
    nb_dir = tmp_path / "nb"
    write_notebook(nb_dir / "00_collect.ipynb", OK_CELLS)
    write_notebook(nb_dir / "01_quality.ipynb", OK_CELLS)
    out = tmp_path / "reports"
    code = main(
        ["run", "--notebooks", str(nb_dir), "--out", str(out), "--no-progress", "--stages", "00,01",
         "-p", "run_id=big", "-p", "n_people=1000000", "-p", "memory_limit=2GB",
         "-p", f"warehouse={tmp_path / 'cem.duckdb'}"]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 1
    lines = [ln for ln in printed.splitlines() if ln.startswith("[")]
    assert re.match(
        r"\[1/2\] 00_collect\s+failed\s+does not fit: 00_collect needs about \d+\.\d GiB for "
        r"1,000,000 people, memory_limit is 1\.9 GiB; raise memory_limit",
        lines[0],
    ), lines[0]
    assert "01_quality" in lines[1] and "skipped" in lines[1]
    run = RunResult.load(out / "big" / "run.json")
    assert [s.status for s in run.stages] == ["failed", "skipped"]
    assert not (out / "big" / "00_collect.ipynb").exists()  # the kernel never started


def test_a_stage_is_estimated_from_what_the_stages_before_wrote_in_the_same_run(tmp_path, capsys):
    """A fresh warehouse: 00 writes 2,345 staging rows into the run's working copy, and 01 is
    estimated from them (not from the published file, which does not exist yet) and refused
    with a tiny memory_limit before its kernel starts."""
    nb_dir = tmp_path / "nb"
    write_notebook(nb_dir / "00_collect.ipynb", [
        "import pandas as pd\nfrom cemlib.warehouse import Warehouse\n"
        "with Warehouse(warehouse) as wh:\n"
        "    for name, n in (('crm_contacts', 1234), ('order_lines', 1111)):\n"
        "        wh.write_table('staging', name, pd.DataFrame({'x': range(n)}),"
        " run_id=run_id, as_of=as_of)"
    ])  # fmt: skip
    write_notebook(nb_dir / "01_quality.ipynb", ["print('never reached')"])
    out = tmp_path / "reports"
    warehouse = tmp_path / "cem.duckdb"
    code = main(
        ["run", "--notebooks", str(nb_dir), "--out", str(out), "--no-progress", "--stages", "00,01",
         "-p", "run_id=tiny", "-p", "n_people=10", "-p", "memory_limit=600MB",
         "-p", f"warehouse={warehouse}"]
    )  # fmt: skip
    printed = capsys.readouterr().out
    lines = [ln for ln in printed.splitlines() if ln.startswith("[")]
    assert code == 1
    assert re.match(r"\[1/2\] 00_collect\s+ok", lines[0]), lines[0]
    need = budget.COSTS["01_quality"].estimate(2345)
    assert re.match(
        rf"\[2/2\] 01_quality\s+failed\s+does not fit: 01_quality needs about "
        rf"{budget.format_size(need)} for 2,345 input rows, memory_limit is 572 MiB; "
        "raise memory_limit",
        lines[1],
    ), lines[1]
    assert not (out / "tiny" / "01_quality.ipynb").exists()  # its kernel never started
    assert not warehouse.exists()  # a failed run publishes nothing


def test_every_stage_has_a_measured_cost():
    """A stage added to the pipeline without a cost would never be refused: its kernel could
    die in the OOM killer instead."""
    from cemlib.pipeline.stages import STAGES

    assert sorted(budget.COSTS) == sorted(s.name for s in STAGES)
    for name, cost in budget.COSTS.items():
        assert cost.fixed > 0 and cost.bytes_per_row > 0, name
        assert cost.measured, name


def test_memory_limit_and_temp_directory_reach_the_stage_kernels_duckdb(tmp_path):
    nb_dir = tmp_path / "nb"
    spill = tmp_path / "spill"
    cell = (
        "import duckdb, os\n"
        "from cemlib.budget import configure_duckdb, MEMORY_ENV, TEMP_ENV\n"
        "from cemlib.reports import save_headlines\n"
        "con = duckdb.connect()\n"
        "configure_duckdb(con)\n"
        "get = lambda n: con.execute(f\"SELECT current_setting('{n}')\").fetchone()[0]\n"
        "save_headlines(headlines_path, {'budget': os.environ[MEMORY_ENV], 'tmp': get('temp_directory'),"
        " 'duckdb': get('memory_limit')})"
    )
    write_notebook(nb_dir / "00_collect.ipynb", [cell])
    cfg = load_config(
        None,
        ["run_id=env", "n_people=10", "memory_limit=8GiB", f"temp_directory={spill}"],
        notebooks_dir=str(nb_dir), out=str(tmp_path / "reports"), stages="00",
    )  # fmt: skip
    from cemlib.pipeline import run_pipeline

    run = run_pipeline(cfg, progress=False)
    assert run.exit_code == 0, run.stages[0].error
    got = json.loads((tmp_path / "reports/env/00_collect.headlines.json").read_text())
    assert got["budget"] == str(8 * GIB)
    assert got["tmp"] == str(spill)
    assert got["duckdb"] == "2.0 GiB"  # DUCKDB_SHARE of 8 GiB
    assert budget.MEMORY_ENV not in __import__("os").environ  # restored after the stage


def test_stage_connection_gets_its_share_and_spill_folder(tmp_path, monkeypatch):
    """A real stage (quality) sets the warehouse connection from the kernel's budget."""
    monkeypatch.setenv(budget.MEMORY_ENV, str(4 * GIB))
    monkeypatch.setenv(budget.TEMP_ENV, str(tmp_path / "spill"))
    with Warehouse(tmp_path / "cem.duckdb") as wh:
        budget.configure_warehouse(wh)
        assert _setting(wh.con, "memory_limit") == "1.0 GiB"
        assert _setting(wh.con, "temp_directory") == str(tmp_path / "spill")
    monkeypatch.delenv(budget.TEMP_ENV)
    con = duckdb.connect(str(tmp_path / "other.duckdb"))
    budget.configure_duckdb(con, warehouse=tmp_path / "other.duckdb", cap="512MiB")
    assert _setting(con, "memory_limit") == "512.0 MiB"
    assert _setting(con, "temp_directory") == str(tmp_path / "other.duckdb.tmp")


def test_auto_cell_timeout_grows_with_the_stage_expected_duration(tmp_path):
    """Issue 13: the flat 1,800 s limit stopped the million-person identity stage (one cell ran
    1,247 s loaded, more on a busier night); auto sizes each stage's limit from its input."""
    collect = next(s for s in STAGES if s.name == "00_collect")
    small = load_config(None, ["n_people=20000"])
    assert small.execution_timeout == "auto"
    assert budget.cell_timeout(collect, small) == (
        1800.0, "execution_timeout auto: 1,800 s (5 x the 12 s expected for 20,000 people, "
        "at least 1,800)")  # fmt: skip
    million = load_config(None, ["n_people=1000000"])
    seconds, how = budget.cell_timeout(collect, million)
    # the measured million-person collection (1,463 s) raised by the noise, times five
    assert seconds == math.ceil(5 * budget.NOISE * 1463) == 7681
    assert how.startswith("execution_timeout auto: 7,681 s (5 x the 1,536 s expected")
    # one's own files: the collection's rows are not known before it reads them: the floor
    own = load_config(None, ["source=/data/exports"])
    assert budget.cell_timeout(collect, own)[0] == budget.TIMEOUT_FLOOR
    # a number or null is used as it is
    assert budget.cell_timeout(collect, load_config(None, ["execution_timeout=60"])) == (60, "")
    assert budget.cell_timeout(collect, load_config(None, ["execution_timeout=null"])) == (None, "")


def test_auto_cell_timeout_counts_the_rows_the_stage_reads(tmp_path):
    path = tmp_path / "cem.duckdb"
    rows = 12_000_000  # clean lines of about 870,000 people
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA clean")
        con.execute(f"CREATE TABLE clean.order_lines AS SELECT range AS x FROM range({rows})")
        con.execute("CREATE TABLE clean.receipt_lines (x BIGINT)")
    churn = next(s for s in STAGES if s.name == "03_churn")
    seconds, how = budget.cell_timeout(churn, load_config(None, []), path)
    expected = budget.DURATIONS["03_churn"].estimate(rows)
    assert 112 < expected < 434 * budget.NOISE  # between the 200,000 and million-person runs
    assert seconds == math.ceil(max(1800.0, 5 * expected))
    assert "for 12,000,000 input rows" in how
    # no input tables yet (the stage before has not run): the floor
    assert budget.cell_timeout(churn, load_config(None, []), tmp_path / "none.duckdb") == (
        1800.0, "execution_timeout auto: 1,800 s, the floor")  # fmt: skip


def test_auto_cell_timeout_on_spark_counts_the_lake_rows_at_spark_s_pace(tmp_path):
    """Issue 19: with engine spark the inputs are in the lake (the run's DuckDB copy has none
    of clean.*), so auto gave every Spark stage 02-04 the 1,800 s floor, sized on DuckDB's
    seconds; Spark's identity stage at 20,000 people alone took 577 s."""
    lake = tmp_path / "lake"
    rows = {"crm_contacts": 150_000, "web_events": 3_000_000}
    with duckdb.connect() as con:
        for table, n in rows.items():
            folder = lake / "clean" / table
            folder.mkdir(parents=True)
            for part in range(2):  # a table of two files: both counted
                con.execute(
                    f"COPY (SELECT range AS x FROM range({n // 2})) "
                    f"TO '{folder / f'part-{part}.parquet'}' (FORMAT PARQUET)"
                )
    (lake / "clean" / "online_orders").mkdir()  # an empty folder counts nothing
    identity = next(s for s in STAGES if s.name == "02_profiles")
    assert budget.lake_rows(budget._STAGE_INPUTS["02_profiles"], str(lake), None) == 3_150_000
    cfg = load_config(None, ["engine=spark", f"lake={lake}"])
    seconds, how = budget.cell_timeout(identity, cfg, tmp_path / "none.duckdb")
    on_spark = budget.SPARK_DURATIONS["02_profiles"].estimate(3_150_000)
    on_duckdb = budget.DURATIONS["02_profiles"].estimate(3_150_000)
    assert on_spark > 10 * on_duckdb  # Spark's pace, not DuckDB's
    assert seconds == math.ceil(5 * on_spark) > 1800
    assert "expected on Spark for 3,150,000 input rows" in how
    # the measured Spark point is met (raised by the noise), DuckDB's is not used
    assert budget.SPARK_DURATIONS["02_profiles"].estimate(416_032) == pytest.approx(
        577 * budget.NOISE, rel=0.01
    )
    # nothing in the lake yet: the floor; DuckDB's engine still reads its warehouse
    empty = load_config(None, ["engine=spark", f"lake={tmp_path / 'empty'}"])
    assert budget.cell_timeout(identity, empty) == (
        1800.0,
        "execution_timeout auto: 1,800 s, the floor",
    )
    assert budget.lake_rows(["clean.crm_contacts"], "s3a://bucket/lake", None) is None


def test_evicting_duckdb_cache_frees_the_blocks_read_and_keeps_the_limit(tmp_path):
    path = str(tmp_path / "w.duckdb")
    with duckdb.connect(path) as con:
        con.execute("CREATE TABLE t AS SELECT i, md5(i::VARCHAR) AS s FROM range(1000000) r(i)")
    cached = "SELECT sum(memory_usage_bytes) FROM duckdb_memory() WHERE tag = 'BASE_TABLE'"
    with duckdb.connect(path) as con, duckdb.connect() as ref:
        con.execute("SET memory_limit = '500MiB'")
        ref.execute("SET memory_limit = '500MiB'")
        assert con.execute("SELECT count(DISTINCT s) FROM t").fetchone()[0] == 1_000_000
        read = con.execute(cached).fetchone()[0]
        assert read > 10 * 1024**2  # the blocks of t stay cached after the scan
        budget.evict_duckdb_cache(con, "500MiB")
        assert con.execute(cached).fetchone()[0] < read / 4
        limit = "SELECT current_setting('memory_limit')"
        assert con.execute(limit).fetchone() == ref.execute(limit).fetchone()  # set back
        assert con.execute("SELECT count(*), max(i) FROM t").fetchone() == (1_000_000, 999_999)


def test_a_connection_that_spilled_can_be_configured_again(tmp_path, monkeypatch):
    monkeypatch.setenv(budget.MEMORY_ENV, "400MiB")
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        settings = budget.configure_duckdb(con, warehouse=path)
        con.execute("SET memory_limit = '20MiB'")
        con.execute(
            "CREATE TEMP TABLE x AS SELECT i, md5(i::VARCHAR) AS s FROM range(2000000) r(i)"
        )
        assert any(Path(settings["temp_directory"]).iterdir())  # it spilled there
        assert budget.configure_duckdb(con, warehouse=path) == settings  # no error the 2nd time
        assert con.execute("SELECT count(*) FROM x").fetchone()[0] == 2_000_000
