"""Negative sampling of the training windows and the full-list validation option."""

import numpy as np
import pandas as pd

from cemlib.offers import NextOfferModel
from cemlib.offers.training import WindowData, sampled_window

from .conftest import AS_OF


def test_sampled_window_keeps_every_positive_and_n_negatives_per_customer():
    # customer 0: 2 positives, 30 negatives; customer 1: 1 positive, 5 negatives
    c = np.r_[np.zeros(32, int), np.ones(6, int)]
    label = np.r_[1, 1, np.zeros(30, int), 1, np.zeros(5, int)].astype(np.int8)
    frame = pd.DataFrame({"c": c, "i": np.arange(38), "label": label})
    win = WindowData(pd.Timestamp("2025-01-01"), frame, np.array([32, 6]))
    out = sampled_window(win, np.random.default_rng(0), 10)
    per = out.frame.groupby("c")["label"].agg(["sum", "size"])
    assert per.loc[0, "sum"] == 2 and per.loc[0, "size"] == 12  # both positives + 10 drawn
    assert per.loc[1, "sum"] == 1 and per.loc[1, "size"] == 6  # fewer negatives than 10: all
    assert out.groups.tolist() == [12, 6]
    assert sampled_window(win, np.random.default_rng(0), 0) is win  # 0: no sampling


def test_full_list_validation_scores_every_candidate_of_the_validation_customers(transactions):
    kw = dict(horizon_days=60, seed=3, n_estimators=40)
    sampled = NextOfferModel(**kw).fit(transactions, AS_OF)
    full = NextOfferModel(**kw, validation_negatives=0).fit(transactions, AS_OF)
    vs, vf = sampled.windows_["validation"], full.windows_["validation"]
    assert vs["queries"] == vf["queries"] > 20
    assert vf["rows"] > vs["rows"]  # every candidate: more rows than the sample
    # the training window is sampled alike in both
    assert full.windows_["train"]["queries"] == sampled.windows_["train"]["queries"]
