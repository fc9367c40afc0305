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


def notebook_problems(nb: nbformat.NotebookNode, *, stage: bool = True) -> list[str]:
    """What keeps ``nb`` from being committed: outputs, execution counts, wrong kernel, and
    (for a stage notebook) a missing or incomplete ``parameters`` cell."""
    problems = []
    dirty = [
        i
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count"))
    ]
    if dirty:
        problems.append(f"cells {dirty} keep outputs or execution counts; clear them")
    if "papermill" in nb.metadata:
        problems.append("an executed copy (Papermill metadata)")
    kernel = nb.metadata.get("kernelspec", {}).get("name")
    if kernel != "python3":
        problems.append(f"kernel {kernel!r}, expected 'python3'")
    if not stage:
        return problems
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    first_code = next((c for c in nb.cells if c.cell_type == "code"), None)
    if len(tagged) != 1:
        return [*problems, f"expected one cell tagged 'parameters', got {len(tagged)}"]
    if first_code is not tagged[0]:
        problems.append("the parameters cell must be the first code cell")
    assigned = {
        t.id
        for node in ast.parse(tagged[0].source).body
        if isinstance(node, ast.Assign | ast.AnnAssign)
        for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(t, ast.Name)
    }
    missing = [p for p in RUN_WIDE_PARAMETERS if p not in assigned]
    if missing:
        problems.append(f"parameters cell lacks {missing}")
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_stored_clean(path):
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    assert notebook_problems(nb, stage=path.name in STAGE_NOTEBOOKS) == [], path.name


def test_checker_flags_an_executed_notebook():
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3"}
    params = nbformat.v4.new_code_cell('run_id = "dev"\nseed = 42', execution_count=1)
    params.metadata["tags"] = ["parameters"]
    params.outputs = [nbformat.v4.new_output("stream", name="stdout", text="hi")]
    nb.cells = [nbformat.v4.new_code_cell("import pandas"), params]
    problems = notebook_problems(nb)
    assert problems[0] == "cells [1] keep outputs or execution counts; clear them"
    assert "the parameters cell must be the first code cell" in problems
    assert any(
        "lacks ['as_of', 'warehouse', 'source', 'n_people', 'headlines_path']" in p
        for p in problems
    )
    params.outputs, params.execution_count = [], None
    nb.cells = [params]
    params.source = "\n".join(f"{p} = None" for p in RUN_WIDE_PARAMETERS)
    assert notebook_problems(nb) == []


@pytest.mark.parametrize("stage", STAGES, ids=[s.name for s in STAGES])
def test_run_cell_calls_the_stage_contract_in_five_lines(stage):
    """One cell tagged ``run-stage`` per stage notebook, at most five lines, calling
    ``cemlib.<package>.run``."""
    nb = nbformat.read(str(NOTEBOOKS[0].parent / stage.notebook), as_version=4)
    cells = [c for c in nb.cells if "run-stage" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, stage.name
    lines = [line for line in cells[0].source.splitlines() if line.strip()]
    assert len(lines) <= 5, (stage.name, len(lines))
    assert f"cemlib.{stage.package}.run(" in cells[0].source, stage.name
