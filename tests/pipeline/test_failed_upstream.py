"""A stage whose inputs a failed stage of the same run should have written is skipped, even when
it reads them as optional (trial 10 L5: 05_monitor ran after 02_profiles failed and graded the
last good run's profiles and scores as this run's, "0 alerts").

The stand-in notebooks write the tables their stage declares; 02 and 04 fail on a notebook
parameter (``fail``) after writing half of their tables, as a stage that breaks late does; 05
records the run ids of the tables it read. The warehouse starts holding one complete run,
``base``, written directly (no kernel).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from cemlib.cli import main
from cemlib.pipeline.result import RunResult
from cemlib.warehouse import Warehouse
from tests.pipeline.conftest import write_notebook

pytestmark = pytest.mark.slow

TABLES = {
    "00_collect": ["raw.crm_contacts", "staging.crm_contacts"],
    "01_quality": ["clean.crm_contacts", "quarantine.crm_contacts", "quality.results"],
    "02_profiles": ["identity.map", "identity.registry"],
    "03_churn": ["marts.churn_scores"],
    "04_next_offer": ["marts.next_offers"],
}

WRITE = """\
import pandas as pd
from cemlib.config import warehouse_path
from cemlib.warehouse import Warehouse
with Warehouse(warehouse_path(warehouse)) as wh:
    for t in {tables!r}:
        s, n = t.split(".")
        wh.write_table(s, n, pd.DataFrame({{"x": range(3)}}), run_id=run_id, as_of=as_of)
        if fail:
            raise ValueError(f"{stage} stopped half-way, after writing {{t}}")
"""

READ = """\
import json
from cemlib.config import warehouse_path
from cemlib.warehouse import Warehouse
with Warehouse(warehouse_path(warehouse)) as wh:
    seen = {t: v["run_id"] for t, v in wh.provenance().items()}
open(headlines_path.replace(".headlines.json", ".seen.json"), "w").write(json.dumps(seen))
"""


@pytest.fixture
def world(tmp_path: Path) -> Path:
    for stage, tables in TABLES.items():
        write_notebook(tmp_path / "nb" / f"{stage}.ipynb",
                       [WRITE.format(tables=tables, stage=stage)], "fail = False\n")  # fmt: skip
    write_notebook(tmp_path / "nb" / "05_monitor.ipynb", [READ])
    with Warehouse(tmp_path / "cem.duckdb") as wh:
        for t in [t for ts in TABLES.values() for t in ts]:
            s, n = t.split(".")
            wh.write_table(s, n, pd.DataFrame({"x": range(3)}), run_id="base", as_of="2025-06-30")
    return tmp_path


def _run(world: Path, run_id: str, stages: str, *params: str) -> int:
    return main(
        ["run", "--notebooks", str(world / "nb"), "--out", str(world / "reports"),
         "--no-progress", "--stages", stages, "-p", f"run_id={run_id}",
         "-p", f"warehouse={world / 'cem.duckdb'}", *[a for p in params for a in ("-p", p)]]
    )  # fmt: skip


def test_02_failing_skips_every_stage_that_reads_its_tables(world, capsys):
    code = _run(world, "bad", "02,03,04,05", "02.fail=true")
    printed = capsys.readouterr().out
    assert code == 1
    run = RunResult.load(world / "reports/bad/run.json")
    assert [(s.name, s.status) for s in run.stages] == [
        ("02_profiles", "failed"), ("03_churn", "skipped"), ("04_next_offer", "skipped"),
        ("05_monitor", "skipped"),
    ]  # fmt: skip
    assert run.stages[0].error["evalue"] == (
        "02_profiles stopped half-way, after writing identity.map"
    )
    # 05 depends on 01 only, but reads identity.map? and marts.*?: skipped, naming the failure
    assert {s.reason for s in run.stages[1:]} == {"needs 02_profiles, which failed"}
    assert not (world / "reports/bad/05_monitor.seen.json").exists()
    assert not (world / "reports/bad/05_monitor.html").exists()
    lines = [ln for ln in printed.splitlines() if ln.startswith("[")]
    assert re.match(r"\[4/4\] 05_monitor\s+skipped\s+needs 02_profiles, which failed$", lines[3])
    assert "cem run bad: failed (1 failed, 3 skipped)" in printed
    index = (world / "reports/bad/index.html").read_text(encoding="utf-8")
    table = index[index.index("<h2>Stages</h2>") :]
    assert table.count(">skipped<") == 3
    # nothing published: the warehouse is still the complete run 'base', the half-written
    # identity.map of the failed run only in the kept copy
    with Warehouse(world / "cem.duckdb", read_only=True) as wh:
        assert {v["run_id"] for v in wh.provenance().values()} == {"base"}
    with Warehouse(world / "cem.failed.duckdb", read_only=True) as wh:
        stamps = {t: v["run_id"] for t, v in wh.provenance().items()}
    assert stamps["identity.map"] == "bad" and stamps["identity.registry"] == "base"


def test_04_failing_skips_05_and_keeps_what_ran_before_it(world, capsys):
    code = _run(world, "bad4", "02,03,04,05", "04.fail=true")
    capsys.readouterr()
    assert code == 1
    run = RunResult.load(world / "reports/bad4/run.json")
    assert [s.status for s in run.stages] == ["ok", "ok", "failed", "skipped"]
    assert run.stages[3].reason == "needs 04_next_offer, which failed"


def test_a_stage_run_alone_still_reads_the_last_run_and_a_feeder_ok_lets_it_run(world, capsys):
    # 02 and 03 not selected: their tables are the last published run's, said so, and 05 runs
    assert _run(world, "alone", "05") == 0
    seen = json.loads((world / "reports/alone/05_monitor.seen.json").read_text())
    assert seen["identity.map"] == "base"
    assert "read from other runs" in capsys.readouterr().out
    # every feeder of 05 ok in this run: 05 runs and reads this run's tables
    assert _run(world, "good", "02,03,04,05") == 0
    seen = json.loads((world / "reports/good/05_monitor.seen.json").read_text())
    assert seen["identity.map"] == seen["marts.next_offers"] == "good"
    assert seen["clean.crm_contacts"] == "base"
