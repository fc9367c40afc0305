"""Great Expectations on every core: its validations of one table run in a worker process
while the stage's own process computes the SQL flags and reads the next table's frames.

Great Expectations on pandas is Python that holds one core; the row routing in DuckDB is
another thread pool in the stage's process. :class:`GXRunner` sends a validation (the
expectations and the frame they see) to a pool of worker processes, each with its own
in-memory context, when one is free, and runs it here otherwise. A result from a worker is
stored in the stage's context under its own key with its suite, as a validation run here would
be, so the results rows and the Data Docs are the same.

A worker that dies (forking a process that runs threads can leave a child that crashes, rarely,
inside Great Expectations) breaks the pool: its validation and every later one then run here,
with one warning, and the stage's results are the same as with one process.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

log = logging.getLogger(__name__)

#: Peak resident memory of one worker: a frame of at most ``gx_max_rows`` rows (larger ones
#: stay in the stage's process, :data:`MAX_ROWS`) and Great Expectations' metrics on it.
#: Measured with ``benchmarks/quality_scale.py --workers 1 2``: 0.46 GiB at 20,000 people
#: (2026-12-06, ``ru_maxrss``, pages shared with the stage's process included); counted with
#: room to spare.
PER_WORKER_BYTES = 1024**3

_context = None  # a worker's own Great Expectations context


def _validate_in_worker(name, part, as_of_end, frame):
    """In a worker: the validation result and the key it was stored under."""
    global _context
    from cemlib.quality.context import offline_context
    from cemlib.quality.table import validate_frame

    if _context is None:
        _context = offline_context()
    result = validate_frame(
        _context, name, part, as_of_end, frame, _context.data_sources.add_pandas
    )
    store = _context.validation_results_store
    keys = [k for k in store.list_keys() if k.expectation_suite_identifier.name == name]
    return result, keys[-1]


def workers_for(rows: int | None) -> int:
    """Processes that may validate side by side for ``rows`` staging rows (the calling one
    included): cores, ``$CEM_WORKERS`` and the stage's memory budget
    (:func:`cemlib.budget.parallel_workers`); 1 while forking this process is not safe (a
    Spark JVM in it, :func:`cemlib.budget.fork_hazard`)."""
    from cemlib.budget import fork_workers

    return fork_workers("01_quality", rows, PER_WORKER_BYTES)


class _Job:
    """A validation running in a worker; ``get()`` stores its result in the stage's context
    and returns it. If the worker died, ``get()`` runs the validation here instead."""

    def __init__(self, runner, future, ctx, name, part, as_of_end, frame):
        self.runner, self.future, self.ctx = runner, future, ctx
        self.name, self.part, self.as_of_end, self.frame = name, part, as_of_end, frame
        self._result = None

    def ready(self) -> bool:
        return self._result is not None or self.future.done()

    def get(self):
        if self._result is None:
            try:
                result, key = self.future.result()
            except BrokenProcessPool:
                self.runner._broken()
                self._result = self.runner._here(
                    self.ctx, self.name, self.part, self.as_of_end, self.frame
                )
            else:
                _store(self.ctx, self.name, self.part, self.as_of_end, result, key)
                self._result = result
            self.frame = None
        return self._result


def _store(ctx, name, part, as_of_end, result, key) -> None:
    """Put a worker's ``result`` into ``ctx`` with its suite, as a run here stores it."""
    from cemlib.quality.table import gx_suite

    ctx.suites.add(gx_suite(name, part, as_of_end))
    ctx.validation_results_store.store_validation_results(
        suite_validation_result=result,
        suite_validation_result_identifier=key,
        expectation_suite_identifier=key.expectation_suite_identifier,
    )


#: a frame longer than this (a table-level part sees every row) is validated in the stage's
#: process: a worker's memory stays that of ``gx_max_rows`` rows at any size of the tables
MAX_ROWS = 200_000


class GXRunner:
    """Run Great Expectations' validations in ``workers - 1`` worker processes and this one.

    Start it before reading large frames (the workers are forked), use it as a context
    manager; ``workers`` of 1 runs every validation here. Frames of more than ``max_rows``
    rows (default :data:`MAX_ROWS`; the stage passes ``gx_max_rows``) stay here."""

    def __init__(self, workers: int, max_rows: int | None = None):
        self.workers = max(int(workers), 1)
        self.max_rows = max_rows or MAX_ROWS
        self._pool = None
        self._jobs: list[_Job] = []
        if "fork" not in multiprocessing.get_all_start_methods():  # pragma: no cover - Windows
            self.workers = 1
        if self.workers > 1:
            self._pool = ProcessPoolExecutor(
                self.workers - 1, mp_context=multiprocessing.get_context("fork")
            )
            # fork the workers now, before the large frames are read; with this process's
            # objects frozen, a worker's garbage collector never walks what it inherited (the
            # crashes seen in workers were in the collector, inside Great Expectations)
            gc.freeze()
            try:
                self._pool.submit(int)
            finally:
                gc.unfreeze()

    def __enter__(self) -> GXRunner:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._pool is None:
            return
        pool, self._pool = self._pool, None
        pool.shutdown(wait=True, cancel_futures=exc_type is not None)

    def _broken(self) -> None:
        """A worker died: from now on every validation runs here."""
        if self._pool is not None:
            log.warning(
                "a Great Expectations worker process died; its validations run in the "
                "stage's process instead (same results, one core)"
            )
            pool, self._pool = self._pool, None
            pool.shutdown(wait=False, cancel_futures=True)

    @staticmethod
    def _here(ctx, name, part, as_of_end, frame) -> Any:
        from cemlib.quality.table import validate_frame

        return validate_frame(ctx, name, part, as_of_end, frame, ctx.data_sources.add_pandas)

    def validate(self, ctx, name: str, part, as_of_end, frame) -> Any:
        """A job for the validation of ``part`` on ``frame``: in a free worker, else here."""
        from cemlib.quality.table import _Done

        busy = sum(1 for j in self._jobs if not j.ready())
        if self._pool is None or busy >= self.workers - 1 or len(frame) > self.max_rows:
            return _Done(self._here(ctx, name, part, as_of_end, frame))
        try:
            future = self._pool.submit(_validate_in_worker, name, part, as_of_end, frame)
        except BrokenProcessPool:
            self._broken()
            return _Done(self._here(ctx, name, part, as_of_end, frame))
        job = _Job(self, future, ctx, name, part, as_of_end, frame)
        self._jobs.append(job)
        return job
