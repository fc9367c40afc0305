"""The Spark engine's store: Parquet tables, one folder per table, ``<lake>/<schema>/<table>/``.

The schemas, tables and columns are the DuckDB warehouse's (:data:`cemlib.warehouse.SCHEMAS`,
the stamp columns ``_run_id`` and ``_as_of``). Spark writes the big tables; :class:`Lake` gives
the notebooks the reading surface of :class:`~cemlib.warehouse.Warehouse` (``has_table``,
``tables``, ``read_table`` of small tables, ``sql`` for aggregates and samples, ``stamp``,
``provenance``, ``write_table`` of small tables) through an in-memory DuckDB that reads the
Parquet files where they are, so a report is rendered from either engine with the same code
and never pulls a whole table into the driver.

A table is replaced by writing it beside its folder and renaming it into place
(:meth:`Lake.publish`), so a failed stage leaves the previous tables as they were.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Mapping
from pathlib import Path

import duckdb
import pandas as pd

from cemlib.config import resolve_path
from cemlib.warehouse import SCHEMAS, STAMP_COLUMNS, _ident

DEFAULT_LAKE = "data/lake"


def lake_path(path: str | Path | None = None) -> str:
    """``path`` as the lake's root: a URL (``s3a://...``) as given, a folder made absolute
    against the project root; None -> the project's ``data/lake``."""
    text = str(path) if path not in (None, "") else DEFAULT_LAKE
    if "://" in text:
        return text.rstrip("/")
    return str(resolve_path(text, DEFAULT_LAKE))


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def open_store(
    engine: str, warehouse: str | Path, *, lake: str | Path | None = None,
    spark_master: str = "local[*]",
):  # fmt: skip
    """Where a stage of a run with ``engine`` reads and writes: the DuckDB
    :class:`~cemlib.warehouse.Warehouse` at ``warehouse``, or the :class:`Lake` at ``lake``."""
    from cemlib.warehouse import Warehouse

    if engine == "spark":
        return Lake(lake, spark_master=spark_master)
    if engine != "duckdb":
        raise ValueError(f"engine must be duckdb or spark, got {engine!r}")
    return Warehouse(warehouse, create=False)


def lake_of(engine: str, lake: str | Path | None, spark_master: str = "local[*]"):
    """The :class:`Lake` a run with ``engine: spark`` writes to, None with ``duckdb``."""
    return Lake(lake, spark_master=spark_master) if engine == "spark" else None


class Lake:
    """Parquet tables under ``root`` read through DuckDB views named ``<schema>.<table>``.

    Use as a context manager like :class:`~cemlib.warehouse.Warehouse`. Listing and replacing
    tables needs a folder (a local path or a mounted object store); Spark reads and writes any
    URL its Hadoop connectors know.
    """

    #: the engine whose tables these are (the stages' ``run`` choose their Spark path by it)
    engine = "spark"

    def __init__(self, root: str | Path | None = None, *, spark_master: str = "local[*]"):
        self.root = lake_path(root)
        self.path = self.root  # the name the notebooks and reports print
        #: the Spark master the stages reading this lake run on
        self.spark_master = spark_master
        self._con: duckdb.DuckDBPyConnection | None = None

    # -- places -----------------------------------------------------------------------------
    @property
    def local(self) -> bool:
        """Whether the lake is a folder of this machine (listing and renaming work)."""
        return "://" not in self.root or self.root.startswith("file://")

    def _folder(self) -> Path:
        return Path(self.root.removeprefix("file://"))

    def table_path(self, schema: str, name: str) -> str:
        """Where ``schema.name`` lives: ``<lake>/<schema>/<name>``."""
        return f"{self.root}/{_ident(schema)}/{_ident(name)}"

    def staging_path(self, schema: str, name: str, run_id: str) -> str:
        """The folder a new version of ``schema.name`` is written to before :meth:`publish`."""
        return f"{self.root}/{_ident(schema)}/.{_ident(name)}.{run_id}.new"

    # -- connection -------------------------------------------------------------------------
    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB with one view per lake table (opened on first use)."""
        if self._con is None:
            self._con = duckdb.connect(":memory:")
            self.refresh()
        return self._con

    def refresh(self) -> None:
        """Re-create the views (after Spark wrote or replaced tables)."""
        con = self.con
        for schema in SCHEMAS:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            for (view,) in con.execute(
                "SELECT view_name FROM duckdb_views() WHERE schema_name = ? AND NOT internal",
                [schema],
            ).fetchall():
                con.execute(f'DROP VIEW {schema}."{view}"')
            for name in self._listed(schema):
                files = _sql_text(f"{self.table_path(schema, name)}/*.parquet")
                con.execute(f'CREATE VIEW {schema}."{name}" AS SELECT * FROM read_parquet({files})')

    def _listed(self, schema: str) -> list[str]:
        if not self.local:
            return []
        folder = self._folder() / schema
        if not folder.is_dir():
            return []
        return sorted(
            p.name
            for p in folder.iterdir()
            if p.is_dir() and not p.name.startswith(".") and any(p.glob("*.parquet"))
        )

    def close(self) -> None:
        """Close the DuckDB connection (the next use opens it again)."""
        if self._con is not None:
            self._con.close()
            self._con = None

    def __enter__(self) -> Lake:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- reading ----------------------------------------------------------------------------
    def tables(self, schema: str) -> list[str]:
        """The table names of ``schema``, sorted."""
        return self._listed(_ident(schema))

    def has_table(self, schema: str, name: str) -> bool:
        """Whether ``schema.name`` exists."""
        return name in self.tables(schema)

    def sql(self, query: str, params: list | None = None) -> pd.DataFrame:
        """The result of a DuckDB ``query`` over the lake's views as a DataFrame."""
        return self.con.execute(query, params or []).df()

    def read_table(self, schema: str, name: str, *, stamps: bool = False) -> pd.DataFrame:
        """The whole table as a DataFrame (small tables: results, conservation, examples)."""
        if not self.has_table(schema, name):
            raise KeyError(f"lake {self.root}: no table {schema}.{name}")
        df = self.sql(f'SELECT * FROM {_ident(schema)}."{_ident(name)}"')
        if not stamps:
            df = df.drop(columns=[c for c in STAMP_COLUMNS if c in df.columns])
        return df

    def count(self, schema: str, name: str) -> int:
        """Rows of ``schema.name`` (from the Parquet footers)."""
        return int(self.sql(f'SELECT count(*) AS n FROM {_ident(schema)}."{_ident(name)}"').n[0])

    def stamp(self, schema: str, name: str) -> tuple[str, dt.date] | None:
        """The (run_id, as_of) the table was last written with, or None."""
        if not self.has_table(schema, name):
            return None
        row = self.con.execute(
            f'SELECT _run_id, _as_of FROM {_ident(schema)}."{_ident(name)}" LIMIT 1'
        ).fetchone()
        return (row[0], row[1]) if row else None

    def provenance(self) -> dict[str, dict]:
        """Every table: ``"schema.table" -> {"run_id", "rows"}`` (as the warehouse gives it)."""
        out = {}
        for schema in SCHEMAS:
            for name in self.tables(schema):
                got = self.stamp(schema, name)
                out[f"{schema}.{name}"] = {
                    "run_id": got[0] if got else None,
                    "rows": self.count(schema, name),
                }
        return out

    # -- writing ----------------------------------------------------------------------------
    def write_table(
        self, schema: str, name: str, df: pd.DataFrame, *, run_id: str, as_of: str | dt.date
    ) -> int:
        """Replace ``schema.name`` with the small frame ``df`` stamped with ``run_id``, ``as_of``."""
        new = self.staging_path(schema, name, run_id)
        self._write_frame(df, new, run_id, as_of)
        self.publish({(schema, name): new})
        return len(df)

    def write_tables(
        self, schema: str, tables: Mapping[str, pd.DataFrame], *, run_id: str, as_of
    ) -> dict[str, int]:
        """Write several small tables of one schema, all renamed into place together."""
        staged = {}
        for name, df in tables.items():
            staged[(schema, name)] = self.staging_path(schema, name, run_id)
            self._write_frame(df, staged[(schema, name)], run_id, as_of)
        self.publish(staged)
        return {name: len(df) for name, df in tables.items()}

    def _write_frame(self, df: pd.DataFrame, folder: str, run_id: str, as_of) -> None:
        if not self.local:
            raise ValueError(f"lake {self.root}: small tables are written to a folder only")
        target = Path(folder.removeprefix("file://"))
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        con = duckdb.connect(":memory:")
        try:
            con.register("_cem_frame", df)
            # the stamps last, or where the frame has them (a column the DuckDB engine adds
            # to a written table, such as identity.profiles.closed_at, comes after them)
            stamps = {
                "_run_id": ("CAST(? AS VARCHAR) AS _run_id", run_id),
                "_as_of": ("CAST(? AS DATE) AS _as_of", pd.Timestamp(as_of).date()),
            }
            order = [*df.columns, *(c for c in STAMP_COLUMNS if c not in df.columns)]
            select, params = [], []
            for c in order:
                if c in stamps:
                    select.append(stamps[c][0])
                    params.append(stamps[c][1])
                else:
                    select.append('"' + str(c).replace('"', '""') + '"')
            con.execute(
                f"COPY (SELECT {', '.join(select)} FROM _cem_frame) "
                f"TO {_sql_text(str(target / 'part-00000.parquet'))} (FORMAT PARQUET)",
                params,
            )
        finally:
            con.close()

    def publish(self, staged: Mapping[tuple[str, str], str]) -> None:
        """Rename each staged folder to its table's place (the old version removed first)."""
        if not self.local:
            raise ValueError(f"lake {self.root}: tables are replaced in a folder only")
        for (schema, name), folder in staged.items():
            target = Path(self.table_path(schema, name).removeprefix("file://"))
            shutil.rmtree(target, ignore_errors=True)
            Path(folder.removeprefix("file://")).rename(target)
        if self._con is not None:
            self.refresh()

    def discard(self, staged: Mapping[tuple[str, str], str]) -> None:
        """Remove staged folders that will not be published (a failed stage)."""
        for folder in staged.values():
            shutil.rmtree(folder.removeprefix("file://"), ignore_errors=True)

    def drop_table(self, schema: str, name: str) -> None:
        """Remove ``schema.name`` if it exists."""
        if self.local:
            shutil.rmtree(self.table_path(schema, name).removeprefix("file://"), ignore_errors=True)
        if self._con is not None:
            self.refresh()

    # -- Spark ------------------------------------------------------------------------------
    def spark(self, **options):
        """The process's Spark session on :attr:`spark_master` (see
        :func:`cemlib.engine.spark_session`)."""
        from cemlib.engine.session import spark_session

        return spark_session(self.spark_master, **options)

    def spark_table(self, spark, schema: str, name: str):
        """``schema.name`` as a Spark DataFrame."""
        return spark.read.parquet(self.table_path(schema, name))

    def temp_view(self, spark, schema: str, name: str, view: str | None = None) -> str | None:
        """``schema.name`` registered as the temporary view ``view`` (default
        ``<schema>_<name>``) of ``spark``; its name, or None when the lake has no such table."""
        if not self.has_table(schema, name):
            return None
        view = view or f"{schema}_{name}"
        self.spark_table(spark, schema, name).createOrReplaceTempView(view)
        return view
