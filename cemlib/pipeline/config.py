"""Run configuration: a YAML file, ``-p name=value`` overrides, and validation of every
parameter against the ``parameters`` cell of the notebook it is meant for.

Everything is checked before the first notebook starts, so a typo in a nightly job fails in a
second with a message naming the parameter instead of an hour later inside a notebook.

File layout (every key optional; see ``run.example.yaml``)::

    run_id: null            # default: UTC start time, e.g. 20261123-053000
    as_of: "2025-06-30"     # run-wide parameters, injected into every notebook
    seed: 42
    warehouse: null         # null = data/cem.duckdb in the project
    source: synthetic
    n_people: 20000
    stages: all             # or [00, 01] / "01,02"
    out: reports
    execution_timeout: auto # seconds a single cell may run; auto: from the stage's expected
                            # duration at today's size, at least 1800; null: no limit
    memory_limit: null      # memory a stage kernel may use ("16GB", "60%"); null = 80% of RAM
    temp_directory: null    # where DuckDB spills past its share; null = <warehouse>.tmp
    engine: duckdb          # or spark (every stage; pip install "cemlib[spark]")
    spark_master: local[*]  # engine spark: local[N], spark://host:7077, yarn, k8s://...
    lake: null              # engine spark: folder or URL of its Parquet tables; null = data/lake
    keep_runs: null         # run folders kept in the reports folder (newest first); null = all
    vocabulary: {}          # the business's words in the reports: {customer: patient, ...}
    notebooks:              # parameters of single notebooks, by stage
      03_churn: {horizon_days: 180}
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cemlib import DEFAULT_AS_OF, DEFAULT_PEOPLE, DEFAULT_SEED
from cemlib.config import reports_dir, resolve_path, warehouse_path
from cemlib.errors import InputError, one_line
from cemlib.pipeline.settings import YamlText, check_top_level, yaml_value
from cemlib.pipeline.stages import STAGES, Stage, find_stage, select_stages

#: Parameters every notebook declares (CONTRIBUTING.md); the runner injects them all.
RUN_WIDE_PARAMETERS: tuple[str, ...] = (
    "run_id",
    "as_of",
    "seed",
    "warehouse",
    "source",
    "n_people",
    "headlines_path",
)
#: Settings of the runner itself (not notebook parameters).
RUNNER_SETTINGS: tuple[str, ...] = (
    "stages",
    "out",
    "notebooks_dir",
    "kernel",
    "execution_timeout",
    "start_timeout",
    "memory_limit",
    "temp_directory",
    "engine",
    "spark_master",
    "lake",
    "keep_runs",
    "vocabulary",
)
#: Settings injected into the notebooks that declare them (the stages that run on Spark; the
#: vocabulary: stage 04 rewords its offer reasons with it).
ENGINE_PARAMETERS: tuple[str, ...] = ("engine", "spark_master", "lake", "vocabulary")


def configuration_error(errors: Sequence[str]) -> InputError:
    """The error of a run configuration: one line for one mistake (a cron log's one line, as
    for every other bad input), else one line each under a heading, all found at once."""
    if len(errors) == 1:
        return InputError(f"invalid run configuration: {errors[0]}")
    return InputError(
        f"invalid run configuration ({len(errors)} errors):\n  " + "\n  ".join(errors)
    )


def default_run_id(now: dt.datetime | None = None) -> str:
    """Sortable timestamp id of a run started at ``now`` (UTC): ``20261123-053000``."""
    now = now or dt.datetime.now(dt.UTC)
    return now.strftime("%Y%m%d-%H%M%S")


@dataclass
class RunConfig:
    """Everything one ``cem run`` needs; build it with :func:`load_config`."""

    run_id: str
    as_of: str = DEFAULT_AS_OF
    seed: int = DEFAULT_SEED
    warehouse: str | None = None
    source: str = "synthetic"
    n_people: int = DEFAULT_PEOPLE
    stages: list[str] | None = None
    out: str = "reports"
    notebooks_dir: str = "notebooks"
    kernel: str = "python3"
    execution_timeout: float | str | None = "auto"
    """Seconds one cell may run; ``"auto"``: per stage, from its expected duration for the rows
    it reads (:func:`cemlib.budget.cell_timeout`); None: no limit."""
    start_timeout: float = 120
    memory_limit: str | None = None
    """Memory a stage kernel may use ("16GB", "60%"); None = 80% of the machine's RAM."""
    temp_directory: str | None = None
    """Folder DuckDB spills to past its share of ``memory_limit``; None = ``<warehouse>.tmp``."""
    engine: str = "duckdb"
    """``duckdb`` (one machine, the default) or ``spark`` (every stage; docs/spark.md says
    what runs on the executors)."""
    spark_master: str = "local[*]"
    """The Spark master of ``engine: spark``: ``local[N]``, ``spark://host:7077``, ``yarn``..."""
    lake: str | None = None
    """Folder or URL of the Spark engine's Parquet tables; None = ``data/lake``."""
    keep_runs: int | None = None
    """Run folders kept in the reports folder after each run, newest first (a nightly job's
    retention); None keeps every run. A run still running is never removed."""
    vocabulary: dict[str, str] = field(default_factory=dict)
    """The business's own words for the reports' (``{customer: patient, purchase: visit}``,
    :mod:`cemlib.reports.vocabulary`): the stage pages and the offer reasons use them."""
    notebooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    shared: dict[str, Any] = field(default_factory=dict)
    """Overrides given without a stage (``-p horizon_days=90``): every notebook declaring them."""
    run_id_given: bool = True
    """False when ``run_id`` is the default timestamp (the runner then avoids a collision)."""

    # -- derived paths ------------------------------------------------------------------------
    @property
    def warehouse_path(self) -> Path:
        """The warehouse file (``data/cem.duckdb`` of the project when not set)."""
        return warehouse_path(self.warehouse)

    @property
    def memory_limit_bytes(self) -> int:
        """``memory_limit`` in bytes (the default: 80% of the machine's RAM)."""
        from cemlib.budget import default_memory_limit, parse_size

        return parse_size(self.memory_limit) if self.memory_limit else default_memory_limit()

    @property
    def reports_path(self) -> Path:
        """The reports folder (one sub-folder per run, the index, ``latest``)."""
        return reports_dir(self.out)

    @property
    def notebooks_path(self) -> Path:
        """The folder of the stage notebooks (``notebooks/`` of the project by default)."""
        return resolve_path(self.notebooks_dir, "notebooks")

    @property
    def run_dir(self) -> Path:
        """This run's report folder, ``<reports>/<run_id>``."""
        return self.reports_path / self.run_id

    def selected_stages(self, registry: Sequence[Stage] = STAGES) -> list[Stage]:
        """The stages this run executes, in pipeline order (``stages`` of the config)."""
        return select_stages(self.stages, registry)

    def engine_parameters(self) -> dict[str, Any]:
        """``engine``, ``spark_master`` and ``lake`` (made absolute) for the notebooks that
        declare them."""
        from cemlib.engine import lake_path

        return {"engine": self.engine, "spark_master": self.spark_master,
                "lake": lake_path(self.lake), "vocabulary": dict(self.vocabulary)}  # fmt: skip

    def run_wide(self) -> dict[str, Any]:
        """The run-wide notebook parameters, paths made absolute (the kernel's cwd differs)."""
        source = self.source
        if source != "synthetic":
            source = str(resolve_path(source, source))
        return {
            "run_id": self.run_id,
            "as_of": self.as_of,
            "seed": self.seed,
            "warehouse": str(self.warehouse_path),
            "source": source,
            "n_people": self.n_people,
        }

    def to_dict(self) -> dict[str, Any]:
        """The effective configuration, as it would be written in a YAML file."""
        out: dict[str, Any] = {
            "run_id": self.run_id,
            "as_of": self.as_of,
            "seed": self.seed,
            "warehouse": self.warehouse,
            "source": self.source,
            "n_people": self.n_people,
            "stages": self.stages or "all",
            "out": self.out,
            "notebooks_dir": self.notebooks_dir,
            "kernel": self.kernel,
            "execution_timeout": self.execution_timeout,
            "start_timeout": self.start_timeout,
            "memory_limit": self.memory_limit,
            "temp_directory": self.temp_directory,
            "engine": self.engine,
            "spark_master": self.spark_master,
            "lake": self.lake,
            "keep_runs": self.keep_runs,
        }
        if self.vocabulary:
            out["vocabulary"] = dict(self.vocabulary)
        plain = {k: str(v) if isinstance(v, str) else v for k, v in self.shared.items()}
        if self.notebooks:
            out["notebooks"] = {
                stage: {k: str(v) if isinstance(v, str) else v for k, v in params.items()}
                for stage, params in self.notebooks.items()
            }
        if plain:
            out["shared"] = plain
        return out


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The YAML mapping in ``path``; InputError when missing, unparseable or not a mapping."""
    p = Path(path)
    if not p.is_file():
        raise InputError("config file not found", source=str(p))
    try:
        data = yaml_value(p.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputError(f"not valid YAML: {one_line(exc)}", source=str(p)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(
            f"expected a mapping of settings, got {type(data).__name__}", source=str(p)
        )
    return data


def parse_override(text: str) -> tuple[str | None, str, YamlText]:
    """``"name=value"`` -> (None, name, value); ``"03_churn.name=value"`` -> (stage, name, value)."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise InputError(f"expected name=value, got {text!r}", source="-p")
    stage, dot, param = name.rpartition(".")
    if dot and stage:
        return stage, param, YamlText(value)
    return None, name, YamlText(value)


def load_config(
    path: str | Path | None = None,
    overrides: Iterable[str] = (),
    *,
    stages: str | Sequence[str] | None = None,
    out: str | None = None,
    notebooks_dir: str | None = None,
    registry: Sequence[Stage] = STAGES,
    now: dt.datetime | None = None,
) -> RunConfig:
    """Read ``path`` (optional), apply ``-p`` overrides and command-line options, check types.

    Parameters of single notebooks are only checked for shape here; :func:`plan_parameters`
    checks them against the notebooks themselves.
    """
    where = str(path) if path else "config"
    data = read_config_file(path) if path else {}
    errors: list[str] = []
    top, notebooks = _file_settings(data, where, registry, errors)
    shared = _apply_overrides(overrides, top, notebooks, registry, errors)

    for stage_name, params in notebooks.items():
        for name in params:
            if name in RUN_WIDE_PARAMETERS:
                errors.append(
                    f"{stage_name}: {name!r} is a run-wide parameter; set it at the top level"
                )

    if stages is not None:
        top["stages"] = stages
    if out is not None:
        top["out"] = out
    if notebooks_dir is not None:
        top["notebooks_dir"] = notebooks_dir

    values = check_top_level(top, where, errors)
    if errors:
        raise configuration_error(errors)
    run_id = values.pop("run_id", None)
    cfg = RunConfig(
        run_id=run_id or default_run_id(now),
        notebooks=notebooks,
        shared=shared,
        run_id_given=run_id is not None,
        **values,
    )
    cfg.stages = [s.name for s in select_stages(cfg.stages, registry)] if cfg.stages else None
    return cfg


def _file_settings(
    data: dict[str, Any], where: str, registry: Sequence[Stage], errors: list[str]
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The run-wide settings and the per-notebook parameters of a config file's mapping
    (``monitor:`` becoming the monitor notebook's ``alert_*``); problems go to ``errors``."""
    monitor_raw = data.pop("monitor", None) or {}
    notebooks_raw = data.pop("notebooks", None) or {}
    if not isinstance(notebooks_raw, dict):
        errors.append(f"{where}: 'notebooks' must map stage names to parameters")
        notebooks_raw = {}
    top: dict[str, Any] = {}
    for key, value in data.items():
        key = str(key)
        if key == "headlines_path":
            errors.append(f"{where}: parameter 'headlines_path' is set by cem run, not by config")
        elif key in RUN_WIDE_PARAMETERS or key in RUNNER_SETTINGS:
            top[key] = value
        else:
            errors.append(
                f"{where}: unknown setting {key!r} (run-wide parameters: "
                f"{', '.join(RUN_WIDE_PARAMETERS[:-1])}; settings: {', '.join(RUNNER_SETTINGS)}; "
                "notebook parameters go under 'notebooks: {<stage>: {...}}')"
            )

    notebooks: dict[str, dict[str, Any]] = {}
    for stage_name, params in notebooks_raw.items():
        try:
            stage = find_stage(str(stage_name), registry)
        except InputError as exc:
            errors.append(f"{where}: notebooks: {exc}")
            continue
        if params is None:
            continue
        if not isinstance(params, dict):
            errors.append(f"{where}: notebooks: {stage.name}: expected a mapping of parameters")
            continue
        notebooks.setdefault(stage.name, {}).update({str(k): v for k, v in params.items()})

    _monitor_section(monitor_raw, notebooks, where, errors)
    return top, notebooks


def _apply_overrides(
    overrides: Iterable[str],
    top: dict[str, Any],
    notebooks: dict[str, dict[str, Any]],
    registry: Sequence[Stage],
    errors: list[str],
) -> dict[str, Any]:
    """Apply the ``-p`` overrides to ``top`` and ``notebooks`` in place; returns the shared
    parameters (names no run-wide parameter or setting has: checked against the notebooks)."""
    shared: dict[str, Any] = {}
    for text in overrides:
        try:
            stage_name, name, value = parse_override(text)
        except InputError as exc:
            errors.append(str(exc))
            continue
        if stage_name is not None:
            try:
                stage = find_stage(stage_name, registry)
            except InputError as exc:
                errors.append(f"-p {text}: {exc}")
                continue
            notebooks.setdefault(stage.name, {})[name] = value
        elif name == "headlines_path":
            errors.append("-p headlines_path: set by cem run, cannot be overridden")
        elif name in RUN_WIDE_PARAMETERS or name in RUNNER_SETTINGS:
            top[name] = value
        else:
            shared[name] = value
    return shared


def _monitor_section(
    section: Any, notebooks: dict[str, dict[str, Any]], where: str, errors: list[str]
) -> None:
    """The ``monitor:`` section (alert thresholds, see :class:`cemlib.monitor.Thresholds`) as
    the ``alert_<name>`` parameters of the monitor notebook; a value set under ``notebooks:``
    wins."""
    from dataclasses import fields

    from cemlib.monitor import Thresholds

    known = [f.name for f in fields(Thresholds)]
    if not isinstance(section, dict):
        errors.append(f"{where}: 'monitor' must map alert thresholds to numbers")
        return
    for key, value in section.items():
        if str(key) not in known:
            errors.append(
                f"{where}: monitor: unknown threshold {key!r} (known: {', '.join(known)})"
            )
            continue
        notebooks.setdefault("05_monitor", {}).setdefault(f"alert_{key}", value)


def dump_config(cfg: RunConfig) -> str:
    """The effective configuration as YAML text (shown in the run index)."""
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False, allow_unicode=True)
