"""``ChurnModel``: purchase probability, expected purchases and CLV per customer as of a date.

Two lifelines AFT models of the time between purchases do the survival work (see
:mod:`cemlib.churn.gaps`): one with covariate-dependent shape for the probability of a purchase
within each horizon (closed form from the open spell), one with a common shape to simulate the
purchase process forward. A backtest carved from the end of the history then calibrates the
simulated counts: the same models are fitted on history up to ``as_of - L``, their simulated
counts for ``(as_of - L, as_of]`` are regressed (Poisson GLM) on what actually happened, and that
calibration is applied to the forecasts made at ``as_of``. Only rows dated on or before
``as_of`` are ever used.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from lifelines.exceptions import ConvergenceError
from sklearn.linear_model import LogisticRegression, PoissonRegressor

from cemlib.churn.clv import margin_rate, shrunk_spend
from cemlib.churn.dropout import BGNBD, rfm_summary
from cemlib.churn.features import (
    customer_features,
    join_covariates,
    purchase_occasions,
    validate_transactions,
)
from cemlib.churn.gaps import GapModel, spell_table
from cemlib.churn.supervised import CountBooster

RISK_LABELS = ("high", "medium", "low")


def risk_segment(
    p_purchase: np.ndarray, thresholds: tuple[float, float] = (0.3, 0.6)
) -> np.ndarray:
    """``high`` risk below the first threshold of purchase probability, ``low`` above the second."""
    p = np.asarray(p_purchase, dtype=float)
    return np.where(p < thresholds[0], "high", np.where(p < thresholds[1], "medium", "low"))


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


def _p_design(sim: dict[str, np.ndarray], h: int) -> np.ndarray:
    """Covariates of the purchase-probability calibration: the logit of the spell model's
    probability and, when fitted, the log expected counts of the BG/NBD and the booster (a
    stacked Platt scaling: the dropout views carry who has stopped)."""
    cols = [_logit(sim[f"p_{h}"])]
    cols += [np.log(sim[f"{key}_{h}"] + 0.01) for key in ("bg", "lgb") if f"{key}_{h}" in sim]
    return np.column_stack(cols)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _offset(sim: dict[str, np.ndarray], h: int) -> np.ndarray:
    return np.maximum(sim[f"count_{h}"], 1e-3)


_CURVE_BLOCK = 20_000  # customers per block of survival_curves


class ChurnModel:
    """Survival churn and CLV for any transactions table.

    Parameters
    ----------
    horizons: horizons in days to predict for; the last is the main one (``p_purchase``...).
    annual_discount: discount rate per year for CLV.
    families: AFT families compared by cross-validated concordance.
    n_sims: forward simulations per customer.
    calibrate: fit the backtest calibration of counts (needs history longer than ~60 days).
    dropout: fit a BG/NBD dropout model (:mod:`cemlib.churn.dropout`) and let the backtest
        calibration combine its expected counts with the simulated spell counts.
    supervised: fit a LightGBM Poisson count model on the backtest window
        (:mod:`cemlib.churn.supervised`) and let the calibration combine it too.
    risk_thresholds: purchase-probability cut-offs of the high/medium/low risk segments.

    Fitted attributes: ``as_of_``, ``features_`` (per-customer survival data),
    ``prob_model_``/``count_model_`` (:class:`GapModel`), ``calibration_`` (GLM or None),
    ``backtest_days_``, ``spend_``, ``margin_rate_``, ``covariate_columns_``, ``dropout_``
    (:class:`~cemlib.churn.dropout.BGNBD` at ``as_of`` or None), ``booster_``
    (:class:`~cemlib.churn.supervised.CountBooster` or None).
    """

    def __init__(
        self,
        horizons: tuple[int, ...] | list[int] = (90, 180, 365),
        annual_discount: float = 0.1,
        families: tuple[str, ...] = ("weibull", "lognormal", "loglogistic"),
        n_sims: int = 100,
        calibrate: bool = True,
        dropout: bool = True,
        supervised: bool = True,
        risk_thresholds: tuple[float, float] = (0.3, 0.6),
        max_rows: int = 15_000,
        seed: int = 42,
    ):
        self.horizons = horizons
        self.annual_discount = annual_discount
        self.families = families
        self.n_sims = n_sims
        self.calibrate = calibrate
        self.dropout = dropout
        self.supervised = supervised
        self.risk_thresholds = risk_thresholds
        self.max_rows = max_rows
        self.seed = seed

    # -- fitting ---------------------------------------------------------------------------
    def _gap_models(
        self,
        occ: pd.DataFrame,
        cut: pd.Timestamp,
        cov: pd.DataFrame | None,
        families: tuple[str, ...] | None = None,
    ):
        spells = spell_table(occ, cut, cov)
        prob = GapModel(
            families=families or self.families,
            ancillary=True,
            max_rows=self.max_rows,
            seed=self.seed,
        ).fit(spells, self.covariate_columns_)
        count = GapModel(
            families=(prob.family_,), ancillary=False, max_rows=self.max_rows, seed=self.seed
        ).fit(spells, self.covariate_columns_)
        state = spells.groupby("customer_id", sort=True).tail(1).set_index("customer_id")
        return prob, count, state

    def _simulate(self, prob, count, state, horizons, chunk: int = 50_000) -> dict[str, np.ndarray]:
        """Simulated counts and closed-form probabilities, in chunks of customers (memory stays
        bounded at a million customers; each chunk has its own seeded stream)."""
        parts = []
        for i, start in enumerate(range(0, len(state), chunk)):
            st = state.iloc[start : start + chunk]
            elapsed = st["duration"].to_numpy()
            sim = count.simulate(
                st, elapsed, list(horizons), self.annual_discount, n_sims=self.n_sims, seed_offset=i
            )
            p = prob.simulate(st, elapsed, list(horizons), n_sims=0)
            for h in horizons:
                sim[f"p_{h}"] = p[f"p_{h}"]
            parts.append(sim)
        return {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}

    def _add_dropout(self, sim, model, occ, cut, state, horizons) -> None:
        """BG/NBD expected counts per horizon and P(alive), aligned with ``state``."""
        if model is None:
            return
        rfm = rfm_summary(occ, cut).reindex(state.index)
        for h in horizons:
            sim[f"bg_{h}"] = model.expected_purchases(rfm, h)
        sim["bg_alive"] = model.p_alive(rfm)

    def _add_booster(self, sim, state, horizons) -> None:
        """The booster's counts for the backtest window length ``L`` from the features as of
        ``as_of``, stretched to each horizon (see :meth:`_stretch`)."""
        base = self.booster_.predict(self.features_.reindex(state.index)[self.booster_.columns_])
        rfm = rfm_summary(self.occasions_, self.as_of_).reindex(state.index)
        self._stretch(sim, base, self.dropout_, rfm, horizons)

    def _stretch(self, sim, base, dropout, rfm, horizons) -> None:
        """``lgb_<h>`` from an ``L``-day count: times the BG/NBD's per-customer ratio of
        expected counts over ``h`` and ``L`` days (its dropout-aware time profile; ``h / L``
        without a dropout model)."""
        L = self.backtest_days_
        bg_L = dropout.expected_purchases(rfm, L) if dropout is not None else None
        for h in horizons:
            if bg_L is not None:
                shape = dropout.expected_purchases(rfm, h) / np.maximum(bg_L, 1e-12)
            else:
                shape = h / L
            sim[f"lgb_{h}"] = base * shape

    def _fit_dropout(self, occ, cut) -> BGNBD | None:
        rfm = rfm_summary(occ, cut)
        if not self.dropout or (rfm["frequency"] > 0).sum() < 10:
            return None
        return BGNBD().fit(rfm)

    def fit(
        self,
        transactions: pd.DataFrame,
        as_of: str | dt.date,
        covariates: pd.DataFrame | None = None,
        source: str = "transactions",
    ) -> ChurnModel:
        """Learn from ``transactions`` (customer_id, ts, amount; optional margin, channel,
        quantity) dated on or before ``as_of``; ``covariates`` is one row per customer_id."""
        self.as_of_ = pd.Timestamp(as_of).normalize()
        tx = validate_transactions(transactions, source)
        self.n_rows_after_as_of_ = int((tx["ts"] >= self.as_of_ + pd.Timedelta(days=1)).sum())
        occ = purchase_occasions(tx, self.as_of_)
        if occ.empty:
            from cemlib.errors import InputError

            raise InputError(f"no transactions on or before {self.as_of_.date()}", source=source)
        self.occasions_ = occ
        feats = customer_features(occ, self.as_of_)
        feats, self.covariate_columns_ = join_covariates(feats, covariates)
        self.features_ = feats
        cov = feats[self.covariate_columns_] if self.covariate_columns_ else None
        try:
            self.prob_model_, self.count_model_, self.state_ = self._gap_models(
                occ, self.as_of_, cov
            )
            self.dropout_ = self._fit_dropout(occ, self.as_of_)
        except (ZeroDivisionError, ConvergenceError, np.linalg.LinAlgError) as exc:
            from cemlib.errors import InputError

            n_cust = int(occ["customer_id"].nunique())
            repeat = int((occ.groupby("customer_id").size() >= 2).sum())
            raise InputError(
                f"too little history to fit the survival models ({n_cust} customers, {repeat} "
                f"with a repeat purchase on or before {self.as_of_.date()}): "
                f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                source=source,
            ) from exc
        self.spend_ = shrunk_spend(occ)
        self.margin_rate_ = margin_rate(occ)
        self.calibration_ = None
        self.p_calibration_ = {}
        self.calibration_dropout_ = False
        self.booster_ = None
        history = (self.as_of_ - occ["day"].min()).days
        H = max(self.horizons)
        L = int(min(H, history // 2))
        self.backtest_days_ = L
        if self.calibrate and L >= 30:
            cut = self.as_of_ - pd.Timedelta(days=L)
            prob, count, state = self._gap_models(occ, cut, cov, (self.prob_model_.family_,))
            hs_b = sorted({int(h) for h in self.horizons if h <= L} | {L})
            sim = self._simulate(prob, count, state, hs_b)
            dropout = self._fit_dropout(occ, cut) if self.dropout_ is not None else None
            self._add_dropout(sim, dropout, occ, cut, state, hs_b)
            self.calibration_dropout_ = dropout is not None
            after = occ[occ["day"] > cut]
            n_after = after.groupby("customer_id").size().reindex(state.index).fillna(0)
            if self.supervised and len(state) >= 200 and n_after.sum() > 0:
                # purchase history only: profile covariates are measured as of ``as_of`` and
                # would leak the label window's activity into the features
                past = customer_features(occ[occ["day"] <= cut], cut).reindex(state.index)
                self.booster_ = CountBooster(seed=self.seed).fit(past, n_after.to_numpy())
                rfm_cut = rfm_summary(occ, cut).reindex(state.index)
                self._stretch(sim, self.booster_.oof_, dropout, rfm_cut, hs_b)
            X = _design(sim, L, state)
            off = _offset(sim, L)
            # Poisson regression with log(offset): fit the ratio actual / simulated
            self.calibration_ = PoissonRegressor(alpha=1e-4, max_iter=1000).fit(
                X, n_after.to_numpy() / off, sample_weight=off
            )
            self.backtest_ = pd.DataFrame(
                {"predicted": off * self.calibration_.predict(X), "actual": n_after.to_numpy()},
                index=state.index,
            )
            # (stacked) Platt scaling of the purchase probability, per backtest horizon
            first = (after.groupby("customer_id")["day"].min() - cut).dt.days
            first = first.reindex(state.index)
            self.p_calibration_ = {}
            for h in hs_b:
                y = (first <= h).to_numpy()
                if 0 < y.sum() < len(y):
                    self.p_calibration_[h] = LogisticRegression(C=1e4, max_iter=1000).fit(
                        _p_design(sim, h), y
                    )
        return self

    # -- predicting ------------------------------------------------------------------------
    def predict(self, horizons: tuple[int, ...] | list[int] | None = None) -> pd.DataFrame:
        """Per customer: ``p_purchase_<h>``, ``expected_purchases_<h>``, ``expected_revenue_<h>``,
        ``expected_margin_<h>``, ``clv_<h>`` (discounted margin, or revenue without margins)
        for each horizon, and the main horizon's figures without suffix plus ``risk_segment``."""
        hs = sorted({int(h) for h in (horizons or self.horizons)})
        state = self.state_
        sim = self._simulate(self.prob_model_, self.count_model_, state, hs)
        if self.calibration_ is not None and self.calibration_dropout_:
            self._add_dropout(sim, self.dropout_, self.occasions_, self.as_of_, state, hs)
        if self.calibration_ is not None and self.booster_ is not None:
            self._add_booster(sim, state, hs)
        spend = self.spend_["expected"].reindex(state.index).to_numpy()
        mrate = self.margin_rate_.reindex(state.index).to_numpy(dtype=float)
        out = pd.DataFrame(index=state.index)
        out.index.name = "customer_id"
        previous = previous_count = None
        for h in hs:
            count = sim[f"count_{h}"]
            if self.calibration_ is not None:
                count = _offset(sim, h) * self.calibration_.predict(_design(sim, h, state))
                # a blend weight above one on a dropout view can shrink the blend over a longer
                # horizon for the nearly dead: expected purchases never fall with the horizon
                if previous_count is not None:
                    count = np.maximum(count, previous_count)
            previous_count = count
            raw = np.maximum(sim[f"count_{h}"], 1e-9)
            disc = np.where(sim[f"count_{h}"] > 0, sim[f"disc_{h}"] / raw, 1.0)
            p = sim[f"p_{h}"]
            if self.p_calibration_:
                hb = [k for k in self.p_calibration_ if k <= h]
                key = max(hb) if hb else min(self.p_calibration_)
                p = self.p_calibration_[key].predict_proba(_p_design(sim, h))[:, 1]
                if previous is not None:  # probabilities grow with the horizon
                    p = np.maximum(p, previous)
            previous = p
            out[f"p_purchase_{h}"] = p
            out[f"expected_purchases_{h}"] = count
            out[f"expected_revenue_{h}"] = count * spend
            out[f"expected_margin_{h}"] = count * spend * mrate
            value = out[f"expected_margin_{h}"] if np.isfinite(mrate).any() else count * spend
            out[f"clv_{h}"] = value * disc
        H = hs[-1]
        for name in ("p_purchase", "expected_purchases", "expected_revenue", "expected_margin"):
            out[name] = out[f"{name}_{H}"]
        out["clv"] = out[f"clv_{H}"]
        out["risk_segment"] = risk_segment(out["p_purchase"].to_numpy(), self.risk_thresholds)
        f = self.features_.reindex(out.index)
        out["n_purchases"] = f["n_purchases"].astype(int)
        out["recency_days"] = f["recency_days"].astype(int)
        out["tenure_days"] = f["age_days"].astype(int)
        out["mean_amount"] = f["mean_amount"]
        out["horizon_days"] = H
        return out.reset_index()

    def survival_curves(self, times: np.ndarray | list[int]) -> pd.DataFrame:
        """P(no purchase by ``as_of + t``) per customer (rows) and day ``t`` (columns)."""
        t = np.asarray(times, dtype=float)
        s = self.state_["duration"].to_numpy()[:, None]
        X = self.state_[self.prob_model_.columns_]
        a, b = self.prob_model_._params(X)
        from cemlib.churn.gaps import _cdf

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

    def score(self, transactions: pd.DataFrame, horizon: int | None = None) -> dict[str, float]:
        """Figures against what happened after ``as_of`` in ``transactions`` (see
        :func:`cemlib.churn.evaluate.evaluate_predictions`)."""
        from cemlib.churn.evaluate import evaluate_predictions

        H = int(horizon or max(self.horizons))
        # all fitted horizons: probabilities and counts are made monotone across them
        pred = self.predict(sorted({int(h) for h in self.horizons} | {H}))
        curves = self.survival_curves(np.arange(1, H + 1))
        return evaluate_predictions(pred, transactions, self.as_of_, H, curves=curves)
