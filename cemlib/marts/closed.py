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

from cemlib.warehouse import Warehouse


def _crm_schema(wh: Warehouse) -> str | None:
    """The schema whose ``crm_contacts`` carries ``closed_at`` (``clean``, else ``staging``)."""
    for schema in ("clean", "staging"):
        if wh.has_table(schema, "crm_contacts"):
            cols = set(wh.sql(f"SELECT * FROM {schema}.crm_contacts LIMIT 0").columns)
            return schema if "closed_at" in cols else None
    return None


def _closed_sql(as_of) -> str:
    end = pd.Timestamp(as_of).normalize() + pd.Timedelta(days=1)
    return f"(c.closed_at IS NOT NULL AND c.closed_at < TIMESTAMP '{end.isoformat(sep=' ')}')"


def crm_closure(wh: Warehouse, as_of, mapping: str | None = None) -> pd.DataFrame:
    """``customer_id, crm_records, crm_closed, closed`` per profile holding CRM records, or an
    empty frame when ``crm_contacts`` has no ``closed_at`` column.

    ``mapping``: SQL of ``source_table, record_id, customer_id`` (default ``identity.map``)."""
    empty = pd.DataFrame(columns=["customer_id", "crm_records", "crm_closed", "closed"])
    schema = _crm_schema(wh)
    if schema is None:
        return empty
    if mapping is None:
        if not wh.has_table("identity", "map"):
            return empty
        mapping = (
            "(SELECT source_table, CAST(record_id AS VARCHAR) AS record_id, "
            "CAST(profile_id AS VARCHAR) AS customer_id FROM identity.map)"
        )
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


def open_addresses(wh: Warehouse, as_of, mapping: str | None = None) -> pd.DataFrame | None:
    """``customer_id, address_email, address_sms``: whether the profile holds an e-mail / a
    phone on a CRM record still open at ``as_of``, for the profiles holding a stale one (an
    address only its closed records carry); None when ``crm_contacts`` has no ``closed_at``.

    Addresses are compared normalized (``email_norm``, ``phone_e164``, else the raw column)."""
    schema = _crm_schema(wh)
    if schema is None:
        return None
    if mapping is None:
        mapping = (
            "(SELECT source_table, CAST(record_id AS VARCHAR) AS record_id, "
            "CAST(profile_id AS VARCHAR) AS customer_id FROM identity.map)"
        )
    cols = set(wh.sql(f"SELECT * FROM {schema}.crm_contacts LIMIT 0").columns)
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
