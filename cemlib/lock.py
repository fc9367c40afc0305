"""Run-level isolation: one writer of a warehouse at a time.

``<warehouse>.lock`` next to the DuckDB file holds the holder's pid, run id, command and start
time. ``cem run`` holds it for its whole duration (the notebooks it starts inherit it through
``CEM_WAREHOUSE_LOCK`` and do not take it again); single-stage commands that write the
warehouse (``cem collect``, ``cem validate --warehouse``) hold it while they run. A second comer
gets one line naming the holder and exit 2, instead of DuckDB's "Conflicting lock" traceback; a
lock left by a process that no longer exists is taken over with a note on stderr.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from cemlib.config import environment
from cemlib.errors import InputError
from cemlib.warehouse import lock_holder

ENV = "CEM_WAREHOUSE_LOCK"


def lock_path(warehouse: str | Path) -> Path:
    """The lock file of a warehouse: ``<warehouse>.lock`` beside it."""
    p = Path(warehouse)
    return p.with_name(p.name + ".lock")


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (owned by anyone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def open_elsewhere(warehouse: str | Path) -> str | None:
    """The process that holds the DuckDB file ``warehouse`` open, as DuckDB names it (``python3
    (PID 29829)``: a notebook kernel, a SQL client), or ``None`` when no other process does.

    Such a process does not take ``<warehouse>.lock``; a run that replaced the file under it
    would leave it writing to the old, deleted file, its writes silently lost."""
    p = Path(warehouse)
    if not p.is_file():
        return None
    import duckdb

    try:
        duckdb.connect(str(p)).close()
    except duckdb.ConnectionException:  # this very process holds it (read-only, say)
        return f"this process (PID {os.getpid()})"
    except duckdb.IOException as err:
        text = str(err)
        if "lock" not in text.lower():
            raise
        return lock_holder(err)
    return None


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


@contextlib.contextmanager
def warehouse_lock(warehouse: str | Path, *, run_id: str, command: str) -> Iterator[Path]:
    """Hold ``<warehouse>.lock`` for the block (see the module docstring)."""
    path = lock_path(warehouse).resolve()
    if os.environ.get(ENV) == str(path):  # inside the run that holds it (a notebook kernel)
        yield path
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    info = {
        "pid": os.getpid(),
        "run_id": run_id,
        "command": command,
        "started": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
    }
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            held = _read(path)
            pid = int(held.get("pid") or 0)
            if pid_alive(pid):
                raise InputError(
                    f"the warehouse is in use by pid {pid} (run {held.get('run_id')}, "
                    f"{held.get('command')}, since {held.get('started')}); wait for it to "
                    "finish",
                    source=str(path),
                ) from None
            print(
                f"note: {path}: took over the stale lock of pid {pid or '?'} "
                f"(run {held.get('run_id')}, {held.get('command')}), which no longer runs",
                file=sys.stderr,
            )
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(info, fh)
        break
    else:  # pragma: no cover - three races lost in a row
        raise InputError("could not take the warehouse lock", source=str(path))
    try:
        with environment(ENV, str(path)):
            yield path
    finally:
        if _read(path).get("pid") == os.getpid():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
