"""The blend of the views: calibrated on a backtest window carved from the end of the history.

The views of :mod:`cemlib.churn.views` are fitted on the history up to ``as_of - L``; their
figures for ``(as_of - L, as_of]`` are regressed on what actually happened there:

- counts: a Poisson GLM of actual / simulated counts (offset: the spell view's simulated
  count) on the log ratios of the dropout view's and the booster's counts to the simulated
  ones, a weighted geometric blend of the three views (spell view alone: its purchase
  probability and the purchase-history state);
- probabilities: a stacked Platt scaling per backtest horizon (:class:`Scaling`), on the logit
  of the spell view's probability, the other views' log counts, the silence against the
  customer's own rhythm and a dropout term (the silence in years, its weight learned once on the
  longest horizon and shared by the shorter ones, kept only when negative and significant: the
  odds that a customer is still a customer fall by a constant factor per year of silence,
  which carries to silences longer than any at the backtest's cut), then a boosted correction of its logit (:class:`Correction`) from the silence measured against
  the customer's regularity, falling as the silence grows more unusual; the number of its
  rounds is chosen by cross-validation on the window (none when it does not lower the held-out
  log loss: the Platt scaling alone).

The same blend is then applied to the views refitted at ``as_of``.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy import optimize, special, stats
from sklearn.linear_model import LogisticRegression, PoissonRegressor

from cemlib import DEFAULT_SEED


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
    logistic it extrapolates in the right direction.

    The rhythm is the mean gap, or the last gap when that is longer: a customer who bought
    weekly for a year and monthly since (trial 10's grocery) is not overdue 20 days after a
    purchase, and against the weekly mean gap the silence ranked the slowed customers by how
    far their new pace is from their old one, not by whether they keep it. On an independent
    slowing world the AUC among the slowed went from 0.635 / 0.701 to 0.646 / 0.711 (two
    seeds), CDNOW's and the synthetic world's figures within noise (docs/benchmarks.md)."""
    k = state["k"].to_numpy(dtype=float)
    elapsed = state["duration"].to_numpy(dtype=float)
    gap = state["mean_gap"].to_numpy(dtype=float)
    if "log_prev_gap" in state.columns:  # the rhythm: the mean gap, or the last one if longer
        gap = np.fmax(gap, np.expm1(state["log_prev_gap"].to_numpy(dtype=float)))
    repeat = (k > 1) & np.isfinite(gap)
    ratio = np.where(repeat, np.log1p(elapsed) - np.log1p(np.nan_to_num(gap)), 0.0)
    once = np.where(repeat, 0.0, np.log1p(elapsed))
    return np.column_stack([ratio, once])


def _silence(state: pd.DataFrame) -> np.ndarray:
    """The dropout term: each customer's silence since the last purchase in years, one column.

    In the logistic it is ``log S_alive(s) = -lambda s``: the log-odds that a customer is still
    a customer fall by a constant ``lambda`` per year of silence (a mixture-cure model whose
    active customers' gaps have a memoryless tail), ``lambda`` learned with the other weights on
    the backtest window (about 0 where nobody leaves). The other columns cannot say "gone for
    good": the spell model has no dropout and its log-normal or log-logistic tail decays only
    like a power of ``log s``, and the views' counts are trees learned at ``as_of - L``, flat
    beyond the silences seen there. Trial 8: patients silent more than 540 days at ``as_of``
    (longer than anyone at the backtest's cut, 1.5 years into the history) were scored 0.34 to
    visit within a year; 0.10 did."""
    return (state["duration"].to_numpy(dtype=float) / 365.25)[:, None]


def _p_design(sim: dict[str, np.ndarray], h: int, state: pd.DataFrame) -> np.ndarray:
    """Covariates of the purchase-probability calibration: the logit of the spell model's
    probability and, when fitted, the log expected counts of the BG/NBD and the booster (a
    stacked Platt scaling: the dropout views carry who has stopped), the silence against
    the customer's own rhythm (:func:`_rhythm`) and the dropout term (:func:`_silence`)."""
    cols = [_logit(sim[f"p_{h}"])]
    cols += [np.log(sim[f"{key}_{h}"] + 0.01) for key in ("bg", "lgb") if f"{key}_{h}" in sim]
    return np.column_stack([*cols, _rhythm(state), _silence(state)])


def _regularity(sim: dict[str, np.ndarray], state: pd.DataFrame) -> np.ndarray:
    """The silence since the last purchase against the customer's regularity, three columns,
    each growing with how unusual the silence is for this customer:

    - the spell model's surprise, ``-log P(gap > silence)`` for the customer's gap distribution
      (``log_s`` of :meth:`~cemlib.churn.gaps.GapModel.simulate`; 0 without it);
    - the silence in units of the spread of the customer's own log gaps so far
      (``log_gap_mean``, ``log_gap_sd`` of :func:`~cemlib.churn.gaps.spell_table`; 0 for
      one-time buyers);
    - the log of the silence over the longest gap so far (from the third purchase on; 0
      before).

    A clockwork buyer one cycle overdue is rare among the backtest's customers (trial 7: 3 % of
    a telecom's subscribers had missed one monthly top-up; 62 % of them bought again, the Platt
    scaling said 85 %): a logistic in the views' figures cannot bend for so few, the
    correction of :class:`Correction` learns it from these columns alone. Relative measures
    only: the silence in days moves between the backtest's cut and ``as_of`` (everyone is a
    window older), and a correction that read it, or the views' figures, made the synthetic
    world's calibration worse (0.020 -> 0.036 at 365 days)."""
    n = len(state)
    k = state["k"].to_numpy(dtype=float)
    silence = np.log1p(state["duration"].to_numpy(dtype=float))
    surprise = -np.asarray(sim["log_s"], dtype=float) if "log_s" in sim else np.zeros(n)
    cols = [np.minimum(surprise, 700.0)]
    if {"log_gap_mean", "log_gap_sd", "log_max_gap"} <= set(state.columns):
        mean = state["log_gap_mean"].to_numpy(dtype=float)
        sd = state["log_gap_sd"].to_numpy(dtype=float)
        cols.append(np.where(k > 1, (silence - mean) / np.maximum(sd, 1e-3), 0.0))
        cols.append(np.where(k > 2, silence - state["log_max_gap"].to_numpy(dtype=float), 0.0))
    else:  # a state from elsewhere, without the running gap statistics
        cols += [np.zeros(n), np.zeros(n)]
    return np.column_stack(cols)


class Scaling:
    """The Platt scaling of one backtest horizon: a logistic regression whose last column's
    weight (the dropout term of :func:`_silence`) can be fixed in advance (``dropout``).

    A customer's odds of still being a customer do not depend on the horizon asked about, so
    :class:`Blend` learns the dropout weight once, on the longest backtest horizon (the whole
    window: the most outcomes), and fits the shorter horizons' scalings with it fixed. Learned
    per horizon, the 90-day scaling of trial 8's clinic gave the dropout a weight of +0.25 per
    year (the 365-day one -1.2): beyond the silences seen at the backtest's cut it rose with
    the silence, and the monotone step across horizons (a probability never falls with the
    horizon) carried 0.27 into the 365-day figure of patients silent more than 540 days.
    Fitted: ``coef_`` (1 x columns, the fixed weight last), ``intercept_``.
    """

    def __init__(self, C: float = 1e4):
        self.C = C

    def fit(self, X: np.ndarray, y: np.ndarray, dropout: float | None = None) -> Scaling:
        """Fit on ``X``, ``y``; ``dropout``: the last column's fixed weight (None: learned)."""
        y = np.asarray(y, dtype=float)
        if dropout is None or dropout == 0.0:  # weight 0: the scaling without the term
            lr = LogisticRegression(C=self.C, max_iter=1000).fit(
                X[:, :-1] if dropout == 0.0 else X, y
            )
            self.coef_, self.intercept_ = lr.coef_.copy(), lr.intercept_.copy()
            if dropout == 0.0:
                self.coef_ = np.c_[self.coef_, [[0.0]]]
            return self
        X1 = np.column_stack([np.ones(len(X)), X[:, :-1]])
        offset = float(dropout) * X[:, -1]
        lam = 0.5 / self.C  # the same weak L2 as scikit-learn's C, the intercept free

        def loss(b):
            z = X1 @ b + offset
            pen = lam * (b[1:] @ b[1:])
            grad = X1.T @ (special.expit(z) - y) + np.r_[0.0, 2 * lam * b[1:]]
            return (np.logaddexp(0.0, z) - y * z).sum() + pen, grad

        b = optimize.minimize(loss, np.zeros(X1.shape[1]), jac=True, method="L-BFGS-B").x
        b = b if np.isfinite(b).all() else np.zeros_like(b)
        self.coef_ = np.r_[b[1:], float(dropout)][None, :]
        self.intercept_ = np.array([b[0]])
        return self

    def log_likelihood(self, X: np.ndarray, y: np.ndarray) -> float:
        """The Bernoulli log-likelihood of ``y`` under the scaling."""
        z = self.decision_function(X)
        return float((np.asarray(y, dtype=float) * z - np.logaddexp(0.0, z)).sum())

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """The logit of the scaled probability."""
        return X @ self.coef_[0] + self.intercept_[0]

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Two columns: P(no purchase), P(purchase)."""
        p = special.expit(self.decision_function(X))
        return np.column_stack([1.0 - p, p])


def _dropout_or_not(free: Scaling, X: np.ndarray, y: np.ndarray, level: float = 0.05) -> Scaling:
    """``free`` (the dropout weight learned) when the weight is negative and the likelihood-ratio
    test against the scaling without the term rejects it at ``level``; else that scaling
    (the weight 0: exactly the scaling of the other columns).

    Silence never makes a customer more likely to still be one: a weight above 0 is the
    window's noise, and carried beyond the silences seen there it raised the long-silent
    (trial 8's held-out refit, 278 days of history at its cut: +0.56 per year, held-out AUC
    0.747 -> 0.732). A weight the window cannot tell from 0 moves the other weights for
    nothing: trial 7's held-out refit learned -0.02 per year and its held-out AUC fell from
    0.948 to 0.921."""
    if free.coef_[0, -1] >= 0:
        return Scaling().fit(X, y, dropout=0.0)
    null = Scaling().fit(X, y, dropout=0.0)
    gain = 2.0 * (free.log_likelihood(X, y) - null.log_likelihood(X, y))
    return free if gain > stats.chi2.ppf(1.0 - level, df=1) else null


class Correction:
    """A boosted correction of a logistic's logit, monotone in every input, its number of
    rounds chosen by ``folds``-fold cross-validation (early stopping on the held-out log loss).

    Zero rounds (``rounds_ == 0``, no booster) when no round lowers the held-out log loss below
    the logistic's own: on data the Platt scaling already fits, the result is the Platt scaling.
    The cross-validation reads at most ``max_rows`` rows (a seeded sample); the final booster
    all of them. ``directions``: +1 / -1 per input column (the probability grows / falls).
    """

    def __init__(
        self,
        directions: list[int],
        folds: int = 5,
        max_rounds: int = 400,
        learning_rate: float = 0.05,
        num_leaves: int = 4,
        min_child_samples: int = 100,
        max_rows: int = 50_000,
        seed: int = DEFAULT_SEED,
    ):
        self.directions = directions
        self.folds = folds
        self.max_rounds = max_rounds
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.max_rows = max_rows
        self.seed = seed

    def _params(self) -> dict:
        return {
            "objective": "binary",
            "metric": "binary_logloss",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_child_samples,
            "monotone_constraints": list(self.directions),
            "seed": self.seed,
            "num_threads": 1,
            "verbose": -1,
        }

    def fit(self, X: np.ndarray, y: np.ndarray, logit: np.ndarray) -> Correction:
        """Learn the correction of ``logit`` (the logistic's decision function on ``X``)."""
        y = np.asarray(y, dtype=float)
        rows = np.arange(len(y))
        if len(rows) > self.max_rows:
            rng = np.random.default_rng(self.seed)
            rows = np.sort(rng.choice(len(rows), self.max_rows, replace=False))
        self.rounds_, self.booster_ = 0, None
        self.cv_loss_ = self.base_loss_ = float("nan")
        if min(y[rows].sum(), len(rows) - y[rows].sum()) < self.folds:
            return self
        params = self._params()
        # the init score is the logistic fitted on every row, the held-out folds too: the folds
        # judge the correction, not the logistic (a mild optimism in the rounds chosen)
        data = lgb.Dataset(X[rows], y[rows], init_score=logit[rows], params=params)
        cv = lgb.cv(
            params,
            data,
            num_boost_round=self.max_rounds,
            nfold=self.folds,
            stratified=True,
            seed=self.seed,
            callbacks=[lgb.early_stopping(30, verbose=False)],
        )
        curve = np.asarray(cv["valid binary_logloss-mean"])
        z, t = logit[rows], y[rows]
        # the held-out loss of zero rounds: the logistic's own (the same on every fold)
        self.base_loss_ = float(np.mean(np.logaddexp(0.0, z) - t * z))
        self.cv_loss_ = float(curve.min())
        if self.cv_loss_ < self.base_loss_:
            self.rounds_ = int(curve.argmin()) + 1
            full = lgb.Dataset(X, y, init_score=logit, params=params)
            self.booster_ = lgb.train(params, full, self.rounds_)
        return self

    def logit(self, X: np.ndarray, logit: np.ndarray) -> np.ndarray:
        """The corrected logit."""
        if self.booster_ is None:
            return logit
        return logit + self.booster_.predict(X, raw_score=True)


class Blend:
    """Calibrates and combines the views' figures.

    Attributes
    ----------
    window_ : the backtest window ``L`` in days.
    counts_ : the count GLM (:class:`sklearn.linear_model.PoissonRegressor`).
    probabilities_ : backtest horizon -> its Platt scaling (a horizon with only buyers or only
        non-buyers in the window has none).
    corrections_ : backtest horizon -> the :class:`Correction` of its Platt scaling.
    dropout_ : the weight of the dropout term (:func:`_silence`, per year of silence) in every
        horizon's scaling, learned on the longest one; 0 unless negative and significant
        (:func:`_dropout_or_not`; None without any scaling).
    backtest_ : predicted and actual purchases in the window, per customer.
    """

    def __init__(self, seed: int = DEFAULT_SEED):
        self.seed = seed

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
        self.probabilities_, self.corrections_ = {}, {}
        self.dropout_ = None  # the dropout term's weight, learned on the longest horizon
        for h in sorted(horizons, reverse=True):
            y = (first_purchase <= h).to_numpy()
            if 0 < y.sum() < len(y):
                X = _p_design(sim, h, state)
                platt = Scaling().fit(X, y, dropout=self.dropout_)
                if self.dropout_ is None:
                    platt = _dropout_or_not(platt, X, y)
                    self.dropout_ = float(platt.coef_[0, -1])
                self.probabilities_[h] = platt
                self.corrections_[h] = Correction([-1, -1, -1], seed=self.seed).fit(
                    _regularity(sim, state), y, platt.decision_function(X)
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
        X = _p_design(sim, h, state)
        logit = self.probabilities_[key].decision_function(X)
        correction = getattr(self, "corrections_", {}).get(key)
        if correction is not None:
            logit = correction.logit(_regularity(sim, state), logit)
        return 1.0 / (1.0 + np.exp(-logit))
