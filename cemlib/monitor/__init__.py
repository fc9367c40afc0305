"""Monitoring across runs (stage 5): data drift, profile id changes, churn risk movement, and
the previous run's forecasts graded against what happened since."""

from cemlib.monitor.alerts import Thresholds
from cemlib.monitor.drift import psi, psi_band
from cemlib.monitor.stage import MonitorResult, headline_figures, run_stage

__all__ = ["MonitorResult", "Thresholds", "headline_figures", "psi", "psi_band", "run_stage"]
