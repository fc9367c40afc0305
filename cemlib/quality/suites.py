"""Expectation suites kept as readable YAML/JSON files in ``expectations/``.

A suite file names its ``table``, ``id_column``, ``required_columns`` and a list of
``expectations``; each entry is a Great Expectations 1.x expectation ``type`` with its ``kwargs``,
a ``severity`` (``critical`` or ``warning``) and a human ``reason``. Values in ``kwargs`` may hold
placeholders resolved at run time by :class:`RunParams` (``{as_of}``, ``{start}``, ...).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from cemlib import DEFAULT_AS_OF
from cemlib.config import default_suites_dir, suite_files
from cemlib.errors import InputError
from cemlib.quality.context import gx
from cemlib.quality.history import is_auto

SEVERITIES = ("critical", "warning")
EMAIL_REGEX = r"^[^@\s]+@[^@\s]+\.[^@\s.]{2,}$"
DATETIME_TYPES = [
    "datetime64[ns]",
    "datetime64[us]",
    "datetime64[ms]",
    "datetime64[s]",
    "DatetimeTZDtype",
]
NUMBER_TYPES = ["float64", "float32", "int64", "int32", "int16", "int8", "Int64", "Float64"]
BOOL_TYPES = ["bool", "boolean", "BooleanDtype"]

# Expectations that judge each row (their failures are row-level); all others are table-level.
ROW_LEVEL = frozenset(
    {
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_null",
        "expect_column_values_to_be_unique",
        "expect_compound_columns_to_be_unique",
        "expect_column_values_to_match_regex",
        "expect_column_values_to_be_between",
        "expect_column_values_to_be_in_set",
        "expect_column_pair_values_a_to_be_greater_than_b",
    }
)
#: the pair check compares two columns of one row (``column_A``, ``column_B``); a row missing
#: either value is not judged (``ignore_row_if: either_value_is_missing``, the only option)
PAIR = "expect_column_pair_values_a_to_be_greater_than_b"
TABLE_LEVEL = frozenset(
    {
        "expect_table_row_count_to_be_between",
        "expect_column_to_exist",
        "expect_column_values_to_be_in_type_list",
        "expect_column_max_to_be_between",
    }
)
_PLACEHOLDER = re.compile(r"^\{([^{}]+)\}$")


@dataclass(frozen=True)
class RunParams:
    """What placeholders in the suites resolve to for one run."""

    as_of: str = DEFAULT_AS_OF
    start: str = "auto"
    """The day the business began (``{start}``), or ``auto``: each table's own history start
    (``starts``, :func:`cemlib.quality.history.history_starts`)."""
    freshness_days: int = 30
    volume_band: float = 0.5
    min_age: int = 14
    """The youngest plausible customer, in years at ``as_of`` (``{youngest_birth}``): 14 for a
    shop; 0 where children are customers (a clinic), so only a birth date after ``as_of`` is
    implausible."""
    previous_counts: dict[str, int] = field(default_factory=dict)
    starts: dict[str, pd.Timestamp] = field(default_factory=dict)

    @property
    def as_of_ts(self) -> pd.Timestamp:
        """``as_of`` as a timestamp at midnight."""
        return pd.Timestamp(self.as_of).normalize()

    def _start(self, table: str) -> pd.Timestamp | None:
        """``{start}`` of ``table``: the given day, or under ``auto`` the table's own history
        start (None: no lower bound, the check is skipped)."""
        if is_auto(self.start):
            return self.starts.get(table)
        return pd.Timestamp(self.start)

    def resolve(self, token: str, table: str) -> Any:
        """Value of ``{token}``; ``_SKIP`` when it cannot apply (no previous run)."""
        as_of = self.as_of_ts
        simple = {
            "as_of": as_of,
            "as_of_end": as_of + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1),
            "start": self._start(table),
            "fresh_since": as_of - pd.Timedelta(days=self.freshness_days),
            "youngest_birth": as_of - pd.DateOffset(years=int(self.min_age)),
            "email_regex": EMAIL_REGEX,
            "datetime_types": DATETIME_TYPES,
            "number_types": NUMBER_TYPES,
            "bool_types": BOOL_TYPES,
        }
        if token in simple:
            found = simple[token]
            return _SKIP if found is None else found
        m = re.fullmatch(r"as_of-(\d+)y", token)
        if m:
            return as_of - pd.DateOffset(years=int(m.group(1)))
        if token in ("volume_min", "volume_max"):
            prev = self.previous_counts.get(table)
            if not prev:
                return _SKIP
            factor = 1 - self.volume_band if token == "volume_min" else 1 + self.volume_band
            return int(prev * factor) if token == "volume_min" else int(prev * factor + 0.5)
        if token.startswith("ref:"):
            return Ref(*token[4:].split(".", 1))
        raise InputError(f"unknown placeholder {{{token}}}", source=f"expectations/{table}")


class _Skip:
    def __repr__(self) -> str:
        return "SKIP"


_SKIP = _Skip()


@dataclass(frozen=True)
class Ref:
    """The set of values of ``table.column`` (a parent table), resolved against staging."""

    table: str
    column: str


@dataclass
class Check:
    """One expectation of a suite, with its severity and reason."""

    type: str
    kwargs: dict[str, Any]
    severity: str
    reason: str
    when_not_null: str | None = None
    #: judge only rows where this column is empty (a phone check skips masked phones, which
    #: ``phone_tail`` marks and a check of their own counts); not part of :attr:`name`, so a
    #: check keeps its name (and its history) when it gains the condition
    when_null: str | None = None
    keep: str | None = None  # uniqueness: "first" keeps the first copy clean, "identical" the
    # first of copies identical in every column (copies that differ are all held back)
    until_as_of: bool = False  # judge only rows dated on or before as_of (freshness)
    #: an identifier-validity check: the row is kept and these columns are left empty in
    #: ``clean.*`` where it fails (the value stays in ``raw.*``); only with ``severity: warning``
    blank: tuple[str, ...] = ()

    @property
    def row_level(self) -> bool:
        """The check judges each row (its failures can be quarantined)."""
        return self.type in ROW_LEVEL

    @property
    def column(self) -> str | None:
        """The column the check names, if any."""
        return self.kwargs.get("column")

    @property
    def column_label(self) -> str | None:
        """The column the check names, or the columns of a compound check joined by ``, ``."""
        if self.column is None and self.kwargs.get("column_list"):
            return ", ".join(str(c) for c in self.kwargs["column_list"])
        if self.column is None and self.kwargs.get("column_A"):
            return f"{self.kwargs['column_A']}, {self.kwargs.get('column_B')}"
        return self.column

    @property
    def name(self) -> str:
        """A readable, stable name: ``type(column)`` plus the bound that makes it unique."""
        parts = [self.column_label] if self.column_label else []
        for k in ("min_value", "max_value", "regex", "value_set"):
            if k in self.kwargs:
                v = self.kwargs[k]
                parts.append(f"{k}={v}")
        parts += [k for k in ("strict_min", "strict_max") if self.kwargs.get(k)]
        if self.when_not_null:
            parts.append(f"when {self.when_not_null} present")
        return f"{self.type}({', '.join(str(p) for p in parts)})"

    def columns(self) -> list[str]:
        """Every column the check reads."""
        cols = [self.column] if self.column else []
        cols += [str(c) for c in self.kwargs.get("column_list") or []]
        cols += [str(self.kwargs[k]) for k in ("column_A", "column_B") if self.kwargs.get(k)]
        if self.when_not_null:
            cols.append(self.when_not_null)
        if self.when_null:
            cols.append(self.when_null)
        return cols

    def resolved_kwargs(self, params: RunParams, table: str) -> dict[str, Any] | None:
        """kwargs with placeholders filled; ``None`` when the check cannot apply this run."""
        out = {}
        for key, value in self.kwargs.items():
            if isinstance(value, str) and (m := _PLACEHOLDER.match(value)):
                value = params.resolve(m.group(1), table)
                if value is _SKIP:
                    return None
            out[key] = value
        return out

    def to_gx(
        self, kwargs: dict[str, Any], index: int = 0, as_of_end: pd.Timestamp | None = None
    ) -> gx.expectations.Expectation:
        """The Great Expectations expectation object (severity and reason carried in ``meta``)."""
        from great_expectations.expectations.row_conditions import Column

        cls = _gx_class(self.type)
        extra: dict[str, Any] = {}
        if self.when_not_null:
            extra["row_condition"] = Column(self.when_not_null).is_not_null()
            if self.when_null:
                extra["row_condition"] = extra["row_condition"] & Column(self.when_null).is_null()
        elif self.when_null:
            extra["row_condition"] = Column(self.when_null).is_null()
        elif self.until_as_of and as_of_end is not None and self.column:
            extra["row_condition"] = Column(self.column) <= as_of_end.isoformat()
        gx_kwargs = {
            k: (_plain_bound(v) if k in ("min_value", "max_value") else v)
            for k, v in kwargs.items()
        }
        return cls(
            **gx_kwargs,
            **extra,
            severity=self.severity,
            meta={"reason": self.reason, "cem_name": self.name, "cem_index": index},
        )


def _plain_bound(value: Any) -> Any:
    if isinstance(value, dt.date) and not isinstance(value, pd.Timestamp):
        return pd.Timestamp(value)
    return value


def _gx_class(type_name: str) -> type:
    camel = "".join(part.capitalize() for part in type_name.split("_"))
    cls = getattr(gx.expectations, camel, None)
    if cls is None:
        raise InputError(f"unknown Great Expectations expectation {type_name!r}")
    return cls


@dataclass
class Suite:
    """The checks of one canonical source table."""

    table: str
    id_column: str | None
    required_columns: list[str]
    checks: list[Check]
    path: Path | None = None

    def referenced_columns(self) -> set[str]:
        """Every column the suite's checks read or require."""
        cols = set(self.required_columns)
        for c in self.checks:
            cols.update(c.columns())
        return cols


def load_suite(path: str | Path) -> Suite:
    """Read one suite file (YAML or JSON), checking every entry has a severity and a reason."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
        doc = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read the suite: {exc}", source=str(p)) from None
    if not isinstance(doc, dict) or "table" not in doc or "expectations" not in doc:
        raise InputError("a suite needs 'table' and 'expectations'", source=str(p))
    checks = []
    for i, entry in enumerate(doc["expectations"]):
        where = f"{p.name} expectation #{i + 1}"
        if not isinstance(entry, dict) or "type" not in entry:
            raise InputError("each expectation needs a 'type'", source=where)
        severity = entry.get("severity")
        if severity not in SEVERITIES:
            raise InputError(
                f"severity must be one of {SEVERITIES}, got {severity!r}", source=where
            )
        if not entry.get("reason"):
            raise InputError("each expectation needs a human 'reason'", source=where)
        if entry["type"] not in ROW_LEVEL | TABLE_LEVEL:
            raise InputError(
                f"unsupported expectation {entry['type']!r}; supported: "
                f"{sorted(ROW_LEVEL | TABLE_LEVEL)}",
                source=where,
            )
        _gx_class(entry["type"])
        _column_list(entry, where)
        _column_pair(entry, where)
        checks.append(
            Check(
                type=entry["type"],
                kwargs=dict(entry.get("kwargs") or {}),
                severity=severity,
                reason=str(entry["reason"]),
                when_not_null=entry.get("when_not_null"),
                when_null=entry.get("when_null"),
                keep=_keep(entry, where),
                until_as_of=bool(entry.get("until_as_of", False)),
                blank=_blank(entry, where),
            )
        )
        seen = [c.name for c in checks[:-1]]
        if checks[-1].name in seen:
            raise InputError(
                f"the same check as expectation #{seen.index(checks[-1].name) + 1} "
                f"({checks[-1].name}); give it another bound or remove one",
                source=where,
            )
    return Suite(
        table=doc["table"],
        id_column=doc.get("id_column"),
        required_columns=list(doc.get("required_columns") or []),
        checks=checks,
        path=p,
    )


def load_suites(directory: str | Path | None = None) -> dict[str, Suite]:
    """Every suite of ``directory`` (default ``expectations/``), keyed by table."""
    d = Path(directory) if directory else default_suites_dir()
    files = suite_files(d)
    if not files:
        raise InputError("no expectation suites found (*.yaml, *.json)", source=str(d))
    suites = {}
    for f in files:
        suite = load_suite(f)
        suites[suite.table] = suite
    return suites


KEEP = ("first", "identical")
#: rows a compound uniqueness check leaves unjudged (Great Expectations' ``ignore_row_if``)
IGNORE_ROW_IF = ("all_values_are_missing", "any_value_is_missing", "never")


def _column_list(entry: Mapping[str, Any], where: str) -> None:
    """A compound check names two or more columns (``column_list``) and a known
    ``ignore_row_if``."""
    if entry["type"] != "expect_compound_columns_to_be_unique":
        return
    kwargs = entry.get("kwargs") or {}
    cols = kwargs.get("column_list")
    if not isinstance(cols, list) or len(cols) < 2 or not all(isinstance(c, str) for c in cols):
        raise InputError(
            f"{entry['type']}: 'column_list' must name two or more columns, got {cols!r}",
            source=where,
        )
    ignore = kwargs.get("ignore_row_if", IGNORE_ROW_IF[0])
    if ignore not in IGNORE_ROW_IF:
        raise InputError(
            f"{entry['type']}: 'ignore_row_if: {ignore}' is not an option "
            f"({', '.join(IGNORE_ROW_IF)})",
            source=where,
        )


def _column_pair(entry: Mapping[str, Any], where: str) -> None:
    """A pair check names ``column_A`` and ``column_B`` and leaves a row missing either value
    unjudged (the one semantics the SQL flags share with Great Expectations here)."""
    if entry["type"] != PAIR:
        return
    kwargs = entry.get("kwargs") or {}
    cols = [kwargs.get("column_A"), kwargs.get("column_B")]
    if not all(isinstance(c, str) and c for c in cols):
        raise InputError(f"{PAIR}: needs 'column_A' and 'column_B', got {cols!r}", source=where)
    if kwargs.get("ignore_row_if", "either_value_is_missing") != "either_value_is_missing":
        raise InputError(
            f"{PAIR}: only 'ignore_row_if: either_value_is_missing' is supported", source=where
        )


def _blank(entry: Mapping[str, Any], where: str) -> tuple[str, ...]:
    """The columns a failing row has emptied in clean (``blank:``), checked: a row-level
    check of severity warning (a critical one quarantines the row instead)."""
    blank = entry.get("blank")
    if blank is None:
        return ()
    if isinstance(blank, str):
        blank = [blank]
    if not isinstance(blank, list) or not blank or not all(isinstance(c, str) and c for c in blank):
        raise InputError(f"'blank' must be a list of column names, got {blank!r}", source=where)
    if entry["type"] not in ROW_LEVEL or entry.get("severity") != "warning":
        raise InputError(
            f"'blank: {blank}' needs a row-level expectation of severity warning (the row is "
            "kept, the values emptied); a critical one quarantines the row",
            source=where,
        )
    return tuple(blank)


def _keep(entry: Mapping[str, Any], where: str) -> str | None:
    keep = entry.get("keep")
    if keep is not None and (
        keep not in KEEP or entry["type"] != "expect_column_values_to_be_unique"
    ):
        raise InputError(
            f"{entry['type']}: 'keep: {keep}' is not an option (for "
            f"expect_column_values_to_be_unique: {' or '.join(KEEP)})",
            source=where,
        )
    return keep
