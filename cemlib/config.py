"""Where things live: the project root, the default warehouse and reports folders.

Paths resolve against the project root (the folder holding ``pyproject.toml`` of cemlib, found
from the current directory upwards, or ``$CEM_HOME``), so a notebook opened from ``notebooks/``
and ``cem`` run from the repository root see the same warehouse.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


def project_root(start: str | Path | None = None) -> Path:
    """The cemlib checkout or project folder: ``CEM_HOME``, else the nearest folder
    above ``start`` (the working directory) holding cemlib's ``pyproject.toml``, else ``start``.
    """
    env = os.environ.get("CEM_HOME")
    if env:
        return Path(env).resolve()
    here = Path(start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        pyproject = candidate / "pyproject.toml"
        if pyproject.is_file() and 'name = "cemlib"' in pyproject.read_text(encoding="utf-8"):
            return candidate
    return here


def default_suites_dir() -> Path:
    """``expectations/`` of the project (beside ``pyproject.toml``), else of the checkout: the
    suites ``01_quality`` reads by default (here, not in :mod:`cemlib.quality`, so that
    ``cem collect`` finds them without importing Great Expectations)."""
    here = project_root() / "expectations"
    if here.is_dir():
        return here
    return Path(__file__).resolve().parents[1] / "expectations"


def suite_files(folder: str | Path) -> list[Path]:
    """The suite files of ``folder`` (``*.yaml``, ``*.yml``, ``*.json``), in name order."""
    d = Path(folder)
    return sorted([*d.glob("*.yaml"), *d.glob("*.yml"), *d.glob("*.json")])


def resolve_path(path: str | Path | None, default: str) -> Path:
    """``path`` as given when absolute, else relative to the project root; ``None`` -> default."""
    p = Path(path if path not in (None, "") else default)
    return p if p.is_absolute() else project_root() / p


def warehouse_path(path: str | Path | None = None) -> Path:
    """``path``, or the project's ``data/cem.duckdb``."""
    return resolve_path(path, "data/cem.duckdb")


def reports_dir(path: str | Path | None = None) -> Path:
    """``path``, or the project's ``reports/`` folder."""
    return resolve_path(path, "reports")


@contextlib.contextmanager
def environment(name: str, value: str) -> Iterator[None]:
    """``os.environ[name] = value`` for the block (child processes, e.g. notebook kernels,
    inherit it); the previous value, or its absence, restored after."""
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous
