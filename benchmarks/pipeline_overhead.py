"""What `cem run` costs beyond the notebooks' own work, and the wall time of a whole run.

    .venv/bin/python benchmarks/pipeline_overhead.py                 # overhead per notebook
    .venv/bin/python benchmarks/pipeline_overhead.py --full --people 20000   # + a full run

Overhead: an empty parameterized notebook (the run-wide parameters cell and one trivial cell)
executed by Papermill (kernel start, parameter injection, execution, save) and rendered by
nbconvert twice (reviewer HTML without code, HTML with code). Median of --repeat runs.
The full run executes every available stage notebook of the project on a synthetic world
of --people people into a temporary warehouse and reports folder.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import papermill as pm

from cemlib.pipeline import load_config, render_html, run_pipeline

PARAMS = (
    'run_id = "dev"\nas_of = "2025-06-30"\nseed = 42\nwarehouse = None\n'
    'source = "synthetic"\nn_people = 20000\nheadlines_path = None\n'
)


def empty_notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    cell = nbformat.v4.new_code_cell(PARAMS)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell("x = n_people * 2")]
    nbformat.write(nb, str(path))
    return path


def overhead(repeat: int) -> dict[str, float]:
    times: dict[str, list[float]] = {"papermill": [], "html": [], "html_code": []}
    with tempfile.TemporaryDirectory() as tmp:
        src = empty_notebook(Path(tmp) / "empty.ipynb")
        out = Path(tmp) / "out.ipynb"
        for _ in range(repeat):
            t0 = time.perf_counter()
            pm.execute_notebook(
                str(src), str(out), parameters={"run_id": "bench", "n_people": 10},
                kernel_name="python3", progress_bar=False,
                extra_arguments=["--IPKernelApp.log_level=ERROR"],
            )  # fmt: skip
            t1 = time.perf_counter()
            render_html(out, Path(tmp) / "out.html")
            t2 = time.perf_counter()
            render_html(out, Path(tmp) / "out.code.html", with_code=True)
            t3 = time.perf_counter()
            times["papermill"].append(t1 - t0)
            times["html"].append(t2 - t1)
            times["html_code"].append(t3 - t2)
    med = {k: statistics.median(v) for k, v in times.items()}
    med["total"] = sum(med.values())
    return med


def full_run(people: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(
            None,
            ["run_id=bench", f"n_people={people}", f"warehouse={Path(tmp) / 'cem.duckdb'}"],
            out=str(Path(tmp) / "reports"),
        )
        t0 = time.perf_counter()
        run = run_pipeline(cfg, progress=False, stream=sys.stderr)
        wall = time.perf_counter() - t0
        print(f"full cem run, {people:,} people: {wall:.1f} s wall, status {run.status}")
        for s in run.stages:
            took = f"{s.duration:7.1f} s" if s.duration is not None else "      -  "
            print(f"  {s.name:<14} {s.status:<13} {took}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--full", action="store_true", help="also time a full cem run")
    parser.add_argument("--people", type=int, default=20_000)
    args = parser.parse_args(argv)
    med = overhead(args.repeat)
    print(f"per-notebook overhead (median of {args.repeat}, empty parameterized notebook):")
    print(f"  papermill execute (kernel start + inject + run + save): {med['papermill']:.2f} s")
    print(f"  nbconvert HTML without code:                           {med['html']:.2f} s")
    print(f"  nbconvert HTML with code:                              {med['html_code']:.2f} s")
    print(f"  total per notebook:                                    {med['total']:.2f} s")
    if args.full:
        full_run(args.people)
    return 0


if __name__ == "__main__":
    sys.exit(main())
