"""Stage 1 on Spark (``engine: spark``): the suites of ``expectations/`` validate the lake's
``staging.*`` tables as Spark DataFrames through Great Expectations' Spark data source; the
quarantine routing and the counts are Spark SQL over every row; ``clean.*``, ``quarantine.*``,
``quality.results`` and ``quality.conservation`` are written to the lake beside their folders
and renamed into place only once rows in = clean + quarantined held for every table.

The results rows, headlines and report are the DuckDB engine's (:mod:`cemlib.quality.stage`);
a parity test checks both engines give the same counts per table and reason.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pandas as pd

from cemlib import DEFAULT_SEED
from cemlib.contract import STAGE_TABLES, StageResult, covered, stage_result, warehouse_tables
from cemlib.errors import StageFailure
from cemlib.progress import progress
from cemlib.quality.context import offline_context
from cemlib.quality.history import auto_starts
from cemlib.quality.sparksql import squote
from cemlib.quality.sparktable import validate_spark_table
from cemlib.quality.stage import (
    DEFECT_COLUMNS,
    RESULT_COLUMNS,
    QualityReport,
    QualityStage,
    _observed_text,
    _previous_counts,
    _quarantine_by_reason,
)
from cemlib.quality.suites import RunParams, load_suites
from cemlib.warehouse import STAMP_COLUMNS


class SparkQualityStage(QualityStage):
    """:class:`QualityStage` with Spark as the engine and a :class:`~cemlib.engine.Lake` as
    the store (same options)."""

    def run_spark(self, spark, lake, *, run_id: str, as_of: str | dt.date) -> QualityReport:
        """Validate the lake's staging tables on ``spark``; write the outcome to ``lake``.

        Raises :class:`StageFailure` (and publishes nothing) on a critical table-level failure
        or when rows are not conserved.
        """
        as_of = str(pd.Timestamp(as_of).date())
        suites = load_suites(self.suites_dir)
        wanted = self.tables or list(suites)
        present = [t for t in wanted if t in suites and lake.has_table("staging", t)]
        if not present:
            raise StageFailure(
                f"quality: no staging table in the lake {lake.root} (expected some of "
                f"{sorted(wanted)}); run the collection stage with engine spark first"
            )
        history = (
            lake.read_table("quality", "results") if lake.has_table("quality", "results") else None
        )
        previous_run_id, previous_counts = _previous_counts(history, run_id)
        params = RunParams(as_of=as_of, start=self.start, freshness_days=self.freshness_days,
                           volume_band=self.volume_band, min_age=self.min_age,
                           previous_counts=previous_counts,
                           starts=auto_starts(self.start, lake.con, suites, present, as_of))  # fmt: skip
        ctx = offline_context()
        checked_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        rows, outcomes, flags = [], {}, {}
        try:
            for table in progress(present, desc="quality (spark)", disable=not self.progress):
                outcome, table_rows, flag_df = validate_spark_table(
                    spark, lake, ctx, suites[table], params, run_id, checked_at, self.gx_max_rows
                )
                outcomes[table], flags[table] = outcome, flag_df
                rows.extend(table_rows)
            failures = [f for o in outcomes.values() for f in o.failures]
            if failures:
                raise StageFailure(
                    "quality: critical table-level check failed, nothing was written:\n  "
                    + "\n  ".join(failures)
                )
            results = pd.DataFrame(rows).reindex(columns=[*RESULT_COLUMNS, "sql_unexpected_count"])
            absent = [t for t in suites if not lake.has_table("staging", t)]
            t_write = time.perf_counter()
            conservation = self._write_lake(
                spark, lake, outcomes, flags, results, history, run_id, as_of, absent
            )
        finally:
            spark.catalog.clearCache()
        return QualityReport(
            run_id=run_id, as_of=as_of, results=results, conservation=conservation,
            quarantine_by_reason=_quarantine_by_reason(results), outcomes=outcomes,
            previous_run_id=previous_run_id, gx_context=ctx,
            write_seconds=time.perf_counter() - t_write,
        )  # fmt: skip

    def _write_lake(self, spark, lake, outcomes, flags, results, history, run_id, as_of, absent):
        """Write every output beside its folder, check conservation, then publish them all."""
        from pyspark.sql import functions as F

        staged: dict[tuple[str, str], str] = {}
        conservation = []
        try:
            for table, outcome in outcomes.items():
                src = lake.spark_table(spark, "staging", table)
                cols = [c for c in src.columns if c not in STAMP_COLUMNS]
                stamp = [F.lit(run_id).alias("_run_id"), F.lit(as_of).cast("date").alias("_as_of")]
                flag = flags[table]
                clean = _clean_frame(src, flag, cols, outcome).select(
                    *[squote(c) for c in cols if c not in DEFECT_COLUMNS], *stamp
                )
                quar = (
                    src.join(flag, "_source_row", "inner")
                    .select(*[squote(c) for c in cols], "expectation", "reason", *stamp)
                    .orderBy("_source_row")
                )
                counts = {}
                for schema, df in (("clean", clean), ("quarantine", quar)):
                    staged[(schema, table)] = lake.staging_path(schema, table, run_id)
                    df.write.mode("overwrite").parquet(staged[(schema, table)])
                    counts[schema] = spark.read.parquet(staged[(schema, table)]).count()
                n_clean, n_quar = counts["clean"], counts["quarantine"]
                if n_clean + n_quar != outcome.rows_in:
                    raise StageFailure(
                        f"quality: table {table}: rows in {outcome.rows_in} != clean {n_clean} + "
                        f"quarantined {n_quar}; nothing was written"
                    )
                outcome.rows_clean, outcome.rows_quarantined = n_clean, n_quar
                conservation.append({
                    "table": table, "rows_in": outcome.rows_in, "clean": n_clean,
                    "quarantined": n_quar,
                    "quarantined_pct": 100.0 * n_quar / outcome.rows_in if outcome.rows_in else 0.0,
                    "conserved": n_clean + n_quar == outcome.rows_in,
                })  # fmt: skip
            stored = _stored_results(results, history, run_id)
            cons = pd.DataFrame(conservation)
            for name, df in (("results", stored), ("conservation", cons)):
                staged[("quality", name)] = lake.staging_path("quality", name, run_id)
                lake._write_frame(df, staged[("quality", name)], run_id, as_of)
        except BaseException:
            lake.discard(staged)
            raise
        for table in absent:  # an earlier run's output must not outlive its source
            lake.drop_table("clean", table)
            lake.drop_table("quarantine", table)
        lake.publish(staged)
        return cons


def _stored_results(results: pd.DataFrame, history, run_id: str) -> pd.DataFrame:
    stored = results.copy()
    stored["observed"] = stored["observed"].map(_observed_text)
    if history is not None and len(history):
        keep = history[history["run_id"] != run_id]
        stored = pd.concat([keep[RESULT_COLUMNS], stored[RESULT_COLUMNS]], ignore_index=True)
    else:
        stored = stored[RESULT_COLUMNS]
    return stored.astype({"success": "boolean"})


def run_on_spark(
    lake, *, run_id: str, as_of: str | dt.date, seed: int = DEFAULT_SEED,
    spark_master: str = "local[*]", spark=None, suites_dir: str | None = None, **params: Any,
) -> StageResult:  # fmt: skip
    """Stage 01 on Spark: validate ``lake``'s ``staging.*``, write ``clean.*``,
    ``quarantine.*`` and ``quality.*`` to it (a :class:`StageResult` as :func:`run` gives).

    ``lake``: a :class:`~cemlib.engine.Lake` or its folder; ``spark``: a session (default the
    process's session on ``spark_master``).
    """
    from cemlib.engine import Lake, spark_session
    from cemlib.quality import report

    lake = lake if isinstance(lake, Lake) else Lake(lake)
    spark = spark or spark_session(spark_master)
    have = warehouse_tables(lake)
    reads = sorted(t for e in STAGE_TABLES["quality"].reads for t in covered(e, have))
    detail = SparkQualityStage(suites_dir, **params).run_spark(
        spark, lake, run_id=run_id, as_of=as_of
    )
    return stage_result(lake, "quality", run_id=run_id, as_of=as_of, reads=reads,
                        headlines=report.headlines(detail), detail=detail)  # fmt: skip


def _clean_frame(src, flag, cols, outcome):
    """Staging without the quarantined rows, an invalid identifier (a failed ``blank:``
    check) emptied."""
    from pyspark.sql import functions as F

    kept = src.join(flag, "_source_row", "left_anti")
    if not outcome.blank_columns:
        return kept
    kept = kept.join(outcome.blank_table, "_source_row", "left")
    for c in outcome.blank_columns:
        flag_col = F.coalesce(F.col(squote("__blank_" + c)), F.lit(False))
        kept = kept.withColumn(c, F.when(flag_col, F.lit(None)).otherwise(F.col(squote(c))))
    return kept.select(*[squote(c) for c in cols])
