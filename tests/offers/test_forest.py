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
import importlib.util, sys
import numpy as np
spec = importlib.util.spec_from_file_location("forest", sys.argv[1])  # without cemlib.offers
forest = sys.modules["forest"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(forest)
tree = forest.Forest(1, np.zeros((1, 1), np.int64), np.zeros((1, 1)), np.ones((1, 1), bool),
                     np.array([[1.0, 2.0]]))
scores = tree.predict(np.array([[-1.0], [1.0], [np.nan]], dtype=np.float32), num_threads=1)
assert scores.tolist() == [1.0, 2.0, 1.0], scores
print(sum(forest._predict.stats.cache_hits.values()), forest._predict._cache._cache_path)
"""


@pytest.mark.slow
def test_compiled_loops_are_cached_in_the_user_cache_folder(tmp_path):
    """The second process loads the loop the first compiled, from the user's cache folder
    (never from next to the package's source), and says nothing on stderr."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from cemlib.offers import forest

    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path)
    runs = [
        subprocess.run(
            [sys.executable, "-c", _PROBE, forest.__file__],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        for _ in range(2)
    ]
    (first, path), (second, _) = (r.stdout.split() for r in runs)
    assert (int(first), int(second)) == (0, 1)  # compiled once, then loaded
    assert Path(path).is_relative_to(tmp_path / "cemlib" / "numba")
    assert all(r.stderr == "" for r in runs)
    package = Path(forest.__file__).parent.parent
    assert not list(package.rglob("*.nbi")) and not list(package.rglob("*.nbc"))
