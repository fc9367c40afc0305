"""Row-level checks compiled to DuckDB SQL.

Great Expectations reports how many rows fail each expectation; to route the failing rows
themselves to quarantine at warehouse scale, each row-level expectation is also compiled to a
SQL predicate that is true for a failing row, with Great Expectations' semantics (missing values
are not judged except by ``not_be_null``; ``be_unique`` fails every copy of a repeated value
unless the suite says ``keep: first`` or ``keep: identical``; ``compound_columns_to_be_unique``
fails every copy of a repeated combination, such as a line number repeated within one receipt).
Tests check that both give the
same counts (``keep`` aside: Great Expectations counts every copy).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from cemlib.quality.suites import PAIR, Check, Ref


def quote(name: str) -> str:
    """``name`` as a DuckDB quoted identifier."""
    return '"' + str(name).replace('"', '""') + '"'


def literal(value: Any) -> str:
    """A SQL literal for a bound or a set member."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (pd.Timestamp, dt.datetime)):
        return f"TIMESTAMP '{pd.Timestamp(value).isoformat(sep=' ')}'"
    if isinstance(value, dt.date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def failure_predicate(
    check: Check,
    kwargs: dict[str, Any],
    *,
    order_by: str = "_source_row",
    relation: str | None = None,
    row_columns: list[str] | None = None,
) -> str:
    """SQL boolean expression, true where the row fails ``check`` (row-level checks only).

    ``relation`` is the table holding the checked column, used by uniqueness to find the
    repeated values with a hash aggregate instead of a window over the whole table;
    ``row_columns`` are the columns that make two copies identical (``keep: identical``).
    """
    t = check.type
    if t == "expect_compound_columns_to_be_unique":
        return _guard(check, compound_unique(kwargs, quote, relation), quote)
    if t == PAIR:
        return _guard(check, pair_fails(kwargs, quote), quote)
    col = quote(kwargs["column"])
    if t == "expect_column_values_to_not_be_null":
        pred = f"{col} IS NULL"
    elif t == "expect_column_values_to_be_null":
        pred = f"{col} IS NOT NULL"
    elif t == "expect_column_values_to_be_unique" and check.keep == "identical":
        pred = keep_identical(col, [quote(c) for c in row_columns or []], quote(order_by))
    elif t == "expect_column_values_to_be_unique":
        if check.keep == "first":
            pred = (
                f"{col} IS NOT NULL AND row_number() OVER "
                f"(PARTITION BY {col} ORDER BY {quote(order_by)}) > 1"
            )
        elif relation is not None:
            dups = (
                f"SELECT {col} FROM {relation} WHERE {col} IS NOT NULL "
                f"GROUP BY {col} HAVING count(*) > 1"
            )
            pred = f"{col} IS NOT NULL AND {col} IN ({dups})"
        else:
            pred = f"{col} IS NOT NULL AND count(*) OVER (PARTITION BY {col}) > 1"
    elif t == "expect_column_values_to_match_regex":
        pred = (
            f"{col} IS NOT NULL AND NOT regexp_matches(CAST({col} AS VARCHAR), "
            f"{literal(kwargs['regex'])})"
        )
    elif t == "expect_column_values_to_be_between":
        parts = []
        lo, hi = kwargs.get("min_value"), kwargs.get("max_value")
        if lo is not None:
            op = "<=" if kwargs.get("strict_min") else "<"
            parts.append(f"{col} {op} {_cast_like(lo)}")
        if hi is not None:
            op = ">=" if kwargs.get("strict_max") else ">"
            parts.append(f"{col} {op} {_cast_like(hi)}")
        pred = f"{col} IS NOT NULL AND ({' OR '.join(parts) or 'FALSE'})"
    elif t == "expect_column_values_to_be_in_set":
        values = kwargs["value_set"]
        if isinstance(values, Ref):
            sub = (
                f"SELECT {quote(values.column)} FROM staging.{quote(values.table)} "
                f"WHERE {quote(values.column)} IS NOT NULL"
            )
            pred = f"{col} IS NOT NULL AND {col} NOT IN ({sub})"
        else:
            members = ", ".join(literal(v) for v in values)
            pred = f"{col} IS NOT NULL AND {col} NOT IN ({members})"
    else:  # pragma: no cover - guarded by suites.ROW_LEVEL
        raise ValueError(f"not a row-level expectation: {t}")
    return _guard(check, pred, quote)


def _guard(check: Check, pred: str, quote) -> str:
    """``pred`` limited to the rows the check judges (``when_not_null``, ``when_null``), a
    missing verdict read as a pass."""
    if check.when_not_null:
        pred = f"{quote(check.when_not_null)} IS NOT NULL AND ({pred})"
    if check.when_null:
        pred = f"{quote(check.when_null)} IS NULL AND ({pred})"
    return f"coalesce(({pred}), FALSE)"


def compound_unique(kwargs: dict[str, Any], quote, relation: str | None = None) -> str:
    """``expect_compound_columns_to_be_unique`` in SQL (identifiers quoted by ``quote``):
    every copy of a repeated combination of ``column_list`` fails, as in Great Expectations
    (pandas' ``duplicated(keep=False)``, missing values equal to each other), among the rows
    its ``ignore_row_if`` leaves judged (default ``all_values_are_missing``). With
    ``relation`` and ``any_value_is_missing`` (no missing value to compare), the repeated
    combinations are found with a hash aggregate instead of a window over the whole table."""
    cols = [quote(c) for c in kwargs["column_list"]]
    ignore = kwargs.get("ignore_row_if", "all_values_are_missing")
    if ignore == "any_value_is_missing":
        judged = " AND ".join(f"{c} IS NOT NULL" for c in cols)
    elif ignore == "all_values_are_missing":
        judged = "(" + " OR ".join(f"{c} IS NOT NULL" for c in cols) + ")"
    else:
        judged = "TRUE"
    names = ", ".join(cols)
    if relation is not None and ignore == "any_value_is_missing":
        dups = f"SELECT {names} FROM {relation} WHERE {judged} GROUP BY {names} HAVING count(*) > 1"
        return f"{judged} AND ({names}) IN ({dups})"
    # rows of one combination have the same missing columns: all judged or all ignored
    return f"{judged} AND count(*) OVER (PARTITION BY {names}) > 1"


def pair_fails(kwargs: dict[str, Any], quote) -> str:
    """``expect_column_pair_values_a_to_be_greater_than_b`` in SQL: A not above B (not at or
    above with ``or_equal``), a row missing either value unjudged."""
    a, b = quote(kwargs["column_A"]), quote(kwargs["column_B"])
    op = "<" if kwargs.get("or_equal") else "<="
    return f"{a} IS NOT NULL AND {b} IS NOT NULL AND {a} {op} {b}"


def row_columns(columns: list[str]) -> list[str]:
    """The columns two copies of a row are compared on: the data, not the stamps or
    ``_source_row`` (names starting with ``_``)."""
    return [c for c in columns if not str(c).startswith("_")]


def keep_identical(col: str, row_columns: list[str], order_by: str) -> str:
    """``keep: identical`` in SQL (DuckDB and Spark alike, identifiers quoted by the caller):
    every copy fails where the copies of a value differ in some column, and all but the first
    where they are identical (a row sent twice)."""
    same = f"PARTITION BY {', '.join([col, *row_columns])}"
    return (
        f"{col} IS NOT NULL AND (count(*) OVER ({same}) < count(*) OVER (PARTITION BY "
        f"{col}) OR row_number() OVER ({same} ORDER BY {order_by}) > 1)"
    )


def _cast_like(value: Any) -> str:
    return literal(value)
