"""Monitoring across runs (stage 5): data drift, profile id changes, churn risk movement, and
the previous run's forecasts graded against what happened since."""

from __future__ import annotations

import datetime as dt
from typing import Any

from cemlib import DEFAULT_SEED
from cemlib.contract import StageResult, run_declared
from cemlib.monitor.alerts import Thresholds
from cemlib.monitor.drift import psi, psi_band
from cemlib.monitor.result import MonitorResult
from cemlib.monitor.stage import run_stage

__all__ = ["run", "MonitorResult", "Thresholds", "psi", "psi_band", "run_stage"]


def run(
    wh, *, run_id: str, as_of: str | dt.date, seed: int = DEFAULT_SEED, **params: Any
) -> StageResult:
    """Compare this run with the previous one, grade its forecasts and write ``monitor.*``
    (the stage 05 contract). ``params`` are ``run_stage``'s options (``horizon_days``, ``k``,
    ``thresholds``, ``json_path``, ``write``); ``detail`` is its :class:`MonitorResult`.
    ``seed`` is accepted for the common signature: monitoring draws nothing at random.
    ``wh`` a :class:`~cemlib.engine.Lake`: the stage reads and writes the lake
    (:mod:`cemlib.monitor.sparkstage`)."""
    from cemlib.engine import Lake
    from cemlib.monitor import report

    if isinstance(wh, Lake):  # engine spark: the lake's reading surface
        from cemlib.monitor.sparkstage import run_on_lake

        return run_on_lake(wh, run_id=run_id, as_of=as_of, **params)

    def call():
        return run_stage(wh, as_of, run_id=run_id, **params)

    return run_declared("monitor", wh, call, report.headlines, run_id=run_id, as_of=as_of)
