"""The truth tables known before the sources are built: the people as they are, their
category preferences, their future orders, lines and web events after ``as_of``, the
categories and the stores. Only the generator knows them; the sources are built after."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cemlib.synth.catalog import CATEGORIES, CATEGORY_CODES, seasonality_matrix
from cemlib.synth.noise import cat, zfill
from cemlib.synth.sources import CATEGORY_NAMES, EVENT_TYPES
from cemlib.synth.text import coded, pick, s


def truth_tables(
    people, pref, lat, drop, first_bad, tickets, bk, ln, ev, products, stores, tl, *,
    in_crm, account_email,
) -> dict[str, pd.DataFrame]:  # fmt: skip
    """Every truth table but ``record_person`` and ``defects``: ``people``, ``preferences``,
    ``future_orders``, ``future_lines``, ``future_events``, ``categories``, ``stores``."""
    p = people
    prefs = pd.DataFrame(np.round(pref, 4), columns=list(CATEGORY_CODES))
    prefs.insert(0, "person_id", p["person_id"].to_numpy())
    f_orders, f_lines, f_events = _future(people, bk, ln, ev, products, tl)
    return {
        "people": _people(people, pref, lat, drop, first_bad, tickets, tl, in_crm, account_email),
        "preferences": prefs,
        "future_orders": f_orders,
        "future_lines": f_lines,
        "future_events": f_events,
        "categories": _categories(),
        "stores": stores.drop(columns=["_city_idx"]),
    }


def _people(people, pref, lat, drop, first_bad, tickets, tl, in_crm, account_email):
    """``truth.people``: who each person is, as of ``as_of``, and when they drop out."""
    n = len(people)
    drop_dt = np.where(
        drop <= tl.end, tl.to_datetime(np.minimum(drop, tl.end)), np.datetime64("NaT")
    )
    hist_t = tickets[tickets["t"] < tl.as_of_end]
    n_tickets = np.bincount(hist_t["person"], minlength=n)
    n_bad = np.bincount(hist_t["person"], weights=hist_t["bad"].astype(float), minlength=n).astype(
        int
    )
    top = np.argsort(-pref, axis=1)[:, :3]
    codes = np.array(CATEGORY_CODES)
    p = people
    people_t = pd.DataFrame(
        {
            "person_id": p["person_id"],
            "first_name": p["first_name"],
            "last_name": p["last_name"],
            "middle_name": p["middle_name"],
            "gender": p["gender"],
            "birth_date": p["birth_date"],
            # age at as_of (people are drawn with their age at the end of the joining period)
            "age": np.round(
                (tl.as_of.to_datetime64() - p["birth_date"].to_numpy().astype("datetime64[D]"))
                .astype("timedelta64[D]")
                .astype(np.int64)
                / 365.25,
                1,
            ),
            "city": p["city"],
            "region": p["region"],
            "metro": p["metro"],
            "household_id": p["household_id"],
            "household_size": p["household_size"],
            "address": p["address_street"]
            + ", д. "
            + p["address_house"].astype(str)
            + ", кв. "
            + p["address_flat"].astype(str),
            "phone": "+7" + pd.Series(p["phone_digits"]).astype(str),
            "phone2": np.where(
                p["phone2_digits"] >= 0, "+7" + p["phone2_digits"].astype(str), None
            ),
            "email": p["email"],
            "email2": p["email2"],
            "account_email": account_email,
            "in_crm": in_crm,
            "loyalty_member": p["loyalty_member"],
            "loyalty_card": np.where(
                p["loyalty_card_no"] >= 0, p["loyalty_card_no"].astype(str), None
            ),
            "segment": p["segment"],
            "online_share": p["online_share"],
            "joined_at": p["joined_at"],
            "purchase_rate": np.round(lat["purchase_rate"].to_numpy(), 4),
            "dropout_rate": np.round(lat["dropout_rate"].to_numpy(), 5),
            "n_tickets": n_tickets,
            "n_bad_tickets": n_bad,
            "first_bad_ticket_at": np.where(
                np.isfinite(first_bad) & (first_bad < tl.as_of_end),
                tl.to_datetime(np.where(np.isfinite(first_bad), first_bad, 0)),
                np.datetime64("NaT"),
            ),
            "true_dropout_date": pd.to_datetime(drop_dt).normalize(),
            "alive_at_as_of": drop >= tl.as_of_end,
            "alive_at_horizon_end": drop > tl.end,
            "top_categories": pd.Series(codes[top[:, 0]])
            + "|"
            + codes[top[:, 1]]
            + "|"
            + codes[top[:, 2]],
        }
    )
    people_t["true_dropout_date"] = people_t["true_dropout_date"].astype("datetime64[s]")
    return people_t


def _future(people, bk, ln, ev, products, tl):
    """The purchases (orders and their lines) and web events of the ``horizon_days`` after
    ``as_of``: what the churn and offer forecasts are graded on."""
    p = people
    bt = bk["t"].to_numpy()
    fut = np.flatnonzero((bt >= tl.as_of_end) & (bt < tl.end))
    person_ids = p["person_id"]
    f_person = bk["person"].to_numpy()[fut]
    f_orders = pd.DataFrame(
        {
            "future_order_id": s(cat("F", zfill(np.arange(1, len(fut) + 1), 9))),
            "person_id": s(pick(person_ids, f_person)),
            "ts": tl.to_datetime(bk["t"].to_numpy()[fut]),
            "channel": coded(["store", "online"], bk["online"].to_numpy()[fut].astype(np.int8)),
        }
    )
    pos = np.full(len(bk), -1)
    pos[fut] = np.arange(len(fut))
    lsel = np.flatnonzero(pos[ln["basket"].to_numpy()] >= 0)
    lb = pos[ln["basket"].to_numpy()[lsel]]
    sku = ln["sku_idx"].to_numpy()[lsel]
    qty = ln["quantity"].to_numpy()[lsel]
    price = ln["price"].to_numpy()[lsel]
    ci = products["_ci"].to_numpy()[sku]
    f_lines = pd.DataFrame(
        {
            "future_order_id": s(pick(f_orders["future_order_id"], lb)),
            "person_id": s(pick(person_ids, f_person[lb])),
            "ts": f_orders["ts"].to_numpy()[lb],
            "channel": f_orders["channel"].take(lb).reset_index(drop=True),
            "sku": coded(products["sku"], sku),
            "category": coded(CATEGORY_NAMES, ci),
            "category_code": coded(CATEGORY_CODES, ci),
            "quantity": qty,
            "price": price,
            "amount": np.round(qty * price, 2),
        }
    )
    amount = np.bincount(lb, weights=qty * price, minlength=len(fut))
    f_orders["n_lines"] = np.bincount(lb, minlength=len(fut))
    f_orders["amount"] = np.round(amount, 2)

    et = ev["t"].to_numpy()
    fsel = np.flatnonzero((et >= tl.as_of_end) & (et < tl.end))
    fsel = fsel[np.lexsort((ev["person"].to_numpy()[fsel], ev["t"].to_numpy()[fsel]))]
    f_events = pd.DataFrame(
        {
            "person_id": s(pick(person_ids, ev["person"].to_numpy()[fsel])),
            "ts": tl.to_datetime(ev["t"].to_numpy()[fsel]),
            "event_type": coded(EVENT_TYPES, ev["etype"].to_numpy()[fsel]),
            "sku": coded(products["sku"], ev["sku_idx"].to_numpy()[fsel]),
            "category": coded(CATEGORY_NAMES, ev["category"].to_numpy()[fsel]),
        }
    )

    return f_orders, f_lines, f_events


def _categories() -> pd.DataFrame:
    """``truth.categories``: each category's repeat cycle, cross-sells and seasonality."""
    season = seasonality_matrix()
    categories = pd.DataFrame(
        {
            "category_code": list(CATEGORY_CODES),
            "category": [c.name for c in CATEGORIES],
            "repeat_days": [c.repeat_days for c in CATEGORIES],
            "cross_sell": ["|".join(c.cross_sell) for c in CATEGORIES],
            **{f"season_{m + 1:02d}": np.round(season[m], 3) for m in range(12)},
        }
    )
    return categories
