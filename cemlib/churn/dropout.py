"""Dropout: a BG/NBD model (Fader, Hardie & Lee 2005) of repeat buying with silent churn.

The inter-purchase spell model (:mod:`cemlib.churn.gaps`) has no explicit dropout: a customer who
has stopped keeps the hazard of their usual gap. BG/NBD adds it: while alive a customer buys
as a Poisson process (rate ~ Gamma(r, alpha) across customers) and after each purchase drops
out with probability p (~ Beta(a, b)). Fitted by maximum likelihood on each customer's
frequency (repeat occasions), recency (first to last occasion) and age (first occasion to the
cut-off), all in days. Its conditional expected purchases and P(alive) enter the backtest
calibration of :class:`~cemlib.churn.models.ChurnModel` as covariates, so how much the dropout
view counts is learned on history before ``as_of``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import optimize, special

from cemlib import DEFAULT_SEED


def rfm_summary(occasions: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """Per customer with an occasion on or before ``cutoff``: ``frequency`` (repeat occasions),
    ``recency`` (days from first to last occasion) and ``T`` (days from first occasion to the
    end of ``cutoff``)."""
    cut = pd.Timestamp(cutoff).normalize()
    occ = occasions[occasions["day"] <= cut]
    g = occ.groupby("customer_id", sort=True)["day"]
    first, last, n = g.min(), g.max(), g.size()
    return pd.DataFrame(
        {
            "frequency": (n - 1).astype(float),
            "recency": (last - first).dt.days.astype(float),
            "T": (cut - first).dt.days.astype(float) + 0.5,
        }
    )


class _Distinct:
    """An array as its distinct values and, per element, the position of its value: a function
    of the values is computed on :attr:`values` and gathered back with :meth:`of`."""

    def __init__(self, a: np.ndarray):
        self.all = np.asarray(a, dtype=float)
        self.values, self._inverse = np.unique(self.all, return_inverse=True)

    def of(self, computed: np.ndarray) -> np.ndarray:
        """``computed`` (one entry per distinct value) per element."""
        return computed[self._inverse]


class BGNBD:
    """Beta-geometric / negative-binomial distribution model of repeat purchases.

    Parameters: ``penalizer`` (L2 on the log-parameters, keeps the fit finite on tiny data),
    ``scale`` (days per time unit; the fit is in units of ``scale`` days), ``max_rows``
    (customers sampled for the fit, deterministic with ``seed``: four parameters need no more,
    and the cost stays fixed at a million customers).
    Fitted: ``params_`` (r, alpha, a, b), ``log_likelihood_`` (of the fitted rows).
    """

    def __init__(
        self,
        penalizer: float = 1e-3,
        scale: float = 7.0,
        max_rows: int = 100_000,
        seed: int = DEFAULT_SEED,
    ):
        self.penalizer = penalizer
        self.scale = scale
        self.max_rows = max_rows
        self.seed = seed

    @staticmethod
    def _loglik(log_par, x, tx, T):
        """Per customer log-likelihood of ``(x, tx, T)`` at the log-parameters ``log_par``."""
        return BGNBD._loglik_of(log_par, _Distinct(x), _Distinct(tx), _Distinct(T))

    @staticmethod
    def _loglik_of(log_par, x, tx, T):
        """:meth:`_loglik` of :class:`_Distinct` arguments: the special functions and logs are
        computed once per distinct value of their argument (a few hundred frequencies and
        ages in days) and gathered, not once per customer; the same values, element for
        element, as computing them for every customer."""
        r, alpha, a, b = np.exp(log_par)
        xv = x.values
        A1 = x.of(special.gammaln(r + xv)) - special.gammaln(r) + r * np.log(alpha)
        A2 = (
            special.gammaln(a + b)
            + x.of(special.gammaln(b + xv))
            - special.gammaln(b)
            - x.of(special.gammaln(a + b + xv))
        )
        A3 = -(r + x.all) * T.of(np.log(alpha + T.values))
        with np.errstate(divide="ignore", invalid="ignore"):
            A4 = np.where(
                x.all > 0,
                np.log(a)
                - x.of(np.log(np.maximum(b + xv - 1, 1e-12)))
                - (r + x.all) * tx.of(np.log(alpha + tx.values)),
                -np.inf,
            )
        return A1 + A2 + np.logaddexp(A3, A4)

    def fit(self, rfm: pd.DataFrame) -> BGNBD:
        """``rfm`` has ``frequency``, ``recency``, ``T`` in days (see :func:`rfm_summary`)."""
        if len(rfm) > self.max_rows:
            rng = np.random.default_rng(self.seed)
            rfm = rfm.iloc[np.sort(rng.choice(len(rfm), self.max_rows, replace=False))]
        x = rfm["frequency"].to_numpy(dtype=float)
        tx = rfm["recency"].to_numpy(dtype=float) / self.scale
        T = rfm["T"].to_numpy(dtype=float) / self.scale
        # identical customers share a likelihood term: fit on the distinct (x, tx, T) triples
        key = pd.DataFrame({"x": x, "tx": tx, "T": T})
        uniq = key.value_counts().reset_index(name="w")
        ux, utx, uT, w = (uniq[c].to_numpy(dtype=float) for c in ("x", "tx", "T", "w"))
        n = w.sum()

        ux_, utx_, uT_ = _Distinct(ux), _Distinct(utx), _Distinct(uT)

        def nll(lp):
            ll = self._loglik_of(lp, ux_, utx_, uT_)
            return -(w * ll).sum() / n + self.penalizer * (lp**2).sum()

        best = None
        for start in (np.log([1.0, max(float(T.mean()), 1.0), 1.0, 1.0]), np.zeros(4)):
            res = optimize.minimize(nll, start, method="Nelder-Mead", options={"maxiter": 4000})
            res = optimize.minimize(nll, res.x, method="L-BFGS-B")
            if np.isfinite(res.fun) and (best is None or res.fun < best.fun):
                best = res
        self.params_ = dict(zip(("r", "alpha", "a", "b"), np.exp(best.x), strict=True))
        self.log_likelihood_ = float(-best.fun * n)
        return self

    def _xtT(self, rfm):
        return (
            rfm["frequency"].to_numpy(dtype=float),
            rfm["recency"].to_numpy(dtype=float) / self.scale,
            rfm["T"].to_numpy(dtype=float) / self.scale,
        )

    def p_alive(self, rfm: pd.DataFrame) -> np.ndarray:
        """P(still alive at the cut-off | history)."""
        r, alpha, a, b = (self.params_[k] for k in ("r", "alpha", "a", "b"))
        x, tx, T = self._xtT(rfm)
        log_ratio = (r + x) * np.log((alpha + T) / (alpha + tx))
        odds = np.where(x > 0, a / np.maximum(b + x - 1, 1e-12) * np.exp(log_ratio), 0.0)
        return 1.0 / (1.0 + odds)

    def expected_purchases(self, rfm: pd.DataFrame, days: float) -> np.ndarray:
        """Expected number of purchases in the ``days`` after the cut-off, given history."""
        r, alpha, a, b = (self.params_[k] for k in ("r", "alpha", "a", "b"))
        x, tx, T = self._xtT(rfm)
        t = float(days) / self.scale
        z = t / (alpha + T + t)
        hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, z)
        lead = (a + b + x - 1) / (a - 1) if a != 1 else np.full_like(x, np.nan)
        core = 1.0 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp
        alive = self.p_alive(rfm)
        e = lead * core * alive
        # a <= 1 or a numerically failed hypergeometric: fall back to the alive rate x horizon
        fallback = alive * (r + x) / (alpha + T) * t
        return np.where(np.isfinite(e) & (e >= 0), e, fallback)
