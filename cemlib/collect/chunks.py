"""Writing a table in chunks of rows: the world's or a file's chunks, each appended to a
shadow table (``raw._cem_new_<table>``) that replaces the table at the end, with DuckDB's
memory capped meanwhile."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pandas as pd

from cemlib.collect.loaders import LoadedTable, table_from_frame
from cemlib.normalize.dates import date_order
from cemlib.schema import DATE, TABLES, TIMESTAMP
from cemlib.warehouse import Warehouse


def world_chunks(world, name: str, release: bool, rows: int) -> Iterator[LoadedTable]:
    """The world's source table ``name`` as :class:`LoadedTable` chunks of ``rows`` rows, text
    made chunk by chunk; with ``release`` the table is taken out of ``world.sources`` so that
    its memory goes as soon as it is written."""
    frame = world.sources.pop(name) if release else world.sources[name]
    n = len(frame)
    for start in range(0, max(n, 1), rows):
        piece = table_from_frame(name, frame.iloc[start : start + rows], start=start)
        piece.header_only = n == 0
        yield piece


def file_chunks(read: Callable[[], LoadedTable], rows: int) -> Iterator[LoadedTable]:
    """A file read whole (text), staged and written in chunks of ``rows`` rows."""
    loaded = read()
    n = len(loaded.frame)
    if n <= rows:
        yield loaded
        return
    if loaded.typed is None:  # one reading of the dates for the whole file (month first?)
        loaded = replace(loaded, date_orders=date_orders(loaded))
    for start in range(0, n, rows):
        stop = start + rows
        typed = loaded.typed
        yield replace(
            loaded,
            frame=_rows(loaded.frame, start, stop),
            typed=None if typed is None else _rows(typed, start, stop),
        )


def date_orders(loaded: LoadedTable) -> dict[str, str]:
    """The order of the numeric dates of each date or timestamp column of ``loaded``."""
    spec = TABLES.get(loaded.name)
    if spec is None:
        return {}
    out = {}
    for col in loaded.frame.columns:
        if spec.kind(col) in (TIMESTAMP, DATE):
            out[col] = date_order(loaded.frame[col])
    return out


def _rows(df: pd.DataFrame, start: int, stop: int) -> pd.DataFrame:
    out = df.iloc[start:stop]
    out.index = pd.RangeIndex(len(out))
    return out


def write_chunk(con, schema: str, name: str, df: pd.DataFrame, stamp: dict, first: bool) -> None:
    """``schema.name`` created from the first chunk, the next ones appended; stamped like
    :meth:`Warehouse.write_table` (the ``meta.table_log`` row is added per table)."""
    frame = df.copy(deep=False)
    frame["_run_id"] = stamp["run_id"]
    frame["_as_of"] = stamp["as_of"]
    con.register("_cem_chunk", _arrow(frame))
    try:
        if first:
            con.execute(f'CREATE OR REPLACE TABLE {schema}."{name}" AS SELECT * FROM _cem_chunk')
        else:
            con.execute(f'INSERT INTO {schema}."{name}" BY NAME SELECT * FROM _cem_chunk')
    finally:
        con.unregister("_cem_chunk")


def _arrow(frame: pd.DataFrame):
    """``frame`` as an Arrow table for DuckDB, or the frame itself where Arrow cannot hold a
    column (a mixed object column of a file) or holds a category: the same table either way.

    DuckDB's scan of a pandas frame converts the Python strings of its text columns one by one
    in one thread; converting them to Arrow first and letting DuckDB read Arrow takes a quarter
    less CPU for the whole write (a 30,000-person world: raw 1.63 -> 1.25 CPU s, staging 1.73
    -> 1.34). Missing values (``pd.NA``, ``NaN``, ``NaT``) become nulls as DuckDB makes them.
    """
    import pyarrow as pa

    if any(isinstance(t, pd.CategoricalDtype) for t in frame.dtypes):
        return frame  # DuckDB makes an ENUM of a pandas category, a VARCHAR of Arrow's
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return frame


_SHADOW = "_cem_new_"


def shadow(name: str) -> str:
    """The table a run writes before it replaces ``name``."""
    return _SHADOW + name


def drop_shadows(wh: Warehouse) -> None:
    """Drop the shadow tables a killed run left in ``raw``, ``staging`` and ``truth``."""
    for schema in ("raw", "staging", "truth"):
        for name in wh.tables(schema):
            if name.startswith(_SHADOW):
                wh.drop_table(schema, name)


def log_table(con, schema: str, name: str, n_rows: int, stamp: dict) -> None:
    """The ``meta.table_log`` row of a table written in chunks."""
    con.execute(
        "INSERT INTO meta.table_log VALUES (?, ?, ?, ?, ?, ?)",
        [schema, name, stamp["run_id"], stamp["as_of"], n_rows, dt.datetime.now()],
    )


@contextlib.contextmanager
def capped_memory(con, limit: str | None, temp_directory: str | Path | None):
    """DuckDB's buffer pool capped at ``limit`` for the block (it spills the uncommitted
    transaction to ``temp_directory``, by default ``<warehouse>.tmp``); settings restored."""
    if limit is None and temp_directory is None:
        yield
        return
    names = (["memory_limit"] if limit else []) + (["temp_directory"] if temp_directory else [])
    before = {n: con.execute(f"SELECT current_setting('{n}')").fetchone()[0] for n in names}
    if temp_directory:
        con.execute(f"SET temp_directory = '{Path(temp_directory).as_posix()}'")
    if limit:
        con.execute(f"SET memory_limit = '{limit}'")
    try:
        yield
    finally:
        for n, v in before.items():
            _restore(con, n, v)


def _restore(con, name: str, value: str) -> None:
    """``name`` set back to ``value``. A temporary folder DuckDB has spilled to stays until the
    connection closes (DuckDB cannot switch it then): a million-person collection spills, and
    restoring the setting failed the stage after every table was loaded."""
    import duckdb

    try:
        if value == _default_setting(name):  # exact (the text of a size is rounded)
            con.execute(f"RESET {name}")
        else:
            con.execute(f"SET {name} = '{value}'")
    except duckdb.NotImplementedException:
        if name != "temp_directory":
            raise


def _default_setting(name: str) -> str:
    import duckdb

    with duckdb.connect() as fresh:
        return fresh.execute(f"SELECT current_setting('{name}')").fetchone()[0]
