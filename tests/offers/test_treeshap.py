"""Table-based exact TreeSHAP equals LightGBM's ``pred_contrib`` (missing values, zeros, depth)."""

import lightgbm as lgb
import numpy as np
import pytest

from cemlib.offers.treeshap import build_tables


def _data(n: int = 4000, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 8)).astype(np.float32)
    X[rng.random(X.shape) < 0.2] = np.nan
    X[:, 3] = np.where(rng.random(n) < 0.5, 0.0, X[:, 3])
    X[:, 4] = rng.integers(0, 3, n)
    signal = np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) * np.isnan(X[:, 2]) + (X[:, 4] == 1)
    y = (signal + rng.normal(size=n) > 1).astype(int)
    return X, y


@pytest.mark.parametrize("extra", [{}, {"zero_as_missing": True}, {"use_missing": False}])
def test_tables_equal_lightgbm_pred_contrib(extra):
    X, y = _data()
    params = {
        "objective": "lambdarank",
        "num_leaves": 8,
        "max_depth": 3,
        "min_data_in_leaf": 20,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "verbosity": -1,
        "num_threads": 1,
        **extra,
    }
    booster = lgb.train(params, lgb.Dataset(X, y, group=[20] * (len(X) // 20)), 40)
    tables = build_tables(booster)
    assert tables is not None and len(tables.trees) == booster.num_trees()
    ours = tables.contributions(X)
    ref = booster.predict(X, pred_contrib=True)
    assert ours.shape == (len(X), X.shape[1])
    np.testing.assert_allclose(ours, ref[:, :-1], rtol=0, atol=1e-10)
    # local accuracy: the values and the expected value add up to the score
    np.testing.assert_allclose(ours.sum(axis=1) + ref[:, -1], booster.predict(X), atol=1e-10)
    assert np.abs(ours).sum() > 0


def test_deep_trees_fall_back():
    X, y = _data(2000)
    params = {"objective": "binary", "num_leaves": 31, "verbosity": -1, "num_threads": 1}
    booster = lgb.train(params, lgb.Dataset(X, y), 5)
    assert build_tables(booster, max_splits=8) is None
