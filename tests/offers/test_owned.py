"""Owned items (trial 12 F7): durables a customer owns are not offered again, consumables are.

The world: every customer owns one phone and three of 40 gadgets (each bought once, never again)
and re-buys cases and cables every few weeks; one rare phone model has three owners, one of whom
bought it twice. Nothing in the code names a category: the rates are learned from this history.
"""

import numpy as np
import pandas as pd
import pytest

from cemlib.offers.data import prepare_transactions
from cemlib.offers.model import NextOfferModel
from cemlib.offers.owned import owned_rule
from cemlib.offers.snapshot import Snapshot, Store, day_number, encode

AS_OF = pd.Timestamp("2025-06-30")
DAYS = 360


def owned_world(n: int = 400, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start = AS_OF - pd.Timedelta(days=DAYS - 1)
    rows = []
    for c in range(n):
        cid = f"C{c:04d}"
        day = int(rng.integers(0, DAYS + 60))  # some buy their phone after as_of
        rows.append((cid, start + pd.Timedelta(days=day), f"PHONE{rng.integers(6)}", "phones"))
        for g in rng.choice(40, 3, replace=False):  # gadgets, each bought once
            day = int(rng.integers(0, DAYS + 60))
            rows.append((cid, start + pd.Timedelta(days=day), f"GADGET{g}", "gadgets"))
        own = rng.choice(8, 3, replace=False)
        d = int(rng.integers(0, 30))
        while d < DAYS + 60:
            for j in rng.choice(own, int(rng.integers(1, 3)), replace=False):
                rows.append((cid, start + pd.Timedelta(days=d), f"CASE{j}", "cases"))
            d += int(rng.integers(15, 45))
    for c, times in ((0, (10, 200)), (1, (50,)), (2, (90,))):  # the rare model: 3 owners
        for t in times:
            rows.append((f"C{c:04d}", start + pd.Timedelta(days=t), "PHONE_RARE", "phones"))
    tx = pd.DataFrame(rows, columns=["customer_id", "ts", "item_id", "category"])
    tx["quantity"], tx["amount"] = 1.0, 100.0
    return tx


@pytest.fixture(scope="module")
def world() -> pd.DataFrame:
    return owned_world()


def _rule(tx: pd.DataFrame, horizon: int = 60, k: int = 10):
    prepared = prepare_transactions(tx, as_of=AS_OF)
    enc, codes, _ = encode(prepared)
    snap = Snapshot(Store(codes, None), day_number(AS_OF), horizon=horizon)
    return enc, owned_rule(snap, len(enc.items), k)


def test_repeat_chance_is_learned_per_item_with_a_category_prior(world):
    enc, rule = _rule(world)
    p = pd.Series(rule.p_again, index=enc.items)
    phones = p[[i for i in enc.items if i.startswith("PHONE") and i != "PHONE_RARE"]]
    cases = p[[i for i in enc.items if i.startswith("CASE")]]
    # cases are re-bought within 60 days by most owners; phones by almost none
    assert cases.min() > 0.6
    assert phones.max() < 0.01
    # the rare model (1 repeat among 3 owners: 1/3 raw) is judged mostly by its category
    assert p["PHONE_RARE"] < 0.1
    assert p["PHONE_RARE"] > phones.max()
    # the bar: the 10th best seller's 60-day chance for a non-owner, between the two
    assert phones.max() < rule.bar < cases.min()


def test_no_purchase_after_as_of_moves_the_rule(world):
    before = world[world["ts"] <= AS_OF]
    enc_all, all_rows = _rule(world)
    enc_before, only_before = _rule(before)
    a = pd.Series(all_rows.p_again, index=enc_all.items).dropna().sort_index()
    b = pd.Series(only_before.p_again, index=enc_before.items).dropna().sort_index()
    pd.testing.assert_series_equal(a, b)
    assert all_rows.bar == only_before.bar


def test_owned_phones_are_not_offered_owned_cases_are(world):
    fitted = NextOfferModel(k=5, horizon_days=60, seed=3).fit(world, AS_OF)
    learned = fitted.recommend(explain=False)
    held = fitted.owned_held_
    fitted.owned = "keep"
    kept = fitted.recommend(explain=False)
    fitted.owned = "learned"
    hist = world[world["ts"] <= AS_OF]
    owned = pd.MultiIndex.from_frame(hist[["customer_id", "item_id"]]).unique()

    def owned_share(recs, prefix):
        pairs = pd.MultiIndex.from_frame(recs[["customer_id", "item_id"]])
        return int((pairs.isin(owned) & recs["item_id"].str.startswith(prefix).to_numpy()).sum())

    n_customers = hist["customer_id"].nunique()
    assert len(learned) == len(kept) == 5 * n_customers  # every list still holds k offers
    assert owned_share(kept, "PHONE") > 0  # the ranker alone offers owned phones
    assert owned_share(learned, "PHONE") == 0
    assert held > 0 and fitted.owned_held_ == 0
    # the consumables stay: each customer's three cases are among their offers
    assert owned_share(learned, "CASE") == owned_share(kept, "CASE")
    assert owned_share(learned, "CASE") >= 2.5 * n_customers


def test_owned_must_be_a_known_word():
    with pytest.raises(ValueError, match="owned"):
        NextOfferModel(owned="drop")
