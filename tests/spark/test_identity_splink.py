"""Identity's Splink model on Splink's ``SparkAPI`` (issue 19): the same comparisons, blocking
and training passes scored by Spark, the profiles agreeing with the DuckDB engine's on records
no part of cemlib generated (the independent world of ``benchmarks/independent_world.py``)."""

from __future__ import annotations

import sys
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cemlib.identity import load_roles
from cemlib.identity.model import _level_weights
from cemlib.identity.resolve import IdentityResolver
from cemlib.identity.roles import prepare_records

from .conftest import NEEDS_SPARK

pytest.importorskip("pyspark")
pytestmark = NEEDS_SPARK

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import independent_world as iw  # noqa: E402


def _pairs(resolver: IdentityResolver) -> set[tuple[int, int]]:
    """Record pairs (row numbers) that share a profile."""
    pid = pd.Series(resolver.profile_id_).where(resolver.attached_).dropna()
    out: set[tuple[int, int]] = set()
    for rows in pid.groupby(pid).indices.values():
        out.update(combinations(sorted(pid.index[rows]), 2))
    return out


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> pd.DataFrame:
    folder = tmp_path_factory.mktemp("independent")
    world = iw.write_world(folder, n_people=400, seed=2026)
    records = world.drop(columns="person_id").astype("string")
    return prepare_records(records, load_roles(folder / "roles.yaml"), id_column="rec_id")


@pytest.fixture(scope="module")
def on_spark(spark, prepared) -> IdentityResolver:
    return IdentityResolver(seed=42, spark=spark).fit(prepared)


def test_profiles_on_spark_agree_with_duckdb(on_spark, prepared):
    duck = IdentityResolver(seed=42).fit(prepared)
    assert type(on_spark.model_.db_api_).__name__ == "SparkAPI"
    assert type(duck.model_.db_api_).__name__ == "DuckDBAPI"
    a, b = _pairs(duck), _pairs(on_spark)
    agreement = 2 * len(a & b) / (len(a) + len(b))
    assert len(a) > 250 and agreement >= 0.995, (len(a), len(b), len(a & b))
    # every weight of the Spark-trained model bounded as on DuckDB (issue 12: within +-25)
    weights = on_spark.model_.linker_._settings_obj.comparisons
    for comparison in weights:
        for level in comparison.comparison_levels:
            if not level.is_null_level and level.m_probability and level.u_probability:
                assert abs(np.log2(level.m_probability / level.u_probability)) <= 25 + 1e-9


def test_waterfall_records_come_from_the_fitted_frame(spark, prepared):
    on_spark = IdentityResolver(seed=42, spark=spark).fit(prepared.head(300))
    pairs = on_spark.model_.predict(0.5).head(2)
    records = on_spark.model_.score_pairs(zip(pairs["rid_l"], pairs["rid_r"], strict=True))
    assert len(records) == 2
    for rec, (_, row) in zip(records, pairs.iterrows(), strict=True):
        assert rec["unique_id_l"] == row["rid_l"] and rec["unique_id_r"] == row["rid_r"]
        assert rec["match_probability"] == pytest.approx(row["match_probability"], abs=1e-6)


def test_fields_named_by_spark_are_the_driver_s_naming_of_the_weights(on_spark):
    """The pairs' agreeing / disagreeing fields come from Spark (only those two texts cross to
    the driver), named as the driver names them from every comparison's match weight."""
    model = on_spark.model_
    got = model.predict(0.5)
    scored = model.linker_.inference.predict(threshold_match_probability=0.5)
    every = scored.as_spark_dataframe().toPandas()  # every column of every pair
    every = every.sort_values(["unique_id_l", "unique_id_r"], ignore_index=True)
    weights = every[[c for c in every.columns if c.startswith("mw_")]]
    agree = np.full(len(every), "", dtype=object)
    disagree = np.full(len(every), "", dtype=object)
    for name, weight in _level_weights(weights):
        for acc, hit in ((agree, weight > 0.0), (disagree, weight < 0.0)):
            acc[:] = np.where(hit, np.where(acc == "", name, acc + "," + name), acc)
    assert len(got) == len(every) > 250
    assert (got["rid_l"].to_numpy() == every["unique_id_l"].to_numpy()).all()
    assert (got["agreeing"].to_numpy() == agree).all()
    assert (got["disagreeing"].to_numpy() == disagree).all()
    assert (got["disagreeing"] != "").sum() > 10 and got["agreeing"].str.count(",").max() >= 2
    # one Python string per distinct text, however many pairs carry it
    assert len({id(v) for v in got["agreeing"]}) == got["agreeing"].nunique() < len(got) / 5
