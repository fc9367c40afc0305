"""The Spark engine's tests: each module skips without pyspark (``make venv-spark``) or Java 17
(:data:`NEEDS_SPARK`; pytest cannot skip from a conftest).

One Spark session (``local[2]``, UI off) serves the whole module set; the world is a small
synthetic one collected once, its tables in a DuckDB warehouse and copied to a lake, and checked
once by the DuckDB engine, the reference the Spark engine must match.
"""

from __future__ import annotations

import shutil

import pytest

import cemlib.collect
import cemlib.quality
from cemlib.engine import Lake, spark_session, stop_spark
from cemlib.warehouse import Warehouse

#: the marks of every Spark test module: ``pytestmark = NEEDS_SPARK`` after
#: ``pytest.importorskip("pyspark")``
NEEDS_SPARK = [
    pytest.mark.spark,
    pytest.mark.skipif(shutil.which("java") is None, reason="Java 17 is not on PATH"),
]
AS_OF = "2025-06-30"
N_PEOPLE = 200
SEED = 5


@pytest.fixture(scope="session")
def spark():
    session = spark_session("local[2]", memory_limit=2 * 2**30)
    session.range(10).count()  # the JVM started before the first test's clock
    yield session
    stop_spark()


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    """``(warehouse path, lake folder, DuckDB quality result)`` of a 200-person world."""
    root = tmp_path_factory.mktemp("spark_world")
    wh_path, lake_root = root / "cem.duckdb", root / "lake"
    cemlib.collect.run(wh_path, run_id="t", as_of=AS_OF, seed=SEED, n_people=N_PEOPLE,
                       progress=False, lake=Lake(lake_root))  # fmt: skip
    with Warehouse(wh_path) as wh:
        reference = cemlib.quality.run(wh, run_id="t", as_of=AS_OF, progress=False)
    return wh_path, lake_root, reference.detail


@pytest.fixture
def lake_copy(world, tmp_path):
    """A fresh copy of the world's lake (raw and staging only), for tests that write."""
    target = tmp_path / "lake"
    shutil.copytree(world[1], target)
    for schema in ("clean", "quarantine", "quality"):
        shutil.rmtree(target / schema, ignore_errors=True)
    return Lake(target, spark_master="local[2]")
