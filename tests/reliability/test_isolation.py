"""Fault injection: a run killed or interrupted in any stage leaves only complete runs' tables.

The stage notebooks here are small stand-ins with the pipeline's names that write the tables
their stage declares (so the real runner, lock, working copy and warehouse are exercised in
seconds); each writes its tables *before* it can be killed, so without run isolation the
warehouse would be left holding a mix of two runs.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from cemlib.pipeline.result import RunResult
from cemlib.pipeline.stages import STAGES
from cemlib.warehouse import Warehouse
from tests.pipeline.conftest import RUN_WIDE_CELL

ROOT = Path(__file__).resolve().parents[2]

TABLES = {
    "00_collect": ["raw.crm_contacts", "staging.crm_contacts"],
    "01_quality": ["clean.crm_contacts", "quarantine.crm_contacts", "quality.results"],
    "02_profiles": ["identity.map", "identity.profiles", "identity.links"],
    "03_churn": ["marts.churn_scores"],
    "04_next_offer": ["marts.next_offers"],
}

BODY = """\
import os, time
import pandas as pd
from cemlib.config import warehouse_path
from cemlib.warehouse import Warehouse
with Warehouse(warehouse_path(warehouse)) as wh:
    for t in {tables!r}:
        schema, name = t.split(".")
        wh.write_table(schema, name, pd.DataFrame({{"x": range(n_people)}}), run_id=run_id,
                       as_of=as_of)
if os.environ.get("CEM_TEST_RAISE") == {stage!r}:
    raise RuntimeError("a stage bug, after its tables were written")
if os.environ.get("CEM_TEST_OPEN") == {stage!r}:  # another process opens the warehouse itself
    import subprocess, sys
    marker = os.environ["CEM_TEST_MARKER"]
    code = ("import duckdb, os, pathlib, time; c = duckdb.connect(%r); "
            "pathlib.Path(%r).write_text(str(os.getpid())); time.sleep(60)") % (warehouse, marker)
    # its own output, or `cem run`'s caller would wait for the pipe it inherited to close
    subprocess.Popen([sys.executable, "-c", code], start_new_session=True,
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL)
    while not os.path.exists(marker) or not open(marker).read():
        time.sleep(0.1)
if os.environ.get("CEM_TEST_HANG") == {stage!r}:
    with open(os.environ["CEM_TEST_MARKER"], "w") as fh:
        fh.write(str(os.getpid()))
    time.sleep(120)
"""


def _kill(pid: int, timeout: float = 15.0) -> None:
    """SIGKILL ``pid`` and wait until it is gone or a zombie: its file locks are released only
    then (the kill is delivered asynchronously; opening the warehouse at once raced it)."""
    os.kill(pid, signal.SIGKILL)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            return
        if state in ("Z", "X"):
            return
        time.sleep(0.05)


def _notebooks(folder: Path) -> Path:
    for stage, tables in TABLES.items():
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                     "language": "python"}  # fmt: skip
        params = nbformat.v4.new_code_cell(RUN_WIDE_CELL)
        params.metadata["tags"] = ["parameters"]
        nb.cells = [params, nbformat.v4.new_code_cell(BODY.format(tables=tables, stage=stage))]
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, str(folder / f"{stage}.ipynb"))
    return folder


def _cmd(tmp: Path, run_id: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "cemlib", "run", "--notebooks", str(tmp / "nb"),
            "--out", str(tmp / "reports"), "--no-progress", "-p", f"run_id={run_id}",
            "-p", f"warehouse={tmp / 'cem.duckdb'}", "-p", "n_people=3", *extra]  # fmt: skip


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, **extra}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("CEM_WAREHOUSE_LOCK", None)
    env.pop("CEM_WAREHOUSE_SHADOW", None)
    return env


def _stamps(wh_path: Path) -> dict[str, str]:
    with Warehouse(wh_path, read_only=True) as wh:
        return {t: v["run_id"] for t, v in wh.provenance().items()}


def _all_tables() -> set[str]:
    return {t for ts in TABLES.values() for t in ts}


@pytest.fixture(scope="module")
def base_world(tmp_path_factory) -> Path:
    """A warehouse holding one complete run, ``base`` (made once; tests work on copies)."""
    folder = tmp_path_factory.mktemp("base_world")
    _notebooks(folder / "nb")
    proc = subprocess.run(_cmd(folder, "base"), env=_env(), capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _stamps(folder / "cem.duckdb") == dict.fromkeys(sorted(_all_tables()), "base")
    return folder


@pytest.fixture
def world(base_world: Path, tmp_path: Path) -> Path:
    shutil.copytree(base_world / "nb", tmp_path / "nb")
    shutil.copyfile(base_world / "cem.duckdb", tmp_path / "cem.duckdb")
    return tmp_path


def _start_and_wait(tmp: Path, stage: str, run_id: str) -> tuple[subprocess.Popen, int]:
    marker = tmp / f"hang-{run_id}.pid"
    proc = subprocess.Popen(
        _cmd(tmp, run_id), env=_env(CEM_TEST_HANG=stage, CEM_TEST_MARKER=str(marker)),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 90
    while not (marker.is_file() and marker.read_text().strip()):
        if proc.poll() is not None or time.monotonic() > deadline:
            out = proc.communicate(timeout=30)[0] if proc.poll() is not None else ""
            proc.kill()
            pytest.fail(f"stage {stage} never reached its hang point: {out}")
        time.sleep(0.1)
    return proc, int(marker.read_text())


def _assert_only_complete_runs(tmp: Path, stage: str, rerun_id: str) -> None:
    """The warehouse holds run ``base`` only; the next run, from the stage that was stopped
    on, succeeds, and the stages it ran hold its tables, the others ``base``."""
    wh = tmp / "cem.duckdb"
    assert _stamps(wh) == dict.fromkeys(sorted(_all_tables()), "base")
    assert not (tmp / "cem.duckdb.lock").exists()
    names = list(TABLES)
    rest = names[names.index(stage) :]
    proc = subprocess.run(_cmd(tmp, rerun_id, "--stages", ",".join(s[:2] for s in rest)),
                          env=_env(), capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    expected = {t: (rerun_id if s in rest else "base") for s, ts in TABLES.items() for t in ts}
    assert _stamps(wh) == dict(sorted(expected.items()))
    leftovers = [p.name for p in tmp.iterdir() if p.name.startswith(".cem.duckdb.run-")]
    assert leftovers == []


@pytest.mark.slow
@pytest.mark.parametrize("stage", list(TABLES))
def test_kernel_killed_in_each_stage_publishes_nothing(world: Path, stage: str):
    proc, kernel_pid = _start_and_wait(world, stage, "killed")
    os.kill(kernel_pid, signal.SIGKILL)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 1, out
    assert f"{stage}" in out and "DeadKernel" in out
    assert "unchanged (the run did not succeed)" in out
    run = RunResult.load(world / "reports" / "killed" / "run.json")
    assert run.warehouse["status"] == "unchanged"
    kept = Path(run.warehouse["kept"])
    assert kept.name == "cem.failed.duckdb" and kept.is_file()
    # the failed run's own tables are in the kept copy, for inspection, not in the warehouse
    assert set(TABLES[stage]) <= {t for t, r in _stamps(kept).items() if r == "killed"}
    _assert_only_complete_runs(world, stage, "after-kill")


@pytest.mark.slow
@pytest.mark.parametrize("stage", list(TABLES))
def test_interrupt_in_each_stage_publishes_nothing(world: Path, stage: str):
    proc, _ = _start_and_wait(world, stage, "interrupted")
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole group
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode in (1, 130), out
    assert "Traceback" not in out, out
    _assert_only_complete_runs(world, stage, "after-interrupt")


def test_failing_cell_in_03_publishes_nothing_and_keeps_04_of_the_same_run(world: Path):
    """The case of the issue: 03 fails after writing ``marts.churn_scores``; 04 is skipped.
    Nothing of the run is published: no churn scores of a failed run next to next offers
    of an earlier one, no identity.map of this run under the earlier run's offers."""
    proc = subprocess.run(_cmd(world, "bug"), env=_env(CEM_TEST_RAISE="03_churn"),
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "03_churn      failed" in proc.stdout and "RuntimeError" in proc.stdout
    assert "04_next_offer skipped" in proc.stdout
    assert _stamps(world / "cem.duckdb") == dict.fromkeys(sorted(_all_tables()), "base")
    kept = _stamps(world / "cem.failed.duckdb")
    assert kept["marts.churn_scores"] == "bug" and kept["marts.next_offers"] == "base"


@pytest.mark.slow
def test_sigterm_from_a_scheduler_is_an_interrupt(world: Path):
    """Airflow, systemd and Kubernetes stop a job with SIGTERM: exit 143, the run marked
    interrupted, nothing published, the lock released, no working copy left."""
    proc, _ = _start_and_wait(world, "02_profiles", "termed")
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 143, out
    assert "Traceback" not in out, out
    assert "cem run termed: interrupted" in out
    assert RunResult.load(world / "reports" / "termed" / "run.json").status == "interrupted"
    _assert_only_complete_runs(world, "02_profiles", "after-term")


@pytest.mark.slow
def test_run_killed_outright_leaves_its_copy_to_the_next_run(world: Path):
    """SIGKILL of ``cem run`` and its kernel: no handler runs at all. The warehouse is still
    run ``base``; the next run takes over the stale lock and removes the orphaned copy."""
    proc, _ = _start_and_wait(world, "02_profiles", "gone")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert [p for p in world.iterdir() if p.name.startswith(".cem.duckdb.run-gone")]
    assert (world / "cem.duckdb.lock").exists()
    assert _stamps(world / "cem.duckdb") == dict.fromkeys(sorted(_all_tables()), "base")
    rerun = subprocess.run(_cmd(world, "next"), env=_env(), capture_output=True, text=True,
                           timeout=120)  # fmt: skip
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "took over the stale lock" in rerun.stderr
    assert "the working copy of a run that was killed" in rerun.stdout
    assert [p for p in world.iterdir() if p.name.startswith(".cem.duckdb.run-")] == []
    assert _stamps(world / "cem.duckdb") == dict.fromkeys(sorted(_all_tables()), "next")


def test_stage_alone_says_which_inputs_another_run_wrote(world: Path):
    proc = subprocess.run(_cmd(world, "only03", "--stages", "03"), env=_env(),
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "read from other runs: clean.crm_contacts, identity.map (run base)" in proc.stdout
    assert "published, 1 of 10 table(s) from this run" in proc.stdout
    run = RunResult.load(world / "reports" / "only03" / "run.json")
    assert run.stages[0].inputs_from_other_runs == {
        "clean.crm_contacts": "base",
        "identity.map": "base",
    }
    assert run.warehouse["tables"]["marts.churn_scores"] == {"run_id": "only03", "rows": 3}
    assert run.warehouse["tables"]["marts.next_offers"]["run_id"] == "base"
    with Warehouse(world / "cem.duckdb", read_only=True) as wh:
        runs = wh.sql("SELECT run_id, stages FROM meta.runs")
    assert runs.values.tolist() == [
        ["base", "00_collect,01_quality,02_profiles,03_churn,04_next_offer"],
        ["only03", "03_churn"],
    ]
    page = (world / "reports" / "only03" / "index.html").read_text(encoding="utf-8")
    assert "1 of its 10 tables come from this run; 9 table(s) come from earlier runs" in page


def test_outputs_computed_from_replaced_inputs_are_named_out_of_date(world: Path):
    proc = subprocess.run(_cmd(world, "redo02", "--stages", "02"), env=_env(),
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (
        "out of date: marts.churn_scores (reads identity.map, rewritten by this run: run "
        "03_churn), marts.next_offers (reads identity.map, rewritten by this run: run "
        "04_next_offer)" in proc.stdout
    )
    run = RunResult.load(world / "reports" / "redo02" / "run.json")
    assert set(run.warehouse["stale"]) == {"marts.churn_scores", "marts.next_offers"}


def test_stage_whose_inputs_are_missing_is_refused_before_it_starts(tmp_path: Path):
    _notebooks(tmp_path / "nb")
    proc = subprocess.run(_cmd(tmp_path, "lonely", "--stages", "03"), env=_env(),
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 1
    assert (
        "needs clean (written by 01_quality), identity.map (written by 02_profiles), which the "
        "warehouse does not hold" in proc.stdout
    )
    assert not (tmp_path / "reports" / "lonely" / "03_churn.ipynb").exists()  # never started
    assert not (tmp_path / "cem.duckdb").exists()  # nothing published


def _holder(path: Path, marker: Path) -> subprocess.Popen:
    """A process holding the DuckDB file open (a notebook kernel's connection)."""
    code = (f"import duckdb, pathlib, time; c = duckdb.connect({str(path)!r}); "
            f"pathlib.Path({str(marker)!r}).write_text('open'); time.sleep(60)")  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 30
    while not marker.is_file() and time.monotonic() < deadline:
        time.sleep(0.1)
    return proc


def test_a_warehouse_another_process_holds_open_is_refused_before_the_run(world: Path):
    holder = _holder(world / "cem.duckdb", world / "open.marker")
    try:
        proc = subprocess.run(_cmd(world, "blocked", "--stages", "03"), env=_env(),
                              capture_output=True, text=True, timeout=120)  # fmt: skip
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "the warehouse is open in another process" in lines[0]
    assert f"(PID {holder.pid})" in lines[0] and "Traceback" not in proc.stderr
    assert not (world / "reports" / "blocked").exists()
    assert _stamps(world / "cem.duckdb") == dict.fromkeys(sorted(_all_tables()), "base")


@pytest.mark.slow
def test_a_warehouse_opened_during_the_run_is_not_replaced_under_it(world: Path):
    marker = world / "opened.pid"
    proc = subprocess.run(_cmd(world, "late", "--stages", "03"),
                          env=_env(CEM_TEST_OPEN="03_churn", CEM_TEST_MARKER=str(marker)),
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    pid = int(marker.read_text())
    try:
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "not published: " in proc.stdout and f"(PID {pid}) opened it" in proc.stdout
        run = RunResult.load(world / "reports" / "late" / "run.json")
        assert run.status == "failed" and run.warehouse["status"] == "unchanged"
        assert run.stages[0].status == "ok"
    finally:
        _kill(pid)
    assert _stamps(world / "cem.duckdb") == dict.fromkeys(sorted(_all_tables()), "base")
    kept = world / "cem.failed.duckdb"
    assert _stamps(kept)["marts.churn_scores"] == "late"


def test_declared_inputs_are_written_by_an_earlier_stage():
    """Every input of a stage is declared as written by a stage before it, or (optional,
    ``?``) by the stage itself in an earlier run: 02 reads the ids the last run issued."""
    from cemlib.pipeline.stages import producer

    for i, stage in enumerate(STAGES):
        for entry in stage.reads:
            maker = producer(entry, STAGES)
            assert maker is not None, (stage.name, entry)
            if maker is stage:
                assert entry.endswith("?"), (stage.name, entry)
                continue
            assert STAGES.index(maker) < i, (stage.name, entry)
