import math

import pandas as pd
import pytest

from cemlib.offers.metrics import candidate_recall, evaluate


def _recs(rows):
    return pd.DataFrame(rows, columns=["customer_id", "rank", "item_id"])


def test_metrics_by_hand():
    recs = _recs([("a", 1, "x"), ("a", 2, "y"), ("a", 3, "z"), ("b", 1, "x"), ("b", 2, "w")])
    truth = pd.DataFrame({"customer_id": ["a", "a", "b"], "item_id": ["y", "q", "v"]})
    res = evaluate(recs, truth, k=3)
    # a: hit at rank 2 of 2 relevant; b: no hit
    ndcg_a = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert res["ndcg@3"] == pytest.approx(ndcg_a / 2)
    assert res["recall@3"] == pytest.approx(0.25)
    assert res["hitrate@3"] == pytest.approx(0.5)
    assert res["map@3"] == pytest.approx((0.5 / 2) / 2)
    assert res["customers"] == 2


def test_repeat_new_split():
    recs = _recs([("a", 1, "old"), ("a", 2, "new")])
    truth = pd.DataFrame({"customer_id": ["a", "a"], "item_id": ["old", "other"]})
    hist = pd.DataFrame({"customer_id": ["a"], "item_id": ["old"]})
    res = evaluate(recs, truth, k=2, history=hist)
    assert res["repeat_share"] == 0.5
    assert res["repeat_recall@2"] == 1.0 and res["repeat_ndcg@2"] == 1.0
    assert res["new_recall@2"] == 0.0 and res["new_hitrate@2"] == 0.0
    assert res["recall@2"] == 0.5


def test_customers_filter_and_candidate_recall():
    truth = pd.DataFrame({"customer_id": ["a", "b", "b"], "item_id": ["x", "y", "z"]})
    cands = pd.DataFrame({"customer_id": ["a", "b"], "item_id": ["x", "y"]})
    assert candidate_recall(cands, truth) == pytest.approx(2 / 3)
    assert candidate_recall(cands, truth, customers=["b"]) == pytest.approx(0.5)
    res = evaluate(_recs([("a", 1, "x")]), truth, k=10, customers=["a"])
    assert res["customers"] == 1 and res["ndcg@10"] == 1.0
