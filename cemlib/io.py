"""The one reader of users' files: every command and stage that reads a CSV or Parquet file a user
gives it goes through here, so a file that one command reads, every command reads the same way.

* CSV (optionally gzip-compressed): UTF-8, with or without BOM, else a single-byte Cyrillic
  code page, cp1251 unless KOI8-R or cp866 makes the text clearly more Russian (or the
  ``encoding`` given); UTF-16 is refused ("save as UTF-8"). The delimiter (``;``, ``,``, tab or ``|``) is
  sniffed from the header line. Every value is read as text exactly as received (NUL bytes
  included, never cut); empty cells are missing. Numbers with decimal commas stay text here and
  are parsed by :func:`cemlib.normalize.parse_amounts` where a number is expected.
* Parquet: typed values as stored; list, struct and map columns are refused with one line.

A bad file raises :class:`~cemlib.errors.InputError` naming the file (and the column), which
``cem`` prints as one line with exit 2. Output files are checked up front
(:func:`output_file`) and written whole or not at all (:func:`atomic_file`).
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import gzip
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from cemlib.errors import InputError

DELIMITERS: tuple[str, ...] = (";", ",", "\t", "|")
PARQUET_SUFFIXES: tuple[str, ...] = (".parquet", ".pq")

_CHUNK = 1 << 24  # bytes read at a time when checking an encoding


# -- text ------------------------------------------------------------------------------------
def _arrow_text(series: pd.Series) -> pd.Series:
    """Numbers and booleans as Arrow's CSV writer prints them (``1039``, ``7190.1``, ``true``)."""
    import pyarrow as pa

    try:
        text = pa.array(series, from_pandas=True).cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return series.astype("string")
    return pd.Series(pd.arrays.ArrowStringArray(text), index=series.index, name=series.name)


def frame_to_text(df: pd.DataFrame) -> pd.DataFrame:
    """Every column as text the way a CSV export holds it, missing values as NA: timestamps
    ISO (``2024-03-05 14:30:00``), numbers and booleans as Arrow's CSV writer prints them (the
    writer ``cem generate`` uses): ``1039``, ``7190.1``, ``true``."""
    out = {}
    for col in df.columns:
        s = df[col]
        if isinstance(s.dtype, pd.StringDtype):
            out[col] = s
        elif isinstance(s.dtype, pd.DatetimeTZDtype):
            out[col] = s.dt.tz_localize(None).astype("string")
        elif pd.api.types.is_datetime64_any_dtype(s) or s.dtype == object:
            out[col] = s.astype("string")
        else:
            out[col] = _arrow_text(s)
    return pd.DataFrame(out, index=df.index, copy=False)


# -- encodings ---------------------------------------------------------------------------------
def _open_bytes(path: Path):
    return gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")  # noqa: SIM115


def _decode_error(path: Path, encoding: str) -> str | None:
    """Where ``path`` fails to decode as ``encoding`` (streamed, the file is never held whole),
    or None when it decodes."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    line = 1
    with _open_bytes(path) as fh:
        while chunk := fh.read(_CHUNK):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                at = max(0, min(exc.start, len(chunk) - 1))
                line += chunk.count(b"\n", 0, at)
                return f"undecodable byte 0x{chunk[at]:02x} at line {line}"
            line += chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return f"truncated character at the end of the file (line {line})"
    return None


def _looks_utf16(head: bytes) -> bool:
    """UTF-16 text without a BOM: in every other byte of the first line a NUL (Latin text) or
    NULs and 0x04s (Cyrillic: U+0400..U+04FF), bytes neither UTF-8 nor cp1251 text holds."""
    line = head[:256]
    if len(line) < 8:
        return False
    for high in (line[1::2], line[0::2]):
        nul = high.count(0)
        if nul > 0.8 * len(high) or (nul and nul + high.count(4) > 0.9 * len(high)):
            return True
    return False


def _has_nul(path: Path) -> bool:
    """Whether the file holds a NUL byte (streamed)."""
    with _open_bytes(path) as fh:
        while chunk := fh.read(_CHUNK):
            if b"\0" in chunk:
                return True
    return False


def _choose_encoding(path: Path, head: bytes, source: str, encoding: str | None) -> str:
    """The encoding to read ``path`` with: the given one (checked), else UTF-8 (strict; with
    BOM -> ``utf-8-sig``), else the single-byte code page :func:`_single_byte_cyrillic` picks."""
    if encoding:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise InputError(f"unknown encoding {encoding!r}", source=source) from None
        problem = _decode_error(path, encoding)
        if problem:
            raise InputError(f"cannot decode as {encoding}: {problem}", source=source)
        return encoding
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or _looks_utf16(head):
        raise InputError("UTF-16 is not supported, save the file as UTF-8", source=source)
    if head.startswith(codecs.BOM_UTF8):
        problem = _decode_error(path, "utf-8-sig")
        if problem:
            raise InputError(f"UTF-8 BOM but invalid UTF-8: {problem}", source=source)
        return "utf-8-sig"
    if _decode_error(path, "utf-8") is None:
        return "utf-8"
    problem = _decode_error(path, "cp1251")
    if problem:
        raise InputError(
            f"neither UTF-8 nor cp1251 ({problem}); pass encoding=... if you know it",
            source=source,
        )
    return _single_byte_cyrillic(head)


#: the ten most frequent letters of Russian text: about 60% of its letters
_COMMON_RU = frozenset("оеаинтсрвл")
#: the single-byte Cyrillic encodings Russian systems export in (cp1251 first: Windows)
SINGLE_BYTE = ("cp1251", "koi8_r", "cp866")


def _russian_score(text: str) -> tuple[float, int]:
    """(share of the ten most frequent Russian letters among the Cyrillic letters of
    ``text``, case-insensitive, and how many Cyrillic letters it has)."""
    letters = [c for c in text.lower() if "а" <= c <= "я" or c == "ё"]
    if not letters:
        return 0.0, 0
    return sum(c in _COMMON_RU for c in letters) / len(letters), len(letters)


def _single_byte_cyrillic(head: bytes) -> str:
    """Which single-byte Cyrillic encoding ``head`` is in: nearly every byte decodes in each of
    them, so the one whose Cyrillic letters look like Russian (the ten most frequent letters
    make ~60% of them; a wrong code page permutes the letters: ~25%) wins; cp1251 unless
    another is clearly better (a KOI8-R file from an old Unix system read as cp1251 is
    ``ЪЧПОПЛ`` for ``звонок``)."""
    scores = {}
    for name in SINGLE_BYTE:
        score, n = _russian_score(head.decode(name, errors="ignore"))
        scores[name] = score if n >= 20 else 0.0  # too few Cyrillic letters to tell
    best = max(scores, key=scores.get)
    return best if scores[best] >= scores["cp1251"] + 0.15 else "cp1251"


def _sniff_delimiter(text: str) -> str:
    header = text.split("\n", 1)[0]
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    if counts[best] == 0:
        try:
            return csv.Sniffer().sniff(text[:20000], delimiters="".join(DELIMITERS)).delimiter
        except csv.Error:
            return ","  # a one-column file
    return best


# -- CSV ---------------------------------------------------------------------------------------
def read_csv(
    path: str | Path,
    *,
    source: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    long_lines: str = "error",
) -> tuple[pd.DataFrame, str, str]:
    """``(frame, encoding, delimiter)`` of a CSV file read all as text (object columns of
    ``str``, empty cells NA), the encoding and delimiter detected unless given.

    A 0-byte file, undecodable bytes, UTF-16, a duplicated header name and malformed rows raise
    :class:`~cemlib.errors.InputError` naming ``source`` (the path by default).

    ``long_lines="keep"``: a line with more fields than the header is a row defect, not a bad
    file: it stays in the frame as a row of empty cells at its place, and
    ``frame.attrs["long_lines"]`` (:func:`long_line_frame`) holds its position, line number,
    field count and raw text. A file where more than half of the lines are long (a wrong
    delimiter, unquoted delimiters everywhere) still raises. Clean files take pandas' C parser;
    only a file that fails it is read again, record by record, with :mod:`csv`.
    """
    path = Path(path)
    source = source or str(path)
    try:
        with _open_bytes(path) as fh:
            head = fh.read(1 << 16)
    except (OSError, EOFError) as exc:
        raise InputError(f"not a readable gzip file: {exc}", source=source) from None
    if not head.strip():
        raise InputError(
            "empty file (0 bytes): expected a header line with the columns", source=source
        )
    try:
        used = _choose_encoding(path, head, source, encoding)
    except (OSError, EOFError) as exc:
        raise InputError(f"not a readable gzip file: {exc}", source=source) from None
    sep = delimiter or _sniff_delimiter(head.decode(used, errors="ignore"))
    first_line = head.decode(used, errors="ignore").lstrip("\ufeff").splitlines()[0]
    header = [h.strip() for h in next(csv.reader([first_line], delimiter=sep))]
    dupes = sorted({h for h in header if h and header.count(h) > 1})
    if dupes:  # pandas would silently rename the second one to "x.1"
        raise InputError(
            f"duplicate column(s) {dupes} in the header; found {header}",
            source=source,
            column=dupes[0],
        )
    # pandas' C parser ends a value at a NUL byte (``SKU100046\0X`` -> ``SKU100046``); the
    # Python parser keeps it, so a file holding NUL bytes is read by that one (slower)
    engine = "python" if _has_nul(path) else "c"
    try:
        frame = pd.read_csv(
            path,
            sep=sep,
            encoding=used,
            compression="gzip" if path.name.endswith(".gz") else None,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            skip_blank_lines=True,
            engine=engine,
        )
    except pd.errors.ParserError as exc:
        if long_lines != "keep" or "fields in line" not in str(exc):
            raise InputError(f"malformed CSV (delimiter {sep!r}): {exc}", source=source) from None
        frame = _read_with_long_lines(path, used, sep, len(header), source, str(exc))
    except pd.errors.EmptyDataError:
        raise InputError("empty file: no header line", source=source) from None
    except (csv.Error, ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"malformed CSV (delimiter {sep!r}): {exc}", source=source) from None
    if not isinstance(frame.index, pd.RangeIndex) and long_lines == "keep":
        # the first data line is long: pandas took its first field for an index
        frame = _read_with_long_lines(path, used, sep, len(header), source, "")
    if not isinstance(frame.index, pd.RangeIndex):
        raise InputError(
            f"malformed CSV (delimiter {sep!r}): rows have more fields than the header "
            f"({len(frame.columns)} columns: {list(frame.columns)})",
            source=source,
        )
    # a trailing delimiter on every line (1C exports) gives unnamed empty columns: drop them
    blank = [c for c in frame.columns if str(c).startswith("Unnamed: ") and frame[c].isna().all()]
    long = frame.attrs.get("long_lines")
    frame = frame.drop(columns=blank)
    if long is not None:
        frame.attrs["long_lines"] = long
    return frame, used, sep


#: more than this share of a file's lines longer than its header: the file is malformed
#: (a wrong delimiter), not a few rows of it
LONG_LINES_MAX_SHARE = 0.5
LONG_LINE_COLUMNS = ["position", "line", "n_fields", "text"]


def long_line_frame(rows: list | None = None) -> pd.DataFrame:
    """The lines set aside from a CSV file: ``position`` (0-based data row), ``line`` (1-based
    line number in the file, the header is line 1), ``n_fields`` and the raw ``text``."""
    return pd.DataFrame(rows or [], columns=LONG_LINE_COLUMNS)


class _Lines:
    """A text file's lines, remembering those the :mod:`csv` reader consumed since the last
    :meth:`take` (a quoted value may span several lines)."""

    def __init__(self, fh):
        self.fh = fh
        self.taken: list[str] = []
        self.n = 0

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = next(self.fh)
        self.taken.append(line)
        self.n += 1
        return line

    def take(self) -> tuple[int, str]:
        """(first line number, text) of the record just read."""
        first = self.n - len(self.taken) + 1
        text = "".join(self.taken).rstrip("\r\n")
        self.taken.clear()
        return first, text


def _read_with_long_lines(
    path: Path, encoding: str, sep: str, n_header: int, source: str, why: str
) -> pd.DataFrame:
    """The file read record by record (:mod:`csv`, the quoting pandas uses): a record longer
    than the header becomes a row of empty cells, listed in ``attrs["long_lines"]``; a short
    one is padded with empty cells, as pandas does. More than ``LONG_LINES_MAX_SHARE`` of
    long records raise :class:`~cemlib.errors.InputError`."""
    compression = "gzip" if path.name.endswith(".gz") else None
    opener = gzip.open if compression else open
    try:
        records, long, header = _records(path, opener, encoding, sep, n_header)
    except csv.Error as exc:
        raise InputError(f"malformed CSV (delimiter {sep!r}): {exc}", source=source) from None
    if header is None:
        raise InputError("empty file: no header line", source=source)
    if not records:
        raise InputError("empty file: no data rows", source=source)
    if len(long) > LONG_LINES_MAX_SHARE * len(records):
        _, line, n, _ = long[0]
        raise InputError(
            f"malformed CSV (delimiter {sep!r}): {len(long):,} of {len(records):,} lines have "
            f"more fields than the header ({n_header}), e.g. line {line} ({n} fields); "
            f"wrong delimiter or unquoted delimiters{f' ({why})' if why else ''}",
            source=source,
        )
    names = [h if h.strip() else f"Unnamed: {i}" for i, h in enumerate(header)]
    frame = pd.DataFrame(records, columns=names, dtype=object)
    frame.attrs["long_lines"] = long_line_frame(long)
    return frame


def _records(path: Path, opener, encoding: str, sep: str, n_header: int):
    """``(records, long lines, header)`` of a CSV file read with :mod:`csv`."""
    records: list[list[str | None]] = []
    long: list[tuple[int, int, int, str]] = []
    empty = [None] * n_header
    with opener(path, "rt", encoding=encoding, newline="") as fh:
        lines = _Lines(fh)
        reader = csv.reader(lines, delimiter=sep)
        header = next(reader, None)
        lines.take()
        if header is None:
            return records, long, None
        for fields in reader:
            first, text = lines.take()
            if not fields or fields == [""]:
                continue  # a blank line, skipped as pandas does
            if len(fields) > n_header:
                long.append((len(records), first, len(fields), text))
                records.append(empty)
                continue
            row = [f if f != "" else None for f in fields]
            records.append(row + [None] * (n_header - len(row)))
    return records, long, header


def long_line_reason(n_fields: int, n_header: int) -> str:
    """The reason a long line is set aside."""
    return f"{n_fields} fields where the header has {n_header}"


def clean_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Column names as text without surrounding spaces or a stray BOM (in place, returned)."""
    frame.columns = [str(c).strip().lstrip("\ufeff") for c in frame.columns]
    return frame


# -- Parquet -----------------------------------------------------------------------------------
def nested_columns(path: str | Path, source: str, only: tuple[str, ...] | None = None) -> None:
    """InputError naming the first column of list, struct or map type in a Parquet file (of
    ``only`` when given): such values have no text form a table column can hold."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a broken file
        raise InputError(
            f"unreadable Parquet file: {type(exc).__name__}: {exc}", source=source
        ) from None
    for f in schema:
        name = str(f.name).strip().lstrip("\ufeff")
        if only is not None and name not in only and name.lower() not in only:
            continue
        if (
            pa.types.is_nested(f.type)
            or pa.types.is_dictionary(f.type)
            and pa.types.is_nested(f.type.value_type)
        ):
            raise InputError(
                f"Parquet column of type {f.type} (list/struct/map) is not supported; expected "
                "plain values (text, number, date)",
                source=source,
                column=name,
            )


def read_parquet(
    path: str | Path, *, source: str | None = None, only: tuple[str, ...] | None = None
) -> pd.DataFrame:
    """A Parquet file's typed frame; a 0-byte or unreadable file and a list/struct/map column
    (of ``only`` when given) raise :class:`~cemlib.errors.InputError`."""
    path = Path(path)
    source = source or str(path)
    if path.stat().st_size == 0:
        raise InputError("empty file (0 bytes): expected a Parquet file", source=source)
    nested_columns(path, source, only)
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a broken file
        raise InputError(
            f"unreadable Parquet file: {type(exc).__name__}: {exc}", source=source
        ) from None


def is_parquet(path: str | Path) -> bool:
    """Whether ``path`` names a Parquet file (by its suffix)."""
    return Path(path).suffix.lower() in PARQUET_SUFFIXES


# -- one file, any format ----------------------------------------------------------------------
def check_file(path: str | Path, what: str = "a CSV or Parquet file") -> Path:
    """``path`` as an existing regular file to read, else :class:`~cemlib.errors.InputError`."""
    p = Path(path)
    if p.exists() and not p.is_file():
        raise InputError(f"is a folder (or not a regular file), expected {what}", source=str(p))
    if not p.is_file():
        raise InputError("file not found", source=str(p))
    return p


def read_file(
    path: str | Path,
    *,
    what: str = "a CSV or Parquet file",
    text: bool = False,
    encoding: str | None = None,
    delimiter: str | None = None,
) -> pd.DataFrame:
    """A user's CSV or Parquet file (by suffix) as a frame with at least one row.

    CSV values are text (``string`` columns, see :func:`read_csv`); Parquet values keep their
    types unless ``text`` asks for them as text too (:func:`frame_to_text`). Column names are
    stripped. ``attrs["source"]`` is the path, so later errors can name the file. Every failure
    (missing file, folder, 0 bytes, encoding, malformed CSV, nested Parquet column, no data
    rows) is an :class:`~cemlib.errors.InputError` naming the file.
    """
    p = check_file(path, what)
    source = str(p)
    if is_parquet(p):
        frame = read_parquet(p, source=source)
        if text:
            frame = frame_to_text(frame)
    else:
        frame, _, _ = read_csv(p, source=source, encoding=encoding, delimiter=delimiter)
        frame = frame_to_text(frame)
    frame = clean_columns(frame)
    if frame.empty:
        raise InputError("no data rows (only a header)", source=source)
    frame.attrs["source"] = source
    return frame


def header_only(path: str | Path, *, encoding: str | None = None) -> bool:
    """Whether a CSV or Parquet file holds its column names and no row (blank lines are no
    rows). Cheap: a Parquet file's footer, or a CSV file of less than 64 KiB read whole; a file
    this cannot read is no header-only file (its reader says what is wrong with it)."""
    p = Path(path)
    if is_parquet(p):
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(p).metadata.num_rows == 0
        except Exception:  # noqa: BLE001 - pyarrow raises many types for a broken file
            return False
    try:
        with _open_bytes(p) as fh:
            if len(fh.read(1 << 16)) >= 1 << 16:
                return False  # a header line of 64 KiB: rows follow it
        frame, _, _ = read_csv(p, encoding=encoding, long_lines="keep")
    except (InputError, OSError, EOFError):
        return False
    return frame.empty


# -- output files ------------------------------------------------------------------------
def nearest_folder(p: Path, flag: str) -> Path:
    """The nearest existing ancestor of ``p``; InputError when it is a file."""
    parent = p.parent if str(p.parent) else Path(".")
    for up in (parent, *parent.parents):
        if up.exists():
            if not up.is_dir():
                raise InputError(f"{flag}: {up} is a file, not a folder", source=str(p))
            return up
    return Path(".")


def writable_folder(folder: Path, p: Path, flag: str) -> None:
    """InputError unless a file can be created in ``folder`` (tried, not guessed from the mode
    bits: root passes ``os.access`` on a read-only mount or ``/proc``, and a job failing there
    only after minutes of work would leave nothing and say less)."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".cem-write-check.", dir=folder)
    except OSError as exc:
        raise InputError(
            f"{flag}: cannot write in {folder} ({exc.strerror or exc})", source=str(p)
        ) from None
    os.close(fd)
    os.unlink(probe)


def output_file(path: str | Path, flag: str = "--out") -> Path:
    """``path`` as a file to (over)write: not a folder, under a folder where a file can be
    created. Missing folders on the way are created when the file is written
    (:func:`atomic_file`), not here: a command stopped by bad input leaves no empty folder."""
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{flag} is a folder, expected a file name", source=str(p))
    writable_folder(nearest_folder(p, flag), p, flag)
    return p


def output_folder(path: str | Path, flag: str = "--out", expected: str = "a folder") -> Path:
    """``path`` as a folder to write into (``cem validate --out``, ``cem generate --out``,
    ``cem run``'s reports folder): not an existing file, nor under one, and the folder (or the
    nearest one above it that exists) one where a file can be created. Nothing is created."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InputError(f"{flag} is a file, expected {expected}", source=str(p))
    for up in (p, *p.parents):
        if up.exists():
            if not up.is_dir():
                raise InputError(f"{flag}: {up} is a file, not a folder", source=str(p))
            writable_folder(up, p, flag)
            break
    return p


#: the bytes at offset 8 of every DuckDB database file
DUCKDB_MAGIC = b"DUCK"


def duckdb_file(path: str | Path, flag: str = "--warehouse") -> Path:
    """``path`` as a DuckDB warehouse: not a folder, and when it exists, a DuckDB file. DuckDB
    opens any other file (a CSV given by mistake) as an empty database in memory: a command
    would then write its tables nowhere and exit 0."""
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{flag} is a folder, expected a DuckDB file", source=str(p))
    if p.is_file() and p.stat().st_size:
        with open(p, "rb") as fh:
            head = fh.read(12)
        if head[8:12] != DUCKDB_MAGIC:
            raise InputError(
                f"{flag}: not a DuckDB file (a warehouse starts with DuckDB's header); give the "
                "warehouse's path, or a new file name",
                source=str(p),
            )
    return p


def warehouse_file(path: str | Path, flag: str = "--warehouse") -> Path:
    """``path`` as a DuckDB warehouse to write: not a folder, not another kind of file
    (:func:`duckdb_file`), in a folder where a file can be created (:func:`output_file`)."""
    return output_file(duckdb_file(path, flag), flag)


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """A temporary file next to ``path`` to write (its missing folders created); it replaces
    ``path`` when the block ends and is removed when the block fails, with the folders made
    for it, so no partial file is ever left."""
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    created = [d for d in (parent, *parent.parents) if not d.exists()]
    parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        tmp_path.replace(p)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        for d in created:  # innermost first: the folders made for this file, if still empty
            with contextlib.suppress(OSError):
                d.rmdir()
        raise
