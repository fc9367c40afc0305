"""Validate one staging table of the lake on Spark (``engine: spark``): the check view, Great
Expectations on Spark DataFrames (its Spark data source), the critical row failures flagged in
Spark SQL over every row, and the results rows of the DuckDB engine (:mod:`cemlib.quality.table`),
so both engines give the same counts."""

from __future__ import annotations

import time
from dataclasses import replace

from cemlib.errors import InputError
from cemlib.quality.results import result_row, result_rows
from cemlib.quality.rowsql import row_columns
from cemlib.quality.sparksql import sliteral, spark_failure_predicate, squote
from cemlib.quality.suites import BOOL_TYPES, DATETIME_TYPES, NUMBER_TYPES, Ref
from cemlib.quality.table import (
    ROW_DEFECT,
    ROW_DEFECT_CHECK,
    SEP,
    TableOutcome,
    _applicable,
    _Context,
    _extra_columns,
    check_view_select,
    gx_parts,
    validate_frame,
)

#: the type lists of the suites as Great Expectations' Spark engine names them
SPARK_TYPES = {
    tuple(DATETIME_TYPES): ["TimestampType", "TimestampNTZType", "DateType"],
    tuple(NUMBER_TYPES): [
        "DoubleType", "FloatType", "LongType", "IntegerType", "ShortType", "ByteType",
        "DecimalType",
    ],
    tuple(BOOL_TYPES): ["BooleanType"],
}  # fmt: skip


def validate_spark_table(spark, lake, ctx, suite, params, run_id, checked_at, gx_max_rows):
    """Validate ``staging.<suite.table>`` of ``lake``: its outcome, its results rows and the
    Spark DataFrame of its quarantined rows (``_source_row, expectation, reason``)."""
    table = suite.table
    staging = lake.temp_view(spark, "staging", table)
    staging_cols = spark.table(staging).columns
    if ROW_DEFECT in staging_cols:  # lines collection could not read whole: quarantined
        suite = replace(suite, checks=[*suite.checks, ROW_DEFECT_CHECK])
    raw = lake.temp_view(spark, "raw", table)
    raw_cols = set(spark.table(raw).columns) if raw else set()
    if "_source_row" not in staging_cols:
        raise InputError(
            "no _source_row column: staging tables are written by cemlib.collect, which "
            "numbers the rows of each file",
            source=f"{lake.table_path('staging', table)}",
            column="_source_row",
        )
    rows_in = spark.table(staging).count()
    tc = _Context(lake, suite, params, staging_cols, raw_cols, rows_in)
    outcome = TableOutcome(table=table, rows_in=rows_in)
    outcome.extra_columns = _extra_columns(tc)
    for c in outcome.extra_columns:
        outcome.warnings.append(f"{table}: unknown column {c!r} kept as is")

    resolved = [(check, check.resolved_kwargs(params, table)) for check in suite.checks]
    view, ref_cols = _check_view(spark, lake, tc, resolved, staging, raw)
    view_cols = set(spark.table(view).columns)
    applicable, skipped = _applicable(tc, resolved, view_cols)
    for c in suite.required_columns:
        if c not in view_cols:
            outcome.failures.append(
                f"table {table}: required column {c!r} is missing "
                f"(check expect_column_to_exist, observed columns: {sorted(view_cols - {'_source_row'})})"
            )
    sampled = gx_max_rows is not None and rows_in > gx_max_rows
    t_gx = time.perf_counter()
    outcome.gx_result = _great_expectations(
        spark, ctx, tc, view, view_cols, applicable, ref_cols, gx_max_rows if sampled else None
    )
    outcome.seconds["great_expectations"] = time.perf_counter() - t_gx
    outcome.gx_rows = min(rows_in, gx_max_rows) if sampled else rows_in
    t_sql = time.perf_counter()
    flags, sql_counts = _spark_flags(spark, tc, view, applicable, ref_cols, outcome)
    outcome.seconds["sql_flags"] = time.perf_counter() - t_sql
    rows = result_rows(tc, outcome, applicable, sql_counts, sampled, run_id, checked_at)
    rows += [
        result_row(run_id, params.as_of, table, check, "row" if check.row_level else "table",
                   None, {}, f"skipped: {why}", checked_at, rows_in)
        for check, why in skipped
    ]  # fmt: skip
    # the cause first (see cemlib.quality.table)
    outcome.failures[:0] = _wrong_type_columns(spark, table, staging, raw, staging_cols)
    spark.table(view).unpersist()  # the flags stay cached for the routing
    return outcome, rows, flags


def _check_view(spark, lake, tc: _Context, resolved, staging: str, raw: str | None):
    """The Spark view the checks see: staging, the raw text (``X__raw``) of the columns the
    checks name, and ``X__in_<parent>`` for each cross-table check (NULL for an orphan)."""
    view = f"_cemq_view_{tc.table}"
    select, joins, ref_cols = check_view_select(
        tc, resolved, quote=squote, text="STRING", raw=raw,
        parent=lambda t: lake.temp_view(spark, "staging", t),
    )  # fmt: skip
    # cached: Great Expectations computes each metric as a Spark job over this view
    frame = spark.sql(f"SELECT {select} FROM {staging} s {' '.join(joins)}").cache()
    frame.createOrReplaceTempView(view)
    return view, ref_cols


def _great_expectations(spark, ctx, tc, view, view_cols, applicable, ref_cols, sample):
    """Great Expectations' results on Spark DataFrames (table-level, then row-level suite)."""
    as_of_end, table_part, row_part = gx_parts(tc, applicable, ref_cols)
    t = tc.table
    results = [
        run_gx_spark(spark, ctx, f"{t}.table_checks", view, view_cols, table_part, as_of_end, None),
        run_gx_spark(spark, ctx, f"{t}.row_checks", view, view_cols, row_part, as_of_end, sample),
    ]
    return [r for r in results if r is not None]


def run_gx_spark(spark, ctx, name, view, view_cols, part, as_of_end, sample):
    """Validate the expectations of ``part`` with Great Expectations' Spark data source."""
    if not part:
        return None
    cols = sorted({c for _, (g, _) in part for c in g.columns() if c in view_cols})
    query = f"SELECT {', '.join(squote(c) for c in cols) or '1 AS _none'} FROM {view}"
    if sample:  # reproducible, but not the DuckDB engine's sample (another hash)
        query += f" ORDER BY xxhash64(_source_row) LIMIT {int(sample)}"
    frame = spark.sql(query)
    return validate_frame(ctx, name, part, as_of_end, frame, ctx.data_sources.add_spark,
                          _spark_types)  # fmt: skip


def _spark_types(gx_kwargs: dict) -> dict:
    """An expectation's keyword arguments with a ``type_list`` in Spark's type names."""
    if "type_list" in gx_kwargs:
        types = gx_kwargs["type_list"]
        gx_kwargs["type_list"] = SPARK_TYPES.get(tuple(types), list(types))
    return gx_kwargs


def _spark_flags(spark, tc: _Context, view: str, applicable, ref_cols, outcome=None):
    """Row-level failure flags in Spark SQL over all rows: the DataFrame of the rows failing a
    critical check (every failed check's name and reason joined by ``"; "``) and the exact
    count of failing rows per row-level check. The rows failing a ``blank:`` check go to
    ``outcome.blank_table`` (a DataFrame: ``_source_row`` and ``__blank_<column>`` flags)."""
    row_checks = [(i, ch, kw) for i, (ch, kw) in enumerate(applicable) if ch.row_level]
    crit = [(i, ch) for i, ch, _ in row_checks if ch.severity == "critical"]

    def ref_of(ch, kw):
        ref = kw.get("value_set")
        return ref_cols.get((ch.column, ref)) if isinstance(ref, Ref) else None

    same = row_columns(tc.staging_cols)
    unread = ROW_DEFECT in tc.staging_cols  # a line collection could not read: its own check
    flag_exprs = [
        (
            f"({squote(ROW_DEFECT)} IS NULL AND {pred}) AS f{i}"
            if unread and ch is not ROW_DEFECT_CHECK
            else f"{pred} AS f{i}"
        )
        for i, ch, kw in row_checks
        for pred in [spark_failure_predicate(ch, kw, ref_of(ch, kw), same)]
    ]
    any_flag = " OR ".join(f"f{i}" for i, _, _ in row_checks) or "FALSE"
    all_flags = spark.sql(
        f"SELECT * FROM (SELECT {', '.join(['_source_row', *flag_exprs])} FROM {view}) "
        f"WHERE {any_flag}"
    ).cache()
    all_flags.createOrReplaceTempView(f"_cemq_allflags_{tc.table}")

    def joined(attr: str) -> str:
        parts = ", ".join(
            f"CASE WHEN f{i} THEN {sliteral(getattr(ch, attr))} END" for i, ch in crit
        )
        return f"concat_ws({sliteral(SEP)}, {parts})"

    where = " OR ".join(f"f{i}" for i, _ in crit) or "FALSE"
    expectation = joined("name") if crit else "''"
    reason = joined("reason") if crit else "''"
    flags = spark.sql(
        f"SELECT _source_row, {expectation} AS expectation, {reason} AS reason "
        f"FROM _cemq_allflags_{tc.table} WHERE {where}"
    )
    by_col: dict[str, list[int]] = {}
    for i, ch, _kw in row_checks:
        for col in ch.blank:
            if col in tc.staging_cols:
                by_col.setdefault(col, []).append(i)
    if outcome is not None and by_col:
        sel = ", ".join(
            f"({' OR '.join(f'f{i}' for i in idx)}) AS {squote('__blank_' + c)}"
            for c, idx in by_col.items()
        )
        anyf = " OR ".join(sorted({f"f{i}" for idx in by_col.values() for i in idx}))
        outcome.blank_table = spark.sql(
            f"SELECT _source_row, {sel} FROM _cemq_allflags_{tc.table} WHERE {anyf}"
        )
        outcome.blank_columns = list(by_col)
    sql_counts = {}
    if row_checks:
        sums = ", ".join(f"count(1) FILTER (WHERE f{i})" for i, _, _ in row_checks)
        got = spark.sql(f"SELECT {sums} FROM _cemq_allflags_{tc.table}").collect()[0]
        sql_counts = {i: int(v) for (i, _, _), v in zip(row_checks, got, strict=True)}
    return flags, sql_counts


def _wrong_type_columns(spark, table, staging, raw, staging_cols) -> list[str]:
    """Critical messages for typed columns none of whose non-empty raw values could be read
    (as :func:`cemlib.quality.table._wrong_type_columns`)."""
    from cemlib.schema import TABLES, TEXT

    spec = TABLES.get(table)
    if spec is None or raw is None:
        return []
    raw_cols = set(spark.table(raw).columns)
    out = []
    for col, kind in spec.kinds.items():
        if kind == TEXT or col not in raw_cols or col not in staging_cols:
            continue
        q = squote(col)
        n_text, example = spark.sql(
            f"SELECT count(1), first({q}) FROM {raw} WHERE nullif(trim({q}), '') IS NOT NULL"
        ).collect()[0]
        if not n_text:
            continue
        n_typed = spark.sql(f"SELECT count({q}) FROM {staging}").collect()[0][0]
        if n_typed == 0:
            out.append(
                f"table {table}: column {col!r}: none of its {n_text:,} values can be read as "
                f"{kind} (e.g. {example!r}): the whole column is of the wrong type"
            )
    return out
