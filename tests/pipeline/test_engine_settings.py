"""The run settings of the Spark engine (``engine``, ``spark_master``, ``lake``): checked with
the other settings, injected into the notebooks that declare them, and a run selecting a stage
not yet on Spark refused in one line before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from cemlib.cli import main
from cemlib.errors import InputError
from cemlib.pipeline.config import load_config
from cemlib.pipeline.parameters import plan_parameters
from cemlib.pipeline.runner import preflight

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = str(ROOT / "notebooks")


def test_defaults_duckdb_local_and_the_project_lake():
    cfg = load_config(notebooks_dir=NOTEBOOKS)
    assert (cfg.engine, cfg.spark_master, cfg.lake) == ("duckdb", "local[*]", None)
    assert cfg.to_dict()["engine"] == "duckdb"
    assert cfg.engine_parameters()["lake"].endswith("data/lake")


def test_values_typed_from_yaml_and_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("engine: spark\nspark_master: spark://10.0.0.5:7077\nlake: /data/lake\n")
    cfg = load_config(path, ["spark_master=local[2]"], notebooks_dir=NOTEBOOKS)
    assert (cfg.engine, cfg.spark_master, cfg.lake) == ("spark", "local[2]", "/data/lake")


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("engine=polars", "'engine' must be one of duckdb, spark, got 'polars'"),
        ("spark_master=localhost", "'spark_master' expects local[*], local[N], spark://"),
        ("spark_master=local[two]", "'spark_master' expects"),
    ],
)
def test_bad_values_named_in_one_message(override, named):
    with pytest.raises(InputError, match="invalid run configuration") as err:
        load_config(None, [override], notebooks_dir=NOTEBOOKS)
    assert named in str(err.value)


def test_every_stage_notebook_receives_the_engine_settings(tmp_path):
    cfg = load_config(None, ["engine=spark", f"lake={tmp_path}"], notebooks_dir=NOTEBOOKS,
                      stages="00,01,02,03,04,05")  # fmt: skip
    plans = plan_parameters(cfg, cfg.selected_stages())
    assert len(plans) == 6
    for stage, plan in plans.items():
        assert plan["engine"] == "spark" and plan["lake"] == str(tmp_path), stage
        assert plan["spark_master"] == "local[*]"


def test_duckdb_run_gives_the_notebooks_duckdb():
    cfg = load_config(None, [], notebooks_dir=NOTEBOOKS, stages="00,01")
    plans = plan_parameters(cfg, cfg.selected_stages())
    assert {p["engine"] for p in plans.values()} == {"duckdb"}


def test_preflight_lets_spark_stages_through(monkeypatch):
    import cemlib.engine

    monkeypatch.setattr(cemlib.engine, "require_pyspark", lambda: None)  # no JVM needed here
    cfg = load_config(None, ["engine=spark"], notebooks_dir=NOTEBOOKS)
    stages, plans, _ = preflight(cfg)  # every stage runs on Spark: none refused
    assert [s.key for s in stages] == ["00", "01", "02", "03", "04", "05"]
    assert all(p["engine"] == "spark" for p in plans.values())


def test_list_shows_the_engine(capsys):
    assert main(["run", "--list", "-p", "engine=spark", "--notebooks", NOTEBOOKS]) == 0
    out = capsys.readouterr().out
    from cemlib.engine import SPARK_STAGES

    assert out.startswith(
        f"engine: spark (stages on spark so far: {', '.join(SPARK_STAGES)}), spark_master local[*]"
    )
    assert "    engine = " not in out  # a run setting, not listed as a notebook parameter


def test_a_spark_stage_finds_its_inputs_in_the_lake(tmp_path):
    """``cem run --stages 02 -p engine=spark`` after a run of 00-01: ``clean`` is in the lake,
    not in the DuckDB warehouse, and the input check reads both (the lake wins)."""
    import pandas as pd

    from cemlib.engine.lake import Lake
    from cemlib.pipeline.isolation import WorkingCopy
    from cemlib.pipeline.runner import _provenance
    from cemlib.pipeline.stages import STAGES, check_inputs
    from cemlib.warehouse import Warehouse

    wh_path, lake_path = tmp_path / "cem.duckdb", tmp_path / "lake"
    with Warehouse(wh_path) as wh:
        wh.write_table("staging", "crm_contacts", pd.DataFrame({"contact_id": ["1"]}),
                       run_id="r0", as_of="2025-06-30")  # fmt: skip
    profiles = next(s for s in STAGES if s.name == "02_profiles")
    copy = WorkingCopy(wh_path, "r1")
    with copy.open():
        duck = load_config(overrides=[f"warehouse={wh_path}"], notebooks_dir=NOTEBOOKS)
        spark = load_config(
            overrides=[f"warehouse={wh_path}", "engine=spark", f"lake={lake_path}"],
            notebooks_dir=NOTEBOOKS,
        )
        assert "clean" in check_inputs(profiles, _provenance(spark, copy), "r1", [])[0]
        with Lake(lake_path) as lake:
            lake.write_table("clean", "crm_contacts", pd.DataFrame({"contact_id": ["1", "2"]}),
                             run_id="r0", as_of="2025-06-30")  # fmt: skip
        got = _provenance(spark, copy)
        assert got["clean.crm_contacts"] == {"run_id": "r0", "rows": 2}
        assert "staging.crm_contacts" in got  # the warehouse's tables stay
        assert check_inputs(profiles, got, "r1", [])[0] is None
        assert check_inputs(profiles, _provenance(duck, copy), "r1", [])[0] is not None
