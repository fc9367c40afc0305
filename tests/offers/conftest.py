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
