"""The blend of the views: calibrated on a backtest window carved from the end of the history.

The views of :mod:`cemlib.churn.views` are fitted on the history up to ``as_of - L``; their
figures for ``(as_of - L, as_of]`` are regressed on what actually happened there:

- counts: a Poisson GLM of actual / simulated counts (offset: the spell view's simulated
  count) on the log ratios of the dropout view's and the booster's counts to the simulated
  ones, a weighted geometric blend of the three views (spell view alone: its purchase
  probability and the purchase-history state);
- probabilities: a stacked Platt scaling per backtest horizon, on the logit of the spell view's
  probability, the other views' log counts and the silence against the customer's own rhythm.

The same blend is then applied to the views refitted at ``as_of``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression, PoissonRegressor


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _offset(sim: dict[str, np.ndarray], h: int) -> np.ndarray:
    return np.maximum(sim[f"count_{h}"], 1e-3)


def _design(sim: dict[str, np.ndarray], h: int, state: pd.DataFrame) -> np.ndarray:
    """Covariates of the multiplicative correction of simulated counts.

    With a dropout model or a booster: the log ratios of the BG/NBD's and the booster's expected
    counts to the simulated ones, nothing else, so the correction is a weighted geometric blend
    of the three views. State covariates (purchases so far, mean gap, purchase probability) are
    left out then: they are learned at ``as_of - L``, where every customer is younger, and
    extrapolated badly to ``as_of`` (chosen on the CDNOW inner backtests, see the README).
    Spell model alone: its purchase probability and the purchase history state."""
    ratios = [
        np.log(sim[f"{key}_{h}"] + 0.01) - np.log(_offset(sim, h))
        for key in ("bg", "lgb")
        if f"{key}_{h}" in sim
    ]
    if ratios:
        return np.column_stack(ratios)
    return np.column_stack(
        [
            np.log(sim[f"p_{h}"] + 0.01),
            state["log_k"].to_numpy(dtype=float),
            state["log_mean_gap"].to_numpy(dtype=float),
        ]
    )


def _rhythm(state: pd.DataFrame) -> np.ndarray:
    """Each customer's silence against their own rhythm: the log of the days since the last
    purchase over their mean gap (repeat buyers), and the log of the days since the one
    purchase (one-time buyers), as two columns.

    The views extrapolate badly for a regular buyer silent far beyond their cycle (trial 6: a
    monthly buyer silent for 200 days was scored 0.53 to buy within 180 days; 7 % did): the
    booster learns at ``as_of - L``, when nobody had been silent that long, and the gap model
    has no dropout. Recency relative to one's own rhythm is what a recency ranking uses; in a
    logistic it extrapolates in the right direction."""
    k = state["k"].to_numpy(dtype=float)
    elapsed = state["duration"].to_numpy(dtype=float)
    gap = state["mean_gap"].to_numpy(dtype=float)
    repeat = (k > 1) & np.isfinite(gap)
    ratio = np.where(repeat, np.log1p(elapsed) - np.log1p(np.nan_to_num(gap)), 0.0)
    once = np.where(repeat, 0.0, np.log1p(elapsed))
    return np.column_stack([ratio, once])


def _p_design(sim: dict[str, np.ndarray], h: int, state: pd.DataFrame) -> np.ndarray:
    """Covariates of the purchase-probability calibration: the logit of the spell model's
    probability and, when fitted, the log expected counts of the BG/NBD and the booster (a
    stacked Platt scaling: the dropout views carry who has stopped), and the silence against
    the customer's own rhythm (:func:`_rhythm`)."""
    cols = [_logit(sim[f"p_{h}"])]
    cols += [np.log(sim[f"{key}_{h}"] + 0.01) for key in ("bg", "lgb") if f"{key}_{h}" in sim]
    return np.column_stack([*cols, _rhythm(state)])


class Blend:
    """Calibrates and combines the views' figures.

    Attributes
    ----------
    window_ : the backtest window ``L`` in days.
    counts_ : the count GLM (:class:`sklearn.linear_model.PoissonRegressor`).
    probabilities_ : backtest horizon -> its Platt scaling (a horizon with only buyers or only
        non-buyers in the window has none).
    backtest_ : predicted and actual purchases in the window, per customer.
    """

    def fit(
        self,
        sim: dict[str, np.ndarray],
        state: pd.DataFrame,
        window: int,
        actual: np.ndarray,
        first_purchase: pd.Series,
        horizons: list[int],
    ) -> Blend:
        """Learn the blend from the views' figures ``sim`` for the customers of ``state`` at the
        window's start, their ``actual`` purchases in the window and the day of their first
        purchase in it (``first_purchase``, NaN for none)."""
        self.window_ = int(window)
        X = _design(sim, window, state)
        off = _offset(sim, window)
        # Poisson regression with log(offset): fit the ratio actual / simulated
        self.counts_ = PoissonRegressor(alpha=1e-4, max_iter=1000).fit(
            X, actual / off, sample_weight=off
        )
        self.backtest_ = pd.DataFrame(
            {"predicted": off * self.counts_.predict(X), "actual": actual}, index=state.index
        )
        self.probabilities_ = {}
        for h in horizons:
            y = (first_purchase <= h).to_numpy()
            if 0 < y.sum() < len(y):
                self.probabilities_[h] = LogisticRegression(C=1e4, max_iter=1000).fit(
                    _p_design(sim, h, state), y
                )
        return self

    def counts(self, sim: dict[str, np.ndarray], h: int, state: pd.DataFrame) -> np.ndarray:
        """Blended expected purchases over ``h`` days."""
        return _offset(sim, h) * self.counts_.predict(_design(sim, h, state))

    def probability(self, sim: dict[str, np.ndarray], h: int, state: pd.DataFrame) -> np.ndarray:
        """Calibrated purchase probability within ``h`` days for the customers of ``state``
        (the scaling of the longest backtest horizon not above ``h``, else the shortest)."""
        below = [k for k in self.probabilities_ if k <= h]
        key = max(below) if below else min(self.probabilities_)
        return self.probabilities_[key].predict_proba(_p_design(sim, h, state))[:, 1]
