"""The three views of a customer's future that :class:`~cemlib.churn.models.ChurnModel` blends.

Each view is an estimator fitted on the history up to a cut-off and asked for per-customer
figures over a list of horizons (days after the cut-off); each answers in a ``dict`` of arrays
keyed ``<view>_<horizon>`` and aligned with the customers it is given:

- :class:`SpellView`: the time between purchases (two lifelines AFT models of the open spell):
  the probability of a purchase within each horizon (``p_<h>``), simulated counts
  (``count_<h>``) and their discounted sum (``disc_<h>``).
- :class:`DropoutView`: a BG/NBD dropout model: who has stopped buying (``bg_<h>``,
  ``bg_alive``).
- :class:`BoosterView`: LightGBM Poisson counts learned on a label window carved from the
  history, stretched from the window's length to each horizon (``lgb_<h>``).

:class:`~cemlib.churn.blend.Blend` combines them. Nothing after the cut-off is ever read.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cemlib import DEFAULT_SEED
from cemlib.churn.dropout import BGNBD, rfm_summary
from cemlib.churn.gaps import GapModel, _cdf, spell_table
from cemlib.churn.supervised import CountBooster

_CURVE_BLOCK = 20_000  # customers per block of survival_curves


class SpellView:
    """The open spell since each customer's last purchase, modelled with lifelines AFT fitters.

    Parameters
    ----------
    families : AFT families compared by cross-validated concordance (the probability model
        picks one; the count model reuses it).
    n_sims : forward simulations per customer for the counts.
    annual_discount : discount rate per year of the discounted counts.
    max_rows : spells the fitters see at most (a seeded sample above it).
    seed : seed of the sampling and the simulations.

    Attributes
    ----------
    prob_model_ : :class:`~cemlib.churn.gaps.GapModel` with covariate-dependent shape, for the
        closed-form purchase probability.
    count_model_ : :class:`~cemlib.churn.gaps.GapModel` with a common shape, to simulate counts.
    state_ : one row per customer (its open spell), indexed by ``customer_id``.
    """

    def __init__(
        self,
        families: tuple[str, ...] = ("weibull", "lognormal", "loglogistic"),
        n_sims: int = 100,
        annual_discount: float = 0.1,
        max_rows: int = 15_000,
        seed: int = DEFAULT_SEED,
    ):
        self.families = families
        self.n_sims = n_sims
        self.annual_discount = annual_discount
        self.max_rows = max_rows
        self.seed = seed

    def fit(
        self,
        occasions: pd.DataFrame,
        cut: pd.Timestamp,
        covariates: pd.DataFrame | None = None,
        covariate_columns: list[str] | tuple = (),
    ) -> SpellView:
        """Learn the gap distributions from the purchase occasions on or before ``cut``."""
        spells = spell_table(occasions, cut, covariates)
        self.prob_model_ = GapModel(
            families=self.families, ancillary=True, max_rows=self.max_rows, seed=self.seed
        ).fit(spells, covariate_columns)
        self.count_model_ = GapModel(
            families=(self.prob_model_.family_,),
            ancillary=False,
            max_rows=self.max_rows,
            seed=self.seed,
        ).fit(spells, covariate_columns)
        self.state_ = spells.groupby("customer_id", sort=True).tail(1).set_index("customer_id")
        return self

    def predict(self, horizons: list[int], chunk: int = 50_000) -> dict[str, np.ndarray]:
        """``count_<h>``, ``disc_<h>`` (simulated) and ``p_<h>`` (closed form) per customer of
        :attr:`state_`, in chunks of customers (memory stays bounded at a million; each chunk
        has its own seeded stream)."""
        parts = []
        for i, start in enumerate(range(0, len(self.state_), chunk)):
            st = self.state_.iloc[start : start + chunk]
            elapsed = st["duration"].to_numpy()
            sim = self.count_model_.simulate(
                st, elapsed, list(horizons), self.annual_discount, n_sims=self.n_sims, seed_offset=i
            )
            p = self.prob_model_.simulate(st, elapsed, list(horizons), n_sims=0)
            for h in horizons:
                sim[f"p_{h}"] = p[f"p_{h}"]
            parts.append(sim)
        return {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}

    def survival_curves(self, times: np.ndarray | list[int]) -> pd.DataFrame:
        """P(no purchase by ``cut + t``) per customer (rows) and day ``t`` (columns)."""
        t = np.asarray(times, dtype=float)
        s = self.state_["duration"].to_numpy()[:, None]
        a, b = self.prob_model_._params(self.state_[self.prob_model_.columns_])
        fam = self.prob_model_.family_
        # block by block into one array: the intermediates of a million customers x 365 days
        # at once were three more copies of the result
        out = np.empty((len(s), len(t)), dtype=float)
        for lo in range(0, len(s), _CURVE_BLOCK):
            hi = lo + _CURVE_BLOCK
            ab = a[lo:hi, None], b[lo:hi, None]
            S_s = 1.0 - _cdf(fam, s[lo:hi], *ab)
            S_st = 1.0 - _cdf(fam, s[lo:hi] + t[None, :], *ab)
            out[lo:hi] = S_st / np.maximum(S_s, 1e-300)
        return pd.DataFrame(out, index=self.state_.index, columns=t, copy=False)


class DropoutView:
    """A BG/NBD dropout model of the purchase occasions up to a cut-off.

    Parameters
    ----------
    enabled : fit the model at all (``False`` leaves :attr:`model_` ``None``).
    min_repeaters : customers with a repeat purchase needed to fit it.

    Attributes
    ----------
    model_ : the fitted :class:`~cemlib.churn.dropout.BGNBD`, or ``None`` when disabled or the
        history has too few repeat buyers.
    rfm_ : frequency / recency / age per customer at the cut-off.
    """

    def __init__(self, enabled: bool = True, min_repeaters: int = 10):
        self.enabled = enabled
        self.min_repeaters = min_repeaters

    def fit(self, occasions: pd.DataFrame, cut: pd.Timestamp) -> DropoutView:
        """Fit the BG/NBD on the occasions on or before ``cut`` (when enabled and possible)."""
        self.rfm_ = rfm_summary(occasions, cut)
        enough = (self.rfm_["frequency"] > 0).sum() >= self.min_repeaters
        self.model_ = BGNBD().fit(self.rfm_) if self.enabled and enough else None
        return self

    def predict(self, customers: pd.Index, horizons: list[int]) -> dict[str, np.ndarray]:
        """``bg_<h>`` (expected purchases) per horizon and ``bg_alive`` for ``customers``."""
        rfm = self.rfm_.reindex(customers)
        out = {f"bg_{h}": self.model_.expected_purchases(rfm, h) for h in horizons}
        out["bg_alive"] = self.model_.p_alive(rfm)
        return out

    def time_profile(
        self, customers: pd.Index, window: int, horizons: list[int]
    ) -> dict[int, np.ndarray | float]:
        """Per horizon ``h``, the factor that turns a ``window``-day count into an ``h``-day
        one: the BG/NBD's per-customer ratio of expected counts (it knows who has stopped), or
        ``h / window`` without a model."""
        if self.model_ is None:
            return {h: h / window for h in horizons}
        rfm = self.rfm_.reindex(customers)
        base = self.model_.expected_purchases(rfm, window)
        return {
            h: self.model_.expected_purchases(rfm, h) / np.maximum(base, 1e-12) for h in horizons
        }


class BoosterView:
    """LightGBM Poisson counts of a label window, stretched to each horizon.

    Parameters
    ----------
    seed : the booster's seed.

    Attributes
    ----------
    booster_ : the fitted :class:`~cemlib.churn.supervised.CountBooster` (its out-of-fold
        predictions ``oof_`` are the honest counts on the training customers).
    window_ : the label window's length in days.
    """

    def __init__(self, seed: int = DEFAULT_SEED):
        self.seed = seed

    def fit(self, features: pd.DataFrame, counts: np.ndarray, window: int) -> BoosterView:
        """Learn the purchases in a ``window``-day label window from ``features`` measured at
        its start (purchase history only: nothing of the window may leak in)."""
        self.booster_ = CountBooster(seed=self.seed).fit(features, counts)
        self.window_ = int(window)
        return self

    def stretch(
        self, base: np.ndarray, profile: dict[int, np.ndarray | float]
    ) -> dict[str, np.ndarray]:
        """``lgb_<h>`` from ``window``-day counts and a :meth:`DropoutView.time_profile`."""
        return {f"lgb_{h}": base * shape for h, shape in profile.items()}

    def predict(
        self, features: pd.DataFrame, profile: dict[int, np.ndarray | float]
    ) -> dict[str, np.ndarray]:
        """``lgb_<h>`` for customers described by ``features`` (as of the forecast date)."""
        base = self.booster_.predict(features[self.booster_.columns_])
        return self.stretch(base, profile)
