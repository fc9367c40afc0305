"""Up-front checks of command-line arguments and atomic output files.

Every check raises :class:`~cemlib.errors.InputError`, which ``cem`` prints as one line with
exit 2, before any work is done, so a bad path or value never costs minutes of computing nor
leaves a partial file behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from cemlib.errors import InputError


def output_file(path: str | Path, flag: str = "--out") -> Path:
    """``path`` as a file to (over)write: not a folder, its parent a folder (created) that can be
    written."""
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{flag} is a folder, expected a file name", source=str(p))
    parent = p.parent if str(p.parent) else Path(".")
    for up in (parent, *parent.parents):
        if up.exists():
            if not up.is_dir():
                raise InputError(f"{flag}: {up} is a file, not a folder", source=str(p))
            break
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"{flag}: cannot create the folder ({exc.strerror})", source=str(p)
        ) from None
    if not os.access(parent, os.W_OK):
        raise InputError(f"{flag}: the folder is not writable", source=str(p))
    return p


def output_dir(path: str | Path, flag: str = "--out") -> Path:
    """``path`` as a folder to write into: not an existing file."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InputError(f"{flag} is a file, expected a folder", source=str(p))
    for up in p.parents:
        if up.exists():
            if not up.is_dir():
                raise InputError(f"{flag}: {up} is a file, not a folder", source=str(p))
            break
    return p


def warehouse_file(path: str | Path | None, flag: str = "--warehouse") -> Path | None:
    """``path`` as a DuckDB file: not a folder (None passes: the default)."""
    if path is None:
        return None
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{flag} is a folder, expected a DuckDB file", source=str(p))
    return output_file(p, flag)


def positive(value: int | float, flag: str) -> None:
    if value is None or value <= 0:
        raise InputError(f"{flag} must be a positive number, got {value}")


def non_negative(value: int | float, flag: str) -> None:
    if value is None or value < 0:
        raise InputError(f"{flag} must be zero or more, got {value}")


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """A temporary file next to ``path`` to write; it replaces ``path`` when the block ends
    and is removed when the block fails, so no partial file is ever left."""
    p = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent or ".")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        tmp_path.replace(p)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
