"""Stage 1: validate ``staging.*`` with the suites, route rows to ``clean.*`` / ``quarantine.*``.

Great Expectations validates every table (table-level and row-level expectations, results kept in
``quality.results``); the rows failing a critical row-level expectation are found with the same
checks compiled to DuckDB SQL (:mod:`cemlib.quality.rowsql`) so the routing runs inside the
warehouse at any scale. A row failing several critical checks is quarantined once, with every
failed expectation and reason joined by ``"; "``; rows in = clean + quarantined is verified for
every table before anything is committed, and everything is written in one transaction.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cemlib.errors import InputError, StageFailure
from cemlib.progress import progress
from cemlib.quality.context import gx, offline_context
from cemlib.quality.rowsql import failure_predicate, quote
from cemlib.quality.suites import Check, Ref, RunParams, Suite, load_suites
from cemlib.warehouse import STAMP_COLUMNS, Warehouse

RESULT_COLUMNS = [
    "run_id",
    "as_of",
    "table",
    "expectation",
    "expectation_type",
    "column",
    "severity",
    "level",
    "reason",
    "success",
    "unexpected_count",
    "element_count",
    "unexpected_percent",
    "observed",
    "rows_quarantined",
    "gx_rows",
    "checked_at",
]
SEP = "; "


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
    seconds: dict[str, float] = field(default_factory=dict)  # time spent in GE / SQL


@dataclass
class QualityReport:
    """Everything the notebook and ``cem validate`` show about one run of the stage."""

    run_id: str
    as_of: str
    results: pd.DataFrame
    conservation: pd.DataFrame
    quarantine_by_reason: pd.DataFrame
    outcomes: dict[str, TableOutcome]
    previous_run_id: str | None = None
    #: the in-memory Great Expectations context holding this run's validation results
    gx_context: Any = None
    write_seconds: float = 0.0

    def write_data_docs(self, out_dir: str | Path) -> Path:
        """Great Expectations' Data Docs of this run (masked) into ``out_dir``; the index path."""
        from cemlib.quality.datadocs import write_data_docs

        return write_data_docs(self.gx_context, out_dir)

    @property
    def warnings(self) -> list[str]:
        return [w for o in self.outcomes.values() for w in o.warnings]

    @property
    def gx_results(self) -> dict[str, Any]:
        return {t: o.gx_result for t, o in self.outcomes.items() if o.gx_result}


class QualityStage:
    """Run the expectation suites on the warehouse's staging tables.

    Parameters: ``suites_dir`` (default ``expectations/``), ``start`` (the day the business began:
    earlier timestamps are defects), ``freshness_days`` (the newest row must be at most this old
    at ``as_of``), ``volume_band`` (relative band around the previous run's row count),
    ``gx_max_rows`` (row-level expectations run in Great Expectations on at most this many rows
    per table, a reproducible sample above it; ``None`` = all rows; quarantine routing and the
    recorded counts are exact over all rows either way).
    """

    def __init__(
        self,
        suites_dir: str | Path | None = None,
        *,
        start: str = "2022-01-01",
        freshness_days: int = 30,
        volume_band: float = 0.5,
        tables: list[str] | None = None,
        gx_max_rows: int | None = 200_000,
        progress: bool = True,
    ):
        self.suites_dir = suites_dir
        self.start = start
        self.freshness_days = freshness_days
        self.volume_band = volume_band
        self.tables = tables
        self.gx_max_rows = gx_max_rows
        self.progress = progress

    # ------------------------------------------------------------------------------------------
    def run(self, wh: Warehouse, *, run_id: str, as_of: str | dt.date) -> QualityReport:
        """Validate, then write ``clean.*``, ``quarantine.*`` and ``quality.results`` atomically.

        Raises :class:`StageFailure` (and writes nothing) on a critical table-level failure.
        """
        from cemlib.budget import configure_warehouse

        configure_warehouse(wh)  # DuckDB spills past its share of the stage's memory budget
        as_of = str(pd.Timestamp(as_of).date())
        suites = load_suites(self.suites_dir)
        wanted = self.tables or list(suites)
        present = [t for t in wanted if t in suites and wh.has_table("staging", t)]
        if not present:
            raise StageFailure(
                f"quality: no staging table to validate (expected some of {sorted(wanted)}); "
                "run the collection stage first"
            )
        history = _read_history(wh)
        previous_run_id, previous_counts = _previous_counts(history, run_id)
        params = RunParams(
            as_of=as_of,
            start=self.start,
            freshness_days=self.freshness_days,
            volume_band=self.volume_band,
            previous_counts=previous_counts,
        )
        ctx = offline_context()
        checked_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        rows: list[dict] = []
        outcomes: dict[str, TableOutcome] = {}
        flags: dict[str, str] = {}
        try:
            for table in progress(present, desc="quality", disable=not self.progress):
                suite = suites[table]
                outcome, table_rows, flag_table = self._validate_table(
                    wh, ctx, suite, params, run_id, checked_at
                )
                outcomes[table] = outcome
                rows.extend(table_rows)
                flags[table] = flag_table
            failures = [f for o in outcomes.values() for f in o.failures]
            if failures:
                raise StageFailure(
                    "quality: critical table-level check failed, nothing was written:\n  "
                    + "\n  ".join(failures)
                )
            results = pd.DataFrame(rows).reindex(columns=[*RESULT_COLUMNS, "sql_unexpected_count"])
            absent = [t for t in suites if not wh.has_table("staging", t)]
            t_write = time.perf_counter()
            conservation = self._write(wh, outcomes, flags, results, history, run_id, as_of, absent)
        finally:
            for name in flags.values():
                wh.con.execute(f"DROP TABLE IF EXISTS {name}")
        write_seconds = time.perf_counter() - t_write
        quarantine_by_reason = _quarantine_by_reason(results)
        return QualityReport(
            run_id=run_id,
            as_of=as_of,
            results=results,
            conservation=conservation,
            quarantine_by_reason=quarantine_by_reason,
            outcomes=outcomes,
            previous_run_id=previous_run_id,
            gx_context=ctx,
            write_seconds=write_seconds,
        )

    # ------------------------------------------------------------------------------------------
    def _validate_table(self, wh, ctx, suite: Suite, params: RunParams, run_id, checked_at):
        con = wh.con
        table = suite.table
        staging_cols = _columns(wh, "staging", table)
        raw_cols = set(_columns(wh, "raw", table)) if wh.has_table("raw", table) else set()
        if "_source_row" not in staging_cols:
            raise InputError(
                "no _source_row column: staging tables are written by cemlib.collect, which "
                "numbers the rows of each file",
                source=f"staging.{table}",
                column="_source_row",
            )
        rows_in = con.execute(f"SELECT count(*) FROM staging.{quote(table)}").fetchone()[0]
        outcome = TableOutcome(table=table, rows_in=rows_in)
        known = (
            suite.referenced_columns()
            | set(_canonical_columns(table))
            | {f"{c}__raw" for c in staging_cols}
            | set(STAMP_COLUMNS)
        )
        outcome.extra_columns = [
            c for c in staging_cols if c not in known and c != "_source_row" and not _derived(c)
        ]
        if outcome.extra_columns and raw_cols:
            # columns that came from the file (in raw), not ones collection derived
            outcome.extra_columns = [c for c in outcome.extra_columns if c in raw_cols]
        for c in outcome.extra_columns:
            outcome.warnings.append(f"{table}: unknown column {c!r} kept as is")

        # The view the checks see: staging plus the raw text (X__raw) of the columns they name.
        view = f"_cemq_view_{table}"
        raw_needed = sorted(
            c[: -len("__raw")]
            for c in suite.referenced_columns()
            if c.endswith("__raw") and c[: -len("__raw")] in staging_cols
        )
        has_source_row = "_source_row" in staging_cols
        src_row = "s._source_row" if has_source_row else "row_number() OVER () - 1"
        raw_select = []
        for c in raw_needed:
            if c in raw_cols and has_source_row:
                raw_select.append(
                    f"NULLIF(trim(CAST(r.{quote(c)} AS VARCHAR)), '') AS {quote(c + '__raw')}"
                )
            else:
                raw_select.append(f"CAST(s.{quote(c)} AS VARCHAR) AS {quote(c + '__raw')}")
        joins = (
            [f"LEFT JOIN raw.{quote(table)} r ON r._source_row = s._source_row"]
            if raw_needed and raw_cols and has_source_row
            else []
        )
        # Cross-table checks: the parent's keys are joined in SQL (a column X__in_<parent> that
        # is NULL for an orphan), so Great Expectations checks a not-null column instead of
        # carrying millions of parent ids in an expectation's value_set.
        resolved = [(check, check.resolved_kwargs(params, table)) for check in suite.checks]
        ref_cols: dict[tuple[str, Ref], str] = {}
        ref_select = []
        for _check, kwargs in resolved:
            ref = (kwargs or {}).get("value_set")
            col = (kwargs or {}).get("column")
            if not isinstance(ref, Ref) or col not in staging_cols or (col, ref) in ref_cols:
                continue
            if not wh.has_table("staging", ref.table):
                continue
            alias = f"p{len(ref_cols)}"
            name = f"{col}__in_{ref.table}"
            ref_cols[(col, ref)] = name
            joins.append(
                f"LEFT JOIN (SELECT DISTINCT CAST({quote(ref.column)} AS VARCHAR) AS k "
                f"FROM staging.{quote(ref.table)} WHERE {quote(ref.column)} IS NOT NULL) {alias} "
                f"ON CAST(s.{quote(col)} AS VARCHAR) = {alias}.k"
            )
            ref_select.append(f"{alias}.k AS {quote(name)}")
        keep = [c for c in staging_cols if c not in STAMP_COLUMNS and c != "_source_row"]
        select = ", ".join(
            [
                f"{src_row} AS _source_row",
                *[f"s.{quote(c)}" for c in keep],
                *raw_select,
                *ref_select,
            ]
        )
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT {select} "
            f"FROM staging.{quote(table)} s {' '.join(joins)}"
        )
        view_cols = set(_columns_of_relation(con, view))

        # Resolve and build the expectations that apply this run.
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
            if isinstance(kwargs.get("value_set"), Ref) and not wh.has_table(
                "staging", kwargs["value_set"].table
            ):
                skipped.append((check, f"parent table {kwargs['value_set'].table} absent"))
                continue
            applicable.append((check, kwargs))
        for c in suite.required_columns:
            if c not in view_cols:
                outcome.failures.append(
                    f"table {table}: required column {c!r} is missing "
                    f"(check expect_column_to_exist, observed columns: {sorted(view_cols - {'_source_row'})})"
                )

        # Great Expectations on the columns the checks name.
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
        as_of_end = params.resolve("as_of_end", table)
        indexed = list(enumerate(zip(gx_checks, applicable, strict=True)))
        # Table-level expectations see every row (only the columns they name); row-level ones
        # see every row up to ``gx_max_rows``, above that a reproducible sample (the routing and
        # the exact counts come from the SQL flags below, over all rows).
        table_part = [x for x in indexed if not x[1][1][0].row_level]
        row_part = [x for x in indexed if x[1][1][0].row_level]
        sampled = self.gx_max_rows is not None and rows_in > self.gx_max_rows
        t_gx = time.perf_counter()
        gx_results = [
            self._run_gx(
                ctx, f"{table}.table_checks", con, view, view_cols, table_part, as_of_end, None
            ),
            self._run_gx(
                ctx,
                f"{table}.row_checks",
                con,
                view,
                view_cols,
                row_part,
                as_of_end,
                self.gx_max_rows if sampled else None,
            ),
        ]
        outcome.gx_result = [r for r in gx_results if r is not None]
        outcome.seconds["great_expectations"] = time.perf_counter() - t_gx
        t_sql = time.perf_counter()
        outcome.gx_rows = min(rows_in, self.gx_max_rows) if sampled else rows_in

        # Row-level failure flags in SQL over all rows, materialized once.
        row_checks = [(i, ch, kw) for i, (ch, kw) in enumerate(applicable) if ch.row_level]
        flag_table = f"_cemq_flags_{table}"
        all_flags = f"_cemq_allflags_{table}"
        crit = [(i, ch) for i, ch, _ in row_checks if ch.severity == "critical"]
        rel = f"staging.{quote(table)}"
        flag_exprs = [
            f"{failure_predicate(ch, kw, relation=rel if kw.get('column') in staging_cols else None)}"
            f" AS f{i}"
            for i, ch, kw in row_checks
        ]
        # only rows failing some row-level check are materialized (a few % of the table)
        any_flag = " OR ".join(f"f{i}" for i, _, _ in row_checks) or "FALSE"
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {all_flags} AS SELECT * FROM (SELECT "
            + ", ".join(["_source_row", *flag_exprs])
            + f" FROM {view}) WHERE {any_flag}"
        )

        def joined(attr: str) -> str:
            parts = ", ".join(
                f"CASE WHEN f{i} THEN {_lit(getattr(ch, attr))} END" for i, ch in crit
            )
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
        sql_counts = {}
        if row_checks:
            sums = ", ".join(f"count(*) FILTER (WHERE f{i})" for i, _, _ in row_checks)
            got = con.execute(f"SELECT {sums} FROM {all_flags}").fetchone()
            sql_counts = {i: int(v) for (i, _, _), v in zip(row_checks, got, strict=True)}
        con.execute(f"DROP TABLE IF EXISTS {all_flags}")
        outcome.seconds["sql_flags"] = time.perf_counter() - t_sql

        # One results row per expectation.
        rows = []
        by_index = {
            int(r.expectation_config.meta["cem_index"]): r
            for res in outcome.gx_result
            for r in res.results
        }
        for i, (check, kwargs) in enumerate(applicable):
            r = by_index[i]
            res = r.result or {}
            raised = bool(r.exception_info and r.exception_info.get("raised_exception"))
            observed = res.get("observed_value")
            if raised:
                observed = f"error: {str(r.exception_info.get('exception_message'))[:200]}"
            success = bool(r.success) and not raised
            if sampled and check.row_level and "mostly" not in kwargs:
                success = sql_counts.get(i, 0) == 0  # exact over all rows
            level = "row" if check.row_level else "table"
            row = _result_row(
                run_id,
                params.as_of,
                table,
                check,
                level,
                success,
                res,
                observed,
                checked_at,
                rows_in,
            )
            if check.row_level:
                row["rows_quarantined"] = (
                    sql_counts.get(i, 0) if check.severity == "critical" else 0
                )
                row["sql_unexpected_count"] = sql_counts.get(i)
                row["gx_rows"] = outcome.gx_rows
                if sampled:  # GE saw a sample; record the exact count over all rows
                    row["unexpected_count"] = sql_counts.get(i)
                    row["unexpected_percent"] = 100.0 * sql_counts.get(i, 0) / max(rows_in, 1)
            rows.append(row)
            if not success:
                bounds = ", ".join(
                    f"{k} {kwargs[k]}" for k in ("min_value", "max_value") if k in kwargs
                )
                msg = (
                    f"table {table}: {check.name} failed ({check.reason}); observed "
                    f"{_fmt_observed(observed, res)}" + (f", expected {bounds}" if bounds else "")
                )
                if check.severity == "critical" and not check.row_level:
                    outcome.failures.append(msg)
                elif check.severity == "warning":
                    outcome.warnings.append(msg)
        for check, why in skipped:
            row = _result_row(
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
            rows.append(row)
        outcome.failures.extend(_wrong_type_columns(wh, table, staging_cols, raw_cols))
        con.execute(f"DROP VIEW IF EXISTS {view}")
        return outcome, rows, flag_table

    @staticmethod
    def _run_gx(ctx, name, con, view, view_cols, part, as_of_end, sample):
        """Validate the expectations of ``part`` with Great Expectations on pandas."""
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
        suite_gx = gx.ExpectationSuite(name=name)
        for index, (gx_check, (check, kwargs)) in part:
            gx_kwargs = dict(kwargs) if gx_check is check else dict(gx_check.kwargs)
            suite_gx.add_expectation(gx_check.to_gx(gx_kwargs, index, as_of_end))
        suite_gx = ctx.suites.add(suite_gx)
        batch = (
            ctx.data_sources.add_pandas(name)
            .add_dataframe_asset(name.split(".")[0])
            .add_batch_definition_whole_dataframe("run")
        )
        vd = ctx.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=batch, suite=suite_gx)
        )
        return vd.run(batch_parameters={"dataframe": frame}, result_format="SUMMARY")

    # ------------------------------------------------------------------------------------------
    def _write(
        self, wh, outcomes, flags, results, history, run_id, as_of, absent=()
    ) -> pd.DataFrame:
        con = wh.con
        now = dt.datetime.now()
        as_of_date = pd.Timestamp(as_of).date()
        conservation = []
        with wh.transaction():
            for table in absent:  # an earlier run's output must not outlive its source
                wh.drop_table("clean", table)
                wh.drop_table("quarantine", table)
            for table, outcome in outcomes.items():
                cols = [c for c in _columns(wh, "staging", table) if c not in STAMP_COLUMNS]
                sel = ", ".join(f"s.{quote(c)}" for c in cols)
                flag = flags[table]
                stamp = "? AS _run_id, CAST(? AS DATE) AS _as_of"
                con.execute(
                    f"CREATE OR REPLACE TABLE clean.{quote(table)} AS SELECT {sel}, {stamp} "
                    f"FROM staging.{quote(table)} s ANTI JOIN {flag} f "
                    f"ON f._source_row = s._source_row",
                    [run_id, as_of_date],
                )
                con.execute(
                    f"CREATE OR REPLACE TABLE quarantine.{quote(table)} AS SELECT {sel}, "
                    f"f.expectation, f.reason, {stamp} FROM staging.{quote(table)} s "
                    f"JOIN {flag} f ON f._source_row = s._source_row ORDER BY s._source_row",
                    [run_id, as_of_date],
                )
                n_clean = con.execute(f"SELECT count(*) FROM clean.{quote(table)}").fetchone()[0]
                n_quar = con.execute(f"SELECT count(*) FROM quarantine.{quote(table)}").fetchone()[
                    0
                ]
                if n_clean + n_quar != outcome.rows_in:
                    raise StageFailure(
                        f"quality: table {table}: rows in {outcome.rows_in} != clean {n_clean} + "
                        f"quarantined {n_quar}; nothing was written"
                    )
                outcome.rows_clean, outcome.rows_quarantined = n_clean, n_quar
                for schema, n in (("clean", n_clean), ("quarantine", n_quar)):
                    con.execute(
                        "INSERT INTO meta.table_log VALUES (?, ?, ?, ?, ?, ?)",
                        [schema, table, run_id, as_of_date, n, now],
                    )
                conservation.append(
                    {
                        "table": table,
                        "rows_in": outcome.rows_in,
                        "clean": n_clean,
                        "quarantined": n_quar,
                        "quarantined_pct": 100.0 * n_quar / outcome.rows_in
                        if outcome.rows_in
                        else 0.0,
                        "conserved": n_clean + n_quar == outcome.rows_in,
                    }
                )
            stored = results.copy()
            stored["observed"] = stored["observed"].map(_observed_text)
            if history is not None and len(history):
                keep = history[history["run_id"] != run_id]
                stored = pd.concat(
                    [keep[RESULT_COLUMNS], stored[RESULT_COLUMNS]], ignore_index=True
                )
            else:
                stored = stored[RESULT_COLUMNS]
            stored = stored.astype({"success": "boolean"})
            wh.write_table("quality", "results", stored, run_id=run_id, as_of=as_of)
            cons = pd.DataFrame(conservation)
            wh.write_table("quality", "conservation", cons, run_id=run_id, as_of=as_of)
        return cons


# ----------------------------------------------------------------------------------------------
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
    return [
        r[0]
        for r in wh.con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND "
            "table_name = ? ORDER BY ordinal_position",
            [schema, table],
        ).fetchall()
    ]


def _columns_of_relation(con, name: str) -> list[str]:
    return [d[0] for d in con.execute(f"SELECT * FROM {name} LIMIT 0").description]


def _read_history(wh: Warehouse) -> pd.DataFrame | None:
    if not wh.has_table("quality", "results"):
        return None
    return wh.read_table("quality", "results")


def _previous_counts(history: pd.DataFrame | None, run_id: str) -> tuple[str | None, dict]:
    """The most recent other run and its row count per table."""
    if history is None or history.empty:
        return None, {}
    other = history[history["run_id"] != run_id]
    if other.empty:
        return None, {}
    last = other.sort_values("checked_at").iloc[-1]["run_id"]
    prev = other[other["run_id"] == last]
    counts = prev.groupby("table")["element_count"].max().dropna().astype(int).to_dict()
    return str(last), counts


def _result_row(run_id, as_of, table, check, level, success, res, observed, checked_at, rows_in):
    return {
        "run_id": run_id,
        "as_of": pd.Timestamp(as_of).date(),
        "table": table,
        "expectation": check.name,
        "expectation_type": check.type,
        "column": check.column,
        "severity": check.severity,
        "level": level,
        "reason": check.reason,
        "success": success,
        "unexpected_count": res.get("unexpected_count"),
        "element_count": rows_in,
        "unexpected_percent": res.get("unexpected_percent"),
        "observed": observed,
        "rows_quarantined": 0,
        "gx_rows": rows_in,
        "checked_at": checked_at,
    }


def _observed_text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (pd.Timestamp, dt.date, dt.datetime)):
        return str(value)
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


def _fmt_observed(observed: Any, res: dict) -> str:
    if observed is not None:
        return str(observed)
    if res.get("unexpected_count") is not None:
        return f"{res['unexpected_count']} of {res.get('element_count')} rows"
    return "n/a"


def _quarantine_by_reason(results: pd.DataFrame) -> pd.DataFrame:
    rows = results[(results["level"] == "row") & (results["severity"] == "critical")]
    out = rows[["table", "expectation", "reason", "rows_quarantined"]].copy()
    return out[out["rows_quarantined"] > 0].sort_values("rows_quarantined", ascending=False)
