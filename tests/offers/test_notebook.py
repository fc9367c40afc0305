import json
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "04_next_offer.ipynb"


def test_notebook_is_stored_without_outputs_with_tagged_parameters():
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert "parameters" in code[0]["metadata"].get("tags", [])
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)
    src = "".join(code[0]["source"])
    for name in (
        "run_id",
        "as_of",
        "seed",
        "warehouse",
        "source",
        "n_people",
        "headlines_path",
        "k",
        "granularity",
    ):
        assert f"{name} =" in src


@pytest.mark.slow
def test_notebook_executes_on_a_small_world(tmp_path):
    import papermill as pm

    from tests.warehouses import checked_world

    wh = checked_world(tmp_path / "w.duckdb", n_people=1200, seed=3)
    heads = tmp_path / "h.json"
    pm.execute_notebook(
        str(NOTEBOOK),
        str(tmp_path / "out.ipynb"),
        parameters={
            "warehouse": str(wh),
            "headlines_path": str(heads),
            "use_truth_profiles": True,
            "n_people": 1200,
        },
        kernel_name="python3",
        progress_bar=False,
        cwd=str(NOTEBOOK.parent),
    )
    h = json.loads(heads.read_text(encoding="utf-8"))
    assert h["profiles with offers"] > 500 and h["lift over best baseline"] > 1.0
    out = (tmp_path / "out.ipynb").read_text(encoding="utf-8")
    assert "image/png" in out and "@" not in "".join(
        line for line in out.splitlines() if "reasons" in line and "text/plain" in line
    )
