"""Export of a run's outcome as files: quarantined rows as received, clean rows typed."""

from __future__ import annotations

from pathlib import Path

from cemlib.quality.rowsql import quote
from cemlib.warehouse import STAMP_COLUMNS, Warehouse


def quarantined_as_received(wh: Warehouse, table: str):
    """The quarantined rows of ``table`` exactly as they came in (``raw.<table>`` text) plus
    ``_source_row``, ``expectation`` and ``reason``; from staging when raw is absent."""
    source = "raw" if wh.has_table("raw", table) else "staging"
    cols = [
        c
        for c in wh.sql(f"SELECT * FROM {source}.{quote(table)} LIMIT 0").columns
        if c not in STAMP_COLUMNS and c != "_source_row"
    ]
    sel = ", ".join(f"r.{quote(c)}" for c in cols)
    return wh.sql(
        f"SELECT {sel}, r._source_row, q.expectation, q.reason FROM quarantine.{quote(table)} q "
        f"JOIN {source}.{quote(table)} r ON r._source_row = q._source_row ORDER BY r._source_row"
    )


def export_outcome(wh: Warehouse, tables: list[str], out_dir: str | Path) -> dict[str, Path]:
    """Write ``out_dir/quarantine/<table>.csv`` and ``out_dir/clean/<table>.parquet``."""
    out = Path(out_dir)
    (out / "quarantine").mkdir(parents=True, exist_ok=True)
    (out / "clean").mkdir(parents=True, exist_ok=True)
    written = {}
    for table in tables:
        q = quarantined_as_received(wh, table)
        q_path = out / "quarantine" / f"{table}.csv"
        q.to_csv(q_path, index=False, encoding="utf-8")
        c_path = out / "clean" / f"{table}.parquet"
        cols = [
            c
            for c in wh.sql(f"SELECT * FROM clean.{quote(table)} LIMIT 0").columns
            if c not in STAMP_COLUMNS
        ]
        sel = ", ".join(quote(c) for c in cols)
        path_lit = str(c_path).replace("'", "''")
        wh.con.execute(
            f"COPY (SELECT {sel} FROM clean.{quote(table)} ORDER BY _source_row) "
            f"TO '{path_lit}' (FORMAT PARQUET)"
        )
        written[table] = q_path
    return written
