"""Fixtures of the reliability tests (issue #17, "Nothing lost, nothing mixed"): small
hand-made exports run through the real DuckDB warehouse and the real ``cem`` command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

AS_OF = "2025-06-30"

CRM = (
    "contact_id,full_name,phone,email,birth_date,registered_at,consent_email,consent_sms\n"
    "C1,Иванов Иван Петрович,+7 999 123-45-67,ivan.ivanov@mail.ru,1990-03-05,"
    "2024-01-10 10:00:00,true,true\n"
    # the same person, registered 1970-01-01: quarantined, and refusing e-mail and SMS
    "C2,Иванов Иван Петрович,8 999 123 45 67,Ivan.Ivanov@mail.ru,1990-03-05,"
    "1970-01-01 00:00:00,false,false\n"
    "C3,Петрова Мария Сергеевна,+7 916 555-44-33,maria.p@ya.ru,1985-07-01,"
    "2024-02-11 11:00:00,true,true\n"
    "C4,Сидоров Олег,+7 926 111-22-33,oleg.s@gmail.com,1979-01-02,2024-03-12 12:00:00,true,false\n"
)


def cem(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``python -m cemlib ARGS`` as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "cemlib", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def one_line_error(proc: subprocess.CompletedProcess, *names: str) -> str:
    """Exit 2, no traceback, a single stderr line naming each of ``names``."""
    err = proc.stderr.strip()
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-500:], err[-2000:])
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    for name in names:
        assert str(name) in err, (name, err)
    return err


@pytest.fixture
def crm_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "crm_contacts.csv").write_text(CRM, encoding="utf-8")
    return folder
