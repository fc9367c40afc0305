"""Validate one staging table: the view the checks see, the checks that apply this run, Great
Expectations over the columns they name, the critical row failures flagged in SQL over every
row, and one results row per expectation.

:class:`~cemlib.quality.stage.QualityStage` calls :func:`validate_table` for each table and
routes the flagged rows to quarantine.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from cemlib.errors import InputError
from cemlib.quality.context import gx
from cemlib.quality.results import result_row, result_rows
from cemlib.quality.rowsql import failure_predicate, quote, row_columns
from cemlib.quality.suites import Check, Ref, RunParams, Suite
from cemlib.warehouse import STAMP_COLUMNS, Warehouse, table_columns

SEP = "; "
#: the column collection fills for a row it could not read whole (a line with more fields
#: than the header, :mod:`cemlib.collect.loaders`), and the check that quarantines it
ROW_DEFECT = "_row_defect"
ROW_DEFECT_CHECK = Check(
    type="expect_column_values_to_be_null",
    kwargs={"column": ROW_DEFECT},
    severity="critical",
    reason="line not read: more fields than the header (the line's text, number and field "
    "count are in _raw_line, _line and _row_defect)",
)


@dataclass
class TableOutcome:
    """What happened to one table."""

    table: str
    rows_in: int
    rows_clean: int = 0
    rows_quarantined: int = 0
    gx_result: Any = None  # great_expectations ExpectationSuiteValidationResult
    failures: list[str] = field(default_factory=list)  # critical table-level messages
    warnings: list[str] = field(default_factory=list)
    extra_columns: list[str] = field(default_factory=list)
    gx_rows: int = 0  # rows Great Expectations saw for the row-level checks
    #: the temporary table of rows whose invalid identifiers are emptied in clean
    #: (``_source_row`` and one boolean per column of :attr:`blank_columns`), or None
    blank_table: str | None = None
    blank_columns: list[str] = field(default_factory=list)
    #: per column: values emptied in clean (rows kept)
    blanked: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # time spent in GE / SQL


@dataclass
class _Context:
    """What the phases of one table's validation share."""

    wh: Warehouse
    suite: Suite
    params: RunParams
    staging_cols: list[str]
    raw_cols: set[str]
    rows_in: int

    @property
    def table(self) -> str:
        return self.suite.table


def validate_table(
    wh: Warehouse,
    ctx: Any,
    suite: Suite,
    params: RunParams,
    run_id: str,
    checked_at: dt.datetime,
    gx_max_rows: int | None,
) -> tuple[TableOutcome, list[dict], str]:
    """Validate ``staging.<suite.table>``: its outcome, its results rows and the name of the
    temporary table of its quarantined rows (``_source_row, expectation, reason``)."""
    outcome, flag_table, finish = start_table(
        wh, ctx, suite, params, run_id, checked_at, gx_max_rows
    )
    return outcome, finish(), flag_table


def start_table(
    wh: Warehouse,
    ctx: Any,
    suite: Suite,
    params: RunParams,
    run_id: str,
    checked_at: dt.datetime,
    gx_max_rows: int | None,
    gx_runner: Any = None,
) -> tuple[TableOutcome, str, Callable[[], list[dict]]]:
    """:func:`validate_table` with Great Expectations' validations handed to ``gx_runner``
    (:class:`cemlib.quality.workers.GXRunner`; default: run here, now) while the SQL flags are
    computed: the outcome, the flag table, and a function that waits for Great Expectations'
    results and returns the results rows."""
    table = suite.table
    staging_cols = _columns(wh, "staging", table)
    if ROW_DEFECT in staging_cols:  # rows collection could not read whole: quarantined
        suite = replace(suite, checks=[*suite.checks, ROW_DEFECT_CHECK])
    raw_cols = set(_columns(wh, "raw", table)) if wh.has_table("raw", table) else set()
    if "_source_row" not in staging_cols:
        raise InputError(
            "no _source_row column: staging tables are written by cemlib.collect, which "
            "numbers the rows of each file",
            source=f"staging.{table}",
            column="_source_row",
        )
    rows_in = wh.con.execute(f"SELECT count(*) FROM staging.{quote(table)}").fetchone()[0]
    tc = _Context(wh, suite, params, staging_cols, raw_cols, rows_in)
    outcome = TableOutcome(table=table, rows_in=rows_in)
    outcome.extra_columns = _extra_columns(tc)
    for c in outcome.extra_columns:
        outcome.warnings.append(f"{table}: unknown column {c!r} kept as is")

    resolved = [(check, check.resolved_kwargs(params, table)) for check in suite.checks]
    view, ref_cols = _check_view(tc, resolved)
    view_cols = set(_columns_of_relation(wh.con, view))
    applicable, skipped = _applicable(tc, resolved, view_cols)
    for c in suite.required_columns:
        if c not in view_cols:
            outcome.failures.append(
                f"table {table}: required column {c!r} is missing "
                f"(check expect_column_to_exist, observed columns: {sorted(view_cols - {'_source_row'})})"
            )

    sampled = gx_max_rows is not None and rows_in > gx_max_rows
    t_gx = time.perf_counter()
    gx_jobs = _great_expectations(
        ctx, tc, view, view_cols, applicable, ref_cols, gx_max_rows if sampled else None,
        gx_runner or _INLINE,
    )  # fmt: skip
    outcome.seconds["great_expectations"] = time.perf_counter() - t_gx
    outcome.gx_rows = min(rows_in, gx_max_rows) if sampled else rows_in
    t_sql = time.perf_counter()
    flag_table, sql_counts = _sql_flags(tc, view, applicable, outcome)
    outcome.seconds["sql_flags"] = time.perf_counter() - t_sql
    wrong_type = _wrong_type_columns(wh, table, staging_cols, raw_cols)
    wh.con.execute(f"DROP VIEW IF EXISTS {view}")

    def finish() -> list[dict]:
        t_wait = time.perf_counter()
        outcome.gx_result = [job.get() for job in gx_jobs]
        outcome.seconds["great_expectations"] += time.perf_counter() - t_wait
        return _rows(tc, outcome, applicable, skipped, sql_counts, sampled, run_id, checked_at,
                     wrong_type)  # fmt: skip

    return outcome, flag_table, finish


def _rows(tc, outcome, applicable, skipped, sql_counts, sampled, run_id, checked_at, wrong_type):
    """The results rows of one table (and its failure and warning messages)."""
    table, params, rows_in = tc.table, tc.params, tc.rows_in
    rows = result_rows(tc, outcome, applicable, sql_counts, sampled, run_id, checked_at)
    rows += [
        result_row(
            run_id,
            params.as_of,
            table,
            check,
            "row" if check.row_level else "table",
            None,
            {},
            f"skipped: {why}",
            checked_at,
            rows_in,
        )
        for check, why in skipped
    ]
    # the cause first: a column of the wrong type, then what follows from it (a freshness
    # check on that column observes no date)
    outcome.failures[:0] = wrong_type
    return rows


def _extra_columns(tc: _Context) -> list[str]:
    """Columns of the file that no check names and the table contract does not know."""
    known = (
        tc.suite.referenced_columns()
        | set(_canonical_columns(tc.table))
        | {f"{c}__raw" for c in tc.staging_cols}
        | set(STAMP_COLUMNS)
    )
    extra = [
        c
        for c in tc.staging_cols
        if c not in known and not c.startswith("_") and not _derived(c)  # _: cemlib's own
    ]
    if extra and tc.raw_cols:
        # columns that came from the file (in raw), not ones collection derived
        extra = [c for c in extra if c in tc.raw_cols]
    if extra:  # a column the mapping read (``{is_return: [Возврат]}``) is not unknown
        used = mapped_columns(tc.wh, tc.table)
        extra = [c for c in extra if c not in used]
    return extra


def mapped_columns(wh: Any, table: str) -> set[str]:
    """The columns of ``table``'s file that the collection's mapping read to fill a canonical
    column (``meta.mapped_columns``, written by :mod:`cemlib.collect` and copied to a lake by
    stage 00 with ``engine: spark``); empty when the store has none (collected before the
    table existed)."""
    if not hasattr(wh, "has_table") or not wh.has_table("meta", "mapped_columns"):
        return set()
    rows = wh.con.execute(
        'SELECT "column" FROM meta.mapped_columns WHERE "table" = ?', [table]
    ).fetchall()
    return {r[0] for r in rows}


def _check_view(tc: _Context, resolved: list[tuple[Check, dict | None]]) -> tuple[str, dict]:
    """The temporary view the checks see, and the columns standing for cross-table checks.

    Staging plus the raw text (``X__raw``) of the columns the checks name; a cross-table check's
    parent keys are joined in SQL (a column ``X__in_<parent>`` that is NULL for an orphan), so
    Great Expectations checks a not-null column instead of carrying millions of parent ids in an
    expectation's value_set."""
    wh, table = tc.wh, tc.table
    view = f"_cemq_view_{table}"
    select, joins, ref_cols = check_view_select(
        tc, resolved, quote=quote, text="VARCHAR",
        raw=f"raw.{quote(table)}" if tc.raw_cols else None,
        parent=lambda t: f"staging.{quote(t)}" if wh.has_table("staging", t) else None,
    )  # fmt: skip
    wh.con.execute(
        f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT {select} "
        f"FROM staging.{quote(table)} s {' '.join(joins)}"
    )
    return view, ref_cols


def check_view_select(tc: _Context, resolved, *, quote, text: str, raw: str | None, parent):
    """``(select list, joins, {(column, Ref): joined column})`` of the check view, in the SQL
    dialect of ``quote`` (identifiers) and ``text`` (the text type), for either engine: the
    staging columns (alias ``s``), the raw text of the ``X__raw`` columns the checks name from
    the relation ``raw`` (alias ``r``; ``None``: the typed value as text) and, per cross-table
    check, its parent's keys from ``parent(table)`` (``None``: the parent is absent)."""
    staging_cols = tc.staging_cols
    raw_needed = sorted(
        c[: -len("__raw")]
        for c in tc.suite.referenced_columns()
        if c.endswith("__raw") and c[: -len("__raw")] in staging_cols
    )
    raw_select = [
        f"NULLIF(trim(CAST(r.{quote(c)} AS {text})), '') AS {quote(c + '__raw')}"
        if c in tc.raw_cols
        else f"CAST(s.{quote(c)} AS {text}) AS {quote(c + '__raw')}"
        for c in raw_needed
    ]
    joins = [f"LEFT JOIN {raw} r ON r._source_row = s._source_row"] if raw_needed and raw else []
    ref_cols: dict[tuple[str, Ref], str] = {}
    ref_select = []
    for _check, kwargs in resolved:
        ref = (kwargs or {}).get("value_set")
        col = (kwargs or {}).get("column")
        if not isinstance(ref, Ref) or col not in staging_cols or (col, ref) in ref_cols:
            continue
        relation = parent(ref.table)
        if relation is None:
            continue
        alias = f"p{len(ref_cols)}"
        name = f"{col}__in_{ref.table}"
        ref_cols[(col, ref)] = name
        joins.append(
            f"LEFT JOIN (SELECT DISTINCT CAST({quote(ref.column)} AS {text}) AS k "
            f"FROM {relation} WHERE {quote(ref.column)} IS NOT NULL) {alias} "
            f"ON CAST(s.{quote(col)} AS {text}) = {alias}.k"
        )
        ref_select.append(f"{alias}.k AS {quote(name)}")
    keep = [c for c in staging_cols if c not in STAMP_COLUMNS and c != "_source_row"]
    select = ", ".join(
        ["s._source_row AS _source_row", *[f"s.{quote(c)}" for c in keep], *raw_select] + ref_select
    )
    return select, joins, ref_cols


def _applicable(
    tc: _Context, resolved: list[tuple[Check, dict | None]], view_cols: set[str]
) -> tuple[list[tuple[Check, dict]], list[tuple[Check, str]]]:
    """The checks that apply this run, and the skipped ones with why."""
    applicable: list[tuple[Check, dict]] = []
    skipped: list[tuple[Check, str]] = []
    for check, kwargs in resolved:
        if kwargs is None:
            skipped.append((check, "no previous run to compare with"))
            continue
        missing = [c for c in check.columns() if c not in view_cols]
        if missing and check.type != "expect_column_to_exist":
            skipped.append((check, f"column {missing[0]!r} absent"))
            continue
        if isinstance(kwargs.get("value_set"), Ref) and not tc.wh.has_table(
            "staging", kwargs["value_set"].table
        ):
            skipped.append((check, f"parent table {kwargs['value_set'].table} absent"))
            continue
        applicable.append((check, kwargs))
    return applicable, skipped


def gx_parts(tc: _Context, applicable, ref_cols):
    """``(as_of_end, table-level part, row-level part)`` of the checks Great Expectations runs:
    each ``(index, (the check as GE runs it, (check, kwargs)))``, a membership in another
    table's values run as a not-null check of the joined reference column (either engine)."""
    gx_checks: list[Check] = []
    for check, kwargs in applicable:
        ref = kwargs.get("value_set")
        if isinstance(ref, Ref):
            check = replace(
                check,
                type="expect_column_values_to_not_be_null",
                kwargs={"column": ref_cols[(check.column, ref)]},
                when_not_null=check.column,
            )
        gx_checks.append(check)
    as_of_end = tc.params.resolve("as_of_end", tc.table)
    indexed = list(enumerate(zip(gx_checks, applicable, strict=True)))
    table_part = [x for x in indexed if not x[1][1][0].row_level]
    row_part = [x for x in indexed if x[1][1][0].row_level]
    return as_of_end, table_part, row_part


def _great_expectations(ctx, tc: _Context, view, view_cols, applicable, ref_cols, sample, runner):
    """Great Expectations' validations (table-level, then row-level suite), as jobs of
    ``runner`` whose ``get()`` gives the results.

    Table-level expectations see every row (only the columns they name); row-level ones see
    every row up to ``gx_max_rows``, above that a reproducible ``sample`` (the routing and the
    exact counts come from the SQL flags, over all rows)."""
    as_of_end, table_part, row_part = gx_parts(tc, applicable, ref_cols)
    con, table = tc.wh.con, tc.table
    jobs = [
        run_gx(ctx, f"{table}.table_checks", con, view, view_cols, table_part, as_of_end, None,
               runner),
        run_gx(ctx, f"{table}.row_checks", con, view, view_cols, row_part, as_of_end, sample,
               runner),
    ]  # fmt: skip
    return [j for j in jobs if j is not None]


class _Done:
    """A job already done: its result."""

    def __init__(self, result):
        self.result = result

    def get(self):
        return self.result


class _Inline:
    """Great Expectations run here, at once."""

    def validate(self, ctx, name, part, as_of_end, frame) -> _Done:
        return _Done(validate_frame(ctx, name, part, as_of_end, frame, ctx.data_sources.add_pandas))


_INLINE = _Inline()


def run_gx(ctx, name, con, view, view_cols, part, as_of_end, sample, runner=_INLINE):
    """Validate the expectations of ``part`` with Great Expectations on pandas (through
    ``runner``: a job whose ``get()`` gives the result)."""
    if not part:
        return None
    cols = sorted({c for _, (g, _) in part for c in g.columns() if c in view_cols})
    sel = ", ".join(quote(c) for c in cols) or "1 AS _none"
    query = f"SELECT {sel} FROM {view}"
    if sample:
        query += f" ORDER BY hash(_source_row) LIMIT {int(sample)}"
    frame = con.execute(query).df()
    if not cols:
        frame = pd.DataFrame(index=range(len(frame)))
    for c in frame.columns:  # GE's vectorized range checks need nanosecond timestamps
        if pd.api.types.is_datetime64_dtype(frame[c]) and frame[c].dtype != "datetime64[ns]":
            frame[c] = frame[c].astype("datetime64[ns]")
    return runner.validate(ctx, name, part, as_of_end, frame)


def validate_frame(ctx, name, part, as_of_end, frame, add_source, adapt=None):
    """Great Expectations' validation of the expectations of ``part`` on ``frame`` through the
    data source ``add_source(name)`` makes (pandas or Spark); ``adapt`` rewrites an
    expectation's keyword arguments for that source (Spark's type names)."""
    suite_gx = ctx.suites.add(gx_suite(name, part, as_of_end, adapt))
    batch = (
        add_source(name)
        .add_dataframe_asset(name.split(".")[0])
        .add_batch_definition_whole_dataframe("run")
    )
    vd = ctx.validation_definitions.add(
        gx.ValidationDefinition(name=name, data=batch, suite=suite_gx)
    )
    return vd.run(batch_parameters={"dataframe": frame}, result_format="SUMMARY")


def gx_suite(name, part, as_of_end, adapt=None):
    """The Great Expectations suite of the expectations of ``part``."""
    suite_gx = gx.ExpectationSuite(name=name)
    for index, (gx_check, (check, kwargs)) in part:
        gx_kwargs = dict(kwargs) if gx_check is check else dict(gx_check.kwargs)
        if adapt is not None:
            gx_kwargs = adapt(gx_kwargs)
        suite_gx.add_expectation(gx_check.to_gx(gx_kwargs, index, as_of_end))
    return suite_gx


def _sql_flags(
    tc: _Context, view: str, applicable, outcome: TableOutcome | None = None
) -> tuple[str, dict[int, int]]:
    """Row-level failure flags in SQL over all rows: the temporary table of the rows failing a
    critical check (every failed check's name and reason joined by ``"; "``) and the exact
    count of failing rows per row-level check. The rows failing a check with ``blank:`` go to
    ``outcome.blank_table`` (their values of those columns are emptied in clean)."""
    con, table = tc.wh.con, tc.table
    row_checks = [(i, ch, kw) for i, (ch, kw) in enumerate(applicable) if ch.row_level]
    flag_table = f"_cemq_flags_{table}"
    all_flags = f"_cemq_allflags_{table}"
    crit = [(i, ch) for i, ch, _ in row_checks if ch.severity == "critical"]
    rel = f"staging.{quote(table)}"
    same = row_columns(tc.staging_cols)
    # a line collection could not read has empty cells: judged by its own check only
    unread = ROW_DEFECT in tc.staging_cols
    flag_exprs = [
        (
            f"({quote(ROW_DEFECT)} IS NULL AND {pred})"
            if unread and ch is not ROW_DEFECT_CHECK
            else pred
        )
        + f" AS f{i}"
        for i, ch, kw in row_checks
        for pred in [
            failure_predicate(
                ch,
                kw,
                relation=rel
                if all(c in tc.staging_cols for c in kw.get("column_list") or [kw.get("column")])
                else None,
                row_columns=same,
            )
        ]
    ]
    # only rows failing some row-level check are materialized (a few % of the table)
    any_flag = " OR ".join(f"f{i}" for i, _, _ in row_checks) or "FALSE"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {all_flags} AS SELECT * FROM (SELECT "
        + ", ".join(["_source_row", *flag_exprs])
        + f" FROM {view}) WHERE {any_flag}"
    )

    def joined(attr: str) -> str:
        parts = ", ".join(f"CASE WHEN f{i} THEN {_lit(getattr(ch, attr))} END" for i, ch in crit)
        return f"concat_ws('{SEP}', {parts})"

    if crit:
        any_crit = " OR ".join(f"f{i}" for i, _ in crit)
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {flag_table} AS SELECT _source_row, "
            f"{joined('name')} AS expectation, {joined('reason')} AS reason "
            f"FROM {all_flags} WHERE {any_crit}"
        )
    else:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {flag_table} AS SELECT _source_row, "
            f"'' AS expectation, '' AS reason FROM {all_flags} WHERE FALSE"
        )
    _blank_flags(tc, all_flags, row_checks, outcome)
    sql_counts = {}
    if row_checks:
        sums = ", ".join(f"count(*) FILTER (WHERE f{i})" for i, _, _ in row_checks)
        got = con.execute(f"SELECT {sums} FROM {all_flags}").fetchone()
        sql_counts = {i: int(v) for (i, _, _), v in zip(row_checks, got, strict=True)}
    con.execute(f"DROP TABLE IF EXISTS {all_flags}")
    return flag_table, sql_counts


def _blank_flags(tc: _Context, all_flags: str, row_checks, outcome) -> None:
    """The temporary table of rows failing a ``blank:`` check: ``_source_row`` and, per
    column to empty, whether to empty it; the counts per column into ``outcome.blanked``."""
    if outcome is None:
        return
    by_col: dict[str, list[int]] = {}
    for i, ch, _kw in row_checks:
        for col in ch.blank:
            if col in tc.staging_cols:
                by_col.setdefault(col, []).append(i)
    if not by_col:
        return
    name = f"_cemq_blank_{tc.table}"
    cols = list(by_col)
    sel = ", ".join(f"({' OR '.join(f'f{i}' for i in by_col[c])}) AS {quote(c)}" for c in cols)
    anyf = " OR ".join(sorted({f"f{i}" for c in cols for i in by_col[c]}))
    con = tc.wh.con
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT _source_row, {sel} "
        f"FROM {all_flags} WHERE {anyf}"
    )
    counts = con.execute(
        f"SELECT {', '.join(f'count(*) FILTER (WHERE {quote(c)})' for c in cols)} FROM {name}"
    ).fetchone()
    outcome.blank_table, outcome.blank_columns = name, cols
    outcome.blanked = {c: int(n) for c, n in zip(cols, counts, strict=True)}


def _wrong_type_columns(wh: Warehouse, table: str, staging_cols, raw_cols) -> list[str]:
    """Critical table-level messages for typed columns (numbers, dates, flags) of which not a
    single non-empty value could be read: the whole column is of the wrong type (a shifted or
    mislabelled column), which quarantining every row would hide behind a percentage."""
    from cemlib.schema import TABLES, TEXT

    spec = TABLES.get(table)
    if spec is None or not raw_cols:
        return []
    out = []
    for col, kind in spec.kinds.items():
        if kind == TEXT or col not in raw_cols or col not in staging_cols:
            continue
        q = quote(col)
        n_text, example = wh.con.execute(
            f"SELECT count(*), any_value({q}) FROM raw.{quote(table)} "
            f"WHERE nullif(trim({q}), '') IS NOT NULL"
        ).fetchone()
        if not n_text:
            continue
        n_typed = wh.con.execute(f"SELECT count({q}) FROM staging.{quote(table)}").fetchone()[0]
        if n_typed == 0:
            out.append(
                f"table {table}: column {col!r}: none of its {n_text:,} values can be read as "
                f"{kind} (e.g. {example!r}): the whole column is of the wrong type"
            )
    return out


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _canonical_columns(table: str) -> tuple[str, ...]:
    from cemlib.schema import TABLES

    spec = TABLES.get(table)
    return spec.columns if spec else ()


def _derived(col: str) -> bool:
    return col.endswith(("_e164", "_norm", "_key", "_lat")) or col in {
        "first_name",
        "last_name",
        "middle_name",
        "gender_hint",
    }


def _columns(wh: Warehouse, schema: str, table: str) -> list[str]:
    return table_columns(wh.con, schema, table)


def _columns_of_relation(con, name: str) -> list[str]:
    return [d[0] for d in con.execute(f"SELECT * FROM {name} LIMIT 0").description]
