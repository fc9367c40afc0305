"""The source tables of the identity stage: which columns of each carry which role, read
from the warehouse (only those columns, text as Arrow strings) and prepared into one frame of
records.

Deterministic results: the records of each table are put in record-id order (the id as text,
byte order) before they are prepared, so the prepared frame, and every tie the resolution
decides by position (Splink's ``unique_id``, the orientation of a link, the first record of a
cluster or of a signature), follows the total order (source, record id) and not the order in
which a table's rows happened to be stored. Two runs on the same records, in any row order,
give the same profiles (``tests/identity/test_row_order.py``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cemlib.errors import InputError
from cemlib.frames import fetch_frame
from cemlib.identity.roles import (
    as_string,
    concat_categoricals,
    prepare_records,
    shared_values,
)
from cemlib.progress import progress

#: id column and role map of each source table (roles whose column is absent are skipped); an
#: event's ``contact_id`` names its ``crm_contacts`` record (:func:`~cemlib.identity.rules.contact_links`)
SOURCE_ROLES: dict[str, tuple[str, dict[str, str | list[str]]]] = {
    "crm_contacts": (
        "contact_id",
        {
            "first_name": "first_name",
            "last_name": "last_name",
            "middle_name": "middle_name",
            "full_name": "full_name",
            "birth_date": "birth_date",
            # a card's second phone / e-mail (optional columns) join the first
            "phone": ["phone", "phone2"],
            "email": ["email", "email2"],
            "city": "city",
            "loyalty_card": "loyalty_card",
            "updated_at": "registered_at",
        },
    ),
    "online_orders": (
        "order_id",
        {
            "email": "email",
            "phone": "phone",
            "device_id": "device_id",
            "address": "delivery_address",
            "contact_id": "contact_id",
            "first_name": "first_name",
            "updated_at": "ordered_at",
        },
    ),
    "pos_receipts": (
        "receipt_id",
        {
            "loyalty_card": "loyalty_card",
            "phone": "phone",
            "contact_id": "contact_id",
            "updated_at": "purchased_at",
        },
    ),
    "web_events": (
        "event_id",
        {
            "device_id": "device_id",
            "email": "email",
            "contact_id": "contact_id",
            "updated_at": "ts",
        },
    ),
    "support_tickets": (
        "ticket_id",
        {
            "phone": "phone",
            "email": "email",
            "contact_id": "contact_id",
            "first_name": "first_name",
            "last_name": "last_name",
            "middle_name": "middle_name",
            "full_name": "full_name",
            "updated_at": "created_at",
        },
    ),
}


def _arrow(series: pd.Series) -> pa.ChunkedArray:
    array = series.array.__arrow_array__() if hasattr(series.array, "__arrow_array__") else None
    if array is None:
        array = pa.chunked_array([pa.array(series.to_numpy(), from_pandas=True)])
    return array if isinstance(array, pa.ChunkedArray) else pa.chunked_array([array])


def in_record_order(df: pd.DataFrame, id_col: str) -> pd.DataFrame:
    """``df`` with one row per record id, in record-id order (the id as text, byte order).

    Rows already in strictly increasing id order (what :func:`read_sources` asks DuckDB for)
    are returned as they are after one linear check. Otherwise the rows are sorted by the id,
    then by every other column (so that which copy of a repeated id is kept does not depend on
    the row order either), and the first row of each id is kept: a repeated id is one record
    (the quality stage quarantines repeats in ``clean.*``; ``staging.*`` may hold them)."""
    ids = _arrow(as_string(df[id_col]))
    if len(ids) < 2 or pc.all(pc.less(ids[:-1], ids[1:])).as_py():
        return df
    others = [c for c in df.columns if c != id_col]
    keys = {"__id": ids}
    for i, c in enumerate(others):
        try:
            keys[f"__{i}"] = _arrow(df[c])
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            keys[f"__{i}"] = _arrow(as_string(df[c]))  # mixed objects: compared as text
    table = pa.table(keys)
    # ascending, missing values last (Arrow's default)
    order = pc.sort_indices(table, sort_keys=[(k, "ascending") for k in keys]).to_numpy()
    sorted_ids = ids.take(order)
    first = np.ones(len(order), dtype=bool)
    first[1:] = pc.not_equal(sorted_ids[:-1], sorted_ids[1:]).to_numpy(zero_copy_only=False)
    return df.take(order[first]).reset_index(drop=True)


def in_total_order(records: pd.DataFrame) -> pd.DataFrame:
    """Prepared ``records`` in (source, record id) order (text, byte order): as they are
    after one linear check when they already are (:func:`source_records` makes them so),
    else sorted (records gathered from a distributed engine's partitions)."""
    if len(records) < 2:
        return records
    src, rid = _arrow(as_string(records["source"])), _arrow(as_string(records["record_id"]))
    s0, s1, r0, r1 = src[:-1], src[1:], rid[:-1], rid[1:]
    increasing = pc.or_(pc.less(s0, s1), pc.and_(pc.equal(s0, s1), pc.less(r0, r1)))
    if pc.all(increasing).as_py():
        return records
    keys = pa.table({"s": src, "r": rid})
    order = pc.sort_indices(keys, sort_keys=[("s", "ascending"), ("r", "ascending")])
    return records.take(order.to_numpy()).reset_index(drop=True)


def _prepare_tables(tables: dict[str, pd.DataFrame], consume: bool) -> list[pd.DataFrame]:
    parts = []
    # sources by name, each in record-id order: the prepared frame is in (source, record id)
    # order, the order identity.prepared is stored in (an incremental run reads it back)
    ordered = sorted(SOURCE_ROLES.items())
    for name, (id_col, roles) in progress(ordered, desc="prepare", leave=False):
        df = tables.pop(name, None) if consume else tables.get(name)
        if df is None:
            continue
        if id_col not in df.columns:
            raise InputError("id column missing", source=name, column=id_col)
        present = present_roles(roles, df.columns)
        # the total order (source, record id) decides every tie of the resolution
        df = in_record_order(df, id_col)
        parts.append(prepare_records(df, present, id_column=id_col, source=name))
        del df
    return parts


def source_records(tables: dict[str, pd.DataFrame], *, consume: bool = False) -> pd.DataFrame:
    """Prepared records of every source table present in ``tables`` (one frame, all rows).

    ``consume=True`` removes each table from ``tables`` once prepared, so that its memory is
    freed before the next one is read (when the caller holds no other reference to it).
    Identifier values shared by several tables are normalized once (:func:`shared_values`).
    """
    with shared_values():
        parts = _prepare_tables(tables, consume)
    if not parts:
        raise InputError("no source table with identifiers", source="identity")
    # column by column, each part's column freed once joined: the peak is the result plus one
    # column, not twice the result (pd.concat of whole frames)
    columns = {}
    for c in list(parts[0].columns):
        values = [part.pop(c) for part in parts]
        if isinstance(values[0].dtype, pd.CategoricalDtype):
            columns[c] = pd.Series(concat_categoricals([v.array for v in values]))
        else:
            columns[c] = pd.concat(values, ignore_index=True)
        del values
    return pd.DataFrame(columns, copy=False)


def _role_columns(id_col: str, roles: dict[str, str | list[str]]) -> list[str]:
    cols = [id_col]
    for c in roles.values():
        for col in [c] if isinstance(c, str) else c:
            if col not in cols:
                cols.append(col)
    return cols


def present_roles(roles: dict[str, str | list[str]], have) -> dict[str, str | list[str]]:
    """``roles`` narrowed to the columns in ``have`` (a role of several columns keeps those
    present; a role with none present is left out)."""
    out: dict[str, str | list[str]] = {}
    for role, c in roles.items():
        if isinstance(c, str):
            if c in have:
                out[role] = c
        elif cols := [col for col in c if col in have]:
            out[role] = cols
    return out


def source_schemas(wh) -> dict[str, tuple[str, str]]:
    """``table -> (schema, id column)``: ``clean`` when present, else ``staging``."""
    out = {}
    for name, (id_col, _roles) in SOURCE_ROLES.items():
        for schema in ("clean", "staging"):
            if wh.has_table(schema, name):
                out[name] = (schema, id_col)
                break
    return out


def _columns(wh, schema: str, name: str) -> set[str]:
    return set(
        wh.con.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ?",
            [schema, name],
        )
        .fetchnumpy()["column_name"]
        .tolist()
    )


#: a fixed row :func:`row_hash_kind` hashes: its hash names the hash function of this DuckDB
_HASH_PROBE = "hash('cemlib', 'row_hash', NULL::VARCHAR, '', '1')"


def row_hash_kind(con) -> str:
    """The hash function :func:`row_hashes_query` uses, named by DuckDB's ``hash()`` of a
    fixed row: another DuckDB version may hash otherwise, and hashes taken by another function
    can't be compared (:func:`~cemlib.identity.incremental.choose_mode` then runs in full)."""
    return f"duckdb-hash:{con.execute(f'SELECT {_HASH_PROBE}').fetchall()[0][0]}"


def row_hashes_query(wh) -> str | None:
    """SQL of ``source, record_id, row_hash, key_hash`` over every source table; None when no
    source table is present. ``row_hash``: DuckDB's 64-bit ``hash()`` of the source's name and
    the columns identity reads from the row (its id and roles, each as text, NULL apart from
    an empty text), so a record whose identifying values changed at the source (a new phone
    on the same CRM record) gets a new hash, whether its ``updated_at`` moved or not.
    ``key_hash``: the hash of the source's name and the record id. Both are integers: hashing
    every source row and comparing the hashes is a third of the MD5 texts' CPU
    (:func:`~cemlib.identity.store.changed_records`); a changed record is missed only when its
    new values hash like its old ones (about one change in 2**64)."""
    parts = []
    for name, (schema, id_col) in source_schemas(wh).items():
        have = _columns(wh, schema, name)
        cols = [c for c in _role_columns(id_col, SOURCE_ROLES[name][1]) if c in have]
        values = ", ".join(f'CAST(t."{c}" AS VARCHAR)' for c in cols)
        rid = f'CAST(t."{id_col}" AS VARCHAR)'
        parts.append(
            f"SELECT '{name}' AS source, {rid} AS record_id, hash('{name}', {values}) AS "
            f"row_hash, hash('{name}', {rid}) AS key_hash FROM {schema}.\"{name}\" t"
        )
    return " UNION ALL ".join(parts) or None


def read_sources(
    wh, *, new_only: bool = False, changed: pd.DataFrame | None = None
) -> dict[str, pd.DataFrame]:
    """``clean.<table>`` for each source table, ``staging.<table>`` when clean is absent.

    Only the id and role columns are read, text as Arrow strings (:func:`fetch_frame`): the
    tables' other columns and Python string objects were most of the stage's memory.
    ``new_only``: only the rows ``identity.prepared`` (the last run's records) lacks, and those
    of ``changed`` (``source, record_id``: records whose identifying values changed).
    Rows come in record-id order (:func:`in_record_order`), whatever order the table has.
    """
    tables = {}
    for name, (id_col, roles) in SOURCE_ROLES.items():
        for schema in ("clean", "staging"):
            if wh.has_table(schema, name):
                have = _columns(wh, schema, name)
                cols = [c for c in _role_columns(id_col, roles) if c in have]
                sel = ", ".join(f't."{c}"' for c in cols)
                query = f'SELECT {sel} FROM {schema}."{name}" t'
                if new_only:
                    again = (
                        " AND NOT EXISTS (SELECT 1 FROM _id_changed c WHERE c.source = p.source "
                        "AND c.record_id = p.record_id)"
                        if changed is not None and len(changed)
                        else ""
                    )
                    query += (
                        " ANTI JOIN (SELECT p.record_id FROM identity.prepared p WHERE p.source "
                        f"= '{name}'{again}) p ON CAST(t.\"{id_col}\" AS VARCHAR) = p.record_id"
                    )
                query += f' ORDER BY CAST(t."{id_col}" AS VARCHAR)'  # see in_record_order
                if new_only and changed is not None and len(changed):
                    wh.con.register("_id_changed", changed[["source", "record_id"]])
                    try:
                        tables[name] = fetch_frame(wh.con, query)
                    finally:
                        wh.con.unregister("_id_changed")
                else:
                    tables[name] = fetch_frame(wh.con, query)
                break
    if not tables:
        raise InputError(
            "no clean.* or staging.* source tables; run the collect and quality stages first",
            source=str(wh.path),
        )
    return tables
