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
    execution_timeout: 1800 # seconds a single cell may run
    memory_limit: null      # memory a stage kernel may use ("16GB", "60%"); null = 80% of RAM
    temp_directory: null    # where DuckDB spills past its share; null = <warehouse>.tmp
    notebooks:              # parameters of single notebooks, by stage
      03_churn: {horizon_days: 180}
"""

from __future__ import annotations

import ast
import datetime as dt
import io
import re
import tokenize
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cemlib import DEFAULT_AS_OF, DEFAULT_PEOPLE, DEFAULT_SEED
from cemlib.config import reports_dir, resolve_path, warehouse_path
from cemlib.errors import InputError
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
)
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_RESERVED_RUN_IDS = {"latest", "index.html"}
_ANY = object()  # expected type of a parameter whose default is None or not a literal


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
    execution_timeout: float | None = 1800
    start_timeout: float = 120
    memory_limit: str | None = None
    """Memory a stage kernel may use ("16GB", "60%"); None = 80% of the machine's RAM."""
    temp_directory: str | None = None
    """Folder DuckDB spills to past its share of ``memory_limit``; None = ``<warehouse>.tmp``."""
    notebooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    shared: dict[str, Any] = field(default_factory=dict)
    """Overrides given without a stage (``-p horizon_days=90``): every notebook declaring them."""
    run_id_given: bool = True
    """False when ``run_id`` is the default timestamp (the runner then avoids a collision)."""

    # -- derived paths ------------------------------------------------------------------------
    @property
    def warehouse_path(self) -> Path:
        return warehouse_path(self.warehouse)

    @property
    def memory_limit_bytes(self) -> int:
        """``memory_limit`` in bytes (the default: 80% of the machine's RAM)."""
        from cemlib.budget import default_memory_limit, parse_size

        return parse_size(self.memory_limit) if self.memory_limit else default_memory_limit()

    @property
    def reports_path(self) -> Path:
        return reports_dir(self.out)

    @property
    def notebooks_path(self) -> Path:
        return resolve_path(self.notebooks_dir, "notebooks")

    @property
    def run_dir(self) -> Path:
        return self.reports_path / self.run_id

    def selected_stages(self, registry: Sequence[Stage] = STAGES) -> list[Stage]:
        return select_stages(self.stages, registry)

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
        }
        plain = {k: str(v) if isinstance(v, str) else v for k, v in self.shared.items()}
        if self.notebooks:
            out["notebooks"] = {
                stage: {k: str(v) if isinstance(v, str) else v for k, v in params.items()}
                for stage, params in self.notebooks.items()
            }
        if plain:
            out["shared"] = plain
        return out


class _Loader(yaml.SafeLoader):
    """YAML without implicit timestamps: ``as_of: 2025-06-30`` stays text (checked by us)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


class _Text(str):
    """A value typed on the command line: its type is decided by the parameter's default."""


# -- loading ------------------------------------------------------------------------------------
def read_config_file(path: str | Path) -> dict[str, Any]:
    """The YAML mapping in ``path``; InputError when missing, unparseable or not a mapping."""
    p = Path(path)
    if not p.is_file():
        raise InputError("config file not found", source=str(p))
    try:
        data = _yaml(p.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputError(f"not valid YAML: {exc}", source=str(p)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(
            f"expected a mapping of settings, got {type(data).__name__}", source=str(p)
        )
    return data


def parse_override(text: str) -> tuple[str | None, str, _Text]:
    """``"name=value"`` -> (None, name, value); ``"03_churn.name=value"`` -> (stage, name, value)."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise InputError(f"expected name=value, got {text!r}", source="-p")
    stage, dot, param = name.rpartition(".")
    if dot and stage:
        return stage, param, _Text(value)
    return None, name, _Text(value)


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

    values = _check_top(top, where, errors)
    if errors:
        raise InputError("invalid run configuration:\n  " + "\n  ".join(errors))
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


def _check_top(top: dict[str, Any], where: str, errors: list[str]) -> dict[str, Any]:
    """Type-check the run-wide parameters and runner settings; values coerced from -p text."""
    out: dict[str, Any] = {}
    for key, value in top.items():
        try:
            out[key] = _TOP_CHECKS[key](key, value)
        except (TypeError, ValueError) as exc:
            errors.append(f"{where}: {exc}")
    return out


def _text_or(value: Any) -> Any:
    return _yaml(value) if isinstance(value, _Text) else value


def _check_run_id(key: str, value: Any) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise TypeError(f"{key!r} expects text, got {type(value).__name__} {value!r}")
    if not _RUN_ID.match(value) or value in _RESERVED_RUN_IDS:
        raise ValueError(
            f"{key!r} must be letters, digits, '.', '_' or '-' (a folder name), got {value!r}"
        )
    return str(value)


def _check_date(key: str, value: Any) -> str:
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return value.isoformat()
    if not isinstance(value, str):
        raise TypeError(f"{key!r} expects a date YYYY-MM-DD, got {type(value).__name__} {value!r}")
    try:
        return dt.date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise ValueError(f"{key!r} expects a date YYYY-MM-DD, got {value!r}") from None


def _check_int(key: str, value: Any, minimum: int = 0) -> int:
    value = _text_or(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{key!r} expects an integer, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{key!r} must be at least {minimum}, got {value}")
    return int(value)


def _check_seconds(key: str, value: Any, allow_none: bool = True) -> float | None:
    value = _text_or(value)
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(
            f"{key!r} expects a number of seconds, got {type(value).__name__} {value!r}"
        )
    if value <= 0:
        raise ValueError(f"{key!r} must be positive, got {value}")
    return value


def _check_text(key: str, value: Any, allow_none: bool = False) -> str | None:
    if isinstance(value, _Text):
        text = str(value)
        return None if allow_none and text.strip().lower() in ("", "none", "null") else text
    if value is None and allow_none:
        return None
    if not isinstance(value, str) or not value.strip():
        raise TypeError(f"{key!r} expects text, got {type(value).__name__} {value!r}")
    return value


def _check_stages(key: str, value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return None if value.strip().lower() in ("", "all") else value.split(",")
    if isinstance(value, list | tuple):
        return [
            f"{v:02d}" if isinstance(v, int) and not isinstance(v, bool) else str(v) for v in value
        ]
    raise TypeError(f"{key!r} expects 'all', '01,02' or a list of stages, got {value!r}")


def _check_memory(key: str, value: Any) -> str | None:
    from cemlib.budget import parse_size

    value = _text_or(value)
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null")):
        return None
    try:
        parse_size(value)
    except ValueError as exc:
        raise ValueError(f"{key!r}: {exc}") from None
    return str(value)


_TOP_CHECKS = {
    "run_id": _check_run_id,
    "as_of": _check_date,
    "seed": _check_int,
    "n_people": lambda k, v: _check_int(k, v, minimum=1),
    "warehouse": lambda k, v: _check_text(k, v, allow_none=True),
    "source": _check_text,
    "stages": _check_stages,
    "out": _check_text,
    "notebooks_dir": _check_text,
    "kernel": _check_text,
    "execution_timeout": _check_seconds,
    "start_timeout": lambda k, v: _check_seconds(k, v, allow_none=False),
    "memory_limit": _check_memory,
    "temp_directory": lambda k, v: _check_text(k, v, allow_none=True),
}


# -- validation against the notebooks -----------------------------------------------------------
@dataclass(frozen=True)
class Declared:
    """One parameter of a notebook's ``parameters`` cell."""

    name: str
    default: Any  # the literal value, or _ANY when the default is an expression
    expression: str  # the default as written
    help: str  # the comment on its line


def declared_parameters(path: str | Path) -> dict[str, Declared]:
    """The parameters declared in the notebook's ``parameters`` cell, in order.

    Read with Python's own parser (``papermill.inspect_notebook`` drops a line whose comment
    holds an ``=``, e.g. ``warehouse = None  # None = data/cem.duckdb``); IPython magics are
    ignored. A notebook without a ``parameters`` cell declares nothing.
    """
    import nbformat

    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception as exc:
        raise InputError(f"not a readable notebook: {exc}", source=str(path)) from None
    cell = next(
        (
            c
            for c in nb.cells
            if c.cell_type == "code" and "parameters" in c.get("metadata", {}).get("tags", [])
        ),
        None,
    )
    if cell is None:
        return {}
    source = "\n".join(
        "" if line.lstrip().startswith(("%", "!")) else line for line in cell.source.splitlines()
    )
    try:
        tree = ast.parse(source)
        comments = {
            tok.start[0]: tok.string.lstrip("#").strip()
            for tok in tokenize.generate_tokens(io.StringIO(source).readline)
            if tok.type == tokenize.COMMENT
        }
    except (SyntaxError, tokenize.TokenError) as exc:
        raise InputError(f"parameters cell is not valid Python: {exc}", source=str(path)) from None
    out: dict[str, Declared] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        try:
            default = ast.literal_eval(value)
        except (ValueError, SyntaxError, TypeError):
            default = _ANY
        expression = ast.get_source_segment(source, value) or ""
        hint = comments.get(node.end_lineno or node.lineno, "")
        for target in targets:
            if isinstance(target, ast.Name):
                out[target.id] = Declared(target.id, default, expression, hint)
    return out


def notebook_parameters(path: str | Path) -> dict[str, Any]:
    """Parameters declared in the notebook's ``parameters`` cell: name -> default value.

    A default that is not a Python literal (``Path(...)``, a name) is returned as ``_ANY``: the
    parameter accepts any value.
    """
    return {name: d.default for name, d in declared_parameters(path).items()}


def _type_name(value: Any) -> str:
    return {bool: "true/false", int: "an integer", float: "a number", str: "text"}.get(
        type(value), type(value).__name__
    )


def coerce_parameter(name: str, value: Any, default: Any) -> Any:
    """``value`` as the type of the notebook's ``default``; TypeError naming ``name`` if not.

    Command-line text is parsed into that type (``"7"`` -> 7 for an integer default); a YAML
    date becomes ``YYYY-MM-DD``; an integer is accepted where a number is expected.
    """
    if default is _ANY or default is None:
        if isinstance(value, _Text):
            value = _yaml(value) if value.strip() else ""
        return value.isoformat() if isinstance(value, dt.date) else value
    expected = type(default)
    if isinstance(value, _Text):
        if expected is str:
            return str(value)
        if expected is bool:
            low = value.strip().lower()
            if low in ("true", "yes", "on", "1"):
                return True
            if low in ("false", "no", "off", "0"):
                return False
            raise TypeError(f"parameter {name!r} expects true/false, got {str(value)!r}")
        try:
            value = _yaml(value)
        except yaml.YAMLError:
            raise TypeError(
                f"parameter {name!r} expects {_type_name(default)}, got {value!r}"
            ) from None
    if isinstance(value, dt.date) and expected is str:
        return value.isoformat()
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected in (list, tuple) and isinstance(value, list | tuple):
        return list(value)
    if type(value) is not expected:
        raise TypeError(
            f"parameter {name!r} expects {_type_name(default)} (default {default!r}), "
            f"got {type(value).__name__} {value!r}"
        )
    return value


#: notebook parameters that name a file or folder: resolved like ``source`` (relative to the
#: project, since the kernel's working directory is the notebooks folder) and checked to exist
PATH_PARAMETERS: tuple[str, ...] = ("mapping", "suites_dir")


def plan_parameters(
    cfg: RunConfig,
    stages: Sequence[Stage],
    notebooks_dir: str | Path | None = None,
) -> dict[str, dict[str, Any]]:
    """The parameters to inject into each available notebook of ``stages``.

    Raises InputError listing every unknown parameter name and wrong type at once. Stages whose
    notebook is missing get no entry (the runner reports them as not available).
    """
    nb_dir = Path(notebooks_dir) if notebooks_dir else cfg.notebooks_path
    errors: list[str] = []
    plans: dict[str, dict[str, Any]] = {}
    shared_used: set[str] = set()
    for stage in stages:
        path = nb_dir / stage.notebook
        if not path.is_file():
            continue
        try:
            declared = notebook_parameters(path)
        except InputError as exc:  # unreadable notebook: report with the others
            errors.append(str(exc))
            continue
        params = cfg.run_wide()
        for name, value in cfg.shared.items():
            if name in declared:
                shared_used.add(name)
                try:
                    params[name] = coerce_parameter(name, value, declared[name])
                except TypeError as exc:
                    errors.append(f"{stage.notebook}: {exc}")
        for name, value in cfg.notebooks.get(stage.name, {}).items():
            if name not in declared:
                own = sorted(n for n in declared if n not in RUN_WIDE_PARAMETERS)
                errors.append(
                    f"{stage.notebook}: unknown parameter {name!r} "
                    f"(its parameters: {', '.join(own) or 'only the run-wide ones'})"
                )
                continue
            try:
                params[name] = coerce_parameter(name, value, declared[name])
            except TypeError as exc:
                errors.append(f"{stage.notebook}: {exc}")
        for name in PATH_PARAMETERS:  # relative to the project, like source and warehouse
            value = params.get(name)
            if isinstance(value, str) and value:
                params[name] = str(resolve_path(value, value))
                if not Path(params[name]).exists():
                    errors.append(f"{stage.notebook}: {name}: {params[name]} does not exist")
        plans[stage.name] = params
    for name in cfg.shared:
        if name not in shared_used:
            errors.append(
                f"unknown parameter {name!r}: not a run-wide parameter or setting, and no "
                f"selected notebook declares it"
            )
    if errors:
        raise InputError("invalid run configuration:\n  " + "\n  ".join(errors))
    return plans


def dump_config(cfg: RunConfig) -> str:
    """The effective configuration as YAML text (shown in the run index)."""
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False, allow_unicode=True)
