"""Identity noise stays valid; the injected defects are the only invalid values."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import phonenumbers
import pytest

EMAIL_RE = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9._+-]*[A-Za-z0-9])?@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$"
)
PHONES = {
    "crm_contacts": "phone",
    "online_orders": "phone",
    "pos_receipts": "phone",
    "support_tickets": "phone",
}
EMAILS = {
    "crm_contacts": "email",
    "online_orders": "email",
    "web_events": "email",
    "support_tickets": "email",
}
TS = {
    "crm_contacts": "registered_at",
    "online_orders": "ordered_at",
    "pos_receipts": "purchased_at",
    "web_events": "ts",
    "support_tickets": "created_at",
}


def valid_phone(v: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(v, "RU"))
    except phonenumbers.NumberParseException:
        return False


def valid_email(v: str) -> bool:
    return bool(EMAIL_RE.match(v)) and ".." not in v


def valid_ts(v: str) -> bool:
    t = pd.to_datetime(v, format="%Y-%m-%d %H:%M:%S", errors="coerce")
    return pd.notna(t) and pd.Timestamp("2022-01-01") <= t < pd.Timestamp("2025-07-01")


def _split(world, table, column):
    d = world.truth["defects"]
    bad_rows = d.loc[(d["table"] == table) & (d["column"] == column), "source_row"].to_numpy()
    other_rows = d.loc[(d["table"] == table) & (d["column"] != column), "source_row"].to_numpy()
    col = world.sources[table][column]
    clean = col.drop(index=np.concatenate([bad_rows, other_rows])).dropna()
    return clean, col.iloc[bad_rows], d.loc[(d["table"] == table) & (d["column"] == column)]


@pytest.mark.parametrize("table", sorted(PHONES))
def test_phones_valid_except_defects(world, table):
    clean, bad, _ = _split(world, table, PHONES[table])
    assert len(clean) > 100
    assert all(valid_phone(v) for v in clean), table
    assert len(bad) > 0
    assert not any(valid_phone(v) for v in bad)


@pytest.mark.parametrize("table", sorted(EMAILS))
def test_emails_well_formed_except_defects(world, table):
    clean, bad, _ = _split(world, table, EMAILS[table])
    assert len(clean) > 100
    invalid = [v for v in clean if not valid_email(v)]
    assert invalid == []
    assert len(bad) > 0
    assert not any(valid_email(v) for v in bad)


@pytest.mark.parametrize("table", sorted(TS))
def test_timestamps_in_history_except_defects(world, table):
    clean, bad, rec = _split(world, table, TS[table])
    assert all(valid_ts(v) for v in clean.unique())
    assert not any(valid_ts(v) for v in bad)
    assert set(rec["defect"]) == {"ts_after_as_of", "ts_before_start", "unparseable_date"}


def test_birth_dates_plausible_except_defects(world):
    clean, bad, _ = _split(world, "crm_contacts", "birth_date")
    parsed = pd.to_datetime(clean, format="%Y-%m-%d", errors="coerce")
    assert parsed.notna().all()
    assert parsed.min() >= pd.Timestamp("1930-01-01") and parsed.max() <= pd.Timestamp("2007-07-01")
    assert pd.to_datetime(bad, format="%Y-%m-%d", errors="coerce").isna().all()


@pytest.mark.parametrize(
    "table,parent,key",
    [("order_lines", "online_orders", "order_id"), ("receipt_lines", "pos_receipts", "receipt_id")],
)
def test_lines_valid_except_defects(world, table, parent, key):
    lines = world.sources[table]
    d = world.truth["defects"]
    d = d[d["table"] == table]
    bad = set(d["source_row"])
    clean = lines.drop(index=list(bad))
    skus = set(world.sources["products"]["sku"])
    parents = set(world.sources[parent][key])
    assert (clean["quantity"] > 0).all() and (clean["price"] > 0).all()
    assert clean[key].isin(parents).all() and clean["sku"].isin(skus).all()
    for kind, check in {
        "nonpositive_quantity": lambda r: r["quantity"] <= 0,
        "nonpositive_price": lambda r: r["price"] <= 0,
        "orphan_line": lambda r: ~r[key].isin(parents),
        "unknown_sku": lambda r: ~r["sku"].isin(skus),
    }.items():
        rows = lines.iloc[d.loc[d["defect"] == kind, "source_row"].to_numpy()]
        assert len(rows) > 0 and check(rows).all(), kind


def test_duplicate_receipt_ids_are_exact_copies(world):
    r = world.sources["pos_receipts"]
    d = world.truth["defects"]
    dup_rows = d.loc[d["defect"] == "duplicate_receipt_id", "source_row"].to_numpy()
    assert r["receipt_id"].duplicated().sum() == len(dup_rows) > 0
    assert set(np.flatnonzero(r["receipt_id"].duplicated().to_numpy())) == set(dup_rows)
    for row in dup_rows[:20]:
        assert r.iloc[row].equals(r.iloc[row - 1])


def test_defect_record_ids_match_rows(world):
    d = world.truth["defects"]
    ids = {
        "crm_contacts": "contact_id",
        "online_orders": "order_id",
        "pos_receipts": "receipt_id",
        "order_lines": "line_id",
        "receipt_lines": "line_id",
        "web_events": "event_id",
        "support_tickets": "ticket_id",
    }
    for table, g in d.groupby("table"):
        src = world.sources[table]
        assert (
            src[ids[table]].iloc[g["source_row"].to_numpy()].to_numpy() == g["record_id"].to_numpy()
        ).all()
    assert not d.duplicated(["table", "source_row"]).any()


def test_no_defects_world_is_clean(clean_world):
    assert len(clean_world.truth["defects"]) == 0
    for table, col in PHONES.items():
        assert all(valid_phone(v) for v in clean_world.sources[table][col].dropna())
    assert not clean_world.sources["pos_receipts"]["receipt_id"].duplicated().any()
