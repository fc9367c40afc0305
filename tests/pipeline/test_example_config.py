"""The documented example configuration stays valid against the project's notebooks."""

from __future__ import annotations

from pathlib import Path

from cemlib.pipeline import load_config, plan_parameters

ROOT = Path(__file__).resolve().parents[2]


def test_run_example_yaml_is_valid():
    cfg = load_config(ROOT / "run.example.yaml", notebooks_dir=str(ROOT / "notebooks"))
    assert cfg.as_of == "2025-06-30" and cfg.n_people == 20000 and cfg.execution_timeout == "auto"
    plans = plan_parameters(cfg, cfg.selected_stages(), ROOT / "notebooks")
    assert set(plans) == {p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    for params in plans.values():
        assert params["as_of"] == "2025-06-30" and params["seed"] == 42
