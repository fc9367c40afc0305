"""Execute the stage notebooks of a run with Papermill and publish their reports.

For each selected stage, in pipeline order:

* notebook missing -> "not available"; stages that depend on it -> "skipped";
* a dependency failed, was skipped or is not available -> "skipped";
* otherwise the notebook runs with the run's parameters injected. An exception in a cell, a
  cell running past ``execution_timeout`` or a dead kernel makes the stage "failed": the
  executed notebook and both HTML reports are still written with the error visible, and the
  run index names the stage and the cell.

``run.json`` and ``index.html`` of the run are rewritten after every stage, so a run that is
killed half-way still leaves a readable index.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any, TextIO

from cemlib import budget
from cemlib.config import project_root
from cemlib.errors import InputError
from cemlib.pipeline.config import RunConfig, dump_config
from cemlib.pipeline.failure import describe_failure
from cemlib.pipeline.index import write_reports_index, write_run_index
from cemlib.pipeline.isolation import WorkingCopy
from cemlib.pipeline.meta import git_info, package_versions
from cemlib.pipeline.parameters import plan_parameters
from cemlib.pipeline.render import render_html
from cemlib.pipeline.result import (
    FAILED,
    NOT_AVAILABLE,
    OK,
    SKIPPED,
    RunResult,
    StageStatus,
    now_utc,
    run_status,
)
from cemlib.pipeline.settle import runs_of, settle_warehouse
from cemlib.pipeline.stages import STAGES, Stage, check_inputs
from cemlib.progress import BATCH_ENV
from cemlib.reports.headlines import load_headlines

_KERNEL_ARGS = ["--IPKernelApp.log_level=CRITICAL"]  # no TCP / shutdown-interrupt noise in logs


# -- one stage ----------------------------------------------------------------------------------
def _papermill(
    stage: Stage, notebook: Path, out_nb: Path, params: dict[str, Any], cfg: RunConfig,
    progress: bool,
) -> tuple[str, BaseException] | None:  # fmt: skip
    """Execute ``notebook`` into ``out_nb``; None when it ran through, else (kind, error)."""
    import papermill as pm
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    failure: tuple[str, BaseException] | None = None
    # parameters were validated already; Papermill's own parse warnings ("Unable to parse
    # line", "Passed unknown parameter") would only add noise to a scheduled job's log
    pm_logger = logging.getLogger("papermill")
    level = pm_logger.level
    pm_logger.setLevel(logging.ERROR)
    batch_before = os.environ.get(BATCH_ENV)
    os.environ[BATCH_ENV] = "1"  # kernels inherit it: no progress widgets in the reports
    env_before = budget.export(cfg)  # and the stage's memory budget and DuckDB's spill folder
    try:
        pm.execute_notebook(
            str(notebook),
            str(out_nb),
            parameters=params,
            kernel_name=cfg.kernel,
            execution_timeout=cfg.execution_timeout,
            start_timeout=cfg.start_timeout,
            progress_bar={"desc": stage.name, "leave": False} if progress else False,
            log_output=False,
            cwd=str(notebook.parent),
            extra_arguments=_KERNEL_ARGS,
        )
    except pm.PapermillExecutionError as exc:
        failure = ("exception", exc)
    except CellTimeoutError as exc:
        failure = ("timeout", exc)
    except DeadKernelError as exc:
        failure = ("dead kernel", exc)
    except Exception as exc:  # kernel did not start, unreadable notebook, ...
        failure = ("runner", exc)
    finally:
        pm_logger.setLevel(level)
        budget.restore(env_before)
        if batch_before is None:
            os.environ.pop(BATCH_ENV, None)
        else:
            os.environ[BATCH_ENV] = batch_before
    return failure


def _render_reports(
    result: StageStatus, stage: Stage, notebook: Path, out_nb: Path, run_dir: Path,
    cfg: RunConfig,
) -> None:  # fmt: skip
    """The stage's two HTML reports (without and with code) into ``run_dir``; a failure to
    render makes the stage failed."""
    banner = None
    if result.status == FAILED:
        banner = (
            f"<strong>This stage failed</strong> at {escape(result.error_summary)}. "
            "The report stops there: the cells after it did not run."
        )
    header = (
        f'<a href="index.html">cemlib run {escape(cfg.run_id)}</a> · as of {escape(cfg.as_of)}'
        f" · stage {escape(stage.name)}: {escape(stage.title)}"
    )
    source_for_html = out_nb if out_nb.is_file() else notebook  # no output: show the input
    if out_nb.is_file():
        result.notebook = out_nb.name
    try:
        for with_code, suffix, attr in (
            (False, ".html", "html"),
            (True, ".code.html", "html_code"),
        ):
            page = render_html(
                source_for_html,
                run_dir / f"{stage.name}{suffix}",
                with_code=with_code,
                title=f"{stage.name} · {cfg.run_id}",
                banner=banner,
                header=header,
            )
            setattr(result, attr, page.name)
    except Exception as exc:
        result.status = FAILED
        result.error = result.error or {
            "kind": "render",
            "ename": type(exc).__name__,
            "evalue": str(exc)[:300],
        }


def execute_stage(
    stage: Stage,
    notebook: Path,
    run_dir: Path,
    parameters: dict[str, Any],
    cfg: RunConfig,
    *,
    progress: bool = False,
) -> StageStatus:
    """Run one notebook with Papermill, render its two HTML reports, collect its headlines."""
    out_nb = run_dir / stage.notebook
    headlines_path = run_dir / f"{stage.name}.headlines.json"
    params = {**parameters, "headlines_path": str(headlines_path)}
    result = StageStatus(
        key=stage.key,
        name=stage.name,
        title=stage.title,
        status=OK,
        depends_on=list(stage.depends_on),
        started_at=now_utc(),
        parameters=params,
    )
    t0 = time.perf_counter()
    failure = _papermill(stage, notebook, out_nb, params, cfg, progress)
    if failure is not None:
        result.status = FAILED
        result.error = describe_failure(out_nb, *failure, cfg.execution_timeout)
    _render_reports(result, stage, notebook, out_nb, run_dir, cfg)
    try:
        result.headlines = load_headlines(headlines_path)
    except (ValueError, OSError) as exc:
        result.headlines = {"headlines unreadable": f"{type(exc).__name__}: {exc}"[:200]}
    result.duration = round(time.perf_counter() - t0, 2)
    return result


# -- the run ------------------------------------------------------------------------------------
def _prepare_run_dir(run_dir: Path) -> None:
    """Create ``run_dir``; a previous run of the same id is replaced, anything else refused."""
    if run_dir.exists():
        if not (run_dir / "run.json").is_file() and any(run_dir.iterdir()):
            raise InputError(
                "exists and is not a cem run folder; choose another run_id or out",
                source=str(run_dir),
            )
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)


def check_kernel(name: str) -> str | None:
    """InputError naming the installed kernels when ``name`` is not one of them; otherwise a
    warning when the kernel runs another Python than this one (cemlib may be missing there)."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    manager = KernelSpecManager()
    try:
        spec = manager.get_kernel_spec(name)
    except NoSuchKernel:
        known = ", ".join(sorted(manager.find_kernel_specs())) or "none"
        raise InputError(
            f"no Jupyter kernel named {name!r} (installed: {known})", source="kernel"
        ) from None
    exe = spec.argv[0] if spec.argv else ""
    if spec.language == "python" and exe not in (
        "python",
        "python3",
        f"python3.{sys.version_info[1]}",
    ):
        if Path(exe).resolve() != Path(sys.executable).resolve():
            return (
                f"warning: kernel {name!r} runs {exe}, not this environment's {sys.executable}; "
                "use -p kernel=... or `make kernel` if the notebooks cannot import cemlib"
            )
    return None


def _skip_reason(
    stage: Stage, done: dict[str, StageStatus], registry: Sequence[Stage]
) -> str | None:
    names = {s.key: s.name for s in registry}
    for dep in stage.depends_on:
        prior = done.get(dep)
        if prior is not None and prior.status != OK:
            return (
                f"needs {names[dep]}, which {'is ' if prior.status != FAILED else ''}{prior.status}"
            )
    return None


def preflight(cfg: RunConfig, registry: Sequence[Stage] = STAGES) -> tuple[list, dict, str | None]:
    """What ``cem run`` and ``cem run --check`` check before anything runs: the selected
    stages, their validated parameters and a kernel warning. InputError (one line, exit 2,
    nothing run) when no selected notebook is there, a parameter does not fit, or the source
    folder does not exist."""
    stages = cfg.selected_stages(registry)
    nb_dir = cfg.notebooks_path
    if not any((nb_dir / s.notebook).is_file() for s in stages):
        raise InputError(
            f"none of the selected notebooks ({', '.join(s.notebook for s in stages)}) is there; "
            "run from the project folder, set $CEM_HOME, or pass --notebooks",
            source=str(nb_dir),
        )
    plans = plan_parameters(cfg, stages, nb_dir)
    source = cfg.run_wide()["source"]
    if source != "synthetic" and not Path(source).is_dir():
        raise InputError("source folder not found", source=source)
    return stages, plans, check_kernel(cfg.kernel)


def _start_run(cfg: RunConfig, registry: Sequence[Stage]) -> tuple[list, dict, str | None]:
    """:func:`preflight`, then a run id that was not given gets a suffix when its folder
    exists (two runs started in the same second)."""
    stages, plans, kernel_warning = preflight(cfg, registry)
    if not cfg.run_id_given:  # two runs started in the same second get distinct folders
        base, n = cfg.run_id, 1
        while cfg.run_dir.exists():
            n += 1
            cfg.run_id = f"{base}-{n}"
        for params in plans.values():
            params["run_id"] = cfg.run_id
    return stages, plans, kernel_warning


def _interrupted(run: RunResult, stages, copy: WorkingCopy, say, t_run: float) -> None:
    """Ctrl-C / SIGTERM: stop the kernel, mark the stages not done, leave the warehouse."""
    stopped = stop_children()  # a kernel Papermill had no time to shut down
    if stopped:
        say(f"stopped {stopped} kernel process(es) of the interrupted stage")
    for stage in stages[len(run.stages) :]:
        run.stages.append(
            StageStatus(stage.key, stage.name, stage.title, FAILED, list(stage.depends_on),
                        reason="interrupted (Ctrl-C or SIGINT)")
        )  # fmt: skip
    run.status = "interrupted"
    settle_warehouse(run, copy, say, publish_it=False)
    run.finished_at = now_utc()
    run.duration = round(time.perf_counter() - t_run, 2)


def run_pipeline(
    cfg: RunConfig,
    *,
    registry: Sequence[Stage] = STAGES,
    progress: bool | None = None,
    stream: TextIO | None = None,
) -> RunResult:
    """Execute the selected stages of ``cfg`` and write ``reports/<run_id>/``.

    Parameters are validated against every available notebook first (InputError, nothing
    run). Returns the run; ``result.exit_code`` is non-zero when a stage failed.
    """
    stream = stream or sys.stdout
    if progress is None:
        progress = bool(getattr(stream, "isatty", lambda: False)())
    stages, plans, kernel_warning = _start_run(cfg, registry)
    run_dir = cfg.run_dir
    _prepare_run_dir(run_dir)

    run = RunResult(
        run_id=cfg.run_id,
        as_of=cfg.as_of,
        status="running",
        started_at=now_utc(),
        finished_at=None,
        duration=None,
        run_dir=str(run_dir),
        config=cfg.to_dict(),
        config_yaml=dump_config(cfg),
        git=git_info(project_root()),
        versions=package_versions(),
        stages=[],
    )

    def publish() -> None:
        (run_dir / "run.json").write_text(run.to_json(), encoding="utf-8")
        write_run_index(run, run_dir / "index.html")

    def say(text: str) -> None:
        print(text, file=stream, flush=True)

    say(f"cem run {cfg.run_id}: {len(stages)} stage(s), as_of {cfg.as_of} -> {run_dir}")
    if kernel_warning:
        say(kernel_warning)
    t_run = time.perf_counter()
    copy = WorkingCopy(cfg.warehouse_path, cfg.run_id)
    run.warehouse = {"path": str(copy.warehouse), "status": "running"}
    try:
        with copy.open():
            for orphan in copy.removed_orphans:
                say(f"note: removed {orphan.name}, the working copy of a run that was killed")
            _run_stages(cfg, stages, registry, plans, run, copy, say, publish, progress)
    except KeyboardInterrupt:
        _interrupted(run, stages, copy, say, t_run)
        publish()
        write_reports_index(cfg.reports_path)
        say(f"cem run {cfg.run_id}: interrupted")
        raise
    except BaseException:
        copy.discard(keep=False)
        raise

    run.status = run_status(run.stages)
    settle_warehouse(run, copy, say, publish_it=run.status != FAILED)
    run.finished_at = now_utc()
    run.duration = round(time.perf_counter() - t_run, 2)
    publish()
    write_reports_index(cfg.reports_path)
    counts = {
        s: sum(r.status == s for r in run.stages) for s in (OK, FAILED, SKIPPED, NOT_AVAILABLE)
    }
    summary = ", ".join(f"{v} {k}" for k, v in counts.items() if v)
    say(f"cem run {cfg.run_id}: {run.status} ({summary}) in {run.duration:.1f} s")
    return run


def _run_stages(cfg, stages, registry, plans, run, copy, say, publish, progress) -> None:
    """Each selected stage in order: skipped, refused for missing inputs, or executed."""
    nb_dir = cfg.notebooks_path
    done: dict[str, StageStatus] = {}
    width = max(len(s.name) for s in stages)
    for n, stage in enumerate(stages, 1):
        label = f"[{n}/{len(stages)}] {stage.name:<{width}}"
        notebook = nb_dir / stage.notebook
        reason = _skip_reason(stage, done, registry)
        missing, other = None, {}
        if stage.name in plans and not reason:
            produced = [k for k, r in done.items() if r.status == OK]
            missing, other = check_inputs(stage, copy.provenance(), cfg.run_id, produced, registry)
        if stage.name not in plans:  # availability as validated before the run started
            result = StageStatus(
                stage.key, stage.name, stage.title, NOT_AVAILABLE, list(stage.depends_on),
                reason=f"notebook {notebook.name} not found in {nb_dir}",
            )  # fmt: skip
        elif reason:
            result = StageStatus(
                stage.key, stage.name, stage.title, SKIPPED, list(stage.depends_on),
                reason=reason,
            )  # fmt: skip
        elif missing:
            result = StageStatus(
                stage.key, stage.name, stage.title, FAILED, list(stage.depends_on),
                reason=missing, error={"kind": "inputs", "ename": "MissingInput",
                                       "evalue": missing},
            )  # fmt: skip
        elif refusal := budget.check_stage(stage, cfg, copy.path):  # would not fit
            result = StageStatus(
                stage.key, stage.name, stage.title, FAILED, list(stage.depends_on),
                reason=refusal,
            )  # fmt: skip
        else:
            result = execute_stage(
                stage, notebook, cfg.run_dir, plans[stage.name], cfg, progress=progress
            )
        result.inputs_from_other_runs = other
        done[stage.key] = result
        run.stages.append(result)
        elapsed = f"{result.duration:8.1f} s" if result.duration is not None else " " * 10
        detail = f"  {result.error_summary}" if result.status != OK else ""
        say(f"{label} {result.status:<13} {elapsed}{detail}")
        if other and result.status not in (SKIPPED, NOT_AVAILABLE):
            say(f"{' ' * len(label)} read from other runs: {runs_of(other)}")
        publish()


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:  # not Linux, or gone
        return out
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as fh:
                out += [int(c) for c in fh.read().split()]
        except OSError:
            continue
    return out


def stop_children() -> int:
    """SIGKILL every process below this one (the notebook kernel and what it started), so
    that an interrupted run leaves nothing running that could still write its working copy.
    Returns how many were stopped (0 where ``/proc`` is not available)."""
    import signal

    found: list[int] = []
    todo = _children(os.getpid())
    while todo:
        pid = todo.pop()
        if pid in found:
            continue
        found.append(pid)
        todo += _children(pid)
    stopped = 0
    for pid in found:
        try:
            os.kill(pid, signal.SIGKILL)
            stopped += 1
        except (ProcessLookupError, PermissionError):
            continue
    return stopped
