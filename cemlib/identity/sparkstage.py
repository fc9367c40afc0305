"""Stage 02 on Spark (``engine: spark``): the lake's ``clean.*`` in, ``identity.*`` out.

What runs where (docs/spark.md):

* **Spark**: reading the source tables of :data:`~cemlib.identity.sources.SOURCE_ROLES` from the
  lake (only their id and role columns), dropping repeated ids, and preparing the identity
  records with ``mapInPandas`` over the core normalizers (:func:`~cemlib.identity.roles.prepare_records`,
  the same function the DuckDB engine calls: phones, e-mails, names, transliteration); the
  Splink model trained and scored on ``SparkAPI`` (:class:`~cemlib.identity.model.SplinkModel`
  with ``spark``: the candidate pairs generated and scored by the executors).
* **The driver** (pandas, as in the DuckDB engine): the prepared records are collected once
  (Arrow, the identity columns only, turned into categorical codes without a Python string per
  value), then the deterministic rules, the hub guard, the
  chain-guarded clustering with its household and cluster constraints, the golden records and
  the lasting ids (:func:`~cemlib.identity.carry.carry_ids` over the lake's DuckDB views).
  The guards read every node's values and the clustering is sequential over the ranked
  links, so the driver holds the prepared records, as the DuckDB engine does: its memory grows
  with the records, it is not flat.
* **The lake**: ``identity.map``, ``links``, ``profiles``, ``guarded``, ``registry``,
  ``changes`` and ``record_ids`` with the DuckDB warehouse's columns and the ``_run_id``,
  ``_as_of`` stamps, written beside their folders and renamed into place together.

Every run is a full one (``identity_mode`` ``incremental`` or ``auto`` fall back to full, the
reason in the figures): the incremental state (``identity.state``, ``identity.prepared``) is
not kept in the lake yet.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import numpy as np
import pandas as pd

from cemlib import DEFAULT_SEED
from cemlib.contract import STAGE_TABLES, StageResult, covered, stage_result, warehouse_tables
from cemlib.errors import InputError
from cemlib.identity.carry import carry_ids, previous_ids_table, record_ids_query
from cemlib.identity.evaluate import evaluate_warehouse
from cemlib.identity.resolve import DEFAULT_HOUSEHOLD_SIGNALS
from cemlib.identity.roles import PREPARED_COLUMNS, STRING, as_string, prepare_records
from cemlib.identity.rules import HubGuard
from cemlib.identity.sources import SOURCE_ROLES, _role_columns, present_roles
from cemlib.identity.stage import IdentityResult, _Laps, _write_tables, resolve_records

#: the prepared record columns that are text (all but ``updated_at``)
_TEXT_COLUMNS = tuple(c for c in PREPARED_COLUMNS if c != "updated_at")


def prepared_schema():
    """The Spark schema of the prepared records (:data:`PREPARED_COLUMNS`, text and the record's
    timestamp)."""
    from pyspark.sql.types import StringType, StructField, StructType, TimestampType

    return StructType(
        [
            StructField(c, TimestampType() if c == "updated_at" else StringType(), True)
            for c in PREPARED_COLUMNS
        ]
    )


def _preparer(name: str, id_col: str, roles: dict):
    """The ``mapInPandas`` function of one source table: each batch of rows prepared by
    :func:`prepare_records` (row by row independent: a value's normalization does not depend
    on the other rows), categoricals given back as text."""

    def prepare(batches):
        for batch in batches:
            if not len(batch):
                continue
            for c in batch.columns:
                if batch[c].dtype == object:
                    batch[c] = batch[c].astype(STRING)
            out = prepare_records(batch, roles, id_column=id_col, source=name)
            yield pd.DataFrame(
                {
                    c: (
                        out[c].astype("datetime64[ns]")
                        if c == "updated_at"
                        else out[c].astype(object).where(out[c].notna(), None)
                    )
                    for c in PREPARED_COLUMNS
                }
            )

    return prepare


def source_tables(lake) -> dict[str, tuple[str, str]]:
    """``table -> (schema, id column)`` of the source tables in ``lake``: ``clean`` when
    present, else ``staging`` (as :func:`~cemlib.identity.sources.source_schemas`)."""
    out = {}
    for name, (id_col, _roles) in SOURCE_ROLES.items():
        for schema in ("clean", "staging"):
            if lake.has_table(schema, name):
                out[name] = (schema, id_col)
                break
    return out


def prepared_records(spark, lake):
    """The prepared identity records of every source table of ``lake`` as one Spark
    DataFrame (:func:`prepared_schema`), computed by the executors."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import DateType

    parts = []
    for name, (schema, id_col) in source_tables(lake).items():
        roles = SOURCE_ROLES[name][1]
        sdf = lake.spark_table(spark, schema, name)
        have = set(sdf.columns)
        cols = [c for c in _role_columns(id_col, roles) if c in have]
        present = present_roles(roles, have)
        sdf = sdf.select(*[F.col(f"`{c}`") for c in cols])
        for field in sdf.schema.fields:  # dates as timestamps: pandas gets datetime64, as DuckDB's
            if isinstance(field.dataType, DateType):
                sdf = sdf.withColumn(field.name, F.col(f"`{field.name}`").cast("timestamp"))
        # a repeated id is one record (the quality stage quarantines them in clean.*)
        sdf = sdf.where(F.col(f"`{id_col}`").isNotNull()).dropDuplicates([id_col])
        parts.append(sdf.mapInPandas(_preparer(name, id_col, present), prepared_schema()))
    if not parts:
        raise InputError(
            "no clean.* or staging.* source tables in the lake; run stages 00 and 01 with "
            "engine spark first",
            source=str(lake.root),
        )
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part)
    return out


def collect_records(sdf) -> pd.DataFrame:
    """The prepared records on the driver in the DuckDB engine's form: sources in
    :data:`SOURCE_ROLES` order, records by id, text as Arrow strings and identity values as
    categoricals with sorted categories (one code per record).

    The records come over as Arrow (``toArrow``) and stay Arrow until each column is a string
    column or a categorical's codes: no Python string per value (``toPandas`` made one for
    every value of every record, the 200,000-person driver's largest allocation).

    They are put in order here, by Arrow (byte order of the ids, as Spark's), not by Spark: a
    Spark ``orderBy`` samples its input for the range bounds in a job of its own, which ran
    ``sdf``'s ``mapInPandas`` (the normalizers, the stage's costliest Spark step) a second
    time over every record."""
    import pyarrow as pa
    import pyarrow.compute as pc

    table = sdf.toArrow()
    rank = pc.index_in(table.column("source"), value_set=pa.array(list(SOURCE_ROLES)))
    order = pc.sort_indices(
        pa.table({"_order": rank, "record_id": table.column("record_id")}),
        sort_keys=[("_order", "ascending"), ("record_id", "ascending")],
    )
    del rank
    strings = {pa.string(): STRING, pa.large_string(): STRING}.get

    def take(name: str) -> pa.ChunkedArray:
        nonlocal table
        column = table.column(name).take(order)  # one column at a time in record order
        table = table.drop_columns([name])  # each column freed once converted
        return column

    stamps = take("updated_at")
    if stamps.type.tz is not None:  # the session's time zone is UTC: drop the zone, as toPandas
        stamps = stamps.cast(pa.timestamp(stamps.type.unit))
    columns: dict[str, Any] = {
        "record_id": as_string(take("record_id").to_pandas(types_mapper=strings)),
        "source": as_string(take("source").to_pandas(types_mapper=strings)),
        "updated_at": stamps.to_pandas(coerce_temporal_nanoseconds=True).astype("datetime64[ns]"),
    }
    del stamps
    for c in PREPARED_COLUMNS[3:]:
        values = take(c)
        distinct = pc.unique(values).drop_null()
        distinct = distinct.take(pc.array_sort_indices(distinct))  # UTF-8 order = code points
        codes = pc.index_in(values, value_set=distinct).fill_null(-1)
        columns[c] = pd.Categorical.from_codes(
            codes.to_numpy(),
            categories=pd.Index(
                distinct.to_numpy(zero_copy_only=False).astype(object), dtype=object
            ),
        )
    return pd.DataFrame(columns, copy=False)


def _remember_ids(lake, rmap: pd.DataFrame, *, run_id: str, as_of: str):
    """``identity.record_ids`` staged beside its folder (see
    :func:`~cemlib.identity.carry.remember_ids`): every record's profile id, or the last id it
    had when it is attached to none now. Returns the staged folder."""
    from pathlib import Path

    con = lake.con
    previous = previous_ids_table(lake)
    folder = lake.staging_path("identity", "record_ids", run_id)
    target = Path(folder.removeprefix("file://"))
    target.mkdir(parents=True, exist_ok=True)
    con.register("_ids_map", rmap[["source_table", "record_id", "profile_id"]])
    try:
        path = str(target / "part-00000.parquet").replace("'", "''")
        con.execute(
            f"COPY ({record_ids_query(previous)}) TO '{path}' (FORMAT PARQUET)",
            [run_id, pd.Timestamp(as_of).date()],
        )
    finally:
        con.unregister("_ids_map")
    return folder


def run_stage_spark(
    lake,
    spark,
    *,
    run_id: str,
    as_of: str,
    seed: int = DEFAULT_SEED,
    guard: HubGuard | None = None,
    match_threshold: float | str | None = "auto",
    household_signals: tuple[str, ...] = DEFAULT_HOUSEHOLD_SIGNALS,
    keep_records: bool = True,
    identity_mode: str = "auto",
) -> IdentityResult:
    """:func:`~cemlib.identity.stage.run_stage` on Spark and the lake (see the module)."""
    from cemlib.identity.stage import _drop_records

    t0, c0 = time.perf_counter(), time.process_time()
    lap = _Laps()
    sdf = prepared_records(spark, lake)
    records = collect_records(sdf)
    lap("prepare")
    result = resolve_records(records, spark=spark, guard=guard, match_threshold=match_threshold,
                             seed=seed, as_of=as_of, household_signals=household_signals,
                             lap=lap)  # fmt: skip
    del records
    if not keep_records:
        # the per-record arrays of the resolver (the prepared records among them) are read by
        # neither the carry of the ids, the write nor the report (no incremental state in the
        # lake): freed now, before the map's and the previous map's frames of the carry
        _release_records(result.resolver)
    why = "engine spark runs full resolutions only (no incremental state in the lake yet)"
    result.figures["identity_mode"] = {
        "asked": identity_mode, "used": "full", "why": why,
        "resolve_seconds": round(time.perf_counter() - t0, 2),
        "resolve_cpu_seconds": round(time.process_time() - c0, 2),
    }  # fmt: skip
    carry_ids(lake, result, run_id=run_id, as_of=as_of)
    lap("carry_ids")
    closed = _closed_at(lake, result, as_of)  # customers who left, as the DuckDB engine
    if closed is not None:
        result.figures["closed_profiles"] = int(closed.notna().sum())
    staged = {("identity", "record_ids"): _remember_ids(lake, result.map, run_id=run_id,
                                                        as_of=as_of)}  # fmt: skip
    try:
        _write_tables(_Staging(lake, staged, closed), result, run_id=run_id, as_of=as_of)
    except BaseException:
        lake.discard(staged)
        raise
    lake.publish(staged)
    lap("write_tables")
    result.figures["identity_mode"]["stage_seconds"] = round(time.perf_counter() - t0, 2)
    result.figures["identity_mode"]["stage_cpu_seconds"] = round(time.process_time() - c0, 2)
    result.evaluation = evaluate_warehouse(lake)
    if not keep_records:
        _drop_records(result)
    return result


def _release_records(resolver) -> None:
    """The resolver's per-record arrays set to None (those :func:`_drop_records` releases,
    the map aside: it is written yet)."""
    for attr in ("prepared_", "labels_", "node_of_record_", "ambiguous_", "household_",
                 "corroborated_", "attached_", "profile_id_", "unattached_reason_"):  # fmt: skip
        if hasattr(resolver, attr):
            setattr(resolver, attr, None)


def _closed_at(lake, result: IdentityResult, as_of: str) -> pd.Series | None:
    """Column ``closed_at`` of ``identity.profiles``, one value per row of ``result.profiles``
    (the DuckDB engine's :func:`~cemlib.identity.golden.write_closed_at`: the last closing of a
    profile whose every CRM record closed by ``as_of``, NULL for the others), read through the
    lake's views with the map about to be written; None (no column) when the lake's
    ``crm_contacts`` has no ``closed_at``."""
    from cemlib.marts.closed import closed_since

    con = lake.con
    con.register("_spark_map", result.map[["source_table", "record_id", "profile_id"]])
    try:
        closed = closed_since(lake, as_of, mapping=(
            "(SELECT source_table, CAST(record_id AS VARCHAR) AS record_id, "
            "CAST(profile_id AS VARCHAR) AS customer_id FROM _spark_map)"))  # fmt: skip
    finally:
        con.unregister("_spark_map")
    if closed is None:
        return None
    at = closed.set_index("customer_id")["closed_at"]
    pid = result.profiles["profile_id"].astype(str)
    return pd.to_datetime(pid.map(at)).astype("datetime64[us]").rename("closed_at")


class _Staging:
    """The ``write_tables`` of a lake that stages the tables into ``staged`` (published by the
    caller together with the others) instead of publishing them."""

    def __init__(self, lake, staged: dict, closed_at: pd.Series | None = None):
        self.lake, self.staged, self.closed_at = lake, staged, closed_at

    def write_tables(self, schema: str, tables: dict, *, run_id: str, as_of) -> None:
        for name, df in tables.items():
            if name == "profiles" and self.closed_at is not None:
                # after the stamps, where the DuckDB engine's ALTER TABLE puts it
                stamps = dict.fromkeys(("_run_id", "_as_of"))
                df = df.assign(**stamps, closed_at=self.closed_at.to_numpy())
            folder = self.lake.staging_path(schema, name, run_id)
            self.staged[(schema, name)] = folder
            self.lake._write_frame(df, folder, run_id, as_of)


def run_on_spark(
    lake, *, run_id: str, as_of: str | dt.date, seed: int = DEFAULT_SEED,
    spark_master: str = "local[*]", spark=None, **params: Any,
) -> StageResult:  # fmt: skip
    """Stage 02 on Spark: resolve ``lake``'s ``clean.*`` records, write ``identity.*`` to it
    (a :class:`StageResult` as :func:`cemlib.identity.run` gives; ``params`` are its options).

    ``lake``: a :class:`~cemlib.engine.Lake` or its folder; ``spark``: a session (default the
    process's session on ``spark_master``).
    """
    from cemlib.contract import as_of_date
    from cemlib.engine import Lake, spark_session
    from cemlib.identity import report

    as_of_date(as_of)
    lake = lake if isinstance(lake, Lake) else Lake(lake)
    if not lake.tables("clean") and not lake.tables("staging"):
        raise InputError(
            "the identity stage needs clean, which is missing (written by the quality stage: "
            "run it first)",
            source=str(lake.root),
        )
    have = warehouse_tables(lake)
    reads = sorted(t for e in STAGE_TABLES["identity"].reads for t in covered(e, have))
    spark = spark or spark_session(spark_master)
    detail = run_stage_spark(lake, spark, run_id=run_id, as_of=str(as_of), seed=seed, **params)
    return stage_result(lake, "identity", run_id=run_id, as_of=as_of, reads=reads,
                        headlines=report.headlines(detail), detail=detail)  # fmt: skip


def pairwise_agreement(a: pd.DataFrame, b: pd.DataFrame) -> dict[str, float | int]:
    """How far two record maps (``source_table, record_id, profile_id``, e.g. the DuckDB and
    the Spark engine's ``identity.map``) agree: the record pairs that share a profile in
    ``a``, in ``b`` and in both (counted per profile, never listed), ``agreement`` = 2 × both /
    (a + b), and the profiles of each. Records missing from either map count as unattached."""
    keys = ["source_table", "record_id"]
    both = (
        a[[*keys, "profile_id"]]
        .astype("string")
        .merge(
            b[[*keys, "profile_id"]].astype("string"), on=keys, how="outer", suffixes=("_a", "_b")
        )
    )

    def pairs(groups: list[str]) -> int:
        n = both.dropna(subset=groups).groupby(groups, sort=False).size().to_numpy(np.int64)
        return int((n * (n - 1) // 2).sum())

    n_a, n_b_ = pairs(["profile_id_a"]), pairs(["profile_id_b"])
    shared = pairs(["profile_id_a", "profile_id_b"])
    return {
        "records_a": int(len(a)), "records_b": int(len(b)),
        "profiles_a": int(a["profile_id"].nunique()), "profiles_b": int(b["profile_id"].nunique()),
        "pairs_a": n_a, "pairs_b": n_b_, "pairs_both": shared,
        "agreement": 2 * shared / (n_a + n_b_) if n_a + n_b_ else 1.0,
    }  # fmt: skip
