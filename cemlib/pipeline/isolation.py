"""Run isolation: a ``cem run`` writes a working copy of the warehouse and publishes it whole.

A run that fails or is interrupted half-way must not leave a warehouse in which ``raw`` comes
from one run and ``marts`` from another, or in which ``marts.next_offers`` of an earlier run
names profile ids that now belong to other people. So the run never writes the warehouse
itself:

1. at the start it copies the warehouse (if there is one) to a working copy beside it,
   ``.<name>.run-<run_id>.<pid>``, and names the copy in ``CEM_WAREHOUSE_SHADOW``; every
   :class:`cemlib.warehouse.Warehouse` opened on the warehouse's path inside the run (the
   notebook kernels inherit the variable) opens the copy;
2. when every stage that ran is ok, the copy replaces the warehouse in one ``os.replace``
   (atomic on one file system): readers see the previous run's tables or this run's, never a
   mix;
3. when a stage failed or the run was interrupted, the warehouse is left as it was and the copy
   is kept as ``<stem>.failed<suffix>`` (one, the latest) for inspection, or removed. The next
   run that publishes removes it: the warehouse then holds a newer complete run, and the copy
   of a failed one only misleads (and takes the warehouse's size on disk).

A copy left by a run that was killed (SIGKILL, power loss) is removed by the next run once its
pid no longer exists. The warehouse lock (:mod:`cemlib.lock`) keeps a second writer out for
the whole run, so the copy taken at the start is still the warehouse at the end.

What it costs: one copy of the warehouse file per run (about 1 s per GB here) and the disk for
a second copy while the run lasts.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from cemlib.config import environment
from cemlib.lock import pid_alive
from cemlib.warehouse import SHADOW_ENV, Warehouse

PUBLISHED, UNCHANGED = "published", "unchanged"


def _wal(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


def failed_copy_path(warehouse: Path) -> Path:
    """Where the working copy of the last failed or interrupted run is kept."""
    return warehouse.with_name(f"{warehouse.stem}.failed{warehouse.suffix or '.duckdb'}")


class WorkingCopy:
    """The copy of ``warehouse`` that the run ``run_id`` writes (see the module docstring).

    Use :meth:`open` (a context manager setting ``CEM_WAREHOUSE_SHADOW``), then
    :meth:`publish` or :meth:`discard`.
    """

    def __init__(self, warehouse: str | Path, run_id: str):
        self.warehouse = Path(warehouse).resolve()
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)
        self.path = self.warehouse.with_name(f".{self.warehouse.name}.run-{safe}.{os.getpid()}")
        self.removed_orphans: list[Path] = []
        #: the failed run's copy that :meth:`publish` removed (None: there was none)
        self.removed_failed: Path | None = None

    def _orphans(self) -> Iterator[Path]:
        pattern = re.compile(rf"^\.{re.escape(self.warehouse.name)}\.run-.*\.(\d+)(\.wal|\.tmp)?$")
        if not self.warehouse.parent.is_dir():
            return
        for p in self.warehouse.parent.iterdir():
            m = pattern.match(p.name)
            if m and int(m.group(1)) != os.getpid() and not pid_alive(int(m.group(1))):
                yield p

    @contextlib.contextmanager
    def open(self) -> Iterator[WorkingCopy]:
        """Copy the warehouse into the working copy and redirect the run's warehouse to it."""
        for p in list(self._orphans()):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
            if not p.name.endswith((".wal", ".tmp")):
                self.removed_orphans.append(p)
        self.warehouse.parent.mkdir(parents=True, exist_ok=True)
        self._remove_copy()
        if self.warehouse.is_file():
            shutil.copyfile(self.warehouse, self.path)
            if _wal(self.warehouse).is_file():  # not checkpointed: the log holds recent writes
                shutil.copyfile(_wal(self.warehouse), _wal(self.path))
        before = os.environ.get(SHADOW_ENV)
        mapping = json.loads(before) if before else {}
        mapping[str(self.warehouse)] = str(self.path)
        with environment(SHADOW_ENV, json.dumps(mapping)):
            yield self

    def provenance(self) -> dict[str, dict]:
        """``schema.table -> {run_id, rows}`` of the working copy (empty if nothing written)."""
        if not self.path.is_file():
            return {}
        with Warehouse(self.path, read_only=True) as wh:
            return wh.provenance()

    def publish(self) -> None:
        """Replace the warehouse by the working copy (checkpointed first, so it is one file)."""
        if not self.path.is_file():  # the run wrote nothing: the warehouse stays as it is
            return
        import duckdb

        con = duckdb.connect(str(self.path))
        try:
            con.execute("CHECKPOINT")
        finally:
            con.close()
        with contextlib.suppress(FileNotFoundError):
            _wal(self.path).unlink()
        # the published file's log belongs to the old file: replaying it onto the new one
        # would corrupt it (it was copied into the working copy at the start)
        with contextlib.suppress(FileNotFoundError):
            _wal(self.warehouse).unlink()
        os.replace(self.path, self.warehouse)
        self._remove_copy()  # DuckDB's spill folder of the copy, if it left one
        failed = failed_copy_path(self.warehouse)
        if failed.is_file():  # superseded: the warehouse holds a newer, complete run
            failed.unlink()
            self.removed_failed = failed
        with contextlib.suppress(FileNotFoundError):
            _wal(failed).unlink()

    def discard(self, *, keep: bool = True) -> Path | None:
        """Leave the warehouse as it was; keep the copy as :func:`failed_copy_path` or
        remove it. Returns where it was kept."""
        if not self.path.is_file():
            self._remove_copy()
            return None
        if not keep:
            self._remove_copy()
            return None
        kept = failed_copy_path(self.warehouse)
        with contextlib.suppress(FileNotFoundError):
            _wal(kept).unlink()
        if _wal(self.path).is_file():
            os.replace(_wal(self.path), _wal(kept))
        os.replace(self.path, kept)
        self._remove_copy()
        return kept

    def _remove_copy(self) -> None:
        for p in (self.path, _wal(self.path)):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        shutil.rmtree(self.path.with_name(self.path.name + ".tmp"), ignore_errors=True)
