"""The row-level checks of :mod:`cemlib.quality.rowsql` in Spark SQL, for ``engine: spark``.

Same semantics as the DuckDB predicates (missing values are judged only by ``not_be_null``;
``be_unique`` fails every copy of a repeated value unless ``keep: first`` or ``identical``); what differs is the
dialect: backquoted names, ``RLIKE``, string literals with backslashes escaped, windows instead
of ``IN (subquery)`` in a select list, and a parent-key check reading the column the check
view joined (``<column>__in_<parent>``, NULL for an orphan).
"""

from __future__ import annotations

from typing import Any

from cemlib.quality.rowsql import compound_unique, keep_identical, pair_fails
from cemlib.quality.rowsql import literal as duckdb_literal
from cemlib.quality.suites import PAIR, Check, Ref


def squote(name: str) -> str:
    """``name`` as a Spark SQL quoted identifier."""
    return "`" + str(name).replace("`", "``") + "`"


def sliteral(value: Any) -> str:
    """A Spark SQL literal (text with ``\\`` and ``'`` escaped, the parser unescapes them)."""
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return duckdb_literal(value)


def spark_failure_predicate(
    check: Check, kwargs: dict[str, Any], ref_column: str | None,
    row_columns: list[str] | None = None,
) -> str:  # fmt: skip
    """Spark SQL boolean expression, true where the row fails ``check`` (row-level only);
    ``ref_column``: the joined parent-key column of a cross-table check; ``row_columns``: the
    columns that make two copies identical (``keep: identical``)."""
    t = check.type
    if t in ("expect_compound_columns_to_be_unique", PAIR):
        pred = compound_unique(kwargs, squote) if t != PAIR else pair_fails(kwargs, squote)
        if check.when_not_null:
            pred = f"{squote(check.when_not_null)} IS NOT NULL AND ({pred})"
        if check.when_null:
            pred = f"{squote(check.when_null)} IS NULL AND ({pred})"
        return f"coalesce(({pred}), FALSE)"
    col = squote(kwargs["column"])
    if t == "expect_column_values_to_not_be_null":
        pred = f"{col} IS NULL"
    elif t == "expect_column_values_to_be_null":
        pred = f"{col} IS NOT NULL"
    elif t == "expect_column_values_to_be_unique" and check.keep == "identical":
        pred = keep_identical(col, [squote(c) for c in row_columns or []], "`_source_row`")
    elif t == "expect_column_values_to_be_unique":
        if check.keep == "first":
            pred = (
                f"{col} IS NOT NULL AND row_number() OVER "
                f"(PARTITION BY {col} ORDER BY `_source_row`) > 1"
            )
        else:
            pred = f"{col} IS NOT NULL AND count(1) OVER (PARTITION BY {col}) > 1"
    elif t == "expect_column_values_to_match_regex":
        pred = (
            f"{col} IS NOT NULL AND NOT (CAST({col} AS STRING) RLIKE {sliteral(kwargs['regex'])})"
        )
    elif t == "expect_column_values_to_be_between":
        parts = []
        lo, hi = kwargs.get("min_value"), kwargs.get("max_value")
        if lo is not None:
            parts.append(f"{col} {'<=' if kwargs.get('strict_min') else '<'} {sliteral(lo)}")
        if hi is not None:
            parts.append(f"{col} {'>=' if kwargs.get('strict_max') else '>'} {sliteral(hi)}")
        pred = f"{col} IS NOT NULL AND ({' OR '.join(parts) or 'FALSE'})"
    elif t == "expect_column_values_to_be_in_set":
        values = kwargs["value_set"]
        if isinstance(values, Ref):
            pred = f"{col} IS NOT NULL AND {squote(ref_column)} IS NULL"
        else:
            members = ", ".join(sliteral(v) for v in values)
            pred = f"{col} IS NOT NULL AND {col} NOT IN ({members})"
    else:  # pragma: no cover - guarded by suites.ROW_LEVEL
        raise ValueError(f"not a row-level expectation: {t}")
    if check.when_not_null:
        pred = f"{squote(check.when_not_null)} IS NOT NULL AND ({pred})"
    if check.when_null:
        pred = f"{squote(check.when_null)} IS NULL AND ({pred})"
    return f"coalesce(({pred}), FALSE)"
