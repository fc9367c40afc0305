"""Executing one stage notebook: Papermill in a fresh kernel, its two HTML reports, its status;
the kernel check before a run and the clean-up of kernels an interrupt leaves behind."""

from __future__ import annotations

import logging
import math
import os
import signal
import sys
import time
from html import escape
from pathlib import Path
from typing import Any

from cemlib import budget
from cemlib.errors import InputError
from cemlib.pipeline.config import RunConfig
from cemlib.pipeline.failure import describe_failure
from cemlib.pipeline.render import render_html
from cemlib.pipeline.result import (
    FAILED,
    OK,
    StageStatus,
    now_utc,
)
from cemlib.pipeline.stages import Stage
from cemlib.progress import BATCH_ENV
from cemlib.reports.headlines import load_headlines

_KERNEL_ARGS = ["--IPKernelApp.log_level=CRITICAL"]  # no TCP / shutdown-interrupt noise in logs


# -- one stage ----------------------------------------------------------------------------------
def _papermill(
    stage: Stage, notebook: Path, out_nb: Path, params: dict[str, Any], cfg: RunConfig,
    progress: bool, timeout: float | None,
) -> tuple[str, BaseException] | None:  # fmt: skip
    """Execute ``notebook`` into ``out_nb``, each cell within ``timeout`` seconds (None: no
    limit); None when it ran through, else (kind, error)."""
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
            execution_timeout=None if timeout is None else math.ceil(timeout),  # nbclient: int
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
                vocabulary=cfg.vocabulary,
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
    timeout: tuple[float | None, str] | None = None,
) -> StageStatus:
    """Run one notebook with Papermill, render its two HTML reports, collect its headlines.

    ``timeout``: (seconds a cell may run, how that was chosen), see
    :func:`cemlib.budget.cell_timeout`; default ``execution_timeout`` of ``cfg`` as it is.
    """
    seconds, how = timeout or budget.cell_timeout(stage, cfg)
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
        cell_timeout=seconds,
    )
    t0 = time.perf_counter()
    failure = _papermill(stage, notebook, out_nb, params, cfg, progress, seconds)
    if failure is not None:
        result.status = FAILED
        result.error = describe_failure(out_nb, *failure, seconds, how)
    _render_reports(result, stage, notebook, out_nb, run_dir, cfg)
    try:
        result.headlines = load_headlines(headlines_path)
    except (ValueError, OSError) as exc:
        result.headlines = {"headlines unreadable": f"{type(exc).__name__}: {exc}"[:200]}
    result.duration = round(time.perf_counter() - t0, 2)
    return result


# -- the run ------------------------------------------------------------------------------------


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
