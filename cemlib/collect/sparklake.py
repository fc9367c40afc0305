"""Stage 00 for ``engine: spark``: the collector's ``raw.*`` and ``staging.*`` tables copied to
the lake as Parquet (``<lake>/<schema>/<table>/``), where the Spark stages read them.

The files are read and normalized by the one collector (:func:`cemlib.collect.collect`, chunked
DuckDB plus the Python normalizers of :mod:`cemlib.normalize`), then DuckDB streams each table to
Parquet: the staging tables are then the same on both engines row for row, which is what lets
the quality stage give identical counts. Reading the files with Spark would need the
normalizers as pandas UDFs and the collector's typing rules (date order, encodings, mappings)
rewritten in Spark SQL: that is a later step (docs/spark.md).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from cemlib import DEFAULT_SEED
from cemlib.collect.stage import MAPPED_COLUMNS
from cemlib.contract import StageResult
from cemlib.warehouse import Warehouse

#: the warehouse schemas the lake receives from the collector
LAKE_SCHEMAS: tuple[str, ...] = ("raw", "staging")
#: and its single tables: the file columns a mapping read (the quality stage does not call
#: them unknown)
LAKE_TABLES: tuple[tuple[str, str], ...] = (("meta", MAPPED_COLUMNS),)


def copy_to_lake(
    wh: Warehouse, lake, *, run_id: str, schemas=LAKE_SCHEMAS, tables=()
) -> dict[str, int]:
    """Copy every table of ``schemas`` and the single ``tables`` (``(schema, name)``) from
    ``wh`` to ``lake`` (stamps kept); all of them are renamed into place together. Returns rows
    per ``schema.table``."""
    staged: dict[tuple[str, str], str] = {}
    rows: dict[str, int] = {}
    pairs = [(schema, name) for schema in schemas for name in wh.tables(schema)]
    pairs += [(schema, name) for schema, name in tables if wh.has_table(schema, name)]
    try:
        for schema, name in pairs:
            folder = Path(lake.staging_path(schema, name, run_id).removeprefix("file://"))
            folder.mkdir(parents=True, exist_ok=True)
            staged[(schema, name)] = str(folder)
            target = str(folder / "part-00000.parquet").replace("'", "''")
            wh.con.execute(
                f"COPY (SELECT * FROM {schema}.\"{name}\") TO '{target}' (FORMAT PARQUET)"
            )
            rows[f"{schema}.{name}"] = wh.con.execute(
                f'SELECT count(*) FROM {schema}."{name}"'
            ).fetchone()[0]
    except BaseException:
        lake.discard(staged)
        raise
    for schema in schemas:  # a table the collector no longer writes must not outlive it
        for name in lake.tables(schema):
            if (schema, name) not in staged:
                lake.drop_table(schema, name)
    for schema, name in tables:
        if (schema, name) not in staged:
            lake.drop_table(schema, name)
    lake.publish(staged)
    return rows


def run_to_lake(
    wh, lake, *, run_id: str, as_of: str | dt.date, seed: int = DEFAULT_SEED,
    source: str = "synthetic", **params: Any,
) -> StageResult:  # fmt: skip
    """Stage 00 with ``engine: spark``: :func:`cemlib.collect.run` into ``wh`` (the run's
    warehouse, for the collection report), then ``raw.*`` and ``staging.*`` copied to ``lake``
    (a :class:`~cemlib.engine.Lake` or its folder)."""
    from cemlib.collect import run
    from cemlib.engine import Lake

    lake = lake if isinstance(lake, Lake) else Lake(lake)
    result = run(wh, run_id=run_id, as_of=as_of, seed=seed, source=source, **params)
    opened = wh if isinstance(wh, Warehouse) else Warehouse(wh, read_only=True)
    try:
        copied = copy_to_lake(opened, lake, run_id=run_id, tables=LAKE_TABLES)
    finally:
        if opened is not wh:
            opened.close()
    result.headlines = {**result.headlines, "lake tables": len(copied)}
    return result
