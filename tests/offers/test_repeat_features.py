"""The repeat features of a snapshot, by hand on a tiny history (nothing after the cutoff)."""

import pandas as pd
import pytest

from cemlib.offers.candidates import CandidateConfig, build_candidates
from cemlib.offers.data import prepare_transactions
from cemlib.offers.features import build_features
from cemlib.offers.snapshot import DECAYS, Snapshot, Store, day_number, encode

START = pd.Timestamp("2025-01-01")


def _features():
    rows = [("a", 0, "x", 1), ("a", 10, "x", 1), ("a", 30, "x", 3), ("a", 30, "y", 1)]
    rows += [("a", 35, "w", 1), ("b", 5, "x", 1), ("b", 25, "x", 1), ("c", 2, "z", 1)]
    rows += [("a", 50, "x", 9), ("a", 50, "y", 1)]  # after the cutoff (day 40): never seen
    tx = pd.DataFrame(
        [(c, START + pd.Timedelta(days=d), i, q, 10.0 * q) for c, d, i, q in rows],
        columns=["customer_id", "ts", "item_id", "quantity", "amount"],
    )
    enc, codes, _ = encode(prepare_transactions(tx))
    store = Store(codes, None)
    snap = Snapshot(store, day_number(START) + 40, horizon=30)
    store.execute(
        f"CREATE TEMP TABLE {snap.p}q AS SELECT range AS c FROM range({len(enc.customers)})"
    )
    feats = build_features(snap, build_candidates(snap, f"{snap.p}q", CandidateConfig()))
    feats["customer_id"] = enc.customers.to_numpy()[feats["c"]]
    feats["item_id"] = enc.items.to_numpy()[feats["i"]]
    store.close()
    return feats.set_index(["customer_id", "item_id"])


def test_decayed_frequencies_and_repeat_share_by_hand():
    f = _features()
    # a's baskets, newest first: day 35 (w), day 30 (x, y), day 10 (x), day 0 (x)
    for name, r in zip(("ci_decay_fast", "ci_decay_slow"), DECAYS):
        total = 1 + r + r**2 + r**3
        assert f.loc[("a", "x"), name] == pytest.approx((r + r**2 + r**3) / total, rel=1e-6)
        assert f.loc[("a", "y"), name] == pytest.approx(r / total, rel=1e-6)
        assert f.loc[("a", "w"), name] == pytest.approx(1 / total, rel=1e-6)
        assert f.loc[("b", "x"), name] == pytest.approx(1.0)
    # the fast decay favours the latest basket more than the slow one does
    assert f.loc[("a", "w"), "ci_decay_fast"] > f.loc[("a", "w"), "ci_decay_slow"]
    # a: 5 purchases of items (x 3 times, y, w), 2 of them re-buys; c never re-bought
    assert f.loc[("a", "w"), "cu_repeat_share"] == pytest.approx(2 / 5)
    assert f.loc[("b", "x"), "cu_repeat_share"] == pytest.approx(1 / 2)
    assert f.loc[("c", "z"), "cu_repeat_share"] == 0
    # an item never bought by the customer has no decayed frequency
    assert f.loc[("c", "x"), "ci_decay_fast"] == 0
