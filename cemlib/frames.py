"""DuckDB results as pandas frames without a Python string object per text value.

``DuckDBPyConnection.df()`` turns every text value into its own Python ``str`` (about 60 bytes
plus an 8-byte pointer): for the ten-million-row tables of a large world that is most of a
stage's memory. Both readers here go through Arrow and keep the other columns' types as
``.df()`` gives them (numbers, ``datetime64`` timestamps and dates, nullable integers):

* :func:`fetch_frame`: text as ``string[pyarrow]`` (the Arrow buffers themselves), for code
  that works on pandas' string dtype;
* :func:`fetch_objects`: text as ``object`` columns of ``str`` exactly like ``.df()``, but each
  distinct value is one Python object shared by its rows (8 bytes a row), for code written
  against ``.df()``.

A text column of :func:`fetch_frame` is DuckDB's own Arrow memory, and DuckDB frees that memory
per result, not per column: one column kept keeps every column of the result resident (all
the text a query read). A column that outlives its frame goes through :func:`own_buffers`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

STRING = pd.StringDtype("pyarrow")
_NULLABLE_INT = {
    pa.int8(): pd.Int8Dtype(), pa.int16(): pd.Int16Dtype(), pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(), pa.uint8(): pd.UInt8Dtype(), pa.uint16(): pd.UInt16Dtype(),
    pa.uint32(): pd.UInt32Dtype(), pa.uint64(): pd.UInt64Dtype(),
}  # fmt: skip


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _shared_objects(column: pa.ChunkedArray) -> np.ndarray:
    """A text column as an object array in which equal values are one Python string; missing
    values are None."""
    encoded = column.dictionary_encode().combine_chunks()
    values = np.asarray([*encoded.dictionary.to_pylist(), None], dtype=object)
    codes = encoded.indices.fill_null(len(values) - 1).to_numpy(zero_copy_only=False)
    return values.take(codes)


def _column(col: pa.ChunkedArray, text: str):
    t = col.type
    if _is_text(t):
        return _shared_objects(col) if text == "objects" else pd.array(col, dtype=STRING)
    if pa.types.is_decimal(t):
        col = col.cast(pa.float64())
    elif pa.types.is_date(t):
        col = col.cast(pa.timestamp("us"))
    mapper = None
    if col.null_count and (pa.types.is_integer(t) or pa.types.is_boolean(t)):
        mapper = {**_NULLABLE_INT, pa.bool_(): pd.BooleanDtype()}.get  # as .df() types them
    return pa.table({"c": col}).to_pandas(types_mapper=mapper)["c"]


def arrow_frame(table: pa.Table, *, text: str = "arrow") -> pd.DataFrame:
    """``table`` as pandas, text as ``string[pyarrow]`` (``text="arrow"``) or shared ``str``
    objects (``text="objects"``); the Arrow buffers go as each column is converted."""
    columns = {}
    for name in table.column_names:
        columns[name] = _column(table.column(name), text)
        table = table.drop_columns([name])
    return pd.DataFrame(columns, copy=False)


def _arrow(con, query: str, params: list | None) -> pa.Table:
    # a relation's Arrow result is not copied again (an execute() result's is); a relation
    # needs the connection free of a half-read execute() result (``.fetchone()``), so one is
    # completed first
    con.execute("SELECT 1").fetchall()
    rel = con.sql(query, params=params) if params else con.sql(query)
    return rel.to_arrow_table()


def own_buffers(values):
    """``values`` (a pandas array or Series backed by Arrow) copied into memory of its own.

    A column of a DuckDB Arrow result shares the lifetime of the whole result: kept alone
    (a record id carried into a prepared frame) it holds every other column the query read
    until it is freed itself. The copy (one contiguous chunk) holds only its own values.
    Anything not backed by Arrow is returned as it is."""
    if isinstance(values, pd.Series):
        array = own_buffers(values.array)
        return (
            values
            if array is values.array
            else pd.Series(array, index=values.index, name=values.name)
        )
    if not hasattr(values, "__arrow_array__") or not hasattr(values, "_pa_array"):
        return values
    data = values.__arrow_array__()
    if isinstance(data, pa.ChunkedArray):
        copy = pa.chunked_array(
            [pa.concat_arrays(data.chunks)] if data.num_chunks else [], type=data.type
        )
    else:
        copy = pa.chunked_array([pa.concat_arrays([data])])
    return type(values)(copy)


def fetch_frame(con, query: str, params: list | None = None) -> pd.DataFrame:
    """The result of ``query`` on DuckDB connection ``con``, text as ``string[pyarrow]``."""
    return arrow_frame(_arrow(con, query, params), text="arrow")


def fetch_objects(con, query: str, params: list | None = None) -> pd.DataFrame:
    """The result of ``query`` as ``.df()`` gives it, text values shared per distinct value."""
    return arrow_frame(_arrow(con, query, params), text="objects")
