"""Bad input on the Spark engine: one clear message, nothing published to the lake."""

from __future__ import annotations

import pytest

from cemlib.engine import Lake
from cemlib.errors import InputError, StageFailure
from cemlib.quality.sparkstage import SparkQualityStage

from .conftest import AS_OF, NEEDS_SPARK

pytest.importorskip("pyspark")
pytestmark = NEEDS_SPARK


def _run(spark, lake, tables):
    stage = SparkQualityStage(tables=tables, progress=False)
    return stage.run_spark(spark, lake, run_id="bad", as_of=AS_OF)


def test_empty_lake_says_run_collection_first(spark, tmp_path):
    with pytest.raises(StageFailure, match="no staging table in the lake .*engine spark first"):
        _run(spark, Lake(tmp_path / "empty"), None)


def test_critical_table_failure_publishes_nothing(spark, lake_copy):
    products = lake_copy.read_table("staging", "products")
    lake_copy.write_table("staging", "products", products.drop(columns="sku"),
                          run_id="bad", as_of=AS_OF)  # fmt: skip
    with pytest.raises(StageFailure, match="required column 'sku' is missing"):
        _run(spark, lake_copy, ["products"])
    for schema in ("clean", "quarantine", "quality"):
        assert lake_copy.tables(schema) == []
    assert not any(p.name.endswith(".new") for p in lake_copy._folder().rglob("*"))


def test_staging_without_source_row_is_named(spark, lake_copy):
    products = lake_copy.read_table("staging", "products")
    lake_copy.write_table("staging", "products", products.drop(columns="_source_row"),
                          run_id="bad", as_of=AS_OF)  # fmt: skip
    with pytest.raises(InputError, match="_source_row") as err:
        _run(spark, lake_copy, ["products"])
    assert "staging/products" in str(err.value)
