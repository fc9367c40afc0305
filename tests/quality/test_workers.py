"""Great Expectations in worker processes: the same results rows, clean and quarantined rows
and Data Docs as one process, with the worker count from the cores and the budget."""

import shutil

import pandas as pd
import pytest

from cemlib.budget import MEMORY_ENV, WORKERS_ENV, usable_cpus
from cemlib.collect import collect
from cemlib.quality import QualityStage
from cemlib.quality.workers import workers_for
from cemlib.warehouse import Warehouse

AS_OF = "2025-06-30"


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    path = tmp_path_factory.mktemp("qw") / "cem.duckdb"
    collect("synthetic", warehouse=path, run_id="w", n_people=500, seed=4, progress=False)
    return path


def _run(collected, tmp_path, workers):
    path = tmp_path / f"w{workers}.duckdb"
    shutil.copy(collected, path)
    wh = Warehouse(path)
    # a sample below the larger tables' rows: the sampled path runs too
    report = QualityStage(progress=False, gx_max_rows=400, workers=workers).run(
        wh, run_id="w", as_of=AS_OF
    )
    tables = {
        (schema, t): wh.sql(f'SELECT * FROM {schema}."{t}" ORDER BY _source_row')
        for schema in ("clean", "quarantine")
        for t in wh.tables(schema)
    }
    wh.close()
    docs = report.write_data_docs(tmp_path / f"docs{workers}")
    pages = sorted(p.name for p in (docs.parent / "validations").rglob("*.html"))
    return report, tables, pages


def test_results_are_the_same_with_one_or_several_workers(collected, tmp_path):
    one, tables_one, pages_one = _run(collected, tmp_path, 1)
    three, tables_three, pages_three = _run(collected, tmp_path, 3)
    drop = ["checked_at"]
    pd.testing.assert_frame_equal(one.results.drop(columns=drop), three.results.drop(columns=drop))
    pd.testing.assert_frame_equal(one.conservation, three.conservation)
    assert one.conservation["conserved"].all()
    assert one.conservation["quarantined"].sum() > 0  # the world's defects are routed
    assert one.warnings == three.warnings
    assert tables_one.keys() == tables_three.keys()
    for key, frame in tables_one.items():
        pd.testing.assert_frame_equal(frame, tables_three[key])
    # one table-level and one row-level validation page per table, either way
    assert len(pages_one) == len(pages_three) == 2 * len(one.outcomes)


def test_worker_count_from_cores_setting_and_memory(monkeypatch):
    monkeypatch.delenv(WORKERS_ENV, raising=False)
    monkeypatch.setenv(MEMORY_ENV, str(64 * 1024**3))
    assert workers_for(7_000_000) == usable_cpus()
    monkeypatch.setenv(WORKERS_ENV, "1")
    assert workers_for(7_000_000) == 1
    monkeypatch.delenv(WORKERS_ENV)
    monkeypatch.setenv(MEMORY_ENV, str(3 * 1024**3))  # the stage's own 2.6 GiB, no room
    assert workers_for(7_000_000) == 1
