"""Table-based exact TreeSHAP equals LightGBM's ``pred_contrib`` (missing values, zeros, depth)."""

import lightgbm as lgb
import numpy as np
import pytest

from cemlib.offers.treeshap import build_tables
from tests.offers.conftest import ranker_data, shallow_ranker


@pytest.mark.parametrize("extra", [{}, {"zero_as_missing": True}, {"use_missing": False}])
def test_tables_equal_lightgbm_pred_contrib(extra):
    X, y = ranker_data()
    booster = shallow_ranker(X, y, **extra)
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
    X, y = ranker_data(2000)
    params = {"objective": "binary", "num_leaves": 31, "verbosity": -1, "num_threads": 1}
    booster = lgb.train(params, lgb.Dataset(X, y), 5)
    assert build_tables(booster, max_splits=8) is None


def test_a_tree_that_is_one_leaf_contributes_zero():
    """Trial 7 H3: on little data no split meets the requirements and LightGBM keeps one tree
    that is a single leaf (its dump has only ``leaf_value``); its SHAP values are all zero."""
    X, y = ranker_data(400)
    booster = shallow_ranker(X, y, min_data_in_leaf=1000)
    dump = booster.dump_model()["tree_info"]
    assert booster.num_trees() == 1 and "split_index" not in dump[0]["tree_structure"]
    tables = build_tables(booster)
    assert tables is not None and len(tables.trees) == 1
    ref = booster.predict(X, pred_contrib=True)
    for ours in (tables.contributions(X), tables._contributions_numpy(X)):
        assert ours.shape == (400, 8) and not ours.any()
        np.testing.assert_allclose(ours, ref[:, :-1], rtol=0, atol=1e-12)
    # the leaf's value is all of the score: the expected value column
    np.testing.assert_allclose(ref[:, -1], booster.predict(X), atol=1e-12)
