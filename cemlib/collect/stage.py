"""The collection stage: source files or the synthetic world -> ``raw.*`` and ``staging.*``.

``raw.<table>`` holds every column as text exactly as received plus ``_source_row``;
``staging.<table>`` holds the same rows typed, with normalized identifier columns added
(``phone_e164``, ``email_norm``, ``email_key``, ``*_name_norm``, ``*_name_lat``,
``gender_hint``). A value that cannot be typed becomes NA in staging (its text stays in raw)
and is counted. Tables are written beside the old ones and swapped in at the end in one
transaction: a bad input leaves the previous run untouched.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from cemlib import DEFAULT_AS_OF, DEFAULT_SEED
from cemlib.collect.chunks import (
    capped_memory,
    drop_shadows,
    file_chunks,
    log_table,
    shadow,
    world_chunks,
    write_chunk,
)
from cemlib.collect.empty import refuse_empty_tables
from cemlib.collect.loaders import (
    LoadedTable,
    plan_folder,
    read_table_file,
)
from cemlib.collect.staging import add_up, coverage_frame, stage_table  # noqa: F401 (re-exported)
from cemlib.collect.workers import ChunkStager, workers_for
from cemlib.config import warehouse_path
from cemlib.errors import InputError
from cemlib.progress import progress as progress_bar
from cemlib.schema import TABLES
from cemlib.warehouse import Warehouse, table_columns

#: rows staged and written at a time: memory stays at one chunk's size, whatever the table's
CHUNK_ROWS = 2 * 122_880  # two DuckDB row groups
#: DuckDB's memory cap during a collect run; past it the transaction spills to disk
DEFAULT_MEMORY_LIMIT = "1GB"
_STAT_COUNTS = ("n_values", "n_changed", "n_unparsed", "n_masked")
#: ``n_masked``: masked phones (counted among ``n_unparsed``: no phone, NA in staging)
STAT_COLUMNS = ["table", "column", "kind", "n_values", "n_changed", "n_unparsed", "n_masked"]


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
        """Values of typed columns that could not be read, over every table."""
        return int(self.normalization["n_unparsed"].sum()) if len(self.normalization) else 0


# -- staging of one table -------------------------------------------------------------------
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
        "days_after_as_of": 0,
        "n_set_aside": 0 if loaded.long_lines is None else len(loaded.long_lines),
        "set_aside_lines": "" if loaded.long_lines is None else _lines_text(loaded.long_lines),
        "status": "header only: 0 rows" if loaded.header_only else "ok",
    }
    if dates is not None:
        row["first_date"], row["last_date"] = dates.min(), dates.max()
        # the bulk of the rows, not a stray 1900-01-01 or a typo of the year
        if dates.notna().any():
            # a date-only column's percentiles stay dates: the interpolation between two days
            # is no time of day (trial 12 F9: "2022-08-15 04:04")
            valid = dates.dropna()
            unit = "D" if valid.eq(valid.dt.normalize()).all() else "s"
            row["p01_date"] = dates.quantile(0.01).floor(unit)
            row["p99_date"] = dates.quantile(0.99).floor(unit)
        late = dates[dates >= as_of + pd.Timedelta(days=1)]
        row["n_after_as_of"] = len(late)
        row["days_after_as_of"] = days_continuing(dates, as_of)
    return row


#: the days after ``as_of`` :func:`days_continuing` looks at
AFTER_WINDOW_DAYS = 31


def days_continuing(dates: pd.Series, as_of) -> int:
    """The calendar days of the month after ``as_of`` on which the data goes on as before it:
    days holding at least a tenth of a usual day's rows (the median of the 28 days up to
    ``as_of``, at least one row). One such day is an export taken the morning after ``as_of``;
    more means ``as_of`` lags the data (a schedule that never moves it). Stray dates — a typo
    of the year, a clock set a year ahead, a few rows a day — are not the data going on."""
    as_of = pd.Timestamp(as_of).normalize()
    days = dates.dropna().dt.normalize()
    recent = days[(days > as_of - pd.Timedelta(days=28)) & (days <= as_of)]
    usual = recent.value_counts().reindex(pd.date_range(end=as_of, periods=28), fill_value=0)
    floor = max(1.0, 0.1 * float(usual.median()))
    after = days[(days > as_of) & (days <= as_of + pd.Timedelta(days=AFTER_WINDOW_DAYS))]
    after = after.value_counts()
    return int((after >= floor).sum())


def _lines_text(long: pd.DataFrame, most: int = 10) -> str:
    """The line numbers of the lines set aside (the first ``most``)."""
    lines = [str(int(x)) for x in long["line"].head(most)]
    more = f" and {len(long) - most:,} more" if len(long) > most else ""
    return ", ".join(lines) + more


# -- the stage --------------------------------------------------------------------------------
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
    as_of: str | dt.date = DEFAULT_AS_OF,
    n_people: int = 20_000,
    seed: int = DEFAULT_SEED,
    mapping: Mapping | str | Path | None = None,
    encoding: str | None = None,
    progress: bool = True,
    world=None,
    release_world: bool | None = None,
    memory_limit: str | None = DEFAULT_MEMORY_LIMIT,
    temp_directory: str | Path | None = None,
    chunk_rows: int = CHUNK_ROWS,
    workers: int | str = 1,
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

    ``workers``: processes that stage chunks side by side, this one included (default 1: every
    chunk staged here; ``"auto"``: as many as the cores, ``$CEM_WORKERS`` and the memory budget
    allow, :func:`cemlib.collect.workers.workers_for`). The tables are the same whatever the
    number. One is the default because two did not pay on 2 cores: at 200,000 people stage 00
    took 52.5 s wall with one process and 86.7 s with two (``benchmarks/collect_cores.py``).
    """
    as_of_ts = pd.Timestamp(as_of).normalize()
    synthetic = str(source) == "synthetic"
    if workers == "auto":
        people = (
            len(world.truth["people"])
            if world is not None and "people" in world.truth
            else n_people
        )
        workers = workers_for(people if synthetic else None)
    # forked before the world is generated: the workers share none of it
    with ChunkStager(workers, as_of_ts) as stager:
        return _collect(source, warehouse, run_id, as_of_ts, n_people, seed, mapping, encoding,
                        progress, world, release_world, memory_limit, temp_directory,
                        chunk_rows, synthetic, stager)  # fmt: skip


def _collect(
    source, warehouse, run_id, as_of_ts, n_people, seed, mapping, encoding, progress, world,
    release_world, memory_limit, temp_directory, chunk_rows, synthetic, stager,
) -> CollectResult:  # fmt: skip
    """:func:`collect` with its staging workers started."""
    if synthetic:
        plan = _world_plan(world, n_people, seed, as_of_ts, release_world, chunk_rows)
    else:
        plan = _folder_plan(source, mapping, encoding, chunk_rows)
    stats: dict[tuple, dict] = {}
    coverage: dict[tuple, dict] = {}
    table_rows: list[dict] = []
    own = not isinstance(warehouse, Warehouse)
    new_file = own and not warehouse_path(warehouse).exists()
    wh = Warehouse(warehouse_path(warehouse)) if own else warehouse
    if temp_directory is None:  # cem run's temp_directory setting, when it runs this stage
        from cemlib.budget import TEMP_ENV

        temp_directory = os.environ.get(TEMP_ENV) or None
    stamp = {"run_id": run_id, "as_of": as_of_ts.date()}
    try:
        with capped_memory(wh.con, memory_limit, temp_directory):
            table_rows = _load(
                wh, plan, synthetic, stamp, stats, coverage, as_of_ts, progress, stager
            )
            contact = contact_phone_warnings(wh)
        wh_path = wh.path
    except BaseException:
        drop_shadows(wh)
        if new_file and wh.file == wh.path:  # a failed first load leaves no empty file behind
            wh.close()
            for f in (wh.file, wh.file.with_name(wh.file.name + ".wal")):
                f.unlink(missing_ok=True)
        raise
    finally:
        if own:
            wh.close()
    normalization = _normalization_frame(stats)
    return CollectResult(
        run_id=run_id,
        as_of=as_of_ts.date(),
        source=plan.label,
        tables=pd.DataFrame(table_rows),
        coverage=coverage_frame(list(coverage.values())),
        normalization=normalization,
        missing_tables=plan.missing,
        truth=plan.truth_counts,
        warnings=_warnings(table_rows, plan.missing, normalization) + contact,
        warehouse=wh_path,
    )


def _load(
    wh, plan, synthetic: bool, stamp, stats, coverage, as_of_ts, progress, stager
) -> list[dict]:
    """Every table of ``plan`` into ``wh``; returns their figures (rows of ``tables``).

    One table at a time and each in chunks of rows (memory stays at a few chunks' size), each
    chunk staged by ``stager`` (on every core, handed back in read order) and committed into a
    shadow table (``raw._cem_new_<table>``): a transaction holding the whole load would keep
    it in RAM. The shadows replace the tables in one short transaction at the end; a bad file
    anywhere drops them, so the previous run stays intact.
    """
    written: list[tuple[str, str, int]] = []  # (schema, table, rows) in shadow tables
    table_rows: list[dict] = []
    drop_shadows(wh)  # left over by a run that was killed
    truth: list[tuple[str, str, int]] = []

    def write_truth() -> None:  # while the workers stage the first chunks
        if synthetic:  # before the big tables, so that a released world shrinks
            truth.extend(_write_truth(wh, plan.world, plan.release, stamp))

    def chunks():
        for name in progress_bar(list(plan.readers), desc="collect", disable=not progress):
            for loaded in plan.readers[name]():
                yield name, loaded

    table: _TableLoad | None = None
    mapped: list[tuple[str, str, str]] = []  # (table, their column, canonical column)
    for name, loaded, (staged, table_stats, cov) in stager.staged(chunks(), write_truth):
        if table is None or table.name != name:
            if table is not None:
                written += table.finish(table_rows, as_of_ts)
                mapped += table.mapped()
            table = _TableLoad(name)
        table.add(wh, loaded, staged, table_stats, cov, stamp, stats, coverage)
        del loaded, staged
    if table is not None:
        written += table.finish(table_rows, as_of_ts)
        mapped += table.mapped()
    _mark_returns(wh, written)
    _publish(wh, truth + written, plan.missing, synthetic, stamp, mapped)
    return table_rows


@dataclass
class _Plan:
    """What a source holds: a reader of chunks per table, the tables it lacks, how to name it."""

    readers: dict[str, Callable[[], Iterator[LoadedTable]]]
    missing: list[str]
    label: str
    truth_counts: dict[str, int] = field(default_factory=dict)
    world: Any = None
    release: bool = False


def _world_plan(world, n_people, seed, as_of_ts, release_world, chunk_rows) -> _Plan:
    """The synthetic world's tables (generated here unless one is passed)."""
    if world is None:
        world = _synthetic(n_people, seed, as_of_ts.date().isoformat())
        release = True if release_world is None else release_world
    else:
        release = bool(release_world)
        if "people" in world.truth:
            n_people = len(world.truth["people"])
    readers = {
        name: partial(world_chunks, world, name, release, chunk_rows)
        for name in world.sources
        if name in TABLES
    }
    return _Plan(
        readers=readers,
        missing=[t for t in TABLES if t not in readers],
        label=f"synthetic world ({n_people:,} people, seed {seed})",
        truth_counts={k: len(v) for k, v in world.truth.items()},
        world=world,
        release=release,
    )


def _folder_plan(source, mapping, encoding, chunk_rows) -> _Plan:
    """The files of a folder named after the canonical tables (a header-only file of a table
    that may not be empty refused first: :mod:`cemlib.collect.empty`)."""
    refuse_empty_tables(source, mapping, encoding)
    plan = plan_folder(source, mapping=mapping)
    readers = {}
    for name, path in plan.paths.items():
        read = partial(
            read_table_file, path, name, mapping=plan.columns.get(name), encoding=encoding
        )
        readers[name] = partial(file_chunks, read, chunk_rows)
    return _Plan(readers=readers, missing=plan.missing, label=str(plan.path))


def _write_truth(wh: Warehouse, world, release: bool, stamp: dict) -> list[tuple[str, str, int]]:
    """The world's truth tables into their shadows (popped from a released world)."""
    written = []
    for name in list(world.truth):
        frame = world.truth.pop(name) if release else world.truth[name]
        write_chunk(wh.con, "truth", shadow(name), frame, stamp, True)
        written.append(("truth", name, len(frame)))
        del frame
    return written


class _TableLoad:
    """One table being written chunk by chunk into its raw and staging shadows."""

    def __init__(self, name: str):
        self.name = name
        self.spec = TABLES[name]
        self.first: LoadedTable | None = None
        self.n_raw = self.n_staging = 0
        self.dates: list[pd.Series] = []

    def add(self, wh, loaded, staged, table_stats, cov, stamp, stats, coverage) -> None:
        """Write one chunk and its staged frame; its figures are added to ``stats`` and
        ``coverage``."""
        head = self.first is None
        if head:
            self.first = loaded
        if len(staged) != len(loaded.frame):  # pragma: no cover - an invariant
            raise AssertionError(f"{self.name}: staging lost rows")
        write_chunk(wh.con, "raw", shadow(self.name), loaded.frame, stamp, head)
        write_chunk(wh.con, "staging", shadow(self.name), staged, stamp, head)
        self.n_raw += len(loaded.frame)
        self.n_staging += len(staged)
        add_up(stats, table_stats, ("table", "column", "kind"), _STAT_COUNTS)
        add_up(coverage, cov, ("table", "identifier"), ("n_rows", "n_present", "n_valid"))
        date_column = self.spec.date_column
        if date_column and date_column in staged.columns:
            self.dates.append(staged[date_column].copy())

    def finish(self, table_rows: list[dict], as_of_ts) -> list[tuple[str, str, int]]:
        """Append the table's summary row to ``table_rows``; its shadows and row counts."""
        all_dates = pd.concat(self.dates, ignore_index=True) if self.dates else None
        self.dates = []
        row = _table_row(self.name, self.first, self.n_raw, self.n_staging, all_dates, as_of_ts)
        table_rows.append(row)
        return [("raw", self.name, self.n_raw), ("staging", self.name, self.n_staging)]

    def mapped(self) -> list[tuple[str, str, str]]:
        """``(table, their column, canonical column)`` of the columns the mapping read to fill
        a canonical one (kept as they are; :attr:`LoadedTable.mapped`)."""
        found = self.first.mapped if self.first is not None else {}
        return [(self.name, theirs, canonical) for theirs, canonical in found.items()]


def _mark_returns(wh: Warehouse, written) -> None:
    """Every staged lines table's ``is_return`` (:func:`cemlib.collect.returns.mark_returns`),
    on the shadows before they replace the tables."""
    from cemlib.collect.returns import LINE_HEADERS, mark_returns

    staged = {name for schema, name, _n in written if schema == "staging"}
    for lines, (header, _key) in LINE_HEADERS.items():
        if lines in staged:
            mark_returns(wh, lines, shadow(lines), shadow(header) if header in staged else None)


#: the columns of the source files a mapping read to fill a canonical column and kept as
#: they are (``table, column, target``): the quality stage does not call them unknown
MAPPED_COLUMNS = "mapped_columns"


def _publish(wh: Warehouse, written, missing, synthetic: bool, stamp: dict, mapped=()) -> None:
    """The shadows replace the tables in one transaction; tables of an earlier run that this
    source does not have are dropped (truth too, for a folder source); ``meta.mapped_columns``
    is rewritten with ``mapped``."""
    with wh.transaction():
        wh.con.execute(
            f"CREATE OR REPLACE TABLE meta.{MAPPED_COLUMNS} "
            '("table" VARCHAR, "column" VARCHAR, target VARCHAR, _run_id VARCHAR)'
        )
        if mapped:
            wh.con.executemany(
                f"INSERT INTO meta.{MAPPED_COLUMNS} VALUES (?, ?, ?, ?)",
                [[t, c, target, stamp["run_id"]] for t, c, target in mapped],
            )
        for schema, name, n_rows in written:
            wh.drop_table(schema, name)
            wh.con.execute(f'ALTER TABLE {schema}."{shadow(name)}" RENAME TO "{name}"')
            log_table(wh.con, schema, name, n_rows, stamp)
        for name in missing:
            wh.drop_table("raw", name)
            wh.drop_table("staging", name)
        if not synthetic:
            for name in wh.tables("truth"):
                wh.drop_table("truth", name)


def contact_phone_warnings(wh: Warehouse) -> list[str]:
    """A warning when ``crm_contacts``' second phones / e-mails look like *contact* ones: values
    that are another card's first phone / e-mail under another name (a relative's number).
    Identity reads ``phone2`` / ``email2`` as the card holder's own; a relative's makes the two
    profiles a household, whose nameless records (sessions, receipts) 02 then holds back."""
    cols = set(table_columns(wh.con, "staging", "crm_contacts"))
    parts = [n for n in ("full_name", "last_name", "first_name", "middle_name") if n in cols]
    if not parts:
        return []

    def name(t: str) -> str:
        return "lower(trim(concat_ws(' ', " + ", ".join(f'{t}."{n}"' for n in parts) + ")))"

    out = []
    for second, first, what in (("phone2_e164", "phone_e164", "phone2"),
                                ("email2_key", "email_key", "email2")):  # fmt: skip
        if second not in cols or first not in cols:
            continue
        n, other = wh.con.execute(
            f"""SELECT count(*), count(*) FILTER (WHERE EXISTS (
                    SELECT 1 FROM staging.crm_contacts o WHERE o."{first}" = c."{second}"
                    AND o.contact_id IS DISTINCT FROM c.contact_id AND {name("o")}
                    IS DISTINCT FROM {name("c")}))
                FROM staging.crm_contacts c WHERE c."{second}" IS NOT NULL"""
        ).fetchone()
        if other:
            out.append(
                f"crm_contacts.{what}: {other:,} of {n:,} values are another card's "
                f"{what[:-1]} under another name (a relative's contact {what[:-1]}?): 02 reads "
                f"{what} as the holder's own, so such a value makes both profiles a household "
                "and holds back their nameless records; leave a contact column unmapped"
            )
    return out


def _warnings(
    table_rows: list[dict], missing: list[str], normalization: pd.DataFrame | None = None
) -> list[str]:
    warnings = [
        f"{r['table']}: header only, loaded as 0 rows" for r in table_rows if r["status"] != "ok"
    ]
    warnings += [
        f"{r['file']}: {r['n_set_aside']:,} of {r['n_raw']:,} lines set aside (more fields than "
        f"the header; line {r['set_aside_lines']}): kept in raw.{r['table']} with the reason, "
        "quarantined by the quality stage; the other rows loaded"
        for r in table_rows
        if r.get("n_set_aside")
    ]
    if missing:
        warnings.append("tables not in the source (optional): " + ", ".join(missing))
    return warnings + unread_dates(normalization)


#: a date column with at least this share of values no date was read from is named in the
#: warnings: a few typos are row defects (01 quarantines them), a share like this is a format
UNREAD_DATES_SHARE = 0.01


def unread_date_columns(normalization: pd.DataFrame | None) -> pd.DataFrame:
    """The rows of ``normalization`` (a :class:`CollectResult`'s) for the date columns where
    ``UNREAD_DATES_SHARE`` or more of the values were no date: the rows keep an empty date in
    staging, and the quality stage quarantines those whose date is required, so a wrong format
    would quietly cost a share of the table."""
    if normalization is None or not len(normalization):
        return pd.DataFrame(columns=STAT_COLUMNS)
    n = normalization[normalization["kind"].isin(["date", "timestamp"])]
    return n[(n["n_unparsed"] > 0) & (n["n_unparsed"] >= UNREAD_DATES_SHARE * n["n_values"])]


def unread_dates(normalization: pd.DataFrame | None) -> list[str]:
    """One warning per column of :func:`unread_date_columns`."""
    return [
        f"{r.table}.{r.column}: {int(r.n_unparsed):,} of {int(r.n_values):,} values "
        f"({r.n_unparsed / r.n_values:.1%}) are no date; they are empty in staging: check the "
        "column's date format (docs: own data)"
        for r in unread_date_columns(normalization).itertuples()
    ]


def _normalization_frame(stats: dict[tuple, dict]) -> pd.DataFrame:
    """Per table, column and kind: values seen, changed and unparsed, with their shares."""
    normalization = pd.DataFrame(list(stats.values()), columns=STAT_COLUMNS)
    if len(normalization):
        normalization["share_changed"] = normalization["n_changed"].astype(
            "Float64"
        ) / normalization["n_values"].where(normalization["n_values"] > 0)
        normalization["share_unparsed"] = normalization["n_unparsed"] / normalization[
            "n_values"
        ].where(normalization["n_values"] > 0)
    return normalization
