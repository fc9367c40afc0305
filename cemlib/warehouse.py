"""The DuckDB warehouse: one file per project, tables written whole per run.

Every table written through :class:`Warehouse` carries two stamp columns, ``_run_id`` and
``_as_of``, and a row in ``meta.table_log`` so a run is traceable and a re-run idempotent
(``CREATE OR REPLACE``). Several tables can be written atomically, so a failed stage leaves no
partial output behind.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import duckdb
import pandas as pd

from cemlib import DEFAULT_WAREHOUSE

SCHEMAS: tuple[str, ...] = (
    "raw",
    "staging",
    "clean",
    "quarantine",
    "quality",
    "identity",
    "marts",
    "truth",
    "meta",
)
STAMP_COLUMNS: tuple[str, ...] = ("_run_id", "_as_of")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _ident(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"not a valid table or schema name: {name!r}")
    return name


class Warehouse:
    """A DuckDB file holding the ``raw``/``staging``/``clean``/... schemas of one project.

    Use as a context manager; the connection is opened lazily and closed on exit so that a
    notebook does not hold the file lock longer than a cell.
    """

    def __init__(self, path: str | Path = DEFAULT_WAREHOUSE, *, read_only: bool = False):
        self.path = Path(path)
        self.read_only = read_only
        self._con: duckdb.DuckDBPyConnection | None = None

    # -- connection -------------------------------------------------------------------------
    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            if not self.read_only:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._con = duckdb.connect(str(self.path), read_only=self.read_only)
            if not self.read_only:
                for schema in SCHEMAS:
                    self._con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
                self._con.execute(
                    "CREATE TABLE IF NOT EXISTS meta.table_log ("
                    "schema_name VARCHAR, table_name VARCHAR, run_id VARCHAR, as_of DATE, "
                    "n_rows BIGINT, written_at TIMESTAMP)"
                )
        return self._con

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- writing ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator[Warehouse]:
        """All writes inside the block land together or not at all."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield self
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        else:
            self.con.execute("COMMIT")

    def write_table(
        self,
        schema: str,
        name: str,
        df: pd.DataFrame,
        *,
        run_id: str,
        as_of: str | dt.date,
    ) -> int:
        """Replace ``schema.name`` with ``df`` stamped with ``run_id`` and ``as_of``."""
        schema, name = _ident(schema), _ident(name)
        as_of_date = pd.Timestamp(as_of).date()
        frame = df.copy(deep=False)
        frame["_run_id"] = run_id
        frame["_as_of"] = as_of_date
        con = self.con
        con.register("_cem_frame", frame)
        try:
            con.execute(f'CREATE OR REPLACE TABLE {schema}."{name}" AS SELECT * FROM _cem_frame')
        finally:
            con.unregister("_cem_frame")
        con.execute(
            "INSERT INTO meta.table_log VALUES (?, ?, ?, ?, ?, ?)",
            [schema, name, run_id, as_of_date, len(frame), dt.datetime.now()],
        )
        return len(frame)

    def write_tables(
        self,
        schema: str,
        tables: Mapping[str, pd.DataFrame],
        *,
        run_id: str,
        as_of: str | dt.date,
    ) -> dict[str, int]:
        """Write several tables of one schema atomically; returns rows written per table."""
        with self.transaction():
            return {
                name: self.write_table(schema, name, df, run_id=run_id, as_of=as_of)
                for name, df in tables.items()
            }

    def drop_table(self, schema: str, name: str) -> None:
        self.con.execute(f'DROP TABLE IF EXISTS {_ident(schema)}."{_ident(name)}"')

    # -- reading ----------------------------------------------------------------------------
    def has_table(self, schema: str, name: str) -> bool:
        return name in self.tables(schema)

    def tables(self, schema: str) -> list[str]:
        rows = self.con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
            "ORDER BY table_name",
            [_ident(schema)],
        ).fetchall()
        return [r[0] for r in rows]

    def read_table(self, schema: str, name: str, *, stamps: bool = False) -> pd.DataFrame:
        """The whole table as a DataFrame, without the stamp columns unless asked."""
        if not self.has_table(schema, name):
            raise KeyError(f"warehouse {self.path}: no table {schema}.{name}")
        df = self.con.execute(f'SELECT * FROM {_ident(schema)}."{_ident(name)}"').df()
        if not stamps:
            df = df.drop(columns=[c for c in STAMP_COLUMNS if c in df.columns])
        return df

    def sql(self, query: str, params: list | None = None) -> pd.DataFrame:
        return self.con.execute(query, params or []).df()

    def stamp(self, schema: str, name: str) -> tuple[str, dt.date] | None:
        """The (run_id, as_of) the table was last written with, or None."""
        if not self.has_table(schema, name):
            return None
        row = self.con.execute(
            f'SELECT _run_id, _as_of FROM {_ident(schema)}."{_ident(name)}" LIMIT 1'
        ).fetchone()
        return (row[0], row[1]) if row else None
