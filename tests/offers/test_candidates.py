"""The ``category`` candidates and the category features of a snapshot, by hand on a tiny
history (nothing after the cutoff)."""

import pandas as pd
import pytest

from cemlib.offers.candidates import CandidateConfig, build_candidates, drop_extras
from cemlib.offers.data import prepare_transactions
from cemlib.offers.features import build_features
from cemlib.offers.snapshot import Snapshot, Store, day_number, encode

START = pd.Timestamp("2025-01-01")


def _snapshot_frames(cfg: CandidateConfig):
    # category A: a1 bought by everyone, a2 by three, a3 by one; category B: b1, b2
    rows = [("x", 1, "a1", "A"), ("x", 20, "a1", "A")]
    rows += [(p, 5, "a1", "A") for p in ("p", "q", "r")]
    rows += [(p, 30, "a2", "A") for p in ("p", "q", "r")]
    rows += [("p", 32, "a3", "A"), ("p", 33, "b1", "B"), ("q", 33, "b2", "B")]
    rows += [("x", 50, "a2", "A")]  # after the cutoff (day 40): never seen
    tx = pd.DataFrame(
        [(c, START + pd.Timedelta(days=d), i, 1.0, 10.0, cat) for c, d, i, cat in rows],
        columns=["customer_id", "ts", "item_id", "quantity", "amount", "category"],
    )
    enc, codes, _ = encode(prepare_transactions(tx))
    store = Store(codes, None)
    snap = Snapshot(store, day_number(START) + 40, horizon=30)
    store.execute(
        f"CREATE TEMP TABLE {snap.p}q AS SELECT range AS c FROM range({len(enc.customers)})"
    )
    feats = build_features(snap, build_candidates(snap, f"{snap.p}q", cfg), category=True)
    feats["customer_id"] = enc.customers.to_numpy()[feats["c"]]
    feats["item_id"] = enc.items.to_numpy()[feats["i"]]
    drop_extras(snap)
    left = store.sql("SELECT table_name FROM duckdb_tables() WHERE table_name LIKE '%itx'")
    store.close()
    return feats.set_index(["customer_id", "item_id"]), len(left)


def test_category_source_brings_the_best_sellers_new_to_the_customer():
    f, left = _snapshot_frames(CandidateConfig(n_categories=5, n_per_category=1))
    cat = f[f["src_category"] == 1]
    # x buys only category A and owns a1: its best seller new to x is a2 (3 buyers), one per
    # category asked; a3 (1 buyer) and category B (x never buys it) are not proposed
    assert cat.loc["x"].index.tolist() == ["a2"]
    # p owns a1, a2, a3 and b1: only b2 is new to p among its categories
    assert cat.loc["p"].index.tolist() == ["b2"]
    assert left == 0  # drop_extras removes the snapshot's added table


def test_category_features_by_hand():
    f, _ = _snapshot_frames(CandidateConfig(n_categories=5))
    # category A has 4 buyers; a2 is bought by 3 of them, a1 by all 4
    assert f.loc[("x", "a2"), "it_cat_share"] == pytest.approx(3 / 4)
    assert f.loc[("x", "a1"), "it_cat_share"] == pytest.approx(1.0)
    assert f.loc[("x", "a2"), "it_cat_rank"] == 1  # the most bought in the last 4 weeks
    # x bought category A in both of its baskets: affinity = 1 * 3/4
    assert f.loc[("x", "a2"), "cat_affinity"] == pytest.approx(3 / 4)
    # a2 first sold on day 30, the cutoff is day 40; x's purchase of a2 on day 50 is unseen
    assert f.loc[("x", "a2"), "it_age"] == 10
    assert f.loc[("x", "a2"), "ci_n_b"] == 0
