"""Fixtures of the next-offer tests: a generic transactions frame and a small synthetic world."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cemlib.offers.world import frames_from_world
from cemlib.synth import generate

AS_OF = pd.Timestamp("2025-06-30")


def make_transactions(n_customers: int = 300, seed: int = 0, days: int = 240) -> pd.DataFrame:
    """Customers with a favourite category, staple items they re-buy and occasional others."""
    rng = np.random.default_rng(seed)
    items = [f"I{c}{j}" for c in range(6) for j in range(10)]
    start = AS_OF - pd.Timedelta(days=days - 1)
    rows = []
    for c in range(n_customers):
        fav = rng.integers(6)
        staples = [f"I{fav}{j}" for j in rng.choice(10, 3, replace=False)]
        n_baskets = int(rng.integers(3, 15))
        for d in np.sort(rng.choice(days, n_baskets, replace=False)):
            basket = list(rng.choice(staples, int(rng.integers(1, 3)), replace=False))
            basket += list(rng.choice(items, int(rng.integers(0, 3))))
            for it in dict.fromkeys(basket):
                q = int(rng.integers(1, 3))
                rows.append((f"C{c:04d}", start + pd.Timedelta(days=int(d)), it, q, 10.0 * q))
    return pd.DataFrame(rows, columns=["customer_id", "ts", "item_id", "quantity", "amount"])


@pytest.fixture(scope="session")
def transactions() -> pd.DataFrame:
    return make_transactions()


@pytest.fixture(scope="session")
def world_frames() -> dict:
    return frames_from_world(generate(2500, seed=11))


def ranker_data(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Features with missing values, zeros and a small-integer column, and a binary label."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 8)).astype(np.float32)
    X[rng.random(X.shape) < 0.2] = np.nan
    X[:, 3] = np.where(rng.random(n) < 0.5, 0.0, X[:, 3])
    X[:, 4] = rng.integers(0, 3, n)
    signal = np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) * np.isnan(X[:, 2]) + (X[:, 4] == 1)
    y = (signal + rng.normal(size=n) > 1).astype(int)
    return X, y


def shallow_ranker(X: np.ndarray, y: np.ndarray, **extra):
    """A LambdaRank booster of 40 depth-3 trees (queries of 20 rows), as the next-offer model
    grows them; ``extra`` overrides the parameters."""
    import lightgbm as lgb

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
    return lgb.train(params, lgb.Dataset(X, y, group=[20] * (len(X) // 20)), 40)
