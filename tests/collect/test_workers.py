"""Staging on every core: the tables, figures and table log of a collection are the same with
any number of staging workers, and the number comes from the cores, ``CEM_WORKERS`` and the
memory budget."""

import pandas as pd
import pytest

from cemlib.budget import MEMORY_ENV, WORKERS_ENV, usable_cpus
from cemlib.collect import collect
from cemlib.collect.workers import PER_WORKER_BYTES, workers_for
from cemlib.synth import generate
from cemlib.warehouse import Warehouse


@pytest.mark.parametrize("fmt", [None, "csv"])
def test_tables_are_the_same_with_one_or_several_workers(tmp_path, fmt):
    """Many small chunks, so that the pool, the stage's own process and the hand-over from
    one table to the next all take part; every table equal row for row and in order."""
    world = generate(n_people=400, seed=3, as_of="2025-06-30")
    if fmt:
        world.write(tmp_path / "export", format=fmt)
        source, kwargs = tmp_path / "export", {}
    else:
        source, kwargs = "synthetic", {"world": world}
    one = collect(source, warehouse=tmp_path / "a.duckdb", progress=False, chunk_rows=101,
                  workers=1, **kwargs)  # fmt: skip
    three = collect(source, warehouse=tmp_path / "b.duckdb", progress=False, chunk_rows=101,
                    workers=3, **kwargs)  # fmt: skip
    assert one.tables["n_raw"].sum() > 40 * 101  # dozens of chunks
    for attr in ("tables", "coverage", "normalization"):
        pd.testing.assert_frame_equal(getattr(one, attr), getattr(three, attr))
    assert one.n_unparsed == three.n_unparsed > 0  # the injected defects, counted once
    with (
        Warehouse(tmp_path / "a.duckdb", read_only=True) as wa,
        Warehouse(tmp_path / "b.duckdb", read_only=True) as wb,
    ):
        for schema in ("raw", "staging", "truth"):
            assert wa.tables(schema) == wb.tables(schema)
            for name in wa.tables(schema):
                a, b = wa.read_table(schema, name), wb.read_table(schema, name)
                if schema != "truth":
                    assert b["_source_row"].tolist() == list(range(len(b)))
                pd.testing.assert_frame_equal(a, b)
        q = "SELECT schema_name, table_name, n_rows FROM meta.table_log ORDER BY ALL"
        pd.testing.assert_frame_equal(wa.sql(q), wb.sql(q))


def test_worker_count_from_cores_setting_and_memory(monkeypatch):
    monkeypatch.delenv(WORKERS_ENV, raising=False)
    monkeypatch.setenv(MEMORY_ENV, str(64 * 1024**3))
    assert workers_for(20_000) == usable_cpus()
    monkeypatch.setenv(WORKERS_ENV, "1")
    assert workers_for(20_000) == 1
    monkeypatch.delenv(WORKERS_ENV)
    # a budget that holds the stage's own estimate but no worker beside it
    from cemlib.budget import COSTS

    own = COSTS["00_collect"].estimate(200_000)
    monkeypatch.setenv(MEMORY_ENV, str(int(own + 0.5 * PER_WORKER_BYTES)))
    assert workers_for(200_000) == 1
    if usable_cpus() >= 2:
        monkeypatch.setenv(MEMORY_ENV, str(int(own + 1.5 * PER_WORKER_BYTES)))
        assert workers_for(200_000) == 2
