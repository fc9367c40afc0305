"""Stage 1: collection quality checks with Great Expectations, quarantine and scorecards."""

from __future__ import annotations

import datetime as dt
from typing import Any

from cemlib import DEFAULT_SEED
from cemlib.contract import StageResult, run_declared
from cemlib.quality.stage import QualityReport, QualityStage, TableOutcome
from cemlib.quality.suites import Check, RunParams, Suite, load_suite, load_suites

__all__ = [
    "run",
    "Check",
    "QualityReport",
    "QualityStage",
    "RunParams",
    "Suite",
    "TableOutcome",
    "load_suite",
    "load_suites",
]


def run(
    wh, *, run_id: str, as_of: str | dt.date, seed: int = DEFAULT_SEED,
    suites_dir: str | None = None, **params: Any,
) -> StageResult:  # fmt: skip
    """Validate ``staging.*`` and write ``clean.*``, ``quarantine.*`` and ``quality.results``
    (the stage 01 contract).

    ``params`` are :class:`QualityStage`'s options (``start``, ``freshness_days``,
    ``volume_band``, ``gx_max_rows``, ``progress``, ``workers``, ...); ``detail`` is its
    :class:`QualityReport`. ``workers`` defaults to ``"auto"`` here (the stage of ``cem run``):
    Great Expectations validates in a forked worker beside the SQL work when the cores, the
    memory budget and the process allow it, in this process otherwise (a Spark JVM in it:
    :func:`cemlib.budget.fork_hazard`). ``seed`` is accepted for the common signature: the checks draw
    nothing at random (the Great Expectations sample is fixed by the data). ``wh`` a
    :class:`~cemlib.engine.Lake`: the stage runs on Spark (:mod:`cemlib.quality.sparkstage`).
    """
    from cemlib.engine import Lake
    from cemlib.quality import report

    if isinstance(wh, Lake):  # engine spark
        from cemlib.quality.sparkstage import run_on_spark

        return run_on_spark(wh, run_id=run_id, as_of=as_of, seed=seed, suites_dir=suites_dir,
                            spark=wh.spark(), **params)  # fmt: skip

    params.setdefault("workers", "auto")

    def call():
        return QualityStage(suites_dir, **params).run(wh, run_id=run_id, as_of=as_of)

    return run_declared("quality", wh, call, report.headlines, run_id=run_id, as_of=as_of)
