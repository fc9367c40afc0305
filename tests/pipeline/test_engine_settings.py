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


def test_only_the_notebooks_declaring_them_receive_them(tmp_path):
    cfg = load_config(None, ["engine=spark", f"lake={tmp_path}"], notebooks_dir=NOTEBOOKS,
                      stages="00,01,02,03,04")  # fmt: skip
    plans = plan_parameters(cfg, cfg.selected_stages())
    for stage in ("00_collect", "01_quality", "02_profiles", "03_churn"):
        assert plans[stage]["engine"] == "spark" and plans[stage]["lake"] == str(tmp_path)
        assert plans[stage]["spark_master"] == "local[*]"
    assert "engine" not in plans["04_next_offer"]


def test_duckdb_run_gives_the_notebooks_duckdb():
    cfg = load_config(None, [], notebooks_dir=NOTEBOOKS, stages="00,01")
    plans = plan_parameters(cfg, cfg.selected_stages())
    assert {p["engine"] for p in plans.values()} == {"duckdb"}


def test_stage_not_on_spark_refused_before_anything_runs(tmp_path, capsys):
    out = tmp_path / "reports"
    code = main(["run", "-p", "engine=spark", "--stages", "00,01,02,03,04", "--out", str(out),
                 "--notebooks", NOTEBOOKS, "-p", f"warehouse={tmp_path / 'w.duckdb'}"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == [
        "cem run: error: engine spark runs stages 00, 01, 02, 03 so far; run 04 with engine duckdb"
    ]
    assert not out.exists() and not (tmp_path / "w.duckdb").exists()


def test_preflight_lets_spark_stages_through(monkeypatch):
    import cemlib.engine

    monkeypatch.setattr(cemlib.engine, "require_pyspark", lambda: None)  # no JVM needed here
    cfg = load_config(None, ["engine=spark"], notebooks_dir=NOTEBOOKS, stages="00,01,02")
    stages, plans, _ = preflight(cfg)
    assert [s.key for s in stages] == ["00", "01", "02"]
    assert set(plans) == {"00_collect", "01_quality", "02_profiles"}


def test_list_shows_the_engine(capsys):
    assert main(["run", "--list", "-p", "engine=spark", "--notebooks", NOTEBOOKS]) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        "engine: spark (stages on spark so far: 00, 01, 02, 03), spark_master local[*]"
    )
    assert "    engine = " not in out  # a run setting, not listed as a notebook parameter
