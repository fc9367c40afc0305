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

from collections.abc import Iterator

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
    family_choice : family -> cross-validated concordance of an earlier fit on the same
        population; the probability model takes its best family without cross-validating
        (see :class:`~cemlib.churn.gaps.GapModel`'s ``choice``).
    workers : 2 simulates every other chunk of customers in a thread beside the caller (each
        chunk has its own seeded stream: the same counts either way), 1 all in turn.

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
        family_choice: dict[str, float] | None = None,
        workers: int = 1,
    ):
        self.families = families
        self.family_choice = family_choice
        self.workers = workers
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
            families=self.families,
            ancillary=True,
            max_rows=self.max_rows,
            seed=self.seed,
            choice=self.family_choice,
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
        has its own seeded stream, so with ``workers`` > 1 every other chunk is simulated in a
        thread beside the caller, numpy releasing the GIL, with the same result)."""
        from cemlib.churn.beside import Beside

        def part(i: int, start: int) -> dict[str, np.ndarray]:
            st = self.state_.iloc[start : start + chunk]
            elapsed = st["duration"].to_numpy()
            sim = self.count_model_.simulate(
                st, elapsed, list(horizons), self.annual_discount, n_sims=self.n_sims, seed_offset=i
            )
            p = self.prob_model_.simulate(st, elapsed, list(horizons), n_sims=0)
            for h in horizons:
                sim[f"p_{h}"] = p[f"p_{h}"]
            sim["log_s"] = p["log_s"]
            return sim

        starts = list(enumerate(range(0, len(self.state_), chunk)))
        with Beside(getattr(self, "workers", 1) if len(starts) > 1 else 1) as beside:
            # the odd chunks go beside first; the caller works through the even ones meanwhile
            beside_parts = {i: beside.submit(part, i, s) for i, s in starts if i % 2}
            parts = [
                beside_parts[i].result() if i in beside_parts else part(i, s) for i, s in starts
            ]
        return {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}

    def curves(self, times: np.ndarray | list[int]) -> SurvivalCurves:
        """P(no purchase by ``cut + t``) per customer of :attr:`state_` and day ``t``, computed
        block by block when read (:class:`SurvivalCurves`)."""
        a, b = self.prob_model_._params(self.state_[self.prob_model_.columns_])
        s = self.state_["duration"].to_numpy(dtype=float)
        return SurvivalCurves(self.prob_model_.family_, s, a, b, times, self.state_.index)

    def survival_curves(self, times: np.ndarray | list[int]) -> pd.DataFrame:
        """P(no purchase by ``cut + t``) per customer (rows) and day ``t`` (columns)."""
        return self.curves(times).to_frame()


class SurvivalCurves:
    """Survival curves of the open spells, one row per customer, computed when read.

    ``index`` (customers) and ``columns`` (days) as in a DataFrame; :meth:`rows` computes the
    rows asked for, :meth:`reindex` / :meth:`set_axis` give other customers' order or labels
    without computing anything, :meth:`to_frame` builds the whole table. The evaluations read
    the curves a block of customers at a time (or a sample of them): a million customers x 365
    days held at once was 2.9 GB, and every reindexed copy as much again.
    """

    def __init__(
        self,
        family: str,
        elapsed: np.ndarray,
        a: np.ndarray,
        b: np.ndarray,
        times: np.ndarray | list[int],
        index: pd.Index,
        positions: np.ndarray | None = None,
    ):
        self.family = family
        self._s, self._a, self._b = elapsed, a, b
        self.columns = pd.Index(np.asarray(times, dtype=float))
        self.index = index
        self._pos = positions  # rows of the arrays behind each label (-1: unknown, NaN)

    def __len__(self) -> int:
        return len(self.index)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.index), len(self.columns)

    def rows(self, positions: np.ndarray | slice) -> np.ndarray:
        """The curves of the customers at ``positions`` (of :attr:`index`), days as columns."""
        pos = np.arange(len(self.index))[positions]
        src = pos if self._pos is None else self._pos[pos]
        out = np.full((len(src), len(self.columns)), np.nan)
        t = self.columns.to_numpy()[None, :]
        for lo in range(0, len(src), _CURVE_BLOCK):
            sel = src[lo : lo + _CURVE_BLOCK]
            ok = sel >= 0
            j = sel[ok]
            s, ab = self._s[j, None], (self._a[j, None], self._b[j, None])
            S_s = 1.0 - _cdf(self.family, s, *ab)
            S_st = 1.0 - _cdf(self.family, s + t, *ab)
            out[lo : lo + _CURVE_BLOCK][ok] = S_st / np.maximum(S_s, 1e-300)
        return out

    def blocks(self, size: int = _CURVE_BLOCK) -> Iterator[tuple[int, np.ndarray]]:
        """``(start, rows)`` for consecutive blocks of ``size`` customers."""
        for lo in range(0, len(self.index), size):
            yield lo, self.rows(slice(lo, lo + size))

    def reindex(self, labels) -> SurvivalCurves:
        """The curves of the customers ``labels`` in that order (unknown ones: NaN rows)."""
        labels = pd.Index(labels)
        pos = self.index.get_indexer(labels)
        if self._pos is not None:
            pos = np.where(pos >= 0, self._pos[np.maximum(pos, 0)], -1)
        return SurvivalCurves(self.family, self._s, self._a, self._b, self.columns, labels, pos)

    def set_axis(self, labels) -> SurvivalCurves:
        """The same rows under other customer labels."""
        pos = np.arange(len(self.index)) if self._pos is None else self._pos
        return SurvivalCurves(
            self.family, self._s, self._a, self._b, self.columns, pd.Index(labels), pos
        )

    def to_frame(self) -> pd.DataFrame:
        """The whole table as a DataFrame (customers x days)."""
        return pd.DataFrame(
            self.rows(slice(None)), index=self.index, columns=self.columns, copy=False
        )


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

    def fit(self, occasions: pd.DataFrame, cut: pd.Timestamp, beside=None) -> DropoutView:
        """Fit the BG/NBD on the occasions on or before ``cut`` (when enabled and possible).

        ``beside`` (a :class:`~cemlib.churn.beside.Beside`): the BG/NBD is fitted there and
        :meth:`done` waits for it; :attr:`fitting_` says at once whether there is one."""
        self.rfm_ = rfm_summary(occasions, cut)
        enough = (self.rfm_["frequency"] > 0).sum() >= self.min_repeaters
        self.fitting_ = bool(self.enabled and enough)
        self._pending = None
        if not self.fitting_:
            self.model_ = None
        elif beside is None:
            self.model_ = BGNBD().fit(self.rfm_)
        else:
            self._pending = beside.submit(BGNBD().fit, self.rfm_)
        return self

    def done(self) -> DropoutView:
        """``self`` with :attr:`model_` set: waits for a fit started ``beside``."""
        if getattr(self, "_pending", None) is not None:
            self.model_ = self._pending.result()
            self._pending = None
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
