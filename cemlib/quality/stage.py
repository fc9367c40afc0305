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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cemlib.errors import InputError, StageFailure
from cemlib.progress import progress
from cemlib.quality.context import offline_context
from cemlib.quality.history import auto_starts
from cemlib.quality.rowsql import quote
from cemlib.quality.suites import RunParams, load_suites
from cemlib.quality.table import TableOutcome, _columns, start_table
from cemlib.quality.workers import GXRunner, workers_for
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
        """Every table's warning messages."""
        return [w for o in self.outcomes.values() for w in o.warnings]

    @property
    def gx_results(self) -> dict[str, Any]:
        """Great Expectations' validation results per table."""
        return {t: o.gx_result for t, o in self.outcomes.items() if o.gx_result}


class QualityStage:
    """Run the expectation suites on the warehouse's staging tables.

    Parameters: ``suites_dir`` (default ``expectations/``), ``start`` (the day the business began:
    earlier timestamps are defects), ``freshness_days`` (the newest row must be at most this old
    at ``as_of``), ``volume_band`` (relative band around the previous run's row count),
    ``min_age`` (the youngest plausible customer in years at ``as_of``: a later birth date is
    warned about; 14 by default, 0 where children are customers),
    ``gx_max_rows`` (row-level expectations run in Great Expectations on at most this many rows
    per table, a reproducible sample above it; ``None`` = all rows; quarantine routing and the
    recorded counts are exact over all rows either way),
    ``workers`` (processes validating side by side, this one included; default 1; ``"auto"``:
    as many as the cores, ``$CEM_WORKERS`` and the memory budget allow, and 1 while forking
    this process is not safe, :func:`cemlib.budget.fork_hazard`; the results are the same.
    1 by default here because the workers are forked, and a fork of a process holding a Spark
    JVM crashed; :func:`cemlib.quality.run`, the stage of ``cem run``, passes ``"auto"``).
    """

    def __init__(
        self,
        suites_dir: str | Path | None = None,
        *,
        start: str = "auto",
        freshness_days: int = 30,
        volume_band: float = 0.5,
        min_age: int = 14,
        tables: list[str] | None = None,
        gx_max_rows: int | None = 200_000,
        progress: bool = True,
        workers: int | str | None = None,
    ):
        self.suites_dir = suites_dir
        self.start = start
        self.freshness_days = freshness_days
        self.volume_band = volume_band
        if int(min_age) < 0:
            raise InputError(f"min_age must be 0 or more, got {min_age}")
        self.min_age = int(min_age)
        self.tables = tables
        self.gx_max_rows = gx_max_rows
        self.progress = progress
        self.workers = workers

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
            min_age=self.min_age,
            previous_counts=previous_counts,
            starts=auto_starts(self.start, wh.con, suites, present, as_of),
        )
        ctx = offline_context()
        checked_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        rows: list[dict] = []
        outcomes: dict[str, TableOutcome] = {}
        flags: dict[str, str] = {}
        workers = self.workers or 1
        if workers == "auto":
            workers = workers_for(_rows_in(wh, present))
        try:
            # Great Expectations of one table in a worker while this process flags the next
            with GXRunner(workers, self.gx_max_rows) as runner:
                started = []
                for table in progress(present, desc="quality", disable=not self.progress):
                    outcome, flag_table, finish = start_table(
                        wh, ctx, suites[table], params, run_id, checked_at, self.gx_max_rows,
                        runner,
                    )  # fmt: skip
                    outcomes[table] = outcome
                    flags[table] = flag_table
                    started.append(finish)
                for finish in started:
                    rows.extend(finish())
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
            for o in outcomes.values():
                if o.blank_table:
                    wh.con.execute(f"DROP TABLE IF EXISTS {o.blank_table}")
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
                # in _source_row order, like quarantine: the join returns its rows in no set
                # order, and a later stage must not see two runs' tables differ
                con.execute(
                    f"CREATE OR REPLACE TABLE clean.{quote(table)} AS SELECT "
                    f"{_clean_select(cols, outcome)}, {stamp} "
                    f"FROM staging.{quote(table)} s {_blank_join(outcome)} ANTI JOIN {flag} f "
                    f"ON f._source_row = s._source_row ORDER BY s._source_row",
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
#: collection's columns of a line it could not read whole: in staging and quarantine, not clean
DEFECT_COLUMNS = ("_row_defect", "_raw_line", "_line")


def _clean_select(cols: list[str], outcome: TableOutcome) -> str:
    """The clean columns of staging ``s``: an invalid identifier (a failed ``blank:`` check)
    emptied, the columns of unread lines left out."""
    out = []
    for c in cols:
        if c in DEFECT_COLUMNS:
            continue
        if c in outcome.blank_columns:
            out.append(f"CASE WHEN coalesce(b.{quote(c)}, FALSE) THEN NULL ELSE s.{quote(c)} END "
                       f"AS {quote(c)}")  # fmt: skip
        else:
            out.append(f"s.{quote(c)}")
    return ", ".join(out)


def _blank_join(outcome: TableOutcome) -> str:
    if not outcome.blank_table:
        return ""
    return f"LEFT JOIN {outcome.blank_table} b ON b._source_row = s._source_row"


def _rows_in(wh: Warehouse, tables: list[str]) -> int:
    """Rows of the staging tables the stage reads (its memory estimate's input)."""
    return sum(
        wh.con.execute(f"SELECT count(*) FROM staging.{quote(t)}").fetchone()[0] for t in tables
    )


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


def _quarantine_by_reason(results: pd.DataFrame) -> pd.DataFrame:
    rows = results[(results["level"] == "row") & (results["severity"] == "critical")]
    out = rows[["table", "expectation", "reason", "rows_quarantined"]].copy()
    return out[out["rows_quarantined"] > 0].sort_values("rows_quarantined", ascending=False)
