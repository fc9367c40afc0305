"""Every committed stage notebook is stored clean and declares the run-wide parameters."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest

from cemlib.pipeline.config import RUN_WIDE_PARAMETERS
from cemlib.pipeline.stages import STAGES

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
STAGE_NOTEBOOKS = {s.notebook for s in STAGES}


@pytest.fixture(params=NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def notebook(request) -> tuple[Path, nbformat.NotebookNode]:
    path = request.param
    return path, nbformat.read(str(path), as_version=4)


def test_stored_without_outputs(notebook):
    path, nb = notebook
    dirty = [
        i
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count"))
    ]
    assert not dirty, f"{path.name}: cells {dirty} keep outputs or execution counts; clear them"
    assert "papermill" not in nb.metadata, f"{path.name}: an executed copy was committed"


def test_valid_and_kernel_python3(notebook):
    path, nb = notebook
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", path.name


def test_parameters_cell_declares_run_wide_parameters(notebook):
    path, nb = notebook
    if path.name not in STAGE_NOTEBOOKS:
        pytest.skip(f"{path.name} is not a stage notebook")
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, (
        f"{path.name}: expected one cell tagged 'parameters', got {len(tagged)}"
    )
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert first_code is tagged[0], f"{path.name}: the parameters cell must be the first code cell"
    tree = ast.parse(tagged[0].source)
    assigned = {
        t.id
        for node in tree.body
        if isinstance(node, ast.Assign | ast.AnnAssign)
        for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(t, ast.Name)
    }
    missing = [p for p in RUN_WIDE_PARAMETERS if p not in assigned]
    assert not missing, f"{path.name}: parameters cell lacks {missing}"
