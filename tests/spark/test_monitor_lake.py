"""Stage 05 on the lake (``engine: spark``, issue 19): two monitor runs over the lake's views give
the DuckDB engine's figures on the same tables, the previous run's offers graded from what it
kept in the lake, and ``monitor.*`` replaced together.

The monitor reads aggregates and small kept tables only, so it runs on the lake's reading
surface (DuckDB views over the Parquet files) without a Spark session: no JVM needed here."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

import cemlib.identity
import cemlib.monitor
import cemlib.offers
from cemlib.collect.sparklake import copy_to_lake
from cemlib.engine import Lake
from cemlib.warehouse import Warehouse

from .conftest import AS_OF

pytestmark = [pytest.mark.spark, pytest.mark.timeout(300)]
BEFORE = str((pd.Timestamp(AS_OF) - pd.Timedelta(days=60)).date())


@pytest.fixture(scope="module")
def runs(world, tmp_path_factory):
    """Two monitor runs (``m1`` at ``BEFORE``, keeping the offers of that day; ``m2`` at
    ``AS_OF``, grading them) on the warehouse and on the lake over the same tables."""
    wh_path, lake_root, _ = world
    root = tmp_path_factory.mktemp("monitor_lake")
    shutil.copy(wh_path, root / "cem.duckdb")
    shutil.copytree(lake_root, root / "lake")
    lake = Lake(root / "lake")
    out = {"duckdb": [], "lake": []}
    with Warehouse(root / "cem.duckdb") as wh:
        cemlib.identity.run(wh, run_id="t", as_of=AS_OF, seed=42, identity_mode="full")
        cemlib.offers.run(wh, run_id="o1", as_of=BEFORE, seed=42, horizon_days=30)
        copy_to_lake(wh, lake, run_id="t", schemas=("clean", "quarantine", "quality",
                                                    "identity", "marts"))  # fmt: skip
        for run_id, day in (("m1", BEFORE), ("m2", AS_OF)):
            out["duckdb"].append(cemlib.monitor.run(wh, run_id=run_id, as_of=day, k=10))
            out["lake"].append(cemlib.monitor.run(lake, run_id=run_id, as_of=day, k=10))
    return root / "cem.duckdb", lake, out


def test_figures_are_the_duckdb_engine_s(runs):
    _, _, out = runs
    for duck, lake in zip(out["duckdb"], out["lake"], strict=True):
        assert lake.headlines == duck.headlines
        a, b = duck.detail, lake.detail
        for name in ("tables", "nulls", "drift"):
            pd.testing.assert_frame_equal(b.data[name].reset_index(drop=True),
                                          a.data[name].reset_index(drop=True), check_dtype=False)  # fmt: skip
        assert b.profiles == a.profiles and b.profiles["profiles"] > 100
    assert out["lake"][1].detail.previous_run_id == "m1"


def test_previous_offers_graded_from_the_lake(runs):
    _, lake, out = runs
    a, b = out["duckdb"][1].detail.offers, out["lake"][1].detail.offers
    assert len(b) and (b["forecast_run"] == "m1").all()
    pd.testing.assert_frame_equal(b.reset_index(drop=True), a.reset_index(drop=True),
                                  check_dtype=False)  # fmt: skip
    kept = lake.sql("SELECT count(*) AS n FROM monitor.offer_forecast")["n"][0]
    assert kept == lake.count("marts", "next_offers") > 500


def test_monitor_tables_replaced_together_with_the_warehouse_columns(runs):
    wh_path, lake, _ = runs
    with Warehouse(wh_path, read_only=True) as wh:
        names = set(wh.tables("monitor"))
        for name in names:
            want = list(wh.sql(f'SELECT * FROM monitor."{name}" LIMIT 0').columns)
            assert list(lake.sql(f'SELECT * FROM monitor."{name}" LIMIT 0').columns) == want
    assert set(lake.tables("monitor")) == names and len(names) >= 10
    assert {lake.stamp("monitor", n)[0] for n in names if lake.count("monitor", n)} == {"m2"}
    assert not any(p.name.startswith(".") for p in (lake._folder() / "monitor").iterdir())
