import numpy as np
import pandas as pd
import pytest

AS_OF = pd.Timestamp("2024-06-30")


def bgnbd_world(n: int = 400, seed: int = 0, years: float = 2.5, future_days: int = 365):
    """A BG/NBD-like purchase process whose rate depends on a covariate ``vip`` and whose
    lifetime shortens with ``complaints``; returns (transactions incl. future rows, covariates,
    truth with dropout dates)."""
    rng = np.random.default_rng(seed)
    start = AS_OF - pd.Timedelta(days=int(365 * years))
    vip = rng.random(n) < 0.3
    complaints = rng.poisson(0.7, n)
    lam = rng.gamma(2.0, np.where(vip, 1 / 25, 1 / 60))  # purchases per day
    life = rng.exponential(np.where(complaints > 1, 200, 700))
    rows, dropout = [], []
    end = AS_OF + pd.Timedelta(days=future_days)
    for i in range(n):
        t0 = start + pd.Timedelta(days=float(rng.uniform(0, 200)))
        death = t0 + pd.Timedelta(days=float(life[i]))
        dropout.append(death)
        t = t0
        while t <= min(death, end):
            rows.append((f"c{i:04d}", t, float(np.round(rng.gamma(3, 400 if vip[i] else 250), 2))))
            t = t + pd.Timedelta(days=float(rng.exponential(1 / lam[i])) + 1)
    tx = pd.DataFrame(rows, columns=["customer_id", "ts", "amount"])
    cov = pd.DataFrame(
        {
            "customer_id": [f"c{i:04d}" for i in range(n)],
            "vip": vip.astype(int),
            "complaints": complaints,
            "region": rng.choice(["Москва", "Казань", "Омск"], n),
        }
    )
    truth = pd.DataFrame(
        {"person_id": [f"c{i:04d}" for i in range(n)], "true_dropout_date": dropout}
    )
    truth.loc[truth["true_dropout_date"] > end, "true_dropout_date"] = pd.NaT
    return tx, cov, truth


@pytest.fixture(scope="session")
def world():
    return bgnbd_world()


@pytest.fixture(scope="session")
def fitted(world):
    from cemlib.churn import ChurnModel

    tx, cov, _ = world
    return ChurnModel(horizons=(90, 365), seed=1).fit(tx, as_of=AS_OF, covariates=cov)
