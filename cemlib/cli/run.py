"""``cem run``: execute the stage notebooks with Papermill and write the HTML reports.

Exit codes: 0 every available stage ran; 1 a stage failed (its report is still written and
the stages depending on it are skipped); 2 bad configuration, nothing was run; 3 with
``--fail-on-alert``, the run succeeded but the monitor raised an alert; 130
interrupted by Ctrl-C / SIGINT, 143 stopped by SIGTERM (the partial index is written; nothing
is published to the warehouse).
"""

from __future__ import annotations

import argparse
import signal
import sys

from cemlib.pipeline.config import RUN_WIDE_PARAMETERS, load_config
from cemlib.pipeline.parameters import declared_parameters
from cemlib.pipeline.stages import STAGES

_EPILOG = """\
parameters (-p name=value, repeatable; same names as the config file):
  run-wide      run_id, as_of, seed, warehouse, source, n_people
  runner        execution_timeout (seconds per cell; auto = from each stage's size),
                start_timeout, kernel, keep_runs (run folders kept, newest first)
  one notebook  03_churn.NAME=VALUE (or 03.NAME=VALUE); a bare NAME=VALUE goes to every
                selected notebook that declares NAME
examples:
  cem run                                  # every stage on the 20,000-person synthetic world
  cem run --config run.yaml -p as_of=2025-03-31
  cem run --stages 02,03 -p n_people=2000 -p execution_timeout=600
  cem run --list                           # stages, notebooks and their parameters
  cem run --config run.yaml --check        # validate only (exit 2 on a bad parameter)
  cem run --fail-on-alert                  # exit 3 when the monitor (05) raises an alert
exit codes: 0 ok, 1 a stage failed, 2 bad configuration (nothing run), 3 an alert
  (--fail-on-alert)
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``cem run`` to ``subparsers``."""
    p = subparsers.add_parser(
        "run",
        help="execute every stage notebook with Papermill and write HTML reports",
        description="Execute the stage notebooks in order with Papermill and write "
        "reports/<run_id>/ (executed notebooks, HTML reports, index.html).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", "-c", metavar="FILE", help="run configuration (YAML)")
    p.add_argument(
        "-p",
        "--param",
        dest="params",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a parameter or setting (repeatable); overrides the config file",
    )
    p.add_argument("--stages", metavar="LIST", help="stages to run, e.g. 01,02 (default: all)")
    p.add_argument("--out", metavar="DIR", help="reports folder (default: reports/)")
    p.add_argument("--notebooks", metavar="DIR", help="notebooks folder (default: notebooks/)")
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="Papermill's cell progress bar (default: when stdout is a terminal)",
    )
    p.add_argument(
        "--fail-on-alert",
        action="store_true",
        help="exit 3 when the run succeeded but the monitor stage raised an alert "
        "(thresholds: the 'monitor:' section of the config) or as_of is behind the data",
    )
    p.add_argument(
        "--list", action="store_true", help="list stages and their parameters, run nothing"
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="validate the configuration against the notebooks and the kernel, run nothing",
    )
    p.add_argument(
        "--reindex",
        action="store_true",
        help="rewrite reports/index.html and reports/latest from the run folders (removing "
        "those past keep_runs when it is set), run nothing",
    )
    p.set_defaults(func=run)


def _needs(stage) -> str:
    """`` (needs 01; reads the tables of 02, 03, 04)``: the stages whose failure in the same
    run skips this one (:func:`cemlib.pipeline.runner._skip_reason`)."""
    from cemlib.pipeline.stages import feeders

    fed = [s.key for s in feeders(stage, STAGES) if s.key not in stage.depends_on]
    parts = [", ".join(stage.depends_on)] if stage.depends_on else []
    parts += [f"reads the tables of {', '.join(fed)}"] if fed else []
    return f" (needs {'; '.join(parts)})" if parts else ""


def _list(cfg) -> int:
    from cemlib.engine import SPARK_STAGES
    from cemlib.pipeline.config import ENGINE_PARAMETERS

    where = cfg.engine_parameters()
    spark = f", spark_master {where['spark_master']}, lake {where['lake']}"
    print(
        f"engine: {cfg.engine} (stages on spark so far: {', '.join(SPARK_STAGES)})"
        + (spark if cfg.engine == "spark" else "")
    )
    for stage in cfg.selected_stages():
        path = cfg.notebooks_path / stage.notebook
        needs = _needs(stage)
        if not path.is_file():
            print(f"{stage.name}: not available ({path} not found){needs}")
            continue
        print(f"{stage.name}: {stage.title}{needs}")
        for name, declared in declared_parameters(path).items():
            if name not in RUN_WIDE_PARAMETERS and name not in ENGINE_PARAMETERS:
                hint = f"  # {declared.help}" if declared.help else ""
                print(f"    {name} = {declared.expression}{hint}")
    return 0


def run(args: argparse.Namespace) -> int:
    """``cem run``: load the config, run the selected stage notebooks and print the index path;
    the exit code is the run's (3 with ``--fail-on-alert`` and an alert)."""
    from cemlib.pipeline.runner import run_pipeline

    cfg = load_config(
        args.config,
        args.params,
        stages=args.stages,
        out=args.out,
        notebooks_dir=args.notebooks,
        registry=STAGES,
    )
    if args.list:
        return _list(cfg)
    if args.reindex:
        from cemlib.pipeline.index import list_runs, prune_runs, write_reports_index

        if cfg.keep_runs:
            removed = prune_runs(cfg.reports_path, cfg.keep_runs)
            print(f"removed {len(removed)} run folder(s) past keep_runs {cfg.keep_runs}")
        path = write_reports_index(cfg.reports_path)
        print(f"{len(list_runs(cfg.reports_path))} run(s) listed in {path}")
        return 0
    if args.check:
        from cemlib.pipeline.runner import preflight

        stages, plans, warning = preflight(cfg, STAGES)
        if warning:
            print(warning)
        missing = [s.name for s in stages if s.name not in plans]
        print(f"configuration ok: {len(plans)} notebook(s) to run", end="")
        print(f"; not available: {', '.join(missing)}" if missing else "")
        return 0
    import logging

    from cemlib.lock import warehouse_lock
    from cemlib.pipeline.execute import stop_children

    # an interrupt can leave nbclient's cell task to fail after its loop stopped; asyncio logs
    # that at exit as "Task exception was never retrieved" with a traceback, while the run's
    # own lines already say what happened
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    # a scheduler stops a job with SIGTERM (Airflow, systemd, Kubernetes): handled like Ctrl-C,
    # so the run is marked interrupted, nothing is published and the lock is released
    terminated = []

    def on_term(signum, frame):
        terminated.append(signum)
        # the kernel first, before Papermill's cleanup asks it to shut down: a kernel asked
        # while its output pipe closes logs a traceback of its own on the shared stderr
        stop_children()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    # a job started in the background by a shell inherits SIGINT ignored: an explicit
    # `kill -INT` (or a test's) must still stop the run cleanly
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with warehouse_lock(cfg.warehouse_path, run_id=cfg.run_id, command="cem run"):
            result = run_pipeline(cfg, progress=args.progress, stream=sys.stdout)
    except KeyboardInterrupt:
        print(f"Report (partial): {cfg.run_dir / 'index.html'}", flush=True)
        return 143 if terminated else 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
    print(f"Report: {cfg.run_dir / 'index.html'}", flush=True)
    if args.fail_on_alert and result.exit_code == 0:
        code = _alert_exit(cfg.run_dir / "monitor.json")
        if result.warnings:  # as_of behind the data: a scheduled job that must page someone
            print(f"{len(result.warnings)} warning(s): exit 3 (--fail-on-alert)", flush=True)
            return 3
        return code
    return result.exit_code


def _alert_exit(path) -> int:
    """3 and one line per alert when the run's ``monitor.json`` lists alerts, else 0."""
    import json

    if not path.is_file():
        return 0
    alerts = json.loads(path.read_text(encoding="utf-8")).get("alerts") or []
    for alert in alerts:
        print(f"alert: {alert.get('message')}", flush=True)
    if alerts:
        print(f"{len(alerts)} alert(s): exit 3 (--fail-on-alert)", flush=True)
    return 3 if alerts else 0
