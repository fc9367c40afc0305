"""Negative sampling of the training windows and the full-list validation option."""

import numpy as np
import pandas as pd

from cemlib.offers import NextOfferModel, training
from cemlib.offers.training import (
    DEFAULT_PARAMS,
    ROW_ROUNDS,
    Prior,
    WindowData,
    bounded_rounds,
    lgb_params,
    sampled_window,
    train_early_stopped,
    window_datasets,
)

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


def test_datasets_built_once_train_the_same_trees_as_fresh_ones(transactions):
    model = NextOfferModel(horizon_days=60, seed=3, n_estimators=40).fit(transactions, AS_OF)
    # two windows with labels, from the fitted model's own training path
    rng = np.random.default_rng(0)
    from cemlib.offers.snapshot import day_number

    T, W = day_number(model.as_of_), 60
    valid = model._window(T - W, rng, 40)
    train = model._window(T - 2 * W, rng, 40)
    names = model.feature_names_
    params = lgb_params(train, valid, None, 3)
    shared = window_datasets(train, valid, names)
    for use in (False, True):  # the second training reuses the datasets with new init scores
        prior = Prior().fit(train.frame, use=use)
        for w in (train, valid):
            w.frame["_prior"] = prior(w.frame)
        fresh = train_early_stopped(train, valid, names, params, 40, 10)
        reused = train_early_stopped(train, valid, names, params, 40, 10, shared)
        assert fresh[1] == reused[1] and fresh[2] == reused[2]
        assert fresh[0].model_to_string() == reused[0].model_to_string()
    assert prior.coef_.any()  # the prior-started run really had other init scores


def _ranking_window(rng, n_q: int, rows: int, cutoff: str) -> WindowData:
    """``n_q`` customers' candidates whose label is a logistic of two features (``a`` strong,
    ``b`` weak) and noise; the features the trees see are ``a``, ``b`` and a pure-noise ``x``."""
    n = n_q * rows
    a, b, x = rng.random(n), rng.random(n), rng.random(n)
    label = (rng.random(n) < 1 / (1 + np.exp(-(5 * a + 0.5 * b - 5)))).astype(np.int8)
    f = pd.DataFrame({"c": np.repeat(np.arange(n_q), rows), "a": a, "b": b, "x": x, "label": label})
    f = f[f.groupby("c")["label"].transform("max") > 0].reset_index(drop=True)
    f["_prior"] = 0.0
    return WindowData(pd.Timestamp(cutoff), f, f.groupby("c").size().to_numpy())


def test_the_smallest_forest_within_one_standard_error_of_the_best():
    from cemlib.offers.size import SIZE_STEP, smallest_forest
    from cemlib.offers.start import paired_z, query_ndcg

    rng = np.random.default_rng(5)
    train = _ranking_window(rng, 1500, 30, "2025-01-01")
    valid = _ranking_window(rng, 1500, 30, "2025-03-01")
    names = ["a", "b", "x"]
    params = lgb_params(train, valid, {"learning_rate": 0.2}, 5)
    booster, best, _, _ = train_early_stopped(train, valid, names, params, 200, 30)
    chosen, evidence = smallest_forest(booster, valid, names, valid.frame["_prior"], best)
    z = evidence["z"]
    assert best > 3 * SIZE_STEP and list(z) == [*range(SIZE_STEP, best, SIZE_STEP), best]
    # the rule: the first size whose paired z against the best is under 1
    assert z[best] == 0.0 and z[chosen] < 1.0 and all(z[m] >= 1.0 for m in z if m < chosen)
    # one strong feature: far fewer trees than early stopping's best tell apart from it
    assert chosen <= best // 2
    # the evidence is LightGBM's own scores at each size (cumulative sums of the compiled trees)
    X, labels = valid.frame[names].to_numpy(np.float32), valid.frame["label"].to_numpy()
    for m in (SIZE_STEP, chosen):
        ndcg = query_ndcg(booster.predict(X, num_iteration=m), labels, valid.groups)
        top = query_ndcg(booster.predict(X, num_iteration=best), labels, valid.groups)
        assert abs(paired_z(ndcg, top) - z[m]) < 1e-6
        assert abs(ndcg.mean() - evidence["ndcg"][m]) < 1e-9
    # too few trees to compare sizes: the best as it is
    assert smallest_forest(booster, valid, names, valid.frame["_prior"], SIZE_STEP) == (
        SIZE_STEP,
        {},
    )


def test_the_rounds_of_a_large_window_shrink_and_its_learning_rate_grows_alike():
    params = {**DEFAULT_PARAMS, "num_threads": 1}
    # within the bound: everything as given (Ta-Feng's 357,341 training rows, 300 rounds)
    assert bounded_rounds(357_341, 300, 30, params) == (300, 30, params, 1.0)
    assert ROW_ROUNDS == 300 * 400_000
    # 200,000 people (about 900,000 training rows): 133 rounds at 0.1 * 300 / 133
    cap, patience, out, factor = bounded_rounds(900_000, 300, 30, params)
    assert (cap, patience) == (133, 13) and cap * 900_000 <= ROW_ROUNDS
    assert factor == 300 / 133 and abs(out["learning_rate"] - 0.1 * 300 / 133) < 1e-12
    assert out["bagging_by_query"] is True and "bagging_by_query" not in params  # not changed
    assert out["num_threads"] == 1 and out["bagging_fraction"] == 0.8
    # ten times the rows: the learning rate stops at 0.3 (100 rounds), the patience at 5
    cap, patience, out, factor = bounded_rounds(9_000_000, 300, 30, {"learning_rate": 0.1})
    assert (cap, patience, factor) == (100, 10, 3.0) and abs(out["learning_rate"] - 0.3) < 1e-12
    assert bounded_rounds(9_000_000, 300, 12, {})[1] == 5
    # a user's own bagging setting stays
    assert (
        bounded_rounds(900_000, 300, 30, {"bagging_by_query": False})[2]["bagging_by_query"]
        is False
    )


def test_a_window_beyond_the_bound_trains_fewer_rounds_at_a_larger_rate(transactions, monkeypatch):
    kw = dict(horizon_days=60, seed=3, n_estimators=60)
    free = NextOfferModel(**kw).fit(transactions, AS_OF)
    rows = free.windows_["train"]["rows"]
    assert (free.rounds_cap_, free.rate_factor_, free.learning_rate_) == (60, 1.0, 0.1)
    # a bound of 20 rounds on these rows: a third of the rounds at three times the rate
    monkeypatch.setattr(training, "ROW_ROUNDS", rows * 20)
    bound = NextOfferModel(**kw).fit(transactions, AS_OF)
    assert bound.windows_ == free.windows_  # the same windows, sampled alike
    assert (bound.rounds_cap_, bound.rate_factor_) == (20, 3.0)
    assert abs(bound.learning_rate_ - 0.3) < 1e-12
    curve = bound.eval_history_["validation"]["ndcg@10"]
    assert len(curve) <= 20 and bound.best_iteration_ <= 20
    assert bound.booster_.num_trees() == bound.refit_rounds_ == bound.best_iteration_
    assert free.booster_.num_trees() == free.best_iteration_ > 0
    # the larger steps learn: the best validation NDCG above the first tree's
    assert max(curve) >= curve[0] and bound.validation_ndcg_ == max(curve)
