"""Branch-free compiled scoring gives exactly LightGBM's scores (missing values, shallow trees)."""

import lightgbm as lgb
import numpy as np
import pytest

from cemlib.offers.forest import compile_forest
from tests.offers.conftest import ranker_data, shallow_ranker


@pytest.mark.parametrize(
    "extra",
    [{}, {"use_missing": False}, {"num_leaves": 5, "max_depth": 4}, {"max_depth": 2}],
)
def test_forest_scores_equal_lightgbm(extra):
    X, y = ranker_data()
    booster = shallow_ranker(X, y, **extra)
    forest = compile_forest(booster)
    assert forest is not None and forest.leaf.shape[0] == booster.num_trees()
    X[:7] = np.nan  # rows with every feature missing
    ours = forest.predict(X, num_threads=2)
    ref = booster.predict(X)
    assert np.array_equal(ours, ref)  # same leaves added in the same order: bit for bit
    assert np.std(ours) > 0
    assert forest.predict(X[:0]).shape == (0,)


def test_unsupported_trees_fall_back():
    X, y = ranker_data(2000)
    deep = lgb.train(
        {"objective": "binary", "num_leaves": 63, "verbosity": -1}, lgb.Dataset(X, y), 5
    )
    assert compile_forest(deep, max_depth=4) is None
    params = {"objective": "binary", "zero_as_missing": True, "verbosity": -1, "max_depth": 3}
    zero = lgb.train(params, lgb.Dataset(X, y), 5)
    assert compile_forest(zero) is None
