"""Configuration: YAML + -p overrides, checked against the notebooks before anything runs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from cemlib.errors import InputError
from cemlib.pipeline.config import default_run_id, load_config, parse_override
from cemlib.pipeline.parameters import plan_parameters
from cemlib.pipeline.stages import STAGES, select_stages
from tests.pipeline.conftest import write_notebook


def _cfg_file(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "run.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_defaults_and_sortable_run_id():
    cfg = load_config(now=dt.datetime(2026, 11, 23, 5, 30, 0, tzinfo=dt.UTC))
    assert cfg.run_id == "20261123-053000"
    assert (cfg.as_of, cfg.seed, cfg.n_people, cfg.source) == ("2025-06-30", 42, 20000, "synthetic")
    assert cfg.execution_timeout == "auto"
    assert cfg.warehouse_path.name == "cem.duckdb" and cfg.warehouse_path.is_absolute()
    assert [s.name for s in cfg.selected_stages()] == [s.name for s in STAGES]
    ids = [default_run_id(dt.datetime(2026, 1, d, h, tzinfo=dt.UTC)) for d, h in [(9, 5), (10, 4)]]
    assert ids == sorted(ids)


def test_yaml_and_overrides_typed(tmp_path):
    path = _cfg_file(
        tmp_path,
        "run_id: nightly-1\nas_of: 2025-03-31\nseed: 7\nn_people: 500\nexecution_timeout: 60\n"
        "stages: [0, '01']\nnotebooks:\n  01_quality: {threshold: 0.75}\n",
    )
    cfg = load_config(path, ["seed=11", "01.threshold=0.9", "execution_timeout=null"])
    assert cfg.run_id == "nightly-1"
    assert cfg.as_of == "2025-03-31"  # a YAML date becomes ISO text
    assert cfg.seed == 11 and isinstance(cfg.seed, int)
    assert cfg.n_people == 500
    assert cfg.execution_timeout is None
    assert cfg.stages == ["00_collect", "01_quality"]
    assert cfg.notebooks["01_quality"]["threshold"] == "0.9"  # typed later, per notebook


@pytest.mark.parametrize(
    ("text", "overrides", "named"),
    [
        ("colour: blue\n", [], "'colour'"),
        ("seed: forty\n", [], "'seed' expects an integer"),
        ("as_of: 2025-13-40\n", [], "'as_of' expects a date"),
        ("n_people: 0\n", [], "'n_people' must be at least 1"),
        ("", ["seed=4.5"], "'seed' expects an integer"),
        ("", ["execution_timeout=soon"], "'execution_timeout' expects auto, a number"),
        ("execution_timeout: -5\n", [], "'execution_timeout' must be positive"),
        ("", ["run_id=../etc"], "'run_id' must be"),
        ("", ["headlines_path=/tmp/x.json"], "headlines_path"),
        ("", ["noequals"], "expected name=value"),
        ("notebooks:\n  07_magic: {x: 1}\n", [], "unknown stage '07_magic'"),
        ("notebooks:\n  03_churn: {seed: 1}\n", [], "'seed' is a run-wide parameter"),
        ("- just\n- a list\n", [], "expected a mapping"),
        ("seed: [1\n", [], "not valid YAML"),
    ],
)
def test_bad_config_rejected_naming_it(tmp_path, text, overrides, named):
    path = _cfg_file(tmp_path, text)
    with pytest.raises(InputError) as err:
        load_config(path, overrides)
    assert named in str(err.value)


def test_several_errors_reported_at_once(tmp_path):
    path = _cfg_file(tmp_path, "seed: x\nn_people: -5\nfoo: 1\n")
    with pytest.raises(InputError) as err:
        load_config(path)
    msg = str(err.value)
    assert "'seed'" in msg and "'n_people'" in msg and "'foo'" in msg


def test_missing_config_file(tmp_path):
    with pytest.raises(InputError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_unknown_stage_rejected():
    with pytest.raises(InputError, match="unknown stage '09'"):
        load_config(stages="01,09")
    assert [s.key for s in select_stages("churn, 1")] == ["01", "03"]  # order is the pipeline's


def test_parse_override():
    assert parse_override("03_churn.horizon_days=90") == ("03_churn", "horizon_days", "90")
    assert parse_override("as_of=2025-01-31") == (None, "as_of", "2025-01-31")
    assert parse_override("note=a=b") == (None, "note", "a=b")


@pytest.fixture
def two_notebooks(tmp_path):
    nb_dir = tmp_path / "notebooks"
    write_notebook(
        nb_dir / "00_collect.ipynb",
        ["pass"],
        "mode = 'full'\nsample = 0.5\nlimit = 10\nverbose = False\ntables = ['a', 'b']\n"
        "extra = None\n",
    )
    write_notebook(nb_dir / "01_quality.ipynb", ["pass"], "threshold = 0.5\nlimit = 3\n")
    return nb_dir


def test_plan_types_values_per_notebook(two_notebooks):
    cfg = load_config(
        None,
        [
            "00.sample=1",  # int accepted where a float is declared
            "00.verbose=yes",
            "00.mode=42",  # text declared: kept as the text typed
            "00.extra=2025-01-31",  # None default: YAML value, dates as ISO text
            "limit=5",  # bare name: every notebook declaring it
            "n_people=300",
        ],
        notebooks_dir=str(two_notebooks),
        stages="00,01,02",
    )
    plans = plan_parameters(cfg, cfg.selected_stages())
    assert set(plans) == {"00_collect", "01_quality"}  # 02 has no notebook: not planned
    p0, p1 = plans["00_collect"], plans["01_quality"]
    assert p0["sample"] == 1.0 and isinstance(p0["sample"], float)
    assert p0["verbose"] is True
    assert p0["mode"] == "42"
    assert p0["extra"] == "2025-01-31"
    assert p0["limit"] == 5 and p1["limit"] == 5
    assert p0["n_people"] == p1["n_people"] == 300
    assert p0["run_id"] == cfg.run_id and Path(p0["warehouse"]).is_absolute()


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (["00.threshold=0.1"], "00_collect.ipynb: unknown parameter 'threshold'"),
        (["01.threshold=high"], "01_quality.ipynb: parameter 'threshold' expects a number"),
        (["00.verbose=maybe"], "parameter 'verbose' expects true/false"),
        (["00.limit=2.5"], "parameter 'limit' expects an integer"),
        (["00.tables=7"], "parameter 'tables' expects list"),
        (["colour=blue"], "unknown parameter 'colour'"),
    ],
)
def test_plan_rejects_unknown_and_wrong_type(two_notebooks, overrides, named):
    cfg = load_config(None, overrides, notebooks_dir=str(two_notebooks), stages="00,01")
    with pytest.raises(InputError) as err:
        plan_parameters(cfg, cfg.selected_stages())
    assert named in str(err.value)


def test_yaml_wrong_type_for_notebook_parameter(two_notebooks, tmp_path):
    path = _cfg_file(tmp_path, "notebooks:\n  01_quality:\n    threshold: '0.3'\n    limit: true\n")
    cfg = load_config(path, notebooks_dir=str(two_notebooks))
    with pytest.raises(InputError) as err:
        plan_parameters(cfg, cfg.selected_stages())
    msg = str(err.value)
    assert "'threshold' expects a number (default 0.5), got str '0.3'" in msg
    assert "'limit' expects an integer" in msg


def test_declared_parameters_robust_to_comments_and_magics(tmp_path):
    from cemlib.pipeline.parameters import declared_parameters

    path = write_notebook(
        tmp_path / "00_collect.ipynb",
        ["pass"],
        "%matplotlib inline\nsuites_dir = None  # None = expectations/ of the project\n"
        "rows: int = 1_000  # rows (0 = all)\nstart = pd.Timestamp('2022-01-01')\n",
    )
    declared = declared_parameters(path)
    assert declared["suites_dir"].help == "None = expectations/ of the project"
    assert declared["rows"].default == 1000 and declared["rows"].help == "rows (0 = all)"
    assert declared["start"].expression == "pd.Timestamp('2022-01-01')"
    cfg = load_config(
        None, [f"00.suites_dir={tmp_path}", "00.rows=5", "00.start=2023-01-01"],
        notebooks_dir=str(tmp_path), stages="00",
    )  # fmt: skip
    plan = plan_parameters(cfg, cfg.selected_stages())["00_collect"]
    assert (plan["suites_dir"], plan["rows"], plan["start"]) == (str(tmp_path), 5, "2023-01-01")


def test_cli_check_validates_without_running(two_notebooks, tmp_path, capsys):
    from cemlib.cli import main

    out = tmp_path / "reports"
    args = ["run", "--notebooks", str(two_notebooks), "--out", str(out), "--check"]
    assert main([*args, "-p", "01.threshold=0.7"]) == 0
    assert (
        "configuration ok: 2 notebook(s) to run; not available: 02_profiles"
        in capsys.readouterr().out
    )
    assert main([*args, "-p", "01.threshold=high"]) == 2
    assert "'threshold' expects a number" in capsys.readouterr().err
    assert not out.exists()


def test_check_and_run_refuse_what_would_not_run_with_exit_2(two_notebooks, tmp_path, capsys):
    # --check says what the run would say: no notebook there, or no source folder, is exit 2
    # before anything starts (a cron pre-flight that passes must not be followed by a failure)
    from cemlib.cli import main

    out = tmp_path / "reports"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["run", "--notebooks", str(empty), "--out", str(out), "--check"]) == 2
    assert "none of the selected notebooks" in capsys.readouterr().err
    typo = ["-p", f"source={tmp_path / 'exprots'}"]
    args = ["run", "--notebooks", str(two_notebooks), "--out", str(out)]
    assert main([*args, "--check", *typo]) == 2
    assert "source folder not found" in capsys.readouterr().err
    assert main([*args, *typo]) == 2  # the run itself: refused before its first stage
    assert "source folder not found" in capsys.readouterr().err
    assert not out.exists()


def test_monitor_section_sets_the_thresholds_of_the_monitor_notebook(tmp_path):
    nb = Path(__file__).resolve().parents[2] / "notebooks"
    path = _cfg_file(
        tmp_path,
        "monitor:\n  psi: 0.3\n  auc_floor: 0.65\n"
        "notebooks:\n  05_monitor: {alert_psi: 0.4}\n",  # the notebook's own setting wins
    )
    cfg = load_config(path, notebooks_dir=str(nb), stages="05")
    plan = plan_parameters(cfg, cfg.selected_stages())["05_monitor"]
    assert (plan["alert_psi"], plan["alert_auc_floor"]) == (0.4, 0.65)
    assert "alert_rows_change" not in plan  # not set: the notebook keeps its default
    bad = _cfg_file(tmp_path, "monitor:\n  psi_max: 0.3\n")
    with pytest.raises(InputError) as err:
        load_config(bad)
    assert "monitor: unknown threshold 'psi_max' (known: psi, rows_change" in str(err.value)


def test_path_parameters_resolve_like_the_source_and_must_exist(tmp_path, monkeypatch):
    # a new user's `-p 00_collect.mapping=../exports/mapping.yaml` was looked up from the
    # notebooks folder (the kernel's cwd) and not found, while the source beside it was
    monkeypatch.setenv("CEM_HOME", str(tmp_path))
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "mapping.yaml").write_text("crm_contacts: {}\n", encoding="utf-8")
    nb = Path(__file__).resolve().parents[2] / "notebooks"
    cfg = load_config(
        None, ["00_collect.mapping=exports/mapping.yaml"], notebooks_dir=str(nb), stages="00"
    )
    plans = plan_parameters(cfg, cfg.selected_stages())
    assert plans["00_collect"]["mapping"] == str(tmp_path / "exports" / "mapping.yaml")
    cfg = load_config(None, ["00_collect.mapping=nope.yaml"], notebooks_dir=str(nb), stages="00")
    with pytest.raises(InputError, match=r"00_collect.ipynb: mapping: .*nope.yaml does not exist"):
        plan_parameters(cfg, cfg.selected_stages())


def test_check_refuses_parameter_values_out_of_range(tmp_path, capsys):
    # the project's own notebooks: a probability of 1.5 or a list of 0 offers is refused by
    # --check with every problem named, before any stage runs (it failed inside stage 02, exit 1)
    from cemlib.cli import main

    out = tmp_path / "reports"
    bad = ["02.match_threshold=1.5", "03.horizon_days=-3", "04.k=0", "05.alert_null_share=2"]
    args = ["run", "--out", str(out), "--check"]
    assert main([*args, *(a for o in bad for a in ("-p", o))]) == 2
    err = capsys.readouterr().err
    assert "invalid run configuration (4 errors)" in err
    assert "02_profiles.ipynb: parameter 'match_threshold' must be in (0, 1) or 'auto'" in err
    assert "03_churn.ipynb: parameter 'horizon_days' must be at least 1, got -3" in err
    assert "04_next_offer.ipynb: parameter 'k' must be at least 1, got 0" in err
    assert "05_monitor.ipynb: parameter 'alert_null_share' must be in [0, 1], got 2.0" in err
    assert "Traceback" not in err and not out.exists()
    ok = ["-p", "02.match_threshold=0.9", "-p", "05.alert_null_share=0"]
    assert main([*args, *ok]) == 0
    assert main([*args, "-p", "02.match_threshold=auto"]) == 0
