"""Read canonical source tables from CSV or Parquet files, exactly as received, as text.

A source folder holds one file per table, named after it (``crm_contacts.csv``,
``online_orders.parquet``, ``web_events.csv.gz`` ...). Files are read by the one reader of
:mod:`cemlib.io` (UTF-8 with or without BOM, else cp1251 or the ``encoding`` given; the delimiter
sniffed; Parquet with plain columns). Every value is read as text: the
``raw`` schema keeps what the file held, and typing happens in the staging step. A column
mapping renames a user's columns to the canonical ones: ``{table: {their_column: canonical}}``
(a dict or a YAML file), optionally with ``files: {table: file name}``. A yes/no column of the
contract can also be filled from one of their columns by a list of values:
``{their_column: {is_return: [Возврат]}}`` sets ``is_return`` true where the value is one of the
list (compared trimmed and case-folded), false where it is another value, empty where it is
empty; their column is kept as it is (an extra column), so ``raw`` still holds what the file held.
A column of the contract with a fixed vocabulary (``web_events.event_type``) can be filled from
one of their columns by translating values: ``{their_column: {event_type: {cart: [add_to_cart,
В корзину], view: [просмотр]}}}`` writes ``cart`` where their value is one of the first list
(trimmed, case-folded), ``view`` for the second, their value unchanged where no list names it,
empty where it is empty; their column is kept as it is, as above. A column a mapping used this
way is recorded in :attr:`LoadedTable.mapped`, so the quality stage does not call it unknown.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cemlib.errors import InputError, one_line
from cemlib.io import check_file, frame_to_text, is_parquet, read_csv, read_parquet
from cemlib.schema import BOOL, TABLES, TableSpec, table_spec

SUFFIXES: tuple[str, ...] = (".csv", ".csv.gz", ".tsv", ".txt", ".parquet", ".pq")
SOURCE_ROW = "_source_row"
#: a row defect found while reading the file (a line with more fields than the header): the
#: reason, NULL for a row read whole; the quality stage quarantines the rows that carry one
ROW_DEFECT = "_row_defect"
#: the raw text of such a line (its cells are empty: which field is the extra one is unknown)
RAW_LINE = "_raw_line"
#: the file's line number of such a line (the header is line 1)
LINE_NO = "_line"
DEFECT_COLUMNS = (ROW_DEFECT, RAW_LINE, LINE_NO)


@dataclass
class LoadedTable:
    """One source table as received: ``frame`` is all text plus ``_source_row``."""

    name: str
    frame: pd.DataFrame
    path: Path | None = None
    format: str = "csv"
    encoding: str | None = None
    delimiter: str | None = None
    header_only: bool = False
    renamed: dict[str, str] = field(default_factory=dict)
    extra_columns: list[str] = field(default_factory=list)
    #: their columns a mapping read to fill a canonical column (a list of values or a
    #: translation of values) and kept as they are: ``{their_column: canonical_column}``
    mapped: dict[str, str] = field(default_factory=dict)
    #: typed values when the source already had types (Parquet, the synthetic world); the
    #: staging step uses them instead of re-parsing the text
    typed: pd.DataFrame | None = None
    #: lines set aside while reading (more fields than the header; :func:`cemlib.io.long_line_frame`)
    long_lines: pd.DataFrame | None = None
    #: per date column read from text, the order of its numeric dates over the whole file
    #: ("day" or "month", :func:`cemlib.normalize.dates.date_order`), so that every chunk of
    #: a large file is read the same way
    date_orders: dict[str, str] = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        """Rows read from the file."""
        return len(self.frame)


@dataclass
class SourceFolder:
    """The tables found in a source folder, and the canonical tables it lacks."""

    path: Path
    tables: dict[str, LoadedTable]
    missing: list[str]


# -- mapping ----------------------------------------------------------------------------------
class ValueList(str):
    """A mapping target filled by a list of values: the canonical yes/no column (the ``str``)
    is true where their column holds one of ``values`` (trimmed, case-folded)."""

    values: tuple[str, ...]

    def __new__(cls, column: str, values) -> ValueList:
        obj = super().__new__(cls, column)
        obj.values = tuple(str(v).strip().casefold() for v in values)
        return obj

    def __reduce__(self):  # worker processes receive the plan pickled
        return (ValueList, (str(self), self.values))


class ValueMap(str):
    """A mapping target filled by translating values: the canonical column (the ``str``) holds
    ``values[v]`` where their trimmed, case-folded value is ``v``, their value where no list
    names it."""

    values: dict[str, str]

    def __new__(cls, column: str, values: Mapping[str, str]) -> ValueMap:
        obj = super().__new__(cls, column)
        obj.values = dict(values)
        return obj

    def __reduce__(self):  # worker processes receive the plan pickled
        return (ValueMap, (str(self), self.values))


def _value_map(table: str, theirs: str, column: str, lists: Mapping, source: str) -> ValueMap:
    """``{canonical_value: [their values]}`` checked and inverted to ``{their value: canonical}``."""
    expected = f"expected {{{column}: {{canonical_value: [their values]}}}}"
    if TABLES[table].kind(column) == BOOL:
        raise InputError(
            f"table {table!r}: {theirs!r} -> {column!r}: a yes/no column takes a list of the "
            f"values meaning yes ({{{column}: [values]}}), not a translation",
            source=source,
            column=theirs,
        )
    values: dict[str, str] = {}
    for canonical, theirs_values in lists.items():
        if isinstance(theirs_values, str | int | float):
            theirs_values = [theirs_values]
        if canonical is None or not isinstance(theirs_values, list) or not theirs_values:
            raise InputError(
                f"table {table!r}: {theirs!r} -> {column!r}: {canonical!r}: {expected}",
                source=source,
                column=theirs,
            )
        for v in theirs_values:
            key = str(v).strip().casefold()
            if key in values and values[key] != str(canonical):
                raise InputError(
                    f"table {table!r}: {theirs!r} -> {column!r}: value {str(v)!r} is listed "
                    f"under both {values[key]!r} and {str(canonical)!r}",
                    source=source,
                    column=theirs,
                )
            values[key] = str(canonical)
    return ValueMap(column, values)


def _target(table: str, theirs: str, target, source: str) -> str:
    """One mapping target: a canonical column name, ``{column: [values]}`` for a yes/no
    column filled by a list of values (:class:`ValueList`), or ``{column: {canonical_value:
    [their values]}}`` for a column filled by translating values (:class:`ValueMap`)."""
    if not isinstance(target, Mapping):
        return str(target)
    column, values = next(iter(target.items())) if len(target) == 1 else (None, None)
    if column is not None and isinstance(values, Mapping) and values:
        if str(column) not in TABLES[table].columns:
            return str(column)  # reported with the other unknown targets
        return _value_map(table, theirs, str(column), values, source)
    if isinstance(values, str | int | float):
        values = [values]
    if column is None or not isinstance(values, list) or not values:
        raise InputError(
            f"table {table!r}: {theirs!r}: expected a column name or "
            "{canonical_column: [values meaning yes]} or "
            "{canonical_column: {canonical_value: [their values]}}",
            source=source,
            column=theirs,
        )
    if TABLES[table].kind(str(column)) != BOOL:
        yes_no = [c for c in TABLES[table].columns if TABLES[table].kind(c) == BOOL]
        raise InputError(
            f"table {table!r}: {theirs!r} -> {column!r}: a list of values fills only a yes/no "
            f"column; those of {table}: {', '.join(yes_no) or 'none'}",
            source=source,
            column=theirs,
        )
    return ValueList(str(column), values)


def load_mapping(
    mapping: Mapping | str | Path | None,
) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """``(columns, files)`` from a mapping dict or YAML file.

    ``columns`` is ``{table: {their_column: canonical_column}}``; ``files`` (from an optional
    ``files:`` key) is ``{table: file name}`` for exports not named after the tables.
    """
    if mapping is None:
        return {}, {}
    source = "column mapping"
    if isinstance(mapping, str | Path):
        import yaml

        path = Path(mapping)
        source = str(path)
        if not path.is_file():
            raise InputError("mapping file not found", source=source)
        try:
            mapping = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise InputError(
                f"not a readable YAML mapping: {one_line(exc)}", source=source
            ) from None
    if not isinstance(mapping, Mapping):
        raise InputError("expected {table: {their_column: canonical_column}}", source=source)
    mapping = dict(mapping)
    files = mapping.pop("files", None) or {}
    columns: dict[str, dict[str, str]] = {}
    wrong: list[tuple[str, dict[str, str]]] = []  # every table's target typos, in one message
    for table, renames in mapping.items():
        if table not in TABLES:
            raise InputError(
                f"unknown table {table!r} in mapping; canonical tables: {', '.join(TABLES)}",
                source=source,
            )
        if not isinstance(renames, Mapping):
            raise InputError(
                f"table {table!r}: expected {{their_column: canonical_column}}", source=source
            )
        columns[table] = {str(k): _target(table, str(k), v, source) for k, v in renames.items()}
        unknown = {k: v for k, v in columns[table].items() if v not in TABLES[table].columns}
        if unknown:  # a typo in a target would load the column under a name nothing reads
            wrong.append((table, unknown))
    if wrong:
        raise InputError(
            "; ".join(
                f"table {table!r}: {', '.join(f'{k!r} -> {v!r}' for k, v in unknown.items())}: "
                f"not a column of {table}; its columns: {', '.join(TABLES[table].columns)}"
                for table, unknown in wrong
            ),
            source=source,
            column=next(iter(wrong[0][1].values())),
        )
    for table in files:
        if table not in TABLES:
            raise InputError(f"unknown table {table!r} under 'files'", source=source)
    return columns, {str(k): str(v) for k, v in files.items()}


def _canonical_columns(
    frame: pd.DataFrame, spec: TableSpec, source: str, renames: Mapping[str, str]
) -> tuple[pd.DataFrame, dict[str, str]]:
    columns = [str(c).strip().lstrip("\ufeff") for c in frame.columns]
    frame.columns = columns
    missing_from_file = [c for c in renames if c not in columns]
    if missing_from_file:
        raise InputError(
            f"the column mapping renames {missing_from_file} but the file has no such column; "
            f"found: {columns}",
            source=source,
            column=missing_from_file[0],
        )
    filled = {k: str(v) for k, v in renames.items() if isinstance(v, ValueList | ValueMap)}
    applied = {k: v for k, v in renames.items() if k not in filled}
    clash = [v for k, v in filled.items() if v in columns and v != k]
    if clash:  # their file already has the column the values would fill
        raise InputError(
            f"the column mapping fills {clash[0]!r} from {next(k for k, v in filled.items() if v == clash[0])!r}"
            f" but the file already has a column {clash[0]!r}; found: {columns}",
            source=source,
            column=clash[0],
        )
    for theirs, target in renames.items():
        if isinstance(target, ValueList):  # their column stays; the flag is added beside it
            text = frame[theirs].astype("string").str.strip()
            flag = text.str.casefold().isin(target.values).map({True: "1", False: "0"})
            frame[str(target)] = flag.astype(object).where(text.fillna("").ne(""), None)
        elif isinstance(target, ValueMap):  # their column stays; the translation beside it
            text = frame[theirs].astype("string").str.strip()
            translated = text.str.casefold().map(target.values)
            frame[str(target)] = (
                translated.fillna(text).astype(object).where(text.fillna("").ne(""), None)
            )
    canon = set(spec.columns)
    for col in columns:
        if col not in applied and col not in canon and col.lower() in canon:
            applied[col] = col.lower()
    if any(k != v for k, v in applied.items()):
        frame = frame.rename(columns=applied, copy=False)  # labels only: no copy of the data
    dupes = sorted({c for c in frame.columns if list(frame.columns).count(c) > 1})
    if dupes:
        second = [f"{c}2" for c in dupes if f"{c}2" in canon]  # a card's second phone / e-mail
        hint = f"; map a second one to {' / '.join(second)}" if second else ""
        raise InputError(
            f"duplicate column(s) {dupes} (after mapping){hint}; found: {columns}",
            source=source,
            column=dupes[0],
        )
    missing = [c for c in spec.required if c not in frame.columns]
    if missing:
        raise InputError(
            f"missing required column(s) {missing} of table {spec.name}; expected "
            f"{list(spec.required)} (optional: {list(spec.optional)}); found {columns}",
            source=source,
            column=missing[0],
        )
    if SOURCE_ROW in frame.columns:
        raise InputError(
            f"column name {SOURCE_ROW!r} is reserved", source=source, column=SOURCE_ROW
        )
    return frame, {k: v for k, v in applied.items() if k != v}, filled


def read_table_file(
    path: str | Path,
    table: str,
    *,
    mapping: Mapping[str, str] | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
) -> LoadedTable:
    """Read one file of canonical table ``table`` as text, rename columns by ``mapping``
    (``{their_column: canonical_column}``) and check the required columns.

    Raises :class:`~cemlib.errors.InputError` naming the file (and column) for a missing file,
    a 0-byte file, undecodable bytes, malformed CSV, an unreadable Parquet file or a missing
    required column. A header-only file loads as 0 rows with ``header_only=True``.
    """
    spec = table_spec(table)
    path = check_file(path, f"the file of table {table}")
    source = str(path)
    parquet = is_parquet(path)
    typed = long = None
    if parquet:
        typed = read_parquet(path, source=source, only=spec.columns)
        frame, used, sep = frame_to_text(typed), None, None
    else:
        frame, used, sep = read_csv(
            path, source=source, encoding=encoding, delimiter=delimiter, long_lines="keep"
        )
        long = frame.attrs.get("long_lines")
        n_header = len(frame.columns)
        frame = frame_to_text(frame)
    frame, applied, filled = _canonical_columns(frame, spec, source, mapping or {})
    if not parquet and long is not None and len(long):
        _mark_long_lines(frame, long, n_header, source)
    else:
        long = None
    if typed is not None:
        typed = typed.set_axis(list(frame.columns)[: typed.shape[1]], axis=1)
    frame = frame.reset_index(drop=True)
    frame[SOURCE_ROW] = pd.RangeIndex(len(frame), dtype="int64")
    extra = [
        c
        for c in frame.columns
        if c not in spec.columns and c != SOURCE_ROW and c not in DEFECT_COLUMNS
    ]
    return LoadedTable(
        name=table,
        frame=frame,
        path=path,
        format="parquet" if parquet else "csv",
        encoding=used,
        delimiter=sep,
        header_only=len(frame) == 0,
        renamed=applied,
        extra_columns=extra,
        mapped=filled,
        typed=typed.reset_index(drop=True) if typed is not None else None,
        long_lines=long,
    )


def _mark_long_lines(frame: pd.DataFrame, long: pd.DataFrame, n_header: int, source: str) -> None:
    """The defect columns of the rows standing for long lines (in place): the reason, the
    raw text and the line number; NULL on every other row."""
    from cemlib.io import long_line_reason

    for col in DEFECT_COLUMNS:
        if col in frame.columns:
            raise InputError(f"column name {col!r} is reserved", source=source, column=col)
    n = len(frame)
    at = long["position"].to_numpy()
    reason = pd.Series(pd.NA, index=range(n), dtype="string")
    reason.iloc[at] = [long_line_reason(int(k), n_header) for k in long["n_fields"]]
    text = pd.Series(pd.NA, index=range(n), dtype="string")
    text.iloc[at] = long["text"].astype(str).to_list()
    line = pd.Series(pd.NA, index=range(n), dtype="Int64")
    line.iloc[at] = long["line"].astype("int64").to_numpy()
    frame[ROW_DEFECT] = reason.set_axis(frame.index)
    frame[RAW_LINE] = text.set_axis(frame.index)
    frame[LINE_NO] = line.set_axis(frame.index)


def find_table_file(folder: Path, table: str, file_name: str | None = None) -> Path | None:
    """The file of ``table`` in ``folder`` (``<table>.csv`` / ``.parquet`` / ...), or None;
    :class:`InputError` when two files claim the same table."""
    if file_name:
        path = folder / file_name
        if path.exists() and not path.is_file():
            raise InputError(
                f"is a folder (or not a regular file), expected the file of table {table}",
                source=str(path),
            )
        if not path.is_file():
            raise InputError(
                f"mapping names file {file_name!r} for table {table}, not found", source=str(folder)
            )
        return path
    candidates = [folder / f"{table}{s}" for s in SUFFIXES]
    for path in candidates:  # a folder named like a table file would silently drop its rows
        if path.exists() and not path.is_file():
            raise InputError(
                f"is a folder (or not a regular file), expected the file of table {table}",
                source=str(path),
            )
    found = [p for p in candidates if p.is_file()]
    if len(found) > 1:
        raise InputError(
            f"several files for table {table}: {[p.name for p in found]}; keep one",
            source=str(folder),
        )
    return found[0] if found else None


@dataclass
class FolderPlan:
    """Which file holds which canonical table, before anything is read."""

    path: Path
    paths: dict[str, Path]
    missing: list[str]
    columns: dict[str, dict[str, str]]


def plan_folder(folder: str | Path, *, mapping: Mapping | str | Path | None = None) -> FolderPlan:
    """Find the file of each canonical table in ``folder`` and check the folder as a whole.

    At least one canonical table must be present, and a lines table needs its header table
    (``order_lines`` -> ``online_orders``, ``receipt_lines`` -> ``pos_receipts``).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("source folder not found", source=str(folder))
    columns, files = load_mapping(mapping)
    paths: dict[str, Path] = {}
    missing: list[str] = []
    for name in TABLES:
        path = find_table_file(folder, name, files.get(name))
        if path is None:
            missing.append(name)
        else:
            paths[name] = path
    if not paths:
        raise InputError(
            "no canonical table found; expected files named "
            + ", ".join(f"{t}.csv|.parquet" for t in TABLES)
            + f"; found {sorted(p.name for p in folder.iterdir())}",
            source=str(folder),
        )
    for name, path in paths.items():
        parent = TABLES[name].parent
        if parent and parent not in paths:
            raise InputError(
                f"table {name} needs its header table {parent}, which is missing",
                source=str(path),
            )
    return FolderPlan(path=folder, paths=paths, missing=missing, columns=columns)


def load_folder(
    folder: str | Path,
    *,
    mapping: Mapping | str | Path | None = None,
    encoding: str | None = None,
) -> SourceFolder:
    """Read every canonical table present in ``folder`` (see :func:`plan_folder`); lists the
    tables it lacks."""
    plan = plan_folder(folder, mapping=mapping)
    tables = {
        name: read_table_file(path, name, mapping=plan.columns.get(name), encoding=encoding)
        for name, path in plan.paths.items()
    }
    return SourceFolder(path=plan.path, tables=tables, missing=plan.missing)


def _shallow(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``df`` with new column labels and a 0-based index, sharing its data (no copy)."""
    out = df.copy(deep=False)
    out.columns = columns
    if not out.index.equals(pd.RangeIndex(len(out))):
        out.index = pd.RangeIndex(len(out))
    return out


def table_from_frame(name: str, typed: pd.DataFrame, start: int = 0) -> LoadedTable:
    """One in-memory source table (e.g. of the synthetic world) as a :class:`LoadedTable`:
    text as a file would hold it for ``raw``, the typed frame kept (not copied) for staging.
    ``start`` is the ``_source_row`` of the first row (for a slice of a larger table)."""
    spec = table_spec(name)
    source = f"<{name}>"
    frame, applied, _filled = _canonical_columns(frame_to_text(typed), spec, source, {})
    typed = _shallow(typed, list(frame.columns))
    frame = _shallow(frame, list(frame.columns))
    frame[SOURCE_ROW] = pd.RangeIndex(start, start + len(frame), dtype="int64")
    return LoadedTable(
        name=name,
        frame=frame,
        format="in memory",
        header_only=len(frame) == 0,
        renamed=applied,
        extra_columns=[c for c in frame.columns if c not in spec.columns and c != SOURCE_ROW],
        typed=typed,
    )


def tables_from_frames(frames: Mapping[str, pd.DataFrame]) -> dict[str, LoadedTable]:
    """In-memory source tables (e.g. the synthetic world) as :class:`LoadedTable`: text as a
    file would hold it for ``raw``, the typed frames kept for staging."""
    return {name: table_from_frame(name, typed) for name, typed in frames.items()}
