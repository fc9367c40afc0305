"""The collection stage: source files or the synthetic world -> ``raw.*`` and ``staging.*``.

``raw.<table>`` holds every column as text exactly as received plus ``_source_row``;
``staging.<table>`` holds the same rows typed, with normalized identifier columns added
(``phone_e164``, ``email_norm``, ``email_key``, ``*_name_norm``, ``*_name_lat``,
``gender_hint``). A value that cannot be typed becomes NA in staging (its text stays in raw)
and is counted. Tables are written beside the old ones and swapped in at the end in one
transaction: a bad input leaves the previous run untouched.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import pandas as pd

from cemlib.collect.loaders import (
    SOURCE_ROW,
    LoadedTable,
    plan_folder,
    read_table_file,
    table_from_frame,
)
from cemlib.config import warehouse_path
from cemlib.errors import InputError
from cemlib.normalize import (
    email_key,
    email_norm,
    gender_hint,
    name_norm,
    normalize_phone,
    parse_amounts,
    parse_bools,
    parse_dates,
    split_full_name,
    translit_key,
)
from cemlib.progress import progress as progress_bar
from cemlib.schema import BOOL, DATE, NAME_PARTS, NUMBER, TABLES, TIMESTAMP, TableSpec
from cemlib.warehouse import Warehouse

#: rows staged and written at a time: memory stays at one chunk's size, whatever the table's
CHUNK_ROWS = 2 * 122_880  # two DuckDB row groups
#: DuckDB's memory cap during a collect run; past it the transaction spills to disk
DEFAULT_MEMORY_LIMIT = "1GB"
_STAT_COUNTS = ("n_values", "n_changed", "n_unparsed")
STAT_COLUMNS = ["table", "column", "kind", "n_values", "n_changed", "n_unparsed"]


@dataclass
class CollectResult:
    """What the collection stage did, as frames a notebook shows."""

    run_id: str
    as_of: dt.date
    source: str
    #: per table: rows in raw and staging, file, encoding, delimiter, date range, rows after as_of
    tables: pd.DataFrame
    #: per table and identifier: rows carrying it (raw) and rows where it normalized to a value
    coverage: pd.DataFrame
    #: per column: values, how many normalization changed, how many could not be parsed
    normalization: pd.DataFrame
    #: canonical tables the source lacked (all optional)
    missing_tables: list[str] = field(default_factory=list)
    #: rows per truth table (synthetic source only)
    truth: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    warehouse: Path | None = None

    @property
    def n_unparsed(self) -> int:
        return int(self.normalization["n_unparsed"].sum()) if len(self.normalization) else 0


# -- staging of one table -------------------------------------------------------------------
def _present(text: pd.Series) -> pd.Series:
    """Rows where the raw text holds something other than blanks."""
    return text.notna() & text.str.strip().ne("").fillna(False)


def _stat(table, column, kind, present, normalized, changed=None) -> dict:
    """Figures of one normalized column: ``changed`` counts values normalization rewrote
    (not those it could not parse, which ``n_unparsed`` counts)."""
    unparsed = present & normalized.isna()
    return {
        "table": table,
        "column": column,
        "kind": kind,
        "n_values": int(present.sum()),
        "n_changed": int(changed.sum()) if changed is not None else pd.NA,
        "n_unparsed": int(unparsed.sum()),
    }


def _split_names(staged: pd.DataFrame, raw: pd.DataFrame, stats: list[dict], table: str) -> None:
    """Fill name parts from ``full_name`` where they are absent; add ``*_norm``/``*_lat``."""
    hint = None
    if "full_name" in staged.columns:
        parts = split_full_name(staged["full_name"])
        for part in NAME_PARTS:
            if part in staged.columns:
                before = staged[part].notna()
                staged[part] = staged[part].astype("string").fillna(parts[part])
            else:
                before = pd.Series(False, index=staged.index)
                staged[part] = parts[part]
            filled = ~before & staged[part].notna()
            stats.append(
                {
                    "table": table,
                    "column": part,
                    "kind": "name split",
                    "n_values": int(_present(raw["full_name"]).sum()),
                    "n_changed": int(filled.sum()),
                    "n_unparsed": 0,
                }
            )
        hint = parts["gender_hint"]
    for part in NAME_PARTS:
        if part not in staged.columns:
            continue
        text = staged[part].astype("string")
        present = _present(text)
        norm = name_norm(text)
        staged[f"{part}_norm"] = norm
        staged[f"{part}_lat"] = translit_key(text)
        stats.append(
            _stat(
                table,
                part,
                "name",
                present,
                norm,
                present & norm.ne(text.str.strip().str.lower()).fillna(False),
            )
        )
    if any(p in staged.columns for p in NAME_PARTS):
        derived = gender_hint(*(staged[p] if p in staged.columns else None for p in NAME_PARTS))
        staged["gender_hint"] = hint.fillna(derived) if hint is not None else derived


def stage_table(spec: TableSpec, loaded: LoadedTable) -> tuple[pd.DataFrame, list[dict]]:
    """The staging frame of one loaded table and its per-column normalization figures."""
    raw = loaded.frame
    typed = loaded.typed
    staged = raw.copy(deep=False)  # text columns shared with raw; typed ones replaced
    stats: list[dict] = []
    for col in raw.columns:
        if col == SOURCE_ROW:
            continue
        kind = spec.kind(col)
        if kind == "text":
            continue
        src = typed[col] if typed is not None and col in typed.columns else raw[col]
        present = _present(raw[col])
        if kind in (TIMESTAMP, DATE):
            values = parse_dates(src)
            if kind == DATE:
                values = values.dt.normalize()
            values = values.astype("datetime64[us]")
        elif kind == NUMBER:
            values = parse_amounts(src)
        elif kind == BOOL:
            values = parse_bools(src)
        else:  # pragma: no cover - schema kinds are fixed
            raise ValueError(kind)
        staged[col] = values.set_axis(staged.index)
        stats.append(_stat(spec.name, col, kind, present, staged[col]))
    for col in spec.phones:
        if col in raw.columns:
            e164 = normalize_phone(raw[col])
            staged[f"{col}_e164"] = e164
            present = _present(raw[col])
            stats.append(
                _stat(
                    spec.name,
                    col,
                    "phone",
                    present,
                    e164,
                    present & e164.ne(raw[col]).fillna(False),
                )
            )
    for col in spec.emails:
        if col in raw.columns:
            norm, key = email_norm(raw[col]), email_key(raw[col])
            staged[f"{col}_norm"], staged[f"{col}_key"] = norm, key
            present = _present(raw[col])
            stats.append(
                _stat(
                    spec.name,
                    col,
                    "email",
                    present,
                    norm,
                    present & norm.ne(raw[col]).fillna(False),
                )
            )
            stats.append(
                _stat(
                    spec.name,
                    f"{col}_key",
                    "email key",
                    norm.notna(),
                    key,
                    norm.notna() & key.ne(norm).fillna(False),
                )
            )
    if spec.name == "crm_contacts":
        _split_names(staged, raw, stats, spec.name)
    return staged, stats


# -- figures ----------------------------------------------------------------------------------
def _coverage(name: str, spec: TableSpec, raw: pd.DataFrame, staged: pd.DataFrame) -> list[dict]:
    """Per identifier: rows, rows carrying it, rows where it normalized to a value (counts, so
    that the figures of a table's chunks add up; :func:`_coverage_frame` adds the shares)."""
    rows = []
    any_present = pd.Series(False, index=raw.index)
    any_valid = pd.Series(False, index=raw.index)
    for ident in spec.identifiers:
        if ident not in raw.columns:
            continue
        present = _present(raw[ident])
        norm_col = next(
            (c for c in (f"{ident}_e164", f"{ident}_key", f"{ident}_norm") if c in staged.columns),
            ident,
        )
        valid = staged[norm_col].notna() & present
        any_present |= present
        any_valid |= valid
        rows.append((ident, present, valid))
    if rows:
        rows.append(("any identifier", any_present, any_valid))
    return [
        {
            "table": name,
            "identifier": ident,
            "n_rows": len(raw),
            "n_present": int(present.sum()),
            "n_valid": int(valid.sum()),
        }
        for ident, present, valid in rows
    ]


def _coverage_frame(rows: list[dict]) -> pd.DataFrame:
    out = pd.DataFrame(rows)
    if len(out):
        n = out["n_rows"].where(out["n_rows"] > 0)
        out.insert(4, "share_present", out["n_present"] / n)
        out["share_valid"] = out["n_valid"] / n
    return out


def _add_up(acc: dict, rows: list[dict], keys: tuple[str, ...], counts: tuple[str, ...]) -> None:
    """Sum the count fields of ``rows`` into ``acc`` (keyed by ``keys``, first-seen order); a
    count that is NA in any chunk stays NA."""
    for row in rows:
        key = tuple(row[k] for k in keys)
        if key not in acc:
            acc[key] = dict(row)
            continue
        total = acc[key]
        for c in counts:
            a, b = total[c], row[c]
            total[c] = pd.NA if a is pd.NA or b is pd.NA else a + b


def _table_row(
    name: str, loaded: LoadedTable, n_raw: int, n_staging: int, dates, as_of: pd.Timestamp
) -> dict:
    """The figures of one table; ``loaded`` is its first chunk, ``dates`` its typed date column
    (all chunks) or None."""
    spec = TABLES[name]
    row = {
        "table": name,
        "file": loaded.path.name if loaded.path else loaded.format,
        "encoding": loaded.encoding,
        "delimiter": {"\t": "tab"}.get(loaded.delimiter, loaded.delimiter),
        "n_raw": n_raw,
        "n_staging": n_staging,
        "n_columns": len(loaded.frame.columns) - 1,
        "extra_columns": ", ".join(loaded.extra_columns),
        "date_column": spec.date_column,
        "first_date": pd.NaT,
        "last_date": pd.NaT,
        "p01_date": pd.NaT,
        "p99_date": pd.NaT,
        "n_after_as_of": 0,
        "status": "header only: 0 rows" if loaded.header_only else "ok",
    }
    if dates is not None:
        row["first_date"], row["last_date"] = dates.min(), dates.max()
        # the bulk of the rows, not a stray 1900-01-01 or a typo of the year
        if dates.notna().any():
            row["p01_date"] = dates.quantile(0.01).floor("s")
            row["p99_date"] = dates.quantile(0.99).floor("s")
        row["n_after_as_of"] = int((dates >= as_of + pd.Timedelta(days=1)).sum())
    return row


# -- the stage --------------------------------------------------------------------------------
def _world_chunks(world, name: str, release: bool, rows: int) -> Iterator[LoadedTable]:
    """The world's source table ``name`` as :class:`LoadedTable` chunks of ``rows`` rows, text
    made chunk by chunk; with ``release`` the table is taken out of ``world.sources`` so that
    its memory goes as soon as it is written."""
    frame = world.sources.pop(name) if release else world.sources[name]
    n = len(frame)
    for start in range(0, max(n, 1), rows):
        piece = table_from_frame(name, frame.iloc[start : start + rows], start=start)
        piece.header_only = n == 0
        yield piece


def _file_chunks(read: Callable[[], LoadedTable], rows: int) -> Iterator[LoadedTable]:
    """A file read whole (text), staged and written in chunks of ``rows`` rows."""
    loaded = read()
    n = len(loaded.frame)
    if n <= rows:
        yield loaded
        return
    for start in range(0, n, rows):
        stop = start + rows
        typed = loaded.typed
        yield replace(
            loaded,
            frame=_rows(loaded.frame, start, stop),
            typed=None if typed is None else _rows(typed, start, stop),
        )


def _rows(df: pd.DataFrame, start: int, stop: int) -> pd.DataFrame:
    out = df.iloc[start:stop]
    out.index = pd.RangeIndex(len(out))
    return out


def _write_chunk(con, schema: str, name: str, df: pd.DataFrame, stamp: dict, first: bool) -> None:
    """``schema.name`` created from the first chunk, the next ones appended; stamped like
    :meth:`Warehouse.write_table` (the ``meta.table_log`` row is added per table)."""
    frame = df.copy(deep=False)
    frame["_run_id"] = stamp["run_id"]
    frame["_as_of"] = stamp["as_of"]
    con.register("_cem_chunk", frame)
    try:
        if first:
            con.execute(f'CREATE OR REPLACE TABLE {schema}."{name}" AS SELECT * FROM _cem_chunk')
        else:
            con.execute(f'INSERT INTO {schema}."{name}" BY NAME SELECT * FROM _cem_chunk')
    finally:
        con.unregister("_cem_chunk")


_SHADOW = "_cem_new_"


def _shadow(name: str) -> str:
    """The table a run writes before it replaces ``name``."""
    return _SHADOW + name


def _drop_shadows(wh: Warehouse) -> None:
    for schema in ("raw", "staging", "truth"):
        for name in wh.tables(schema):
            if name.startswith(_SHADOW):
                wh.drop_table(schema, name)


def _log_table(con, schema: str, name: str, n_rows: int, stamp: dict) -> None:
    con.execute(
        "INSERT INTO meta.table_log VALUES (?, ?, ?, ?, ?, ?)",
        [schema, name, stamp["run_id"], stamp["as_of"], n_rows, dt.datetime.now()],
    )


@contextlib.contextmanager
def _memory_limit(con, limit: str | None, temp_directory: str | Path | None):
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
            if v == _default_setting(n):  # exact (the text of a size is rounded)
                con.execute(f"RESET {n}")
            else:
                con.execute(f"SET {n} = '{v}'")


def _default_setting(name: str) -> str:
    import duckdb

    with duckdb.connect() as fresh:
        return fresh.execute(f"SELECT current_setting('{name}')").fetchone()[0]


def _synthetic(n_people: int, seed: int, as_of: str):
    try:
        from cemlib.synth import generate
    except ImportError as exc:  # pragma: no cover - synth is part of the package
        raise InputError(
            f"the synthetic world is not available: {exc}", source="synthetic"
        ) from None
    return generate(n_people=n_people, seed=seed, as_of=str(as_of))


def collect(
    source: str | Path = "synthetic",
    warehouse: str | Path | Warehouse | None = None,
    run_id: str = "dev",
    as_of: str | dt.date = "2025-06-30",
    n_people: int = 20_000,
    seed: int = 42,
    mapping: Mapping | str | Path | None = None,
    encoding: str | None = None,
    progress: bool = True,
    world=None,
    release_world: bool | None = None,
    memory_limit: str | None = DEFAULT_MEMORY_LIMIT,
    temp_directory: str | Path | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> CollectResult:
    """Load ``source`` (``"synthetic"`` or a folder of CSV/Parquet files named after the
    canonical tables) into ``raw.*`` and ``staging.*`` (and ``truth.*`` for the synthetic world)
    of ``warehouse``, swapped in together at the end (a bad file leaves the previous run
    untouched). Returns the figures of what was loaded.

    ``world`` is an already generated :class:`cemlib.synth.SyntheticWorld` to load instead of
    generating one from ``n_people``/``seed`` (benchmarks, notebooks that reuse a world).
    With ``release_world`` collect takes ownership of the world's frames: each source and truth
    table is removed from ``world.sources``/``world.truth`` once written, so the world does not
    stay in memory beside the warehouse copies (default: only for a world collect generated
    itself; a world you pass is left whole unless you ask).

    ``memory_limit`` caps DuckDB's memory for the run (``"1GB"`` by default, ``None`` for
    DuckDB's own 80 % of RAM): past it the open transaction spills to ``temp_directory``
    (default ``<warehouse>.tmp``) instead of growing in RAM. Each table is typed, normalized
    and written ``chunk_rows`` rows at a time (the figures are those of the whole table).
    """
    as_of_ts = pd.Timestamp(as_of).normalize()
    synthetic = str(source) == "synthetic"
    readers: dict[str, Callable[[], Iterator[LoadedTable]]] = {}
    if synthetic:
        if world is None:
            world = _synthetic(n_people, seed, as_of_ts.date().isoformat())
            release = True if release_world is None else release_world
        else:
            release = bool(release_world)
            if "people" in world.truth:
                n_people = len(world.truth["people"])
        for name in world.sources:
            if name in TABLES:
                readers[name] = partial(_world_chunks, world, name, release, chunk_rows)
        missing = [t for t in TABLES if t not in readers]
        truth_counts = {k: len(v) for k, v in world.truth.items()}
        source_label = f"synthetic world ({n_people:,} people, seed {seed})"
    else:
        plan = plan_folder(source, mapping=mapping)
        release = False
        truth_counts = {}
        for name, path in plan.paths.items():
            read = partial(
                read_table_file, path, name, mapping=plan.columns.get(name), encoding=encoding
            )
            readers[name] = partial(_file_chunks, read, chunk_rows)
        missing = plan.missing
        source_label = str(plan.path)

    stats: dict[tuple, dict] = {}
    coverage: dict[tuple, dict] = {}
    table_rows: list[dict] = []
    own = not isinstance(warehouse, Warehouse)
    wh = Warehouse(warehouse_path(warehouse)) if own else warehouse
    if temp_directory is None:  # cem run's temp_directory setting, when it runs this stage
        from cemlib.budget import TEMP_ENV

        temp_directory = os.environ.get(TEMP_ENV) or None
    stamp = {"run_id": run_id, "as_of": as_of_ts.date()}
    written: list[tuple[str, str, int]] = []  # (schema, table, rows) in shadow tables
    try:
        # one table at a time and each in chunks of rows (memory stays at one chunk's size),
        # each chunk committed into a shadow table (`raw._cem_new_<table>`): a transaction
        # holding the whole load would keep it in RAM. The shadows replace the tables in one
        # short transaction at the end; a bad file anywhere drops them, so the previous run
        # stays intact.
        with _memory_limit(wh.con, memory_limit, temp_directory):
            _drop_shadows(wh)  # left over by a run that was killed
            if synthetic:  # truth first, so that a released world shrinks before the big tables
                for name in list(world.truth):
                    frame = world.truth.pop(name) if release else world.truth[name]
                    _write_chunk(wh.con, "truth", _shadow(name), frame, stamp, True)
                    written.append(("truth", name, len(frame)))
                    del frame
            for name in progress_bar(list(readers), desc="collect", disable=not progress):
                spec = TABLES[name]
                first = None
                n_raw = n_staging = 0
                dates: list[pd.Series] = []
                for loaded in readers[name]():
                    head = first is None
                    if head:
                        first = loaded
                    _write_chunk(wh.con, "raw", _shadow(name), loaded.frame, stamp, head)
                    staged, table_stats = stage_table(spec, loaded)
                    if len(staged) != len(loaded.frame):  # pragma: no cover - an invariant
                        raise AssertionError(f"{name}: staging lost rows")
                    _write_chunk(wh.con, "staging", _shadow(name), staged, stamp, head)
                    n_raw += len(loaded.frame)
                    n_staging += len(staged)
                    _add_up(stats, table_stats, ("table", "column", "kind"), _STAT_COUNTS)
                    _add_up(
                        coverage,
                        _coverage(name, spec, loaded.frame, staged),
                        ("table", "identifier"),
                        ("n_rows", "n_present", "n_valid"),
                    )
                    if spec.date_column and spec.date_column in staged.columns:
                        dates.append(staged[spec.date_column].copy())
                    del loaded, staged
                written += [("raw", name, n_raw), ("staging", name, n_staging)]
                all_dates = pd.concat(dates, ignore_index=True) if dates else None
                table_rows.append(_table_row(name, first, n_raw, n_staging, all_dates, as_of_ts))
                del first, dates, all_dates
            with wh.transaction():
                for schema, name, n_rows in written:
                    wh.drop_table(schema, name)
                    wh.con.execute(f'ALTER TABLE {schema}."{_shadow(name)}" RENAME TO "{name}"')
                    _log_table(wh.con, schema, name, n_rows, stamp)
                # tables of an earlier run that this source does not have must not linger
                for name in missing:
                    wh.drop_table("raw", name)
                    wh.drop_table("staging", name)
                if not synthetic:
                    for name in wh.tables("truth"):
                        wh.drop_table("truth", name)
        wh_path = wh.path
    except BaseException:
        _drop_shadows(wh)
        raise
    finally:
        if own:
            wh.close()

    warnings = [
        f"{r['table']}: header only, loaded as 0 rows" for r in table_rows if r["status"] != "ok"
    ]
    if missing:
        warnings.append("tables not in the source (optional): " + ", ".join(missing))
    normalization = pd.DataFrame(list(stats.values()), columns=STAT_COLUMNS)
    if len(normalization):
        normalization["share_changed"] = normalization["n_changed"].astype(
            "Float64"
        ) / normalization["n_values"].where(normalization["n_values"] > 0)
        normalization["share_unparsed"] = normalization["n_unparsed"] / normalization[
            "n_values"
        ].where(normalization["n_values"] > 0)
    return CollectResult(
        run_id=run_id,
        as_of=as_of_ts.date(),
        source=source_label,
        tables=pd.DataFrame(table_rows),
        coverage=_coverage_frame(list(coverage.values())),
        normalization=normalization,
        missing_tables=missing,
        truth=truth_counts,
        warnings=warnings,
        warehouse=wh_path,
    )
