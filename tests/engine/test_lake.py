"""The lake without Spark: Parquet tables in ``<lake>/<schema>/<table>/`` read through the
surface of the DuckDB warehouse (tables, read_table, sql, stamps, provenance), written whole
and replaced only by renaming a finished folder into place."""

from __future__ import annotations

import pandas as pd
import pytest

from cemlib.engine import Lake, lake_of, lake_path, open_store
from cemlib.engine.session import SPARK_STAGES, local_cores, session_conf, spark_refusal
from cemlib.warehouse import Warehouse


def test_small_tables_written_stamped_and_read_back(tmp_path):
    lake = Lake(tmp_path / "lake")
    df = pd.DataFrame({"table": ["a", "b", "b"], "n": [1, 2, 3]})
    assert lake.write_table("quality", "results", df, run_id="r1", as_of="2025-06-30") == 3
    assert (tmp_path / "lake/quality/results/part-00000.parquet").is_file()
    assert lake.tables("quality") == ["results"] and lake.has_table("quality", "results")
    assert not lake.has_table("quality", "conservation")
    back = lake.read_table("quality", "results")
    assert back.to_dict("list") == {"table": ["a", "b", "b"], "n": [1, 2, 3]}
    assert lake.stamp("quality", "results") == ("r1", pd.Timestamp("2025-06-30").date())
    got = lake.sql('SELECT "table", sum(n) AS n FROM quality.results GROUP BY 1 ORDER BY 1')
    assert got.n.tolist() == [1, 5]
    assert lake.provenance() == {"quality.results": {"run_id": "r1", "rows": 3}}


def test_a_table_is_replaced_whole_and_failures_leave_the_old_one(tmp_path):
    lake = Lake(tmp_path)
    lake.write_table("clean", "t", pd.DataFrame({"x": [1, 2]}), run_id="r1", as_of="2025-06-30")
    staged = {("clean", "t"): lake.staging_path("clean", "t", "r2")}
    lake._write_frame(pd.DataFrame({"x": [9]}), staged[("clean", "t")], "r2", "2025-06-30")
    assert lake.count("clean", "t") == 2  # staged, not yet visible
    assert lake.tables("clean") == ["t"]  # the staged folder is hidden
    lake.discard(staged)
    assert lake.read_table("clean", "t").x.tolist() == [1, 2]
    lake.write_table("clean", "t", pd.DataFrame({"x": [9]}), run_id="r2", as_of="2025-06-30")
    assert lake.read_table("clean", "t", stamps=True).to_dict("records") == [
        {"x": 9, "_run_id": "r2", "_as_of": pd.Timestamp("2025-06-30")}
    ]
    lake.drop_table("clean", "t")
    assert lake.tables("clean") == [] and not lake.has_table("clean", "t")


def test_missing_table_is_a_key_error_naming_it(tmp_path):
    with pytest.raises(KeyError, match="no table staging.crm_contacts"):
        Lake(tmp_path).read_table("staging", "crm_contacts")


def test_paths_and_store_choice(tmp_path):
    assert lake_path("s3a://bucket/cem/") == "s3a://bucket/cem"
    assert lake_path(None).endswith("data/lake")
    assert lake_path(tmp_path) == str(tmp_path)
    assert not Lake("s3a://bucket/cem").local and Lake(tmp_path).local
    assert isinstance(open_store("duckdb", tmp_path / "w.duckdb"), Warehouse)
    store = open_store("spark", tmp_path / "w.duckdb", lake=tmp_path, spark_master="local[2]")
    assert isinstance(store, Lake) and store.spark_master == "local[2]"
    assert lake_of("duckdb", tmp_path) is None and lake_of("spark", tmp_path).root == str(tmp_path)
    with pytest.raises(ValueError, match="engine must be duckdb or spark"):
        open_store("polars", tmp_path)


def test_session_settings_for_a_small_machine():
    conf = session_conf("local[2]", memory_limit=4 * 2**30)
    assert conf["spark.sql.shuffle.partitions"] == "4"
    assert conf["spark.driver.memory"] == "2048m"  # half the stage's budget
    assert conf["spark.driver.maxResultSize"] == "2048m"  # a collect may fill it, not 1 GiB
    assert conf["spark.ui.enabled"] == "false" and conf["spark.sql.session.timeZone"] == "UTC"
    cluster = session_conf("spark://10.0.0.5:7077", memory_limit=4 * 2**30)
    assert "spark.sql.shuffle.partitions" not in cluster  # the cluster's own settings win
    assert "spark.driver.memory" not in cluster
    assert "spark.driver.maxResultSize" not in cluster
    assert conf["spark.driver.host"] == "127.0.0.1" and "spark.driver.host" not in cluster
    assert (
        local_cores("local[3]") == 3 and local_cores("yarn") == 0 and local_cores("local[*]") >= 1
    )


def test_refusal_names_the_stages_not_on_spark():
    assert spark_refusal(list(SPARK_STAGES)) is None
    assert spark_refusal(["00", "01", "02", "03", "04", "05"]) is None  # every stage runs there
    assert spark_refusal(["01", "07"]) == (  # a stage key the engine does not know
        "engine spark runs stages 00, 01, 02, 03, 04, 05 so far; run 07 with engine duckdb"
    )
