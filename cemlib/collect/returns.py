"""Returns in the lines tables: which lines bring goods back, decided once after staging.

Retailers export a return in one of three ways (docs/own-data.md "Returns"):

- a **negative line** (its quantity below zero) in the order or receipt of the sale it cancels
  (a web shop's order);
- a **return receipt or order**: its header flagged ``is_return`` (1C's ``Тип операции =
  Возврат``, mapped with a list of values), its lines with positive quantities;
- a sale line whose status says it came back (a marketplace report's ``возврат``), mapped to
  ``returned``: that line is both the sale and its return.

After the chunks of a lines table are staged, :func:`mark_returns` gives every line its
``is_return`` (BOOLEAN, never NULL): the line's own flag when the export gave one; else true
on a return header; else true for a line of negative quantity whose order or receipt holds a
sale of the same item at the same price and of at least as many units (the sale it cancels);
else false; the sign is read so only where most of the table's negative lines cancel a sale
like that (an export writing its returns as negative lines), not where negative values are
scattered defects. A return's quantity and price become magnitudes (the direction is
``is_return``), so a return line passes the quality checks; a negative line that is no return
(no flag and no such sale in its order, or flagged a sale; a negative price without a flag)
keeps its sign and is quarantined by 01 as before ("quantity is zero, or negative on a line that is not a
return"). Nothing changes where the export has no negative line and no flag.
"""

from __future__ import annotations

from cemlib.warehouse import Warehouse, table_columns

#: lines table -> (header table, the column joining them)
LINE_HEADERS: dict[str, tuple[str, str]] = {
    "order_lines": ("online_orders", "order_id"),
    "receipt_lines": ("pos_receipts", "receipt_id"),
}


def _cols(wh: Warehouse, schema: str, table: str) -> set[str]:
    return set(table_columns(wh.con, schema, table))


def mark_returns(wh: Warehouse, lines: str, line_table: str, header_table: str | None) -> dict:
    """Set ``is_return`` on the staging table ``line_table`` (the staged ``lines`` table, e.g.
    a shadow being loaded) and make its returns' quantity and price magnitudes; ``header_table``
    is the staged header table (None when absent). Returns the counts of return lines by how
    they were told: ``flag``, ``header``, ``negative``, and ``negative_not_return`` (left
    negative: quarantined by 01)."""
    _header, key = LINE_HEADERS[lines]
    cols = _cols(wh, "staging", line_table)
    t = f'staging."{line_table}"'
    con = wh.con
    if "is_return" not in cols:
        con.execute(f"ALTER TABLE {t} ADD COLUMN is_return BOOLEAN")
    counts = {
        "flag": con.execute(f"SELECT count(*) FROM {t} WHERE is_return").fetchone()[0],
        "header": 0,
        "negative": 0,
    }
    if header_table is not None and "is_return" in _cols(wh, "staging", header_table):
        h = f'staging."{header_table}"'
        counts["header"] = con.execute(
            f"""UPDATE {t} AS l SET is_return = TRUE
                WHERE l.is_return IS NULL AND CAST(l."{key}" AS VARCHAR) IN (
                    SELECT CAST("{key}" AS VARCHAR) FROM {h} WHERE is_return)"""
        ).fetchone()[0]
    if {"quantity", "price", "sku", key} <= cols:
        cancels = f"""l.is_return IS NULL AND l.quantity < 0 AND l.price >= 0
                  AND EXISTS (
                    SELECT 1 FROM {t} s
                    WHERE s."{key}" = l."{key}" AND s.sku = l.sku AND s.price = l.price
                      AND s.quantity >= -l.quantity AND s.is_return IS NOT TRUE)"""
        negative, matched = con.execute(
            f"SELECT count(*) FILTER (WHERE l.is_return IS NULL AND l.quantity < 0), "
            f"count(*) FILTER (WHERE {cancels}) FROM {t} AS l"
        ).fetchone()
        counts["negative_lines"], counts["negative_cancelling"] = negative, matched
        # the export writes its returns as negative lines when most of its negative lines
        # cancel a sale in their order (a web shop's: all of them); scattered negative values
        # that happen to sit beside a sale of the same item (a defect by chance) are not
        # returns: their table's negative lines mostly cancel nothing
        if matched and 2 * matched >= negative:
            counts["negative"] = con.execute(
                f"UPDATE {t} AS l SET is_return = TRUE WHERE {cancels}"
            ).fetchone()[0]
    con.execute(f"UPDATE {t} SET is_return = FALSE WHERE is_return IS NULL")
    for col in ("quantity", "price"):
        if col in cols:
            con.execute(f"UPDATE {t} SET {col} = abs({col}) WHERE is_return AND {col} < 0")
    if {"quantity", "price"} <= cols:
        counts["negative_not_return"] = con.execute(
            f"SELECT count(*) FROM {t} WHERE NOT is_return AND (quantity < 0 OR price < 0)"
        ).fetchone()[0]
    return counts
