"""Seconds and peak resident memory of each code cell of one stage notebook.

    .venv/bin/python benchmarks/notebook_cells.py notebooks/02_profiles.ipynb \\
        -p warehouse=/tmp/w/cem.duckdb -p n_people=200000 -p run_id=cells

Runs the notebook's code cells in this process with IPython (the parameters cell, then the
given ``-p`` values as the injected cell, like Papermill), and before each cell resets the
process's high-water mark (``/proc/self/clear_refs``), so the peak printed is that cell's own:
what a cell holds on to shows as the resident memory after it, what it needs only while it
runs as its peak. Use it on a warehouse a ``cem run`` (or ``pipeline_scale.py --keep``) left
behind: the stage re-runs on it like a second run would.
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
import time

import nbformat


def _kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
    except OSError:  # pragma: no cover - not Linux or not permitted
        pass


def code_cells(nb, params: list[str]):
    """``(number, source)`` of each code cell of ``nb``, the ``NAME=VALUE`` ``params`` added to
    the cell tagged ``parameters`` (as Papermill injects them: a value that is no Python
    literal is a string)."""
    injected = []
    for text in params:
        name, _, value = text.partition("=")
        try:
            ast.literal_eval(value)
        except (ValueError, SyntaxError):
            value = repr(value)
        injected.append(f"{name} = {value}")
    n = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        source = cell.source
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            source = source + "\n" + "\n".join(injected)
        n += 1
        yield n, source


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("notebook")
    ap.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE")
    args = ap.parse_args(argv)

    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("CEM_BATCH", "1")
    from IPython.core.interactiveshell import InteractiveShell

    nb = nbformat.read(args.notebook, as_version=4)
    os.chdir(os.path.dirname(os.path.abspath(args.notebook)))
    shell = InteractiveShell.instance()
    print(f"{'cell':>4} {'seconds':>8} {'peak GiB':>9} {'after GiB':>10}  first line", flush=True)
    for n, source in code_cells(nb, args.param):
        _reset_peak()
        t0 = time.perf_counter()
        res = shell.run_cell(source, silent=True)
        secs = time.perf_counter() - t0
        first = next(
            (ln for ln in source.splitlines() if ln.strip() and not ln.startswith("#")), ""
        )
        print(
            f"{n:>4} {secs:>8.1f} {_kib('VmHWM') / 1024**2:>9.2f} {_kib('VmRSS') / 1024**2:>10.2f}"
            f"  {first[:70]}",
            flush=True,
        )
        if not res.success:
            print(f"cell {n} failed: {res.error_in_exec or res.error_before_exec}", flush=True)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
