"""How many cores stage 04 works on, and its parts that run side by side.

The stage works in one process; its parallel parts are threads, so a second worker adds no copy
of the history or of the model, only the working memory of what it runs:

* LightGBM's OpenMP threads on the large trainings (``num_threads``), the compiled forest and
  TreeSHAP (numba, ``prange``) and DuckDB's threads (the candidates and features);
* the four start trainings on samples (:mod:`cemlib.offers.start`) two by two;
* the synthetic truth and the consent (DuckDB on the warehouse) beside the fit, and the
  baselines of the metric table beside ``recommend``.

Each part gives the same numbers as when run alone: the trainings have their own datasets and
seeds, LightGBM grows the same trees with one thread or several (``force_col_wise`` and
``deterministic``: every feature's histogram is summed by one thread in row order), and the
baselines read only the history. :func:`workers` is how many of the machine's cores the stage
uses: :func:`cemlib.budget.parallel_workers` from the usable cores, ``$CEM_WORKERS`` and the
stage's ``memory_limit`` (a worker that would not fit is not counted).
"""

from __future__ import annotations

import math
import os

from cemlib.budget import Beside  # noqa: F401 - the stage's thread beside the caller

STAGE = "04_next_offer"

#: the working memory one more worker needs at its peak: the largest of the parts run beside the
#: main thread, TIFU-KNN's dense blocks of the baselines (about 20 M floats of similarities, own
#: and neighbour vectors, :class:`cemlib.offers.tifu.Tifu`), 3 x 80 MB, with the baselines'
#: per-customer frames; measured as the stage's peak with and without the second worker
PER_WORKER_BYTES = 512 * 1024**2


def workers(rows: int | None = None) -> int:
    """Cores the stage works on (1: everything in order on one): :func:`cemlib.budget.
    parallel_workers` for the stage's ``rows`` input rows (None: the budget alone)."""
    from cemlib.budget import parallel_workers

    return parallel_workers(STAGE, rows, PER_WORKER_BYTES)


def idle_cores(cores: int | None = None) -> int:
    """The usable cores not busy with other work, this process counted as one (at least 1):
    the cores less the 1-minute load average, this process's own share added back.

    OpenMP threads (LightGBM's) wait for each other at every step; where another process holds
    the core one of them needs, the others spin until it comes back: on this 2-core machine at
    load 16, 100 rounds on the 20,000-person windows took 1.6 CPU s on one thread, and two
    threads had used over 20 CPU s, unfinished, four minutes later. Threads of Python
    (:class:`Beside`) and DuckDB's do not spin."""
    from cemlib.budget import usable_cpus

    cores = usable_cpus() if cores is None else int(cores)
    try:
        load = os.getloadavg()[0]
    except OSError:  # pragma: no cover - no load average on this system
        return cores
    return int(min(cores, max(1, math.floor(cores + 1 - load + 0.5))))


def openmp_threads(workers: int) -> int:
    """LightGBM's ``num_threads`` for ``workers`` cores: no more than :func:`idle_cores`."""
    return max(1, min(int(workers), idle_cores()))
