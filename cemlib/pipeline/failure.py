"""Why a stage failed: the failing cell of its executed notebook, made visible in it.

An exception in a cell is marked by Papermill; a cell past ``execution_timeout`` or a dead
kernel is marked here, like Papermill does, so that the report shows where the stage stopped.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

import nbformat


def _is_injected(cell: nbformat.NotebookNode) -> bool:
    tags = cell.get("metadata", {}).get("tags", [])
    return "injected-parameters" in tags or "papermill-error-cell-tag" in tags


def _code_cell_number(nb: nbformat.NotebookNode, index: int) -> int:
    """1-based position of cell ``index`` among the code cells of the *source* notebook."""
    n = 0
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and not _is_injected(cell):
            n += 1
        if i == index:
            return n
    return n


def _failing_cell(nb: nbformat.NotebookNode) -> int | None:
    """Index of the cell that failed: marked by Papermill, holding an error, or last started."""
    code = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    for i, c in code:
        if c.get("metadata", {}).get("papermill", {}).get("exception"):
            return i
    for i, c in code:
        if "raises-exception" in c.get("metadata", {}).get("tags", []):
            continue  # an error the author expects; Papermill does not stop there either
        for out in c.get("outputs", []):
            if out.get("output_type") == "error" and not (
                out.get("ename") == "SystemExit" and out.get("evalue") in ("", "0")
            ):
                return i
    started = [i for i, c in code if c.get("metadata", {}).get("papermill", {}).get("start_time")]
    return started[-1] if started else None


def _first_line(source: str) -> str:
    for line in source.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            return line.strip()[:120]
    return ""


#: the failure kind of a cell that raised :class:`cemlib.errors.InputError` (bad input data or
#: settings, named by file and column): the run exits 2, the report shows the one line
INPUT = "input"
INPUT_ERROR = "InputError"


def _one_line_error(cell: nbformat.NotebookNode) -> bool:
    """Replace the traceback of ``cell``'s InputError output by its one line (the message
    names the file and column; the frames of cemlib's code tell a reviewer nothing)."""
    changed = False
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error" and out.get("ename") == INPUT_ERROR:
            out["traceback"] = [f"{INPUT_ERROR}: {out.get('evalue', '')}"]
            changed = True
    return changed


def _mark_failure(nb: nbformat.NotebookNode, index: int, ename: str, evalue: str) -> None:
    """Make a timeout or dead kernel visible in the notebook like Papermill does for errors."""
    cell = nb.cells[index]
    cell.setdefault("outputs", []).append(
        nbformat.v4.new_output(
            "error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"]
        )
    )
    meta = cell.setdefault("metadata", {}).setdefault("papermill", {})
    meta["exception"] = True
    meta["status"] = "failed"
    count = cell.get("execution_count")
    where = f"In [{count}]" if count else f"code cell {_code_cell_number(nb, index)}"
    banner = nbformat.v4.new_markdown_cell(
        f'<span style="color:red; font-family:Helvetica Neue, Helvetica, Arial, sans-serif; '
        f'font-size:2em;">{escape(ename)} at {where}: {escape(evalue)}</span>'
    )
    banner.metadata["tags"] = ["papermill-error-cell-tag"]
    nb.cells.insert(index, banner)
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(banner.source))
    nb.cells[0].metadata["tags"] = ["papermill-error-cell-tag"]
    nb.metadata.setdefault("papermill", {})["exception"] = True


def describe_failure(
    out_nb: Path, kind: str, exc: BaseException, timeout: float | None, how: str = ""
) -> dict[str, Any]:
    """The failing cell of ``out_nb`` (annotated in place for timeouts and dead kernels);
    ``timeout``: the cell limit in seconds, ``how``: how ``execution_timeout: auto`` chose it."""
    info: dict[str, Any] = {"kind": kind, "ename": type(exc).__name__, "evalue": ""}
    if kind == "exception":
        info["ename"] = getattr(exc, "ename", info["ename"])
        info["evalue"] = str(getattr(exc, "evalue", "") or "")[:300]
        if info["ename"] == INPUT_ERROR:  # bad input: a file and column named, no bug
            info["kind"] = INPUT
    elif kind == "timeout":
        info["ename"] = "CellTimeout"
        if how:
            info["evalue"] = f"cell ran longer than its limit and was stopped ({how})"
        else:
            info["evalue"] = f"cell ran longer than execution_timeout={timeout:g} s and was stopped"
    elif kind == "dead kernel":
        info["ename"] = "DeadKernel"
        info["evalue"] = "the kernel died while executing this cell (out of memory or a crash?)"
    else:
        info["evalue"] = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
    if not out_nb.is_file():
        return info
    nb = nbformat.read(str(out_nb), as_version=4)
    index = _failing_cell(nb)
    if index is None:
        return info
    if kind in ("timeout", "dead kernel"):
        _mark_failure(nb, index, info["ename"], info["evalue"])
        nbformat.write(nb, str(out_nb))
        index = _failing_cell(nb)
    elif info["kind"] == INPUT and _one_line_error(nb.cells[index]):
        nbformat.write(nb, str(out_nb))
    cell = nb.cells[index]
    info["code_cell"] = _code_cell_number(nb, index)
    info["execution_count"] = cell.get("execution_count")
    info["source_line"] = _first_line(cell.get("source", ""))
    return info
