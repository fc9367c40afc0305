"""The repeat features of a snapshot, by hand on a tiny history (nothing after the cutoff)."""

import pandas as pd
import pytest

from cemlib.offers.candidates import CandidateConfig, build_candidates
from cemlib.offers.data import prepare_transactions
from cemlib.offers.features import build_features
from cemlib.offers.scoring import top_k
from cemlib.offers.snapshot import Snapshot, Store, day_number, encode

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


def test_repeat_share_by_hand():
    f = _features()
    # a: 5 purchases of items (x 3 times, y, w), 2 of them re-buys; b: x twice; c never re-bought
    assert f.loc[("a", "w"), "cu_repeat_share"] == pytest.approx(2 / 5)
    assert f.loc[("a", "x"), "cu_repeat_share"] == pytest.approx(2 / 5)  # one value a customer
    assert f.loc[("b", "x"), "cu_repeat_share"] == pytest.approx(1 / 2)
    assert f.loc[("c", "z"), "cu_repeat_share"] == 0
    # nothing after the cutoff: a's re-buys of x and y on day 50 are not counted
    assert f.loc[("a", "x"), "ci_n_b"] == 3 and f.loc[("a", "y"), "ci_n_b"] == 1


def test_equal_scores_follow_gp_topfreq_order():
    frame = pd.DataFrame(
        {
            "c": [0, 0, 0, 0, 1, 1],
            "i": [0, 1, 2, 3, 0, 1],
            "score": [1.0, 1.0, 1.0, 2.0, 0.5, 0.5],
            "ci_share": [0.1, 0.5, 0.0, 0.0, 0.0, 0.0],
            "it_n_cust": [9.0, 1.0, 50.0, 1.0, 3.0, 7.0],
        }
    )
    top = top_k(frame, 3)
    # the best score first; among equal scores own share, then buyers; item code only last
    assert top[top["c"] == 0]["i"].tolist() == [3, 1, 0]
    assert top[top["c"] == 1]["i"].tolist() == [1, 0]
    assert top["rank"].tolist() == [1, 2, 3, 1, 2]
