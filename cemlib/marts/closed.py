"""Customers who already left: profiles whose every CRM record (contract, account) closed.

A CRM export of a telecom, a bank or a clinic says when a contract closed (``closed_at`` of
``crm_contacts``). As of ``as_of`` a record is closed when it closed on or before the end of
that day; one closing later is still open then (no leakage). A profile is *closed* when it
holds CRM records and every one of them is closed: the customer has gone, so the churn stage
does not score them as at risk and the offers stage sends them nothing. A phone or e-mail that
only the profile's closed records carry is a stale address: operators recycle numbers, so a
message to it can reach a stranger.
"""

from __future__ import annotations

import pandas as pd

from cemlib.marts.transactions import has_key, key_relation
from cemlib.warehouse import Warehouse, table_columns


def _crm_table(wh: Warehouse) -> tuple[str, set[str]] | None:
    """The schema whose ``crm_contacts`` carries ``closed_at`` (``clean``, else ``staging``)
    and that table's columns; None when it has no ``closed_at``."""
    for schema in ("clean", "staging"):
        cols = set(table_columns(wh.con, schema, "crm_contacts"))
        if cols:
            return (schema, cols) if "closed_at" in cols else None
    return None


def _closed_sql(as_of) -> str:
    end = pd.Timestamp(as_of).normalize() + pd.Timedelta(days=1)
    return f"(c.closed_at IS NOT NULL AND c.closed_at < TIMESTAMP '{end.isoformat(sep=' ')}')"


def crm_closure(wh: Warehouse, as_of, key: str = "profile") -> pd.DataFrame:
    """``customer_id, crm_records, crm_closed, closed`` per customer (``key``: the profile, or
    the true person of a synthetic world, :func:`~cemlib.marts.transactions.key_relation`)
    holding CRM records; an empty frame when ``crm_contacts`` has no ``closed_at`` column or
    the warehouse has no mapping for ``key``."""
    empty = pd.DataFrame(columns=["customer_id", "crm_records", "crm_closed", "closed"])
    crm = _crm_table(wh)
    if crm is None or not has_key(wh, key):
        return empty
    schema, mapping = crm[0], key_relation(key)
    out = wh.sql(
        f"""SELECT m.customer_id, count(*) AS crm_records,
                   count(*) FILTER (WHERE {_closed_sql(as_of)}) AS crm_closed
            FROM {schema}.crm_contacts c JOIN {mapping} m
              ON m.source_table = 'crm_contacts' AND m.record_id = CAST(c.contact_id AS VARCHAR)
            WHERE m.customer_id IS NOT NULL GROUP BY m.customer_id"""
    )
    out["customer_id"] = out["customer_id"].astype(str)
    out["closed"] = out["crm_closed"] == out["crm_records"]
    return out


def closed_since(
    wh: Warehouse, as_of, key: str = "profile", mapping: str | None = None
) -> pd.DataFrame | None:
    """``customer_id, closed_at`` of the customers who left (:func:`crm_closure`'s ``closed``:
    every CRM record closed by ``as_of``), ``closed_at`` their last record's closing; None when
    ``crm_contacts`` has no ``closed_at`` column or the warehouse has no mapping for ``key``.

    ``mapping``: a relation ``(source_table, record_id, customer_id)`` to read instead of
    ``key``'s (the Spark engine's stage 02 passes the map it is about to write)."""
    crm = _crm_table(wh)
    if crm is None or (mapping is None and not has_key(wh, key)):
        return None
    out = wh.sql(
        f"""SELECT m.customer_id, max(c.closed_at) AS closed_at
            FROM {crm[0]}.crm_contacts c JOIN {mapping or key_relation(key)} m
              ON m.source_table = 'crm_contacts' AND m.record_id = CAST(c.contact_id AS VARCHAR)
            WHERE m.customer_id IS NOT NULL GROUP BY m.customer_id
            HAVING bool_and({_closed_sql(as_of)})"""
    )
    out["customer_id"] = out["customer_id"].astype(str)
    return out


def open_addresses(wh: Warehouse, as_of, key: str = "profile") -> pd.DataFrame | None:
    """``customer_id, address_email, address_sms``: whether the profile holds an e-mail / a
    phone on a CRM record still open at ``as_of``, for the profiles holding a stale one (an
    address only its closed records carry); None when ``crm_contacts`` has no ``closed_at``.

    Addresses are compared normalized (``email_norm``, ``phone_e164``, else the raw column)."""
    crm = _crm_table(wh)
    if crm is None:
        return None
    (schema, cols), mapping = crm, key_relation(key)
    pick = {
        "address_email": next((c for c in ("email_norm", "email") if c in cols), None),
        "address_sms": next((c for c in ("phone_e164", "phone") if c in cols), None),
    }
    parts = []
    for flag, col in pick.items():
        if col is None:
            continue
        per = wh.sql(
            f"""WITH a AS (
                  SELECT m.customer_id, CAST(c."{col}" AS VARCHAR) AS addr,
                         bool_and({_closed_sql(as_of)}) AS stale
                  FROM {schema}.crm_contacts c JOIN {mapping} m
                    ON m.source_table = 'crm_contacts'
                   AND m.record_id = CAST(c.contact_id AS VARCHAR)
                  WHERE m.customer_id IS NOT NULL AND c."{col}" IS NOT NULL
                  GROUP BY 1, 2)
                SELECT customer_id, bool_or(NOT stale) AS {flag} FROM a
                GROUP BY 1 HAVING bool_or(stale)"""
        )
        parts.append(per.set_index("customer_id")[flag])
    if not parts:
        return pd.DataFrame(columns=["customer_id", "address_email", "address_sms"])
    out = pd.concat(parts, axis=1).reset_index()
    out["customer_id"] = out["customer_id"].astype(str)
    return out
