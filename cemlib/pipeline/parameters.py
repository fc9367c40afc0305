"""The parameters of the stage notebooks: what each declares in its ``parameters`` cell, and the
values a run gives each one (run-wide, from the config file and ``-p``), checked and typed
before anything runs."""

from __future__ import annotations

import ast
import datetime as dt
import io
import math
import tokenize
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cemlib.config import resolve_path
from cemlib.errors import InputError
from cemlib.pipeline.config import (
    ENGINE_PARAMETERS,
    RUN_WIDE_PARAMETERS,
    RunConfig,
    configuration_error,
)
from cemlib.pipeline.settings import YamlText, yaml_value
from cemlib.pipeline.stages import Stage

_ANY = object()  # expected type of a parameter whose default is None or not a literal


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
        if isinstance(value, YamlText):
            value = yaml_value(value) if value.strip() else ""
        return value.isoformat() if isinstance(value, dt.date) else value
    expected = type(default)
    if isinstance(value, YamlText):
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
            value = yaml_value(value)
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


#: Ranges of the notebooks' numeric parameters, checked by :func:`plan_parameters` (so that
#: ``cem run --check`` refuses ``-p 02.match_threshold=1.5`` before any stage runs instead of the
#: stage failing on it): name -> (lowest, highest, whether the bounds themselves are allowed).
#: ``match_threshold`` may also be ``auto`` (or empty: the stage's default).
PARAMETER_RANGES: dict[str, tuple[float, float, bool]] = {
    "match_threshold": (0.0, 1.0, False),
    "annual_discount": (0.0, 1.0, True),
    "alert_quarantine_share": (0.0, 1.0, True),
    "alert_null_share": (0.0, 1.0, True),
    "alert_auc_floor": (0.0, 1.0, True),
    "alert_ids_changed_share": (0.0, 1.0, True),
    "alert_psi": (0.0, math.inf, True),
    "alert_rows_change": (0.0, math.inf, True),
    "volume_band": (0.0, math.inf, True),
    **{
        name: (1, math.inf, True)
        for name in (
            "horizon_days",
            "monitor_horizon_days",
            "k",
            "gx_max_rows",
            "max_names",
            "max_birth_dates",
            "hub_names",
            "hub_birth_dates",
            "hub_records",
        )
    },  # fmt: skip
    **{
        name: (0, math.inf, True)
        for name in (
            "freshness_days",
            "min_age",
            "min_contact_age",
            "n_examples",
            "examples_per_reason",
        )
    },  # fmt: skip
}


def parameter_range_error(name: str, value: Any) -> str | None:
    """Why ``value`` is out of :data:`PARAMETER_RANGES` for ``name``, or ``None``."""
    if name not in PARAMETER_RANGES or value is None or isinstance(value, bool):
        return None
    if name == "match_threshold" and (value == "auto" or value == ""):
        return None
    low, high, closed = PARAMETER_RANGES[name]
    try:
        number = float(value)
    except (TypeError, ValueError):
        return f"parameter {name!r} expects a number, got {value!r}"
    inside = low <= number <= high if closed else low < number < high
    if inside and not math.isnan(number):
        return None
    bounds = f"[{low:g}, {high:g}]" if closed else f"({low:g}, {high:g})"
    if high == math.inf:
        bounds = f"at least {low:g}" if closed else f"above {low:g}"
    else:
        bounds = f"in {bounds}"
    extra = " or 'auto'" if name == "match_threshold" else ""
    return f"parameter {name!r} must be {bounds}{extra}, got {value!r}"


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
        params.update(
            {
                k: v
                for k, v in cfg.engine_parameters().items()
                if k in ENGINE_PARAMETERS and k in declared
            }
        )
        for name, value in cfg.shared.items():
            if name in declared:
                shared_used.add(name)
                try:
                    params[name] = coerce_parameter(name, value, declared[name])
                except TypeError as exc:
                    errors.append(f"{stage.notebook}: {exc}")
                    continue
                if (problem := parameter_range_error(name, params[name])) is not None:
                    errors.append(f"{stage.notebook}: {problem}")
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
                continue
            if (problem := parameter_range_error(name, params[name])) is not None:
                errors.append(f"{stage.notebook}: {problem}")
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
        raise configuration_error(errors)
    return plans
