"""Next-offer inputs taken straight from a synthetic world, keyed by the true person.

Used by tests and benchmarks to score the model against the world's known future purchases
without running the collect/quality/identity stages first (the warehouse stage uses
``cemlib.marts.profile_transactions`` on resolved profiles instead). Source rows whose date or
number a defect made unreadable are counted in ``frames["dropped"]``, never silently lost.
"""

from __future__ import annotations

import pandas as pd


def _mapped(world, table: str, id_col: str) -> pd.DataFrame:
    rp = world.truth["record_person"]
    rp = rp[rp["source_table"] == table][["record_id", "person_id"]]
    src = world.sources[table].copy()
    src["_rid"] = src[id_col].astype(str)
    return src.merge(rp.rename(columns={"record_id": "_rid"}).astype({"_rid": str}), on="_rid")


def frames_from_world(world) -> dict:
    """``transactions, events, items, consent, future`` frames with ``customer_id`` = person_id."""
    products = world.sources["products"]
    dropped: dict[str, int] = {}
    parts = []
    for header, id_col, ts_col, lines in (
        ("online_orders", "order_id", "ordered_at", "order_lines"),
        ("pos_receipts", "receipt_id", "purchased_at", "receipt_lines"),
    ):
        h = _mapped(world, header, id_col)
        h["ts"] = pd.to_datetime(h[ts_col], errors="coerce", format="mixed")
        ln = world.sources[lines]
        m = ln.assign(**{id_col: ln[id_col].astype(str)}).merge(
            h[[id_col, "ts", "person_id"]].assign(**{id_col: h[id_col].astype(str)}), on=id_col
        )
        qty = pd.to_numeric(m["quantity"], errors="coerce")
        price = pd.to_numeric(m["price"], errors="coerce")
        bad = m["ts"].isna() | qty.isna() | price.isna() | m["sku"].isna()
        dropped[lines] = int(bad.sum())
        m = m[~bad]
        parts.append(
            pd.DataFrame(
                {
                    "customer_id": m["person_id"].astype(str).to_numpy(),
                    "ts": m["ts"].to_numpy(),
                    "order_id": (header + ":" + m[id_col].astype(str)).to_numpy(),
                    "item_id": m["sku"].astype(str).to_numpy(),
                    "quantity": qty[~bad].to_numpy(),
                    "amount": (qty[~bad] * price[~bad]).to_numpy(),
                }
            )
        )
    tx = pd.concat(parts, ignore_index=True).sort_values(["customer_id", "ts"], kind="stable")
    ev = _mapped(world, "web_events", "event_id")
    ev_ts = pd.to_datetime(ev["ts"], errors="coerce", format="mixed")
    dropped["web_events"] = int(ev_ts.isna().sum())
    events = pd.DataFrame(
        {
            "customer_id": ev["person_id"].astype(str),
            "ts": ev_ts,
            "item_id": ev["sku"].astype("string"),
            "category": ev["category"].astype("string"),
            "event_type": ev["event_type"].astype(str),
        }
    )[ev_ts.notna().to_numpy()]
    crm = _mapped(world, "crm_contacts", "contact_id")
    consent = pd.DataFrame(
        {
            "customer_id": crm["person_id"].astype(str),
            "consent_email": crm["consent_email"],
            "consent_sms": crm["consent_sms"],
        }
    )
    fl = world.truth["future_lines"]
    future = pd.DataFrame(
        {
            "customer_id": fl["person_id"].astype(str),
            "ts": pd.to_datetime(fl["ts"]),
            "item_id": fl["sku"].astype(str),
            "category": fl["category"].astype(str),
            "quantity": fl["quantity"].astype(float),
            "amount": fl["amount"].astype(float),
        }
    )
    items = products.rename(columns={"sku": "item_id"})[["item_id", "name", "category", "price"]]
    return {
        "transactions": tx.reset_index(drop=True),
        "events": events.reset_index(drop=True),
        "items": items,
        "consent": consent,
        "future": future,
        "dropped": dropped,
    }
