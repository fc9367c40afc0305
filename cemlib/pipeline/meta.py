"""What a report must say about the code that produced it: git commit and package versions."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

#: Distributions whose versions the run index shows (the ones that shape the results).
KEY_PACKAGES: tuple[str, ...] = (
    "cemlib",
    "papermill",
    "nbconvert",
    "duckdb",
    "pandas",
    "numpy",
    "great-expectations",
    "splink",
    "lifelines",
    "lightgbm",
    "shap",
    "scikit-learn",
    "matplotlib",
)


def package_versions(names: tuple[str, ...] = KEY_PACKAGES) -> dict[str, str]:
    """Installed version of each distribution in ``names`` ("not installed" when absent)."""
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _git(root: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def git_info(root: str | Path) -> dict[str, str | bool | None]:
    """Commit, branch and whether tracked files have uncommitted changes (``dirty``)."""
    root = Path(root)
    commit = _git(root, "rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "branch": None, "dirty": None}
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    return {
        "commit": commit,
        "branch": _git(root, "rev-parse", "--abbrev-ref", "HEAD"),
        "dirty": bool(status),
    }
