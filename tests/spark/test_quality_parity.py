"""Stage 01 on Spark gives the DuckDB engine's figures on the same staging tables: rows in,
clean and quarantined per table, quarantined rows per reason, and every expectation's outcome
and unexpected count (Great Expectations on Spark DataFrames against GE on pandas)."""

from __future__ import annotations

import pytest

from cemlib.engine import Lake
from cemlib.quality.sparkstage import SparkQualityStage
from cemlib.quality.suites import load_suites
from cemlib.warehouse import Warehouse

from .conftest import AS_OF, NEEDS_SPARK

pytest.importorskip("pyspark")
pytestmark = NEEDS_SPARK
TABLES = sorted(load_suites())


def _run(spark, lake_root, table):
    lake = Lake(lake_root, spark_master="local[2]")
    stage = SparkQualityStage(tables=[table], progress=False)
    return lake, stage.run_spark(spark, lake, run_id="t", as_of=AS_OF)


@pytest.mark.parametrize("table", TABLES)
def test_counts_identical_to_duckdb(spark, world, table):
    _, lake_root, reference = world
    lake, got = _run(spark, lake_root, table)
    want = reference.conservation.set_index("table").loc[table]
    mine = got.conservation.set_index("table").loc[table]
    assert want["rows_in"] > 0
    assert (mine["rows_in"], mine["clean"], mine["quarantined"]) == (
        want["rows_in"], want["clean"], want["quarantined"],
    )  # fmt: skip
    assert mine["clean"] + mine["quarantined"] == mine["rows_in"]
    # the lake holds what the counts say, row for row, with the same reasons
    assert lake.count("clean", table) == want["clean"]
    by_reason = lake.sql(f'SELECT reason, count(*) AS n FROM quarantine."{table}" GROUP BY 1')
    ref = reference.quarantine_by_reason
    assert dict(zip(by_reason.reason, by_reason.n, strict=True)) == _duckdb_reasons(world[0], table)
    assert got.quarantine_by_reason.set_index("expectation")["rows_quarantined"].to_dict() == (
        ref[ref["table"] == table].set_index("expectation")["rows_quarantined"].to_dict()
    )
    _same_outcome_per_expectation(reference.results, got.results, table)
    stored = lake.read_table("quality", "results")
    assert list(stored.columns) == list(reference.results.columns.drop("sql_unexpected_count"))
    assert set(stored["table"]) == {table}


def _same_outcome_per_expectation(want_all, got_all, table) -> None:
    """Each expectation's success, unexpected count and quarantined rows: type checks, regex,
    dates and parent keys in other tables (Great Expectations on Spark vs on pandas)."""
    cols = ["expectation", "level", "success", "unexpected_count", "rows_quarantined"]
    want = want_all[want_all["table"] == table][cols]
    mine = got_all[got_all["table"] == table][cols]
    merged = want.merge(mine, on=["expectation", "level"], suffixes=("_duckdb", "_spark"))
    assert len(merged) == len(want) == len(mine) >= 5
    for col in ("success", "unexpected_count", "rows_quarantined"):
        a, b = merged[f"{col}_duckdb"], merged[f"{col}_spark"]
        same = (a.isna() & b.isna()) | (a == b)
        assert same.all(), merged.loc[~same, ["expectation", f"{col}_duckdb", f"{col}_spark"]]


def _duckdb_reasons(wh_path, table) -> dict[str, int]:
    """Quarantined rows per full reason text (several reasons joined by '; ') in DuckDB."""
    with Warehouse(wh_path, read_only=True) as wh:
        got = wh.sql(f'SELECT reason, count(*) AS n FROM quarantine."{table}" GROUP BY 1')
    return dict(zip(got.reason, got.n, strict=True))
