"""Run the stage notebooks with Papermill and publish HTML reports (``cem run``)."""

from cemlib.pipeline.config import RunConfig, load_config
from cemlib.pipeline.index import list_runs, point_latest, write_reports_index, write_run_index
from cemlib.pipeline.parameters import notebook_parameters, plan_parameters
from cemlib.pipeline.render import render_html
from cemlib.pipeline.result import RunResult, StageStatus
from cemlib.pipeline.runner import execute_stage, run_pipeline
from cemlib.pipeline.stages import STAGES, Stage, find_stage, select_stages

__all__ = [
    "STAGES",
    "RunConfig",
    "RunResult",
    "Stage",
    "StageStatus",
    "execute_stage",
    "find_stage",
    "list_runs",
    "load_config",
    "notebook_parameters",
    "plan_parameters",
    "point_latest",
    "render_html",
    "run_pipeline",
    "select_stages",
    "write_reports_index",
    "write_run_index",
]
