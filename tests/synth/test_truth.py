"""The ground truth has the structure later stages must find: churn covariates, seasonality,
cross-sell, browsing before buying, repeat purchases, and future purchases of the alive."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter, CoxTimeVaryingFitter

from cemlib.synth.catalog import CATEGORIES

AS_OF_END = pd.Timestamp("2025-07-01")
HORIZON_END = AS_OF_END + pd.Timedelta(days=365)
CAT_NAME = {c.code: c.name for c in CATEGORIES}


@pytest.fixture(scope="module")
def purchases(clean_world):
    """History lines (orders and receipts) with their true person, plus the future lines."""
    w = clean_world
    rp = w.truth["record_person"]
    frames = []
    for head, lines, key, ts, channel in (
        ("online_orders", "order_lines", "order_id", "ordered_at", "online"),
        ("pos_receipts", "receipt_lines", "receipt_id", "purchased_at", "store"),
    ):
        h = w.sources[head][[key, ts]].merge(
            rp[rp["source_table"] == head], left_on=key, right_on="record_id"
        )
        lines_ = w.sources[lines].merge(h, on=key)
        frames.append(
            pd.DataFrame(
                {
                    "person_id": lines_["person_id"],
                    "basket": lines_[key],
                    "ts": pd.to_datetime(lines_[ts]),
                    "channel": channel,
                    "sku": lines_["sku"],
                }
            )
        )
    hist = pd.concat(frames, ignore_index=True)
    products = w.sources["products"][["sku", "category"]]
    hist = hist.merge(products, on="sku")
    fut = w.truth["future_lines"].rename(columns={"future_order_id": "basket"})
    fut = fut[["person_id", "basket", "ts", "channel", "sku", "category"]]
    return pd.concat([hist, fut], ignore_index=True)


def test_cox_recovers_covariate_hazard_ratios(clean_world):
    p = clean_world.truth["people"]
    stop = p["true_dropout_date"].fillna(HORIZON_END)
    df = pd.DataFrame(
        {
            "duration": (stop - pd.to_datetime(p["joined_at"])).dt.total_seconds() / 86400,
            "event": p["true_dropout_date"].notna().astype(int),
            "loyal": p["loyalty_member"].astype(int),
            "online_share": p["online_share"],
            "metro": p["metro"].astype(int),
        }
    )
    df = df[df["duration"] > 0]
    hr = CoxPHFitter().fit(df, "duration", "event").hazard_ratios_
    assert 0.45 < hr["loyal"] < 0.8, hr
    assert 1.05 < hr["metro"] < 1.7, hr
    assert hr["online_share"] > 1.15, hr
    assert 0.3 < df["event"].mean() < 0.8


def test_bad_support_ticket_raises_the_hazard(clean_world):
    """A time-varying Cox model sees the shock of the first badly rated ticket (true HR 2.5)."""
    p = clean_world.truth["people"]
    join = pd.to_datetime(p["joined_at"])
    drop = p["true_dropout_date"]
    stop = drop.where(drop < AS_OF_END, AS_OF_END)
    t_end = (stop - join).dt.total_seconds() / 86400
    t_bad = (pd.to_datetime(p["first_bad_ticket_at"]) - join).dt.total_seconds() / 86400
    base = pd.DataFrame(
        {
            "id": p["person_id"],
            "start": 0.0,
            "stop": t_end,
            "event": (drop < AS_OF_END).astype(int),
            "loyal": p["loyalty_member"].astype(int),
            "bad": 0,
        }
    )
    has_bad = t_bad.notna() & (t_bad < t_end)
    before = base.copy()
    before.loc[has_bad, "stop"] = t_bad[has_bad]
    before.loc[has_bad, "event"] = 0
    after = base[has_bad].copy()
    after["start"] = t_bad[has_bad]
    after["bad"] = 1
    long = pd.concat([before, after])
    long = long[long["stop"] > long["start"]]
    assert has_bad.sum() > 100
    fit = CoxTimeVaryingFitter().fit(
        long, id_col="id", event_col="event", start_col="start", stop_col="stop"
    )
    hr = np.exp(fit.params_)
    assert 1.6 < hr["bad"] < 3.5, hr


def test_purchase_rate_drives_purchases_and_dropout_stops_them(clean_world, purchases):
    p = clean_world.truth["people"].set_index("person_id")
    baskets = purchases.drop_duplicates("basket")
    stop = p["true_dropout_date"].fillna(HORIZON_END).clip(upper=HORIZON_END)
    years = (stop - pd.to_datetime(p["joined_at"])).dt.total_seconds() / 86400 / 365.25
    counts = baskets.groupby("person_id").size().reindex(p.index, fill_value=0)
    ok = years > 0.5
    rate = counts[ok] / years[ok]
    assert rate.corr(p.loc[ok, "purchase_rate"], method="spearman") > 0.4
    # nobody buys after dropping out
    last = baskets.groupby("person_id")["ts"].max()
    dropped = p["true_dropout_date"].dropna()
    common = last.index.intersection(dropped.index)
    assert (last[common].to_numpy() < (dropped[common] + pd.Timedelta(days=1)).to_numpy()).all()
    # the future belongs to people alive at as_of
    fut_people = set(clean_world.truth["future_orders"]["person_id"])
    assert p.loc[list(fut_people), "alive_at_as_of"].all()


def test_seasonality(purchases):
    month = purchases["ts"].dt.month
    share = purchases.groupby(month)["category"].value_counts(normalize=True).unstack(fill_value=0)
    ny, seeds = CAT_NAME["new_year"], CAT_NAME["garden_seeds"]
    assert share.loc[12, ny] > 5 * share.loc[6, ny]
    assert share.loc[[4, 5], seeds].mean() > 4 * share.loc[[11, 12, 1], seeds].mean()


def _follow_rate(purchases, trigger_cats, target_cats, days):
    b = purchases.drop_duplicates(["basket", "category"])
    trig = b[b["category"].isin(trigger_cats)][["person_id", "ts"]].drop_duplicates()
    tgt = b[b["category"].isin(target_cats)][["person_id", "ts"]].rename(columns={"ts": "t2"})
    m = trig.reset_index().merge(tgt, on="person_id")
    hit = (m["t2"] > m["ts"]) & (m["t2"] <= m["ts"] + pd.Timedelta(days=days))
    return m[hit]["index"].nunique() / len(trig)


def test_cross_sell_follows_smartphones(purchases):
    phone = [CAT_NAME["smartphones"]]
    acc = [CAT_NAME["phone_accessories"], CAT_NAME["headphones"]]
    others = [
        c.name
        for c in CATEGORIES
        if c.code not in ("smartphones", "phone_accessories", "headphones", "laptops", "tv")
    ]
    after_phone = _follow_rate(purchases, phone, acc, 45)
    after_other = _follow_rate(purchases, others, acc, 45)
    assert after_phone > 0.2
    assert after_phone > 3 * after_other


def test_consumables_are_bought_again(purchases):
    lines = purchases.sort_values("ts")
    lines = lines.assign(next_ts=lines.groupby(["person_id", "sku"])["ts"].shift(-1))
    gap = (lines["next_ts"] - lines["ts"]).dt.days
    consumable = lines["category"].isin([c.name for c in CATEGORIES if c.repeat_days])
    again = gap.le(75)
    assert again[consumable].mean() > 0.3
    assert again[~consumable].mean() < 0.1


def test_browsing_precedes_buying(clean_world):
    w = clean_world
    rp = w.truth["record_person"]
    ev = w.sources["web_events"].merge(
        rp[rp["source_table"] == "web_events"], left_on="event_id", right_on="record_id"
    )
    views = ev[ev["event_type"] == "view"][["person_id", "sku", "ts"]].rename(columns={"ts": "vts"})
    o = w.sources["online_orders"].merge(
        rp[rp["source_table"] == "online_orders"], left_on="order_id", right_on="record_id"
    )
    lines = w.sources["order_lines"].merge(
        o[["order_id", "ordered_at", "person_id"]], on="order_id"
    )
    lines = lines.reset_index()
    m = lines.merge(views, on=["person_id", "sku"])
    dt = pd.to_datetime(m["ordered_at"]) - pd.to_datetime(m["vts"])
    hit = m[(dt > pd.Timedelta(0)) & (dt <= pd.Timedelta(days=14))]["index"].nunique() / len(lines)
    # the same share with the SKUs shuffled among lines: browsing is specific to what is bought
    shuffled = lines.assign(sku=np.random.default_rng(0).permutation(lines["sku"].to_numpy()))
    m2 = shuffled.merge(views, on=["person_id", "sku"])
    dt2 = pd.to_datetime(m2["ordered_at"]) - pd.to_datetime(m2["vts"])
    base = m2[(dt2 > pd.Timedelta(0)) & (dt2 <= pd.Timedelta(days=14))]["index"].nunique() / len(
        lines
    )
    assert hit > 0.5
    assert base < 0.05


def test_preferences_show_in_purchases(clean_world, purchases):
    prefs = clean_world.truth["preferences"].set_index("person_id")
    top = prefs.idxmax(axis=1).map(CAT_NAME)
    bought = purchases.groupby("person_id")["category"].agg(lambda s: s.value_counts().index[0])
    common = bought.index.intersection(top.index)
    n_lines = purchases.groupby("person_id").size()
    heavy = common[n_lines[common].to_numpy() >= 10]
    assert (bought[heavy] == top[heavy]).mean() > 0.35
