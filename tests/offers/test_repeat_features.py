"""The repeat features of a snapshot, by hand on a tiny history (nothing after the cutoff)."""

import numpy as np
import pandas as pd
import pytest

from cemlib.offers.candidates import CandidateConfig, build_candidates
from cemlib.offers.data import prepare_transactions
from cemlib.offers.features import build_features
from cemlib.offers.snapshot import Snapshot, Store, day_number, encode

START = pd.Timestamp("2025-01-01")


def _features():
    rows = [("a", 0, "x", 1), ("a", 10, "x", 1), ("a", 30, "x", 3), ("a", 30, "y", 1)]
    rows += [("b", 5, "x", 1), ("b", 25, "x", 1), ("c", 2, "z", 1)]
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
    return feats.set_index(["customer_id", "item_id"])


def test_gaps_due_quantity_trend_cycle_and_repeat_share():
    f = _features()
    ax = f.loc[("a", "x")]
    assert ax["ci_gap"] == pytest.approx(15)  # (30 - 0) / 2
    assert ax["ci_gap_last"] == pytest.approx(20)
    assert ax["ci_gap_sd"] == pytest.approx(np.std([10, 20], ddof=1), rel=1e-6)
    assert ax["ci_due_last"] == pytest.approx(10 / 20)  # 10 days since, last gap 20
    assert ax["ci_q_trend"] == pytest.approx(3 / (5 / 3), rel=1e-6)  # last 3 against mean 5/3
    assert ax["it_cycle"] == pytest.approx(17.5)  # median of a's 15 and b's 20 days
    assert ax["ci_due_pop"] == pytest.approx(10 / 17.5, rel=1e-6)
    # a: 4 purchases of items, 2 of them re-buys of x; c never re-bought
    assert ax["cu_repeat_share"] == pytest.approx(0.5)
    assert f.loc[("c", "z"), "cu_repeat_share"] == 0
    assert np.isnan(f.loc[("a", "y"), "ci_gap_last"])  # bought once
    # TIFU-KNN: a's own decayed frequency of x exceeds y's; b's neighbour (a) brings y
    assert ax["tifu_own"] > f.loc[("a", "y"), "tifu_own"] > 0
    assert f.loc[("b", "y"), "tifu_nb"] > 0 and f.loc[("b", "y"), "tifu_own"] == 0
    assert f.loc[("b", "y"), "src_knn"] == 1
