"""Stage 1: collection quality checks with Great Expectations, quarantine and scorecards."""

from cemlib.quality.stage import QualityReport, QualityStage, TableOutcome
from cemlib.quality.suites import Check, RunParams, Suite, load_suite, load_suites

__all__ = [
    "Check",
    "QualityReport",
    "QualityStage",
    "RunParams",
    "Suite",
    "TableOutcome",
    "load_suite",
    "load_suites",
]
