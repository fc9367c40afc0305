"""The parts of a churn fit that need no other part, run beside it in a thread.

:meth:`cemlib.churn.models.ChurnModel.fit` needs, besides its lifelines AFT fits and forward
simulations (Python-heavy: autograd holds the GIL), two BG/NBD fits and the backtest's count
booster, which depend only on the purchase occasions. Those three start first, in one thread
beside the caller: LightGBM trains with ``num_threads=1`` in C (the GIL released for each
round) and the BG/NBD's likelihood is numpy over its distinct customers, so the thread's work
overlaps the AFT fits on a second core. It is a thread, not a process: no copy of the history
and nothing pickled, every part computes on the same objects with the same seeds as in turn, so
the scores are bit-identical with or without it.
"""

from __future__ import annotations

from cemlib.budget import Beside  # noqa: F401 - the churn fit's thread beside the caller

#: the working memory the thread adds at its peak: the largest part run beside the caller is
#: one chunk of the forward simulation (50,000 customers x 100 paths: 699 MiB traced by
#: tracemalloc for 4.7 M paths of the 20,000-person world, 19 columns); the booster's binned
#: dataset and the BG/NBD's arrays are tens of MB, and the fits' inputs are the caller's frames
PER_WORKER_BYTES = 768 * 1024**2


def workers(rows: int | None = None) -> int:
    """Threads the fit works on (1: everything in turn): two when the machine has a second
    usable core, ``$CEM_WORKERS`` allows it and the stage's ``memory_limit`` has room for
    :data:`PER_WORKER_BYTES` beside its own peak for ``rows`` input rows
    (:func:`cemlib.budget.parallel_workers`)."""
    from cemlib.budget import parallel_workers

    return min(parallel_workers("03_churn", rows, PER_WORKER_BYTES), 2)
