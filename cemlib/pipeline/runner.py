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

import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from cemlib import budget
from cemlib.config import project_root
from cemlib.errors import InputError
from cemlib.io import output_folder, warehouse_file
from cemlib.lock import open_elsewhere
from cemlib.pipeline.config import RunConfig, dump_config
from cemlib.pipeline.execute import check_kernel, execute_stage, stop_children
from cemlib.pipeline.failure import INPUT
from cemlib.pipeline.index import prune_runs, write_reports_index, write_run_index
from cemlib.pipeline.isolation import WorkingCopy
from cemlib.pipeline.meta import git_info, package_versions
from cemlib.pipeline.parameters import plan_parameters
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
from cemlib.pipeline.stages import STAGES, Stage, check_inputs, feeders, producer
from cemlib.pipeline.staleness import late_data_warning


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


def _skip_reason(
    stage: Stage, done: dict[str, StageStatus], registry: Sequence[Stage]
) -> str | None:
    """Why ``stage`` may not run after the stages ``done`` so far, or ``None``.

    A dependency (``depends_on``) that is not ok stops it, and so does a stage of this run that
    writes a table it reads, even an optional one, and failed or was skipped: the stage would
    read the last published run's table (or what the failed stage wrote before it stopped) as
    if it were this run's (trial 10 L5: 05_monitor graded the previous run's profiles and
    scores as this run's, "0 alerts", after 02 failed). The reason names the stage that
    failed, not the skipped ones between."""
    names = {s.key: s.name for s in registry}
    blocking = [(d, done[d]) for d in stage.depends_on if d in done and done[d].status != OK]
    blocking += [
        (s.key, done[s.key])
        for s in feeders(stage, registry)
        if s.key in done and done[s.key].status in (FAILED, SKIPPED)
    ]
    if not blocking:
        return None
    failed = [(d, r) for d, r in blocking if r.status == FAILED]
    key, prior = min(failed or blocking, key=lambda kr: kr[0])
    if prior.status == SKIPPED and prior.reason and prior.reason.startswith("needs "):
        return prior.reason  # the root: "needs 01_quality, which failed"
    return f"needs {names[key]}, which {'is ' if prior.status != FAILED else ''}{prior.status}"


def _check_outputs(cfg: RunConfig) -> None:
    """The warehouse a DuckDB file (or a new one) and the reports folder a folder, each where a
    file can be created: refused before anything runs, not after the first stage's minutes."""
    if cfg.engine == "duckdb":
        warehouse_file(cfg.warehouse_path, "warehouse")
    output_folder(cfg.reports_path, "out", "the reports folder")


def preflight(cfg: RunConfig, registry: Sequence[Stage] = STAGES) -> tuple[list, dict, str | None]:
    """What ``cem run`` and ``cem run --check`` check before anything runs: the selected
    stages, their validated parameters and a kernel warning. InputError (one line, exit 2,
    nothing run) when no selected notebook is there, a parameter does not fit, or the source
    folder does not exist, or ``engine: spark`` selects a stage not on Spark yet."""
    stages = cfg.selected_stages(registry)
    if cfg.engine == "spark":  # before anything runs: never a half-run on the wrong engine
        from cemlib.engine import require_pyspark, spark_refusal

        refusal = spark_refusal([s.key for s in stages])
        if refusal:
            raise InputError(refusal)
        require_pyspark()
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
    _check_outputs(cfg)
    if holder := open_elsewhere(cfg.warehouse_path):
        raise InputError(
            f"the warehouse is open in another process ({holder}); close it there (a notebook "
            "kernel: wh.close() or restart the kernel) and run again: the run replaces the file",
            source=str(cfg.warehouse_path),
        )
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
    if not settle_warehouse(run, copy, say, publish_it=run.status != FAILED):
        run.status = FAILED
    run.finished_at = now_utc()
    run.duration = round(time.perf_counter() - t_run, 2)
    publish()
    if cfg.keep_runs:
        removed = prune_runs(cfg.reports_path, cfg.keep_runs)
        if removed:
            say(f"removed {len(removed)} old run folder(s) past keep_runs {cfg.keep_runs}: "
                f"{', '.join(removed[:3])}{' ...' if len(removed) > 3 else ''}")  # fmt: skip
    write_reports_index(cfg.reports_path)
    counts = {
        s: sum(r.status == s for r in run.stages) for s in (OK, FAILED, SKIPPED, NOT_AVAILABLE)
    }
    summary = ", ".join(f"{v} {k}" for k, v in counts.items() if v)
    warned = f"; WARNING: {'; '.join(run.warnings)}" if run.warnings else ""
    say(f"cem run {cfg.run_id}: {run.status} ({summary}) in {run.duration:.1f} s{warned}")
    return run


def _provenance(cfg: RunConfig, copy: WorkingCopy) -> dict[str, dict]:
    """The tables a stage may read: the working copy's, and with ``engine: spark`` the lake's,
    which win (the Spark stages write ``clean``, ``identity``, ``marts``... there: a run of
    ``--stages 02`` after a run of 00-01 finds its inputs in the lake)."""
    got = copy.provenance()
    if cfg.engine == "spark":
        from cemlib.engine.lake import Lake

        with Lake(cfg.engine_parameters()["lake"]) as lake:
            got.update(lake.provenance())
    return got


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
            missing, other = check_inputs(
                stage, _provenance(cfg, copy), cfg.run_id, produced, registry
            )
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
                stage, notebook, cfg.run_dir, plans[stage.name], cfg, progress=progress,
                timeout=budget.cell_timeout(stage, cfg, copy.path),
            )  # fmt: skip
        result.inputs_from_other_runs = other
        done[stage.key] = result
        run.stages.append(result)
        elapsed = f"{result.duration:8.1f} s" if result.duration is not None else " " * 10
        detail = f"  {result.error_summary}" if result.status != OK else ""
        say(f"{label} {result.status:<13} {elapsed}{detail}")
        if result.status == FAILED:
            # on stderr too, where every other command puts its errors and a cron job's mail
            # looks: bad input is the user's to fix (its one line), anything else names the cell
            bad_input = (result.error or {}).get("kind") == INPUT
            what = result.error.get("evalue") if bad_input else f"failed at {result.error_summary}"
            print(f"cem run: error: {stage.name}: {what}", file=sys.stderr, flush=True)
        if other and result.status not in (SKIPPED, NOT_AVAILABLE):
            for line in other_runs_lines(stage, other):
                say(f"{' ' * len(label)} {line}")
        if result.status == OK and (late := late_data_warning(result.headlines, cfg.as_of)):
            run.warnings.append(late)
            say(f"{' ' * len(label)} WARNING: {late}")
        if result.status == OK and (heavy := quarantine_warning(result.headlines)):
            run.warnings.append(heavy)
            say(f"{' ' * len(label)} WARNING: {heavy}")
        publish()


#: the quality stage's headline naming its tables mostly quarantined
#: (``cemlib.quality.report.MOSTLY_QUARANTINED``; not imported: Great Expectations stays out of
#: the runner's process)
MOSTLY_QUARANTINED = "tables mostly quarantined"


def quarantine_warning(headlines: dict) -> str | None:
    """The warning for a quality stage that quarantined most rows of a table (the headline
    :data:`MOSTLY_QUARANTINED`), or ``None``: the stage is ``ok`` (it did its work), but the
    stages after it see only the rest of that table."""
    heavy = (headlines or {}).get(MOSTLY_QUARANTINED)
    if not heavy:
        return None
    return f"{heavy}: the later stages see only the rest (reasons in quarantine.<table>)"


def other_runs_lines(stage: Stage, other: dict[str, str]) -> list[str]:
    """The console lines naming a stage's inputs written by earlier runs: the stage's own state
    carried from its previous run (the identity stage's registry of ids on a scheduled run:
    expected) apart from tables of other stages that this run did not write."""
    own = {t: r for t, r in other.items() if producer(t, STAGES) is stage}
    rest = {t: r for t, r in other.items() if t not in own}
    lines = [f"continues from its previous run: {runs_of(own)}"] if own else []
    return lines + ([f"read from other runs: {runs_of(rest)}"] if rest else [])
