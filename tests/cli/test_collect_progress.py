"""``cem collect`` writes no progress bar into a stderr that is not a terminal (trial 8 L5)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_redirected_stderr_holds_the_one_error_line_only(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "crm_contacts.csv").write_text(
        "contact_id,first_name,last_name,email\n1,Anna,Ivanova,a@x.ru\n2,Petr,Petrov,p@x.ru\n",
        encoding="utf-8",
    )
    mapping = tmp_path / "bad.yaml"
    mapping.write_text("crm_contacts:\n  Familia: last_name\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("CEM_BATCH", None)
    done = subprocess.run(
        [sys.executable, "-m", "cemlib", "collect", "--source", str(src), "--mapping",
         str(mapping), "--warehouse", str(tmp_path / "w.duckdb")],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "\r" not in done.stderr and "%|" not in done.stderr
    assert lines[0].startswith("cem collect: error: ") and "column 'Familia'" in lines[0]
