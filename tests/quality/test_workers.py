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


def _die(*args):
    """A worker that crashes, as a forked child rarely does inside Great Expectations."""
    import os

    os._exit(139)


def test_a_worker_that_dies_leaves_the_same_results(collected, tmp_path, monkeypatch, caplog):
    import cemlib.quality.workers as workers

    one, tables_one, pages_one = _run(collected, tmp_path, 1)
    monkeypatch.setattr(workers, "_validate_in_worker", _die)
    with caplog.at_level("WARNING", logger="cemlib.quality.workers"):
        crashed, tables_crashed, pages_crashed = _run(collected, tmp_path, 3)
    assert sum("worker process died" in r.message for r in caplog.records) == 1
    drop = ["checked_at"]
    pd.testing.assert_frame_equal(
        one.results.drop(columns=drop), crashed.results.drop(columns=drop)
    )
    pd.testing.assert_frame_equal(one.conservation, crashed.conservation)
    for key, frame in tables_one.items():
        pd.testing.assert_frame_equal(frame, tables_crashed[key])
    assert pages_one == pages_crashed and len(pages_one) == 2 * len(one.outcomes)


def test_worker_count_from_cores_setting_and_memory(monkeypatch):
    monkeypatch.delenv(WORKERS_ENV, raising=False)
    monkeypatch.setenv(MEMORY_ENV, str(64 * 1024**3))
    assert workers_for(7_000_000) == usable_cpus()
    monkeypatch.setenv(WORKERS_ENV, "1")
    assert workers_for(7_000_000) == 1
    monkeypatch.delenv(WORKERS_ENV)
    monkeypatch.setenv(MEMORY_ENV, str(3 * 1024**3))  # the stage's own 2.6 GiB, no room
    assert workers_for(7_000_000) == 1


# -- when the stage of cem run forks its workers ---------------------------------------------
_PROBE = """
import json, os, sys
from cemlib.budget import fork_hazard, fork_workers  # light: no Great Expectations import
def workers_for(rows):
    return fork_workers("01_quality", rows, 2**30)  # what cemlib.quality.workers asks
out = {"plain": [fork_hazard(), workers_for(7_000_000)]}
if len(sys.argv) > 1:
    from cemlib.engine import spark_session, stop_spark
    spark_session("local[1]", memory_limit=2**30).range(3).count()
    out["session"] = [fork_hazard(), workers_for(7_000_000)]
    stop_spark()  # the JVM and its gateway stay for the next session
    out["stopped"] = [fork_hazard(), workers_for(7_000_000)]
print(json.dumps(out))
"""


def _probe(tmp_path, *args, timeout=90):
    """``{state: [hazard, workers]}`` printed by a fresh interpreter (this test process may
    hold a JVM of tests/spark run before it in the same worker). A script file, not ``-c``:
    pyspark, imported by Great Expectations, exits a ``-c`` interpreter ("doctests")."""
    import json
    import os
    import subprocess
    import sys

    script = tmp_path / "probe.py"
    script.write_text(_PROBE)
    env = {**os.environ, MEMORY_ENV: str(64 * 1024**3)}
    env.pop(WORKERS_ENV, None)
    done = subprocess.run(
        [sys.executable, str(script), *args], env=env, capture_output=True, text=True,
        timeout=timeout, check=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_plain_process_forks_its_workers(tmp_path):
    hazard, workers = _probe(tmp_path)["plain"]
    assert hazard is None
    assert workers == usable_cpus()  # 64 GiB of budget: the cores decide


def test_a_process_with_a_spark_session_stays_single(tmp_path):
    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("Java is not on PATH")
    states = _probe(tmp_path, "spark", timeout=110)
    assert states["plain"] == [None, usable_cpus()]
    for state in ("session", "stopped"):  # a stopped session keeps its JVM
        hazard, workers = states[state]
        assert "Spark" in hazard
        assert workers == 1


def test_a_java_child_process_is_a_hazard(tmp_path):
    import subprocess

    from cemlib.budget import fork_hazard, fork_workers

    java = tmp_path / "java"  # a process named java (its command), without starting a JVM
    java.symlink_to(shutil.which("sleep"))
    before = fork_hazard()
    child = subprocess.Popen([str(java), "60"])
    try:
        hazard = fork_hazard()
        assert hazard is not None
        assert before is not None or hazard == f"a JVM below this process (pid {child.pid})"
        assert fork_workers("01_quality", 7_000_000, 1) == 1
    finally:
        child.kill()
        child.wait()
    assert fork_hazard() == before


def test_the_run_stage_validates_in_workers_when_safe(collected, tmp_path, monkeypatch):
    """``cemlib.quality.run`` (the notebook's call) asks for ``"auto"``: as many processes as
    the cores when nothing in the process forbids a fork, one beside a JVM."""
    import cemlib.quality
    import cemlib.quality.stage as stage_module
    from cemlib.budget import fork_hazard

    monkeypatch.delenv(WORKERS_ENV, raising=False)
    monkeypatch.setenv(MEMORY_ENV, str(64 * 1024**3))
    seen = []

    class Recording(stage_module.GXRunner):
        def __init__(self, workers, max_rows=None):
            super().__init__(workers, max_rows)
            seen.append(self.workers)

    monkeypatch.setattr(stage_module, "GXRunner", Recording)
    path = tmp_path / "run.duckdb"
    shutil.copy(collected, path)
    with Warehouse(path) as wh:
        result = cemlib.quality.run(wh, run_id="w", as_of=AS_OF, progress=False)
    assert seen == [1 if fork_hazard() else usable_cpus()]
    assert result.detail.conservation["conserved"].all()
