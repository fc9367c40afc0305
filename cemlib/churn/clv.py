"""Value per purchase and discounting: turning expected purchases into revenue, margin, CLV."""

from __future__ import annotations

import numpy as np
import pandas as pd


def shrunk_spend(occasions: pd.DataFrame, column: str = "amount") -> pd.DataFrame:
    """Expected value of a customer's next purchase, their mean shrunk towards the population.

    An empirical-Bayes (normal-normal) estimate in the spirit of the Gamma-Gamma model: weight
    ``n / (n + k0)`` on the customer's own mean where ``k0`` is the ratio of the pooled
    within-customer variance to the between-customer variance of means. Returns per customer
    ``n``, ``mean``, ``expected`` and the population figures in ``attrs``.
    """
    g = occasions.groupby("customer_id")[column]
    n = g.size().astype(float)
    mean = g.mean()
    var_w = g.var(ddof=1)
    pooled_w = float(((var_w * (n - 1)).sum()) / max((n - 1).sum(), 1.0))
    pop = float(occasions[column].mean())
    var_b = float(mean.var(ddof=1)) if len(mean) > 1 else 0.0
    tau2 = max(var_b - pooled_w / max(float(n.mean()), 1.0), 1e-9)
    k0 = pooled_w / tau2 if pooled_w > 0 else 0.0
    k0 = float(np.clip(k0, 0.0, 50.0))
    expected = (n * mean + k0 * pop) / (n + k0)
    out = pd.DataFrame({"n": n, "mean": mean, "expected": expected})
    out.attrs.update({"k0": k0, "population_mean": pop})
    return out


def margin_rate(occasions: pd.DataFrame) -> pd.Series:
    """Per customer margin as a share of revenue, shrunk to the population rate (NaN when the
    transactions carry no margin)."""
    if "margin" not in occasions or occasions["margin"].isna().all():
        return pd.Series(np.nan, index=occasions["customer_id"].unique())
    g = occasions.groupby("customer_id")
    rev, mar = g["amount"].sum(), g["margin"].sum(min_count=1)
    pop = float(occasions["margin"].sum() / max(occasions["amount"].sum(), 1e-9))
    n = g.size().astype(float)
    rate = (mar.fillna(pop * rev) + 3 * pop * rev / n) / (rev * (1 + 3 / n)).replace(0, np.nan)
    return rate.fillna(pop)


def discount_factor(days: np.ndarray | float, annual_rate: float) -> np.ndarray:
    """Present value of 1 received after ``days`` at an annual discount rate."""
    return (1.0 + annual_rate) ** (-np.asarray(days, dtype=float) / 365.0)
