"""Throw-away stage notebooks for the pipeline tests, written into each test's tmp dir."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

RUN_WIDE_CELL = """\
run_id = "dev"
as_of = "2025-06-30"
seed = 42
warehouse = None
source = "synthetic"
n_people = 20000
headlines_path = None
"""


def write_notebook(path: Path, cells: list[str], extra_params: str = "") -> Path:
    """A notebook with a tagged parameters cell (run-wide + ``extra_params``) then ``cells``.

    Strings starting with ``"# md"`` become markdown cells.
    """
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    params = nbformat.v4.new_code_cell(RUN_WIDE_CELL + extra_params)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params]
    for src in cells:
        if src.startswith("# md"):
            nb.cells.append(nbformat.v4.new_markdown_cell(src[len("# md") :].strip()))
        else:
            nb.cells.append(nbformat.v4.new_code_cell(src))
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


OK_CELLS = [
    "# md # Collection\nA throw-away stage for the pipeline tests.",
    "import json\nfrom cemlib.reports import save_headlines\nrows = n_people * 3",
    "save_headlines(headlines_path, {'rows collected': rows, 'share valid': 0.875, 'seed': seed})",
    "print(f'run {run_id} as of {as_of}: {rows} rows')",
]
PLOT_CELLS = [
    "import matplotlib\nimport matplotlib.pyplot as plt",
    "fig, ax = plt.subplots(figsize=(4, 3))\nax.bar(['a', 'b'], [n_people, 2 * n_people])\n"
    "ax.set_title('Rows per table')\nax.set_xlabel('table')\nax.set_ylabel('rows')\nplt.show()",
    "from cemlib.reports import show, use_style\nuse_style()\nfig, ax = plt.subplots()\n"
    "ax.plot([1, 2, 3], [n_people, 0, n_people])\nax.set_title('Rows by day')\n"
    "ax.set_xlabel('day')\nax.set_ylabel('rows')\nshow(fig)",
]
FAIL_CELLS = [
    "x = 1",
    "y = x + threshold",
    "raise ValueError(f'boom at threshold {threshold}')",
    "z = 3",
]


@pytest.fixture
def stage_notebooks(tmp_path: Path) -> Path:
    """A notebooks folder with the six stage names: 00 ok (plot), 01 fails in code cell 3
    (the parameters cell is code cell 1), 02-05 fine but depending on 01."""
    nb_dir = tmp_path / "notebooks"
    write_notebook(nb_dir / "00_collect.ipynb", OK_CELLS + PLOT_CELLS, "mode = 'full'\n")
    write_notebook(
        nb_dir / "01_quality.ipynb", FAIL_CELLS[:1] + FAIL_CELLS[2:], "threshold = 0.5\n"
    )
    for name in ("02_profiles", "03_churn", "04_next_offer", "05_monitor"):
        write_notebook(nb_dir / f"{name}.ipynb", ["print('never reached')"])
    return nb_dir


PROJECT_NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
FULL_RUN_PEOPLE = 400


@pytest.fixture(scope="session")
def full_run(tmp_path_factory, worker_id, testrun_uid):
    """The project's real stage notebooks run once on a small synthetic world (whichever
    notebooks exist), into a tmp warehouse and reports folder. Returns (run, config).

    Under pytest-xdist the workers of one test run share it: the first to get the lock runs
    it, the others wait and read its ``run.json`` (each file's tests run on one worker, and the
    files using this run may land on two)."""
    import fcntl

    from cemlib.pipeline import load_config, run_pipeline
    from cemlib.pipeline.result import RunResult

    if not (PROJECT_NOTEBOOKS / "00_collect.ipynb").is_file():
        pytest.skip("notebooks/00_collect.ipynb is not in this checkout yet")
    if worker_id == "master":
        base = tmp_path_factory.mktemp("full_run")
    else:
        base = tmp_path_factory.getbasetemp().parent / f"full_run-{testrun_uid}"
        base.mkdir(exist_ok=True)
    cfg = load_config(
        None,
        ["run_id=full", f"n_people={FULL_RUN_PEOPLE}", f"warehouse={base / 'cem.duckdb'}",
         "execution_timeout=600"],
        out=str(base / "reports"),
        notebooks_dir=str(PROJECT_NOTEBOOKS),
    )  # fmt: skip
    with open(base / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        done = base / "done"
        if done.is_file():
            return RunResult.load(cfg.run_dir / "run.json"), cfg
        run = run_pipeline(cfg, progress=False)
        done.touch()
    return run, cfg
