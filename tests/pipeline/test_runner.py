"""Executing stage notebooks for real with Papermill: success, failure, timeout, dead kernel."""

from __future__ import annotations

import io
import json
import re
import time

import pytest

from cemlib.cli import main
from cemlib.pipeline import load_config, run_pipeline
from cemlib.pipeline.index import list_runs
from cemlib.pipeline.result import RunResult
from tests.pipeline.conftest import OK_CELLS, write_notebook

pytestmark = pytest.mark.slow


def test_failing_stage_reported_and_dependants_skipped(stage_notebooks, tmp_path, capsys):
    out = tmp_path / "reports"
    code = main(
        ["run", "--notebooks", str(stage_notebooks), "--out", str(out), "--no-progress",
         "-p", "run_id=r1", "-p", "n_people=10", "-p", "01.threshold=0.25"]
    )  # fmt: skip
    captured = capsys.readouterr()
    printed = captured.out
    assert code == 1
    # a cron job keeping only stderr learns which stage failed where (one line, no traceback)
    assert captured.err.splitlines() == [
        "cem run: error: 01_quality: failed at code cell 3 (In [4]): ValueError: boom at "
        "threshold 0.25"
    ]

    run = RunResult.load(out / "r1" / "run.json")
    status = {s.name: s.status for s in run.stages}
    assert status == {
        "00_collect": "ok",
        "01_quality": "failed",
        "02_profiles": "skipped",
        "03_churn": "skipped",
        "04_next_offer": "skipped",
        "05_monitor": "skipped",
    }
    assert run.status == "failed" and run.exit_code == 1
    failed = run.stages[1]
    assert failed.error["code_cell"] == 3  # parameters cell = code cell 1
    assert failed.error["ename"] == "ValueError"
    assert failed.error["evalue"] == "boom at threshold 0.25"
    assert failed.error["source_line"].startswith("raise ValueError")
    assert run.stages[2].reason == "needs 01_quality, which failed"
    assert run.stages[4].reason == "needs 01_quality, which failed"  # the failure, not 02

    # the failed stage's reports are written with the error visible, in both renderings
    for name in ("01_quality.html", "01_quality.code.html", "01_quality.ipynb"):
        text = (out / "r1" / name).read_text(encoding="utf-8")
        assert "boom at threshold 0.25" in text, name
        if name.endswith(".html"):  # a banner above everything says what failed where
            assert "<strong>This stage failed</strong> at code cell 3 (In [4])" in text
    assert "z = 3" not in (out / "r1" / "01_quality.html").read_text(encoding="utf-8")
    assert not (out / "r1" / "02_profiles.html").exists()

    index = (out / "r1" / "index.html").read_text(encoding="utf-8")
    assert "Stage 01_quality failed</strong> at code cell 3 (In [4]): ValueError: boom at" in index
    assert 'href="01_quality.html#papermill-error-cell"' in index
    stage_table = index[index.index("<h2>Stages</h2>") : index.index("What changed")]
    assert stage_table.count(">skipped<") == 4
    verdicts = index[index.index("Verdict per stage") : index.index("<h2>Stages</h2>")]
    assert verdicts.count(">skipped<") == 4 and "needs 01_quality, which failed" in verdicts
    # headline figures of the stage that ran: n_people=10 -> 30 rows
    assert re.search(r"<td>rows collected</td><td class=\"num\">30</td>", index)
    assert re.search(r"<td>share valid</td><td class=\"num\">0.875</td>", index)

    # one line per stage with its elapsed time, then where the report is
    lines = [ln for ln in printed.splitlines() if ln.startswith("[")]
    assert len(lines) == 6
    assert re.match(r"\[1/6\] 00_collect\s+ok\s+\d+\.\d s", lines[0])
    assert "failed" in lines[1] and "code cell 3 (In [4]): ValueError" in lines[1]
    assert printed.rstrip().endswith(f"Report: {out / 'r1' / 'index.html'}")


def test_parameters_injected_and_headlines_recorded(tmp_path):
    nb_dir = tmp_path / "nb"
    write_notebook(nb_dir / "00_collect.ipynb", OK_CELLS)
    cfg = load_config(
        None,
        ["run_id=inj", "n_people=123", "seed=9", "as_of=2025-01-31"],
        notebooks_dir=str(nb_dir),
        out=str(tmp_path / "reports"),
        stages="00",
    )
    run = run_pipeline(cfg, progress=False)
    assert run.exit_code == 0 and run.status == "ok"
    stage = run.stages[0]
    assert stage.headlines == {"rows collected": 369, "share valid": 0.875, "seed": 9}
    saved = json.loads((tmp_path / "reports/inj/00_collect.headlines.json").read_text())
    assert saved["rows collected"] == 369
    html = (tmp_path / "reports/inj/00_collect.html").read_text(encoding="utf-8")
    assert "run inj as of 2025-01-31: 369 rows" in html
    assert stage.duration > 0 and run.duration >= stage.duration


def test_missing_notebooks_not_available_and_exit_zero(tmp_path, capsys):
    nb_dir = tmp_path / "nb"
    write_notebook(nb_dir / "00_collect.ipynb", ["x = 1"])
    write_notebook(nb_dir / "03_churn.ipynb", ["x = 1"])
    out = tmp_path / "reports"
    code = main(
        ["run", "--notebooks", str(nb_dir), "--out", str(out), "-p", "run_id=partial",
         "--no-progress"]
    )  # fmt: skip
    assert code == 0
    run = RunResult.load(out / "partial" / "run.json")
    na = "not available"
    assert [s.status for s in run.stages] == ["ok", na, na, "skipped", na, na]
    assert run.stages[3].reason == "needs 02_profiles, which is not available"
    assert run.status == "incomplete"
    assert "01_quality.ipynb not found" in run.stages[1].reason
    index = (out / "partial" / "index.html").read_text(encoding="utf-8")
    assert "Not available in this checkout: 01_quality" in index


def test_cell_timeout_is_a_failure_not_a_hang(tmp_path):
    nb_dir = tmp_path / "nb"
    write_notebook(nb_dir / "00_collect.ipynb", ["x = 1", "import time\ntime.sleep(120)", "y = 2"])
    write_notebook(nb_dir / "01_quality.ipynb", ["x = 1"])
    cfg = load_config(
        None,
        ["run_id=slow", "execution_timeout=2.5"],  # whole seconds reach the notebook client
        notebooks_dir=str(nb_dir),
        out=str(tmp_path / "reports"),
        stages="00,01",
    )
    t0 = time.perf_counter()
    run = run_pipeline(cfg, progress=False)
    assert time.perf_counter() - t0 < 60
    assert run.exit_code == 1
    stage = run.stages[0]
    assert stage.status == "failed"
    assert stage.error["kind"] == "timeout" and stage.error["code_cell"] == 3
    assert "execution_timeout=2.5 s" in stage.error["evalue"]
    assert stage.cell_timeout == 2.5
    assert run.stages[1].status == "skipped"
    html = (tmp_path / "reports/slow/00_collect.html").read_text(encoding="utf-8")
    assert "CellTimeout" in html and "execution_timeout=2.5 s" in html


def test_auto_cell_timeout_stops_a_hung_cell_and_says_how_it_was_chosen(tmp_path, monkeypatch):
    from cemlib import budget

    monkeypatch.setattr(budget, "TIMEOUT_FLOOR", 3.0)  # a floor and factor for a short test
    monkeypatch.setattr(budget, "TIMEOUT_FACTOR", 0.1)
    nb_dir = tmp_path / "nb"
    write_notebook(nb_dir / "00_collect.ipynb", ["x = 1", "import time\ntime.sleep(120)"])
    cfg = load_config(
        None, ["run_id=auto", "n_people=1"], notebooks_dir=str(nb_dir),
        out=str(tmp_path / "reports"), stages="00",
    )  # fmt: skip
    run = run_pipeline(cfg, progress=False)
    stage = run.stages[0]
    assert stage.status == "failed" and stage.error["kind"] == "timeout"
    assert stage.cell_timeout == 3.0
    assert stage.error["evalue"] == (
        "cell ran longer than its limit and was stopped (execution_timeout auto: 3 s "
        "(0.1 x the 5 s expected for 1 people, at least 3))"
    )
    assert RunResult.load(tmp_path / "reports/auto/run.json").stages[0].cell_timeout == 3.0


def test_bad_input_in_a_stage_exits_2_with_one_line_and_no_traceback(tmp_path):
    """Trial 4 (M2): a missing column under cem run exited 1 like a crash, and the reviewer's
    report showed cemlib's traceback; bad input is exit 2 and the message alone."""
    nb_dir = tmp_path / "nb"
    bad = (
        "from cemlib.errors import InputError\n"
        "def load():\n"
        "    raise InputError('missing required column(s)', source='exports/receipts.csv',"
        " column='purchased_at')\n"
        "load()"
    )
    write_notebook(nb_dir / "00_collect.ipynb", ["x = 1", bad])
    write_notebook(nb_dir / "01_quality.ipynb", ["x = 1"])
    out = tmp_path / "reports"
    code = main(
        ["run", "--notebooks", str(nb_dir), "--out", str(out), "-p", "run_id=bad",
         "--stages", "00,01", "--no-progress"]
    )  # fmt: skip
    assert code == 2
    run = RunResult.load(out / "bad" / "run.json")
    stage = run.stages[0]
    assert stage.status == "failed" and stage.error["kind"] == "input"
    assert stage.error["evalue"] == (
        "exports/receipts.csv, column 'purchased_at': missing required column(s)"
    )
    assert run.stages[1].status == "skipped"
    html = (out / "bad/00_collect.html").read_text(encoding="utf-8")
    assert "missing required column(s)" in html
    for frame in ("Traceback", "def load", "Cell In[", "line 3"):
        assert frame not in html, frame
    # a crash is still exit 1, its traceback kept
    write_notebook(nb_dir / "00_collect.ipynb", ["x = 1", "def f():\n    1 / 0\nf()"])
    code = main(
        ["run", "--notebooks", str(nb_dir), "--out", str(out), "-p", "run_id=crash",
         "--stages", "00", "--no-progress"]
    )  # fmt: skip
    assert code == 1
    assert "ZeroDivisionError" in (out / "crash/00_collect.html").read_text(encoding="utf-8")


def test_dead_kernel_is_a_failure(tmp_path):
    nb_dir = tmp_path / "nb"
    write_notebook(nb_dir / "00_collect.ipynb", ["x = 1", "import os\nos._exit(3)", "y = 2"])
    cfg = load_config(
        None, ["run_id=dead"], notebooks_dir=str(nb_dir), out=str(tmp_path / "r"), stages="00"
    )
    run = run_pipeline(cfg, progress=False)
    stage = run.stages[0]
    assert run.exit_code == 1 and stage.status == "failed"
    assert stage.error["kind"] == "dead kernel" and stage.error["code_cell"] == 3
    assert "DeadKernel" in (tmp_path / "r/dead/00_collect.html").read_text(encoding="utf-8")


def test_bad_parameter_rejected_before_anything_runs(stage_notebooks, tmp_path, capsys):
    out = tmp_path / "reports"
    code = main(
        ["run", "--notebooks", str(stage_notebooks), "--out", str(out), "-p", "01.treshold=1"]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "01_quality.ipynb: unknown parameter 'treshold' (its parameters: threshold)" in err
    assert not out.exists()


def test_rerun_same_id_replaces_the_run(tmp_path):
    nb_dir = tmp_path / "nb"
    write_notebook(nb_dir / "00_collect.ipynb", OK_CELLS)
    args = dict(notebooks_dir=str(nb_dir), out=str(tmp_path / "reports"), stages="00")
    run_pipeline(load_config(None, ["run_id=same", "n_people=1"], **args), progress=False)
    run = run_pipeline(load_config(None, ["run_id=same", "n_people=2"], **args), progress=False)
    assert run.stages[0].headlines["rows collected"] == 6
    assert (
        RunResult.load(tmp_path / "reports/same/run.json").stages[0].headlines["rows collected"]
        == 6
    )


def test_no_notebook_found_is_a_config_error(tmp_path, capsys):
    code = main(["run", "--notebooks", str(tmp_path / "empty"), "--out", str(tmp_path / "r")])
    assert code == 2
    assert "none of the selected notebooks" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_default_run_ids_do_not_collide_and_keep_runs_prunes_the_oldest(tmp_path):
    import datetime as dt

    nb_dir = tmp_path / "nb"
    write_notebook(nb_dir / "00_collect.ipynb", OK_CELLS)
    now = dt.datetime(2026, 11, 23, 5, 30, tzinfo=dt.UTC)
    args = dict(notebooks_dir=str(nb_dir), out=str(tmp_path / "reports"), stages="00", now=now)
    first = run_pipeline(load_config(None, [], **args), progress=False)
    second = run_pipeline(load_config(None, [], **args), progress=False)
    assert (first.run_id, second.run_id) == ("20261123-053000", "20261123-053000-2")
    assert second.stages[0].parameters["run_id"] == "20261123-053000-2"
    assert (tmp_path / "reports/20261123-053000/00_collect.html").is_file()
    assert (tmp_path / "reports/latest").resolve().name == "20261123-053000-2"
    # keep_runs: the third run leaves two folders, its own and the newest before it
    out = io.StringIO()
    run_pipeline(load_config(None, ["keep_runs=2"], **args), progress=False, stream=out)
    assert "removed 1 old run folder(s) past keep_runs 2: 20261123-053000" in out.getvalue()
    kept = sorted(r.run_id for r in list_runs(tmp_path / "reports"))
    assert kept == ["20261123-053000-2", "20261123-053000-3"]


def test_unknown_kernel_is_a_config_error(stage_notebooks, tmp_path, capsys):
    out = tmp_path / "r"
    code = main(
        ["run", "--notebooks", str(stage_notebooks), "--out", str(out), "-p", "kernel=nope"]
    )
    assert code == 2
    assert "no Jupyter kernel named 'nope' (installed: " in capsys.readouterr().err
    assert not out.exists()


def test_a_stage_continuing_its_own_state_is_not_reported_as_reading_other_runs():
    from cemlib.pipeline.runner import other_runs_lines
    from cemlib.pipeline.stages import STAGES

    stage = {s.key: s for s in STAGES}
    carried = {"identity.registry": "may", "identity.state": "may", "clean.orders": "june0"}
    assert other_runs_lines(stage["02"], carried) == [
        "continues from its previous run: identity.* (2 tables) (run may)",
        "read from other runs: clean.orders (run june0)",
    ]
    assert other_runs_lines(stage["03"], {"identity.map": "may"}) == [
        "read from other runs: identity.map (run may)"
    ]
    assert other_runs_lines(stage["03"], {}) == []
