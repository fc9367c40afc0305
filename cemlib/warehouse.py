"""The DuckDB warehouse: one file per project, tables written whole per run.

Every table written through :class:`Warehouse` carries two stamp columns, ``_run_id`` and
``_as_of``, and a row in ``meta.table_log`` so a run is traceable and a re-run idempotent
(``CREATE OR REPLACE``). Several tables can be written atomically, so a failed stage leaves no
partial output behind.

While ``cem run`` holds a warehouse, its stages work on a copy of it (the run's working copy,
see :mod:`cemlib.pipeline.isolation`) that replaces the warehouse only when the run succeeds.
The run names the copy in ``CEM_WAREHOUSE_SHADOW``; a :class:`Warehouse` opened on the
warehouse's path inside the run (a notebook kernel) opens the copy instead, so notebooks keep
their ``warehouse`` parameter and still never write the published file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import duckdb
import pandas as pd

from cemlib import DEFAULT_WAREHOUSE
from cemlib.errors import InputError

SCHEMAS: tuple[str, ...] = (
    "raw",
    "staging",
    "clean",
    "quarantine",
    "quality",
    "identity",
    "marts",
    "monitor",
    "truth",
    "meta",
)
STAMP_COLUMNS: tuple[str, ...] = ("_run_id", "_as_of")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


SHADOW_ENV = "CEM_WAREHOUSE_SHADOW"


def working_file(path: str | Path) -> Path:
    """The file a :class:`Warehouse` at ``path`` opens: the working copy of the run holding it
    (``CEM_WAREHOUSE_SHADOW``, ``{warehouse: copy}`` as JSON), else ``path`` itself."""
    raw = os.environ.get(SHADOW_ENV)
    if raw:
        try:
            mapping = json.loads(raw)
        except ValueError:
            mapping = {}
        target = mapping.get(str(Path(path).resolve())) if isinstance(mapping, dict) else None
        if target:
            return Path(target)
    return Path(path)


def lock_holder(err: Exception) -> str:
    """The process DuckDB names in its "Conflicting lock is held in ..." error (``/usr/bin/python3
    (PID 29829)``), or ``"another process"``."""
    m = re.search(r"held in (.+?\(PID \d+\))", str(err))
    return m.group(1) if m else "another process"


def table_columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[str]:
    """The column names of ``schema.table`` in their order (empty when it does not exist), on
    any DuckDB connection (a warehouse's, or one reading a lake's Parquet views)."""
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [schema, table],
    ).fetchall()
    return [r[0] for r in rows]


def _ident(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"not a valid table or schema name: {name!r}")
    return name


class Warehouse:
    """A DuckDB file holding the ``raw``/``staging``/``clean``/... schemas of one project.

    Use as a context manager; the connection is opened lazily and closed on exit so that a
    notebook does not hold the file lock longer than a cell.
    """

    def __init__(
        self, path: str | Path = DEFAULT_WAREHOUSE, *, read_only: bool = False, create: bool = True
    ):
        self.path = Path(path)
        #: False: a missing file is an :class:`InputError` instead of a new, empty warehouse
        #: (every stage after collect opens it so: a mistyped path leaves no empty file behind)
        self.create = create
        #: the file opened: ``path``, or the working copy of the ``cem run`` holding it
        self.file = working_file(self.path)
        self.read_only = read_only
        self._con: duckdb.DuckDBPyConnection | None = None

    # -- connection -------------------------------------------------------------------------
    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection, opened on first use (the schemas created unless read-only)."""
        if self._con is None:
            if not self.file.exists() and (self.read_only or not self.create):
                raise InputError(
                    "no warehouse at this path: the collect stage (cem collect, 00_collect.ipynb) "
                    "creates it; check the path, $CEM_HOME or the run config",
                    source=str(self.path),
                )
            if not self.read_only:
                self.file.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._con = duckdb.connect(str(self.file), read_only=self.read_only)
            except duckdb.IOException as err:  # another process holds it: one line, not
                if "lock" not in str(err).lower():  # DuckDB's traceback
                    raise
                raise InputError(
                    f"the warehouse is open in another process ({lock_holder(err)}): close it there (a "
                    "notebook kernel: wh.close() or restart it; a cem command: wait for it)",
                    source=str(self.path),
                ) from None
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
        """Close the connection (the next use opens it again)."""
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
        # the stamps are typed in SQL, so that an empty table still has a text run id and a
        # date (a pandas column of no values would become DuckDB's NULL type)
        columns = ", ".join(
            '"' + str(c).replace('"', '""') + '"' for c in df.columns if c not in STAMP_COLUMNS
        )
        con = self.con
        con.register("_cem_frame", df)
        try:
            con.execute(
                f'CREATE OR REPLACE TABLE {schema}."{name}" AS SELECT '
                f"{columns + ', ' if columns else ''}CAST(? AS VARCHAR) AS _run_id, "
                "CAST(? AS DATE) AS _as_of FROM _cem_frame",
                [run_id, as_of_date],
            )
        finally:
            con.unregister("_cem_frame")
        con.execute(
            "INSERT INTO meta.table_log VALUES (?, ?, ?, ?, ?, ?)",
            [schema, name, run_id, as_of_date, len(df), dt.datetime.now()],
        )
        return len(df)

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
        """Drop ``schema.name`` if it exists."""
        self.con.execute(f'DROP TABLE IF EXISTS {_ident(schema)}."{_ident(name)}"')

    # -- reading ----------------------------------------------------------------------------
    def has_table(self, schema: str, name: str) -> bool:
        """Whether ``schema.name`` exists."""
        return name in self.tables(schema)

    def tables(self, schema: str) -> list[str]:
        """The table names of ``schema``, sorted."""
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
        """The result of ``query`` (with ``params``) as a DataFrame."""
        return self.con.execute(query, params or []).df()

    def stamp(self, schema: str, name: str) -> tuple[str, dt.date] | None:
        """The (run_id, as_of) the table was last written with, or None."""
        if not self.has_table(schema, name):
            return None
        row = self.con.execute(
            f'SELECT _run_id, _as_of FROM {_ident(schema)}."{_ident(name)}" LIMIT 1'
        ).fetchone()
        return (row[0], row[1]) if row else None

    def provenance(self) -> dict[str, dict]:
        """Every table outside ``meta``: ``"schema.table" -> {"run_id", "rows"}``, the run id
        read from the table's ``_run_id`` stamp (else its last ``meta.table_log`` row, else
        None) and the row count DuckDB keeps for it."""
        con = self.con
        rows = con.execute(
            "SELECT schema_name, table_name, estimated_size FROM duckdb_tables() "
            "WHERE database_name = current_database() AND schema_name <> 'meta' "
            "ORDER BY schema_name, table_name"
        ).fetchall()
        logged: dict[tuple[str, str], str] = {}
        if self.has_table("meta", "table_log"):
            logged = {
                (s, t): r
                for s, t, r in con.execute(
                    "SELECT schema_name, table_name, arg_max(run_id, written_at) "
                    "FROM meta.table_log GROUP BY 1, 2"
                ).fetchall()
            }
        stamped = {
            (s, t)
            for s, t in con.execute(
                "SELECT table_schema, table_name FROM information_schema.columns "
                "WHERE column_name = '_run_id' AND table_catalog = current_database()"
            ).fetchall()
        }
        out: dict[str, dict] = {}
        for schema, name, n_rows in rows:
            run_id = logged.get((schema, name))
            if (schema, name) in stamped:
                row = con.execute(f'SELECT _run_id FROM {schema}."{name}" LIMIT 1').fetchone()
                run_id = row[0] if row else run_id
            out[f"{schema}.{name}"] = {"run_id": run_id, "rows": int(n_rows or 0)}
        return out
