"""Staging chunks on every core: worker processes type and normalize the chunks of the tables
while the stage's own process writes them to DuckDB, in the order they were read.

Staging a chunk (:func:`~cemlib.collect.staging.stage_table`) is Python and pandas work that
holds one core; the warehouse has one writer. :class:`ChunkStager` sends each chunk to a pool
of worker processes (forked before the synthetic world is generated, so that they hold none of
it) and hands the staged chunks back in the order they were read, the stage's process staging
a chunk itself whenever the workers are busy. Staging is a function of the chunk alone, so the
tables written are the same, row for row, as those of one process.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pandas as pd

from cemlib.collect.loaders import LoadedTable
from cemlib.collect.staging import coverage_rows, stage_table
from cemlib.schema import TABLES

#: Peak resident memory of one staging worker: one chunk of ``CHUNK_ROWS`` rows in and out,
#: whatever the size of the world (the workers are forked before it exists). Measured with
#: ``benchmarks/collect_cores.py``: 0.36 GiB at 20,000 people (2026-12-06, its ``ru_maxrss``,
#: which counts the pages shared with the stage's process); counted with room to spare by
#: :func:`cemlib.budget.parallel_workers` against the stage's ``memory_limit``.
PER_WORKER_BYTES = 768 * 1024**2

Staged = tuple[pd.DataFrame, list[dict], list[dict]]


def stage_chunk(loaded: LoadedTable, as_of: pd.Timestamp) -> Staged:
    """The staging frame of one chunk, its normalization figures and its coverage rows."""
    spec = TABLES[loaded.name]
    staged, stats = stage_table(spec, loaded, as_of)
    return staged, stats, coverage_rows(loaded.name, spec, loaded.frame, staged)


def workers_for(rows: int | None) -> int:
    """Processes that may stage side by side for a collection of ``rows`` people (the calling
    one included): the machine's cores, ``$CEM_WORKERS`` and the stage's memory budget decide
    (:func:`cemlib.budget.parallel_workers`); 1 while forking this process is not safe
    (:func:`cemlib.budget.fork_hazard`)."""
    from cemlib.budget import fork_workers

    return fork_workers("00_collect", rows, PER_WORKER_BYTES)


class ChunkStager:
    """Stage chunks in ``workers - 1`` worker processes and this one, results in read order.

    Start it before the large frames exist (the workers are forked: they would share them),
    use it as a context manager, and feed :meth:`staged` the chunks. ``workers`` of 1 stages
    every chunk here, without a pool.
    """

    def __init__(self, workers: int, as_of: pd.Timestamp):
        self.workers = max(int(workers), 1)
        self.as_of = as_of
        self._pool = None
        if "fork" not in multiprocessing.get_all_start_methods():  # pragma: no cover - Windows
            self.workers = 1
        if self.workers > 1:
            ctx = multiprocessing.get_context("fork")
            self._pool = ctx.Pool(self.workers - 1)

    def __enter__(self) -> ChunkStager:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(abort=exc_type is not None)

    def close(self, abort: bool = False) -> None:
        """Stop the workers (at once after an error)."""
        if self._pool is None:
            return
        pool, self._pool = self._pool, None
        if abort:
            pool.terminate()
        else:
            pool.close()
        pool.join()

    def staged(
        self, chunks: Iterable[tuple[Any, LoadedTable]], meanwhile: Callable[[], None] | None = None
    ) -> Iterator[tuple[Any, LoadedTable, Staged]]:
        """``(key, chunk, (staged, stats, coverage))`` for each ``(key, chunk)``, in order.

        Each worker holds one chunk at a time; when all are busy this process writes what is
        ready or else stages the next chunk itself, so it never holds more than a few chunks.
        ``meanwhile`` (e.g. writing other tables) runs once, as soon as the workers have their
        first chunks (at the start without workers)."""
        if self._pool is None:
            if meanwhile is not None:
                meanwhile()
            for key, loaded in chunks:
                yield key, loaded, stage_chunk(loaded, self.as_of)
            return
        in_pool = self.workers - 1
        pending: deque = deque()  # (key, chunk, AsyncResult or a staged result)

        def busy() -> int:
            return sum(1 for *_, job in pending if hasattr(job, "get"))

        def done(item) -> tuple[Any, LoadedTable, Staged]:
            key, loaded, job = item
            return key, loaded, job.get() if hasattr(job, "get") else job

        for key, loaded in chunks:
            while pending and _ready(pending[0][2]):
                yield done(pending.popleft())
            if busy() < in_pool:
                job = self._pool.apply_async(stage_chunk, (loaded, self.as_of))
            else:
                if meanwhile is not None:
                    meanwhile()
                    meanwhile = None
                job = stage_chunk(loaded, self.as_of)
            pending.append((key, loaded, job))
            while len(pending) > in_pool + 1:
                yield done(pending.popleft())
        if meanwhile is not None:
            meanwhile()
        while pending:
            yield done(pending.popleft())


def _ready(job) -> bool:
    return not hasattr(job, "ready") or job.ready()
