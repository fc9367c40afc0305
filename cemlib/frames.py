"""DuckDB results as pandas frames whose text stays in Arrow buffers.

``DuckDBPyConnection.df()`` turns every string into a Python object (about 60 bytes per value
plus an 8-byte pointer): for the ten-million-row tables of a large world that is most of a
stage's memory. :func:`fetch_frame` goes through Arrow instead: text columns become
``string[pyarrow]`` (the Arrow buffers, no copy), numbers and timestamps numpy columns as
``.df()`` gives them.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

STRING = pd.StringDtype("pyarrow")
_TEXT = {pa.string(): STRING, pa.large_string(): STRING}


def _text_type(dtype: pa.DataType):
    return STRING if (pa.types.is_string(dtype) or pa.types.is_large_string(dtype)) else None


def arrow_frame(table: pa.Table) -> pd.DataFrame:
    """``table`` as pandas: text as ``string[pyarrow]``, dates as ``datetime64`` (like
    ``.df()``); the Arrow table's buffers are released as columns are converted."""
    return table.to_pandas(
        types_mapper=_text_type, date_as_object=False, self_destruct=True, split_blocks=True
    )


def fetch_frame(con, query: str, params: list | None = None) -> pd.DataFrame:
    """The result of ``query`` on DuckDB connection ``con`` as :func:`arrow_frame`."""
    rel = con.execute(query, params or [])
    return arrow_frame(rel.to_arrow_table())
