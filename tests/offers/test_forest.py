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


_PROBE = """
import numpy as np, lightgbm as lgb
from cemlib.offers import forest, treeshap
rng = np.random.default_rng(0)
X = rng.normal(size=(500, 4)).astype(np.float32)
b = lgb.train({"objective": "binary", "num_leaves": 8, "max_depth": 3, "verbosity": -1},
              lgb.Dataset(X, (X[:, 0] > 0).astype(int)), 5)
forest.compile_forest(b).predict(X)
treeshap.build_tables(b).contributions(X)
hits = sum(forest._predict.stats.cache_hits.values())
hits += sum(treeshap._contrib.stats.cache_hits.values())
print(hits, forest._predict._cache._cache_path)
"""


@pytest.mark.slow
def test_compiled_loops_are_cached_in_the_user_cache_folder(tmp_path):
    """The second process loads the loops the first compiled, from the user's cache folder
    (never from next to the package's source), and says nothing on stderr."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import cemlib

    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path)
    runs = [
        subprocess.run(
            [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, check=True
        )
        for _ in range(2)
    ]
    (first, path), (second, _) = (r.stdout.split() for r in runs)
    assert (int(first), int(second)) == (0, 2)  # compiled once, then both loops loaded
    assert Path(path).is_relative_to(tmp_path / "cemlib" / "numba")
    assert all(r.stderr == "" for r in runs)
    package = Path(cemlib.__file__).parent
    assert not list(package.rglob("*.nbi")) and not list(package.rglob("*.nbc"))
