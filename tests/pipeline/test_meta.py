"""What a report says about the code: git commit and package versions."""

from __future__ import annotations

import re
import subprocess
from importlib import metadata
from pathlib import Path

from cemlib.pipeline.meta import KEY_PACKAGES, git_info, package_versions

ROOT = Path(__file__).resolve().parents[2]


def test_git_info_of_this_checkout(tmp_path):
    info = git_info(ROOT)
    expected = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    assert info["commit"] == expected and re.fullmatch(r"[0-9a-f]{40}", info["commit"])
    assert isinstance(info["dirty"], bool)
    assert git_info(tmp_path) == {"commit": None, "branch": None, "dirty": None}


def test_package_versions():
    versions = package_versions()
    assert list(versions) == ["python", *KEY_PACKAGES]
    assert versions["papermill"] == metadata.version("papermill")
    assert package_versions(("no-such-package-xyz",))["no-such-package-xyz"] == "not installed"
