"""``ChurnModel``: purchase probability, expected purchases and CLV per customer as of a date.

Three views of each customer's future, each an estimator of :mod:`cemlib.churn.views`:
the open spell since the last purchase (two lifelines AFT models: a closed-form purchase
probability per horizon and simulated counts), a BG/NBD dropout model, and a LightGBM count
model of a label window. A backtest carved from the end of the history fits one
:class:`~cemlib.churn.blend.Blend` of them: the views are fitted on history up to
``as_of - L``, their figures for ``(as_of - L, as_of]`` are regressed on what actually happened,
and that blend is applied to the views refitted at ``as_of``. Only rows dated on or before
``as_of`` are ever used.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import warnings
from collections.abc import Iterator

import numpy as np
import pandas as pd
from lifelines.exceptions import ConvergenceError

from cemlib import DEFAULT_SEED
from cemlib.churn.beside import Beside, workers
from cemlib.churn.blend import Blend
from cemlib.churn.clv import margin_rate, shrunk_spend
from cemlib.churn.features import (
    customer_features,
    join_covariates,
    purchase_occasions,
    validate_transactions,
)
from cemlib.churn.gaps import TooFewSpells
from cemlib.churn.views import BoosterView, DropoutView, SpellView
from cemlib.errors import InputError

RISK_LABELS = ("high", "medium", "low")


def risk_segment(
    p_purchase: np.ndarray, thresholds: tuple[float, float] | None = None
) -> np.ndarray:
    """``high`` risk below the first threshold of purchase probability, ``low`` above the second
    (``None``: :func:`risk_thresholds_from` chooses them from ``p_purchase``)."""
    p = np.asarray(p_purchase, dtype=float)
    if thresholds is None:
        thresholds = risk_thresholds_from(p)
    return np.where(p < thresholds[0], "high", np.where(p < thresholds[1], "medium", "low"))


def risk_thresholds_from(p_purchase: np.ndarray) -> tuple[float, float]:
    """Risk cut-offs from the base's own purchase rate ``r = mean(p)`` over the horizon:
    ``high`` risk below ``r / 2`` (less than half as likely to buy as the base's average
    customer), ``medium`` below ``r``, ``low`` at ``r`` or above.

    Fixed cut-offs (0.3 / 0.6) put 0 % in ``high`` on a repeat-heavy basket over a year (trial 6:
    17.8 % never bought again). The expected share without a purchase as the ``high`` share
    (trial 6's remedy) labelled 86 % of a rare-purchase base "high risk" and left ``low`` empty by
    construction (trial 12: most people buy 1-3 times in 3 years, the average p over a year is
    0.14): relative to the base's own rate each band means what its word says on both.
    """
    p = np.asarray(p_purchase, dtype=float)
    p = p[np.isfinite(p)]
    if p.size == 0:
        return (0.0, 0.0)
    rate = float(np.mean(p))
    return (rate / 2, rate)


def expected_share_thresholds(p_stay: np.ndarray) -> tuple[float, float]:
    """Risk cut-offs for subscriptions, where leaving is the rare event: the model expects a
    share ``q = mean(1 - p)`` of the contracts to end within the horizon, so the ``q`` least
    likely to stay are ``high`` risk and the next ``q`` are ``medium`` (trial 11 M1: fixed
    0.3 / 0.6 put 2,865 of 2,865 contracts in "low"; churn within 180 days 11.2 / 13.5 / 18.7 %
    across the bands chosen this way). The purchase rule of :func:`risk_thresholds_from` does
    not fit here: relative to a base rate of staying of about 0.9, no contract is "less than
    half as likely to stay"."""
    p = np.asarray(p_stay, dtype=float)
    p = p[np.isfinite(p)]
    if p.size == 0:
        return (0.0, 0.0)
    q = float(np.mean(1.0 - p))
    # the cut-offs are the q- and 2q-quantiles: "below" them takes the share q, then q more
    lo = float(np.quantile(p, min(q, 1.0), method="higher")) if q > 0 else 0.0
    hi = float(np.quantile(p, min(2 * q, 1.0), method="higher")) if q > 0 else 0.0
    if 2 * q >= 1.0:
        hi = np.nextafter(hi, np.inf)
    return (lo, max(lo, hi))


@contextlib.contextmanager
def _enough_history(occ: pd.DataFrame, as_of: pd.Timestamp, source: str) -> Iterator[None]:
    """A survival fit that fails for want of history becomes one :class:`InputError` line.

    lifelines' warnings of the fit are held back: a failed fit reports its reason alone (not
    after a page of ``ConvergenceWarning`` text); a fit that succeeds passes them on."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        except (ZeroDivisionError, ConvergenceError, np.linalg.LinAlgError, TooFewSpells) as exc:
            n_cust = int(occ["customer_id"].nunique())
            repeat = int((occ.groupby("customer_id").size() >= 2).sum())
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            raise InputError(
                f"too little history to fit the survival models ({n_cust} customers, {repeat} "
                f"with a repeat purchase on or before {as_of.date()}): "
                f"{lines[0] if lines else type(exc).__name__}",
                source=source,
            ) from exc
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


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
    risk_thresholds: purchase-probability cut-offs of the high/medium/low risk segments
        (``None``: chosen from the predicted distribution, :func:`risk_thresholds_from`;
        the chosen ones are kept as ``risk_thresholds_``).
    family_choice: family -> cross-validated concordance from an earlier fit on the same
        customers (e.g. the held-out refit's): its best family is used and the families are not
        cross-validated again (``None``: cross-validate ``families``).
    workers: 2 fits the BG/NBDs and the backtest's booster in a thread beside the AFT fits,
        1 everything in turn (``None``: :func:`cemlib.churn.beside.workers`, two when a second
        core and the stage's memory budget allow); the same scores either way.

    Attributes
    ----------
    spell_ : :class:`~cemlib.churn.views.SpellView` at ``as_of`` (``prob_model_``,
        ``count_model_`` and ``state_`` are its fitted parts).
    dropout_view_ : :class:`~cemlib.churn.views.DropoutView` at ``as_of`` (``dropout_`` is its
        BG/NBD, or None).
    booster_view_ : :class:`~cemlib.churn.views.BoosterView` or None (``booster_``).
    blend_ : :class:`~cemlib.churn.blend.Blend` fitted on the backtest window, or None
        (``calibration_``, ``p_calibration_``, ``backtest_`` are its parts).
    as_of_, features_ (per-customer survival data), occasions_, covariate_columns_,
    backtest_days_, spend_, margin_rate_.
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
        risk_thresholds: tuple[float, float] | None = None,
        max_rows: int = 15_000,
        seed: int = DEFAULT_SEED,
        family_choice: dict[str, float] | None = None,
        workers: int | None = None,
    ):
        self.workers = workers
        self.family_choice = family_choice
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
    def _spell(
        self, families: tuple[str, ...], choice: dict[str, float] | None = None
    ) -> SpellView:
        return SpellView(
            families=families,
            n_sims=self.n_sims,
            annual_discount=self.annual_discount,
            max_rows=self.max_rows,
            seed=self.seed,
            family_choice=choice,
            workers=getattr(self, "workers_", 1),
        )

    def fit(
        self,
        transactions: pd.DataFrame,
        as_of: str | dt.date,
        covariates: pd.DataFrame | None = None,
        source: str = "transactions",
    ) -> ChurnModel:
        """Learn from ``transactions`` (customer_id, ts, amount; optional margin, channel,
        quantity) dated on or before ``as_of``; ``covariates`` is one row per customer_id.

        With ``workers`` > 1 the two BG/NBD fits and the backtest's count booster, which need
        only the purchase occasions, run in a thread beside the AFT fits
        (:mod:`cemlib.churn.beside`); the scores are the same either way."""
        self.as_of_ = pd.Timestamp(as_of).normalize()
        tx = validate_transactions(transactions, source)
        self.n_rows_after_as_of_ = int((tx["ts"] >= self.as_of_ + pd.Timedelta(days=1)).sum())
        occ = purchase_occasions(tx, self.as_of_)
        if occ.empty:
            raise InputError(f"no transactions on or before {self.as_of_.date()}", source=source)
        self.occasions_ = occ
        feats = customer_features(occ, self.as_of_)
        feats, self.covariate_columns_ = join_covariates(feats, covariates)
        self.features_ = feats
        cov = feats[self.covariate_columns_] if self.covariate_columns_ else None
        history = (self.as_of_ - occ["day"].min()).days
        self.backtest_days_ = int(min(max(self.horizons), history // 2))
        backtest = self.calibrate and self.backtest_days_ >= 30
        self.workers_ = workers(len(tx)) if self.workers is None else int(self.workers)
        with Beside(self.workers_) as beside:
            # first what needs no AFT fit, in the order it is needed: the BG/NBD at as_of, and
            # the backtest's BG/NBD and booster
            dropout = DropoutView(enabled=self.dropout).fit(occ, self.as_of_, beside)
            early = self._start_backtest(occ, dropout.fitting_, beside) if backtest else None
            with _enough_history(occ, self.as_of_, source):
                self.spell_ = self._spell(self.families, self.family_choice).fit(
                    occ, self.as_of_, cov, self.covariate_columns_
                )
                self.dropout_view_ = dropout.done()
            self.spend_ = shrunk_spend(occ)
            self.margin_rate_ = margin_rate(occ)
            self.blend_ = self.booster_view_ = None
            self.calibration_dropout_ = False
            if backtest:
                try:
                    self._fit_blend(occ, cov, early)
                except TooFewSpells:  # too few repeat purchases before ``as_of - L``: no blend
                    self.blend_ = self.booster_view_ = None
                    self.calibration_dropout_ = False
        return self

    def _start_backtest(self, occ: pd.DataFrame, dropout: bool, beside: Beside) -> dict:
        """The backtest's parts that need no AFT fit, started ``beside``: its customers (a
        purchase on or before ``as_of - L``, sorted as the spell view's state at the cut),
        their purchases in the window, the BG/NBD at the cut (when ``dropout``: the model
        at ``as_of`` is fitted) and the count booster (None when there is nothing to learn)."""
        L = self.backtest_days_
        cut = self.as_of_ - pd.Timedelta(days=L)
        before = occ["day"] <= cut
        customers = pd.Index(np.sort(occ.loc[before, "customer_id"].unique()), name="customer_id")
        after = occ[occ["day"] > cut]
        n_after = after.groupby("customer_id").size().reindex(customers).fillna(0)
        view = DropoutView(enabled=dropout).fit(occ, cut, beside)
        booster = None
        if self.supervised and len(customers) >= 200 and n_after.sum() > 0:
            # purchase history only: profile covariates are measured as of ``as_of`` and
            # would leak the label window's activity into the features
            past = customer_features(occ[before], cut).reindex(customers)
            booster = beside.submit(BoosterView(seed=self.seed).fit, past, n_after.to_numpy(), L)
        return {"customers": customers, "n_after": n_after, "dropout": view, "booster": booster}

    def _fit_blend(self, occ: pd.DataFrame, cov: pd.DataFrame | None, early: dict) -> None:
        """The views refitted on the history up to ``as_of - L``, and the blend of their
        figures for ``(as_of - L, as_of]`` against what happened there (``early``: what
        :meth:`_start_backtest` started)."""
        L = self.backtest_days_
        cut = self.as_of_ - pd.Timedelta(days=L)
        spell = self._spell((self.prob_model_.family_,)).fit(occ, cut, cov, self.covariate_columns_)
        state = spell.state_
        if not state.index.equals(early["customers"]):  # pragma: no cover - broken invariant
            raise RuntimeError("the backtest's customers differ from the spell view's")
        horizons = sorted({int(h) for h in self.horizons if h <= L} | {L})
        sim = spell.predict(horizons)
        dropout = early["dropout"].done()
        if dropout.model_ is not None:
            sim.update(dropout.predict(state.index, horizons))
        self.calibration_dropout_ = dropout.model_ is not None
        after = occ[occ["day"] > cut]
        n_after = early["n_after"]
        if early["booster"] is not None:
            self.booster_view_ = early["booster"].result()
            profile = dropout.time_profile(state.index, L, horizons)
            sim.update(self.booster_view_.stretch(self.booster_view_.booster_.oof_, profile))
        first = (after.groupby("customer_id")["day"].min() - cut).dt.days.reindex(state.index)
        self.blend_ = Blend(seed=self.seed).fit(sim, state, L, n_after.to_numpy(), first, horizons)

    # -- the fitted views, under the names the notebooks and benchmarks read --------------
    @property
    def prob_model_(self):
        """The spell view's probability model (:class:`~cemlib.churn.gaps.GapModel`)."""
        return self.spell_.prob_model_

    @property
    def count_model_(self):
        """The spell view's count model (:class:`~cemlib.churn.gaps.GapModel`)."""
        return self.spell_.count_model_

    @property
    def state_(self) -> pd.DataFrame:
        """One row per customer: the open spell at ``as_of``."""
        return self.spell_.state_

    @property
    def dropout_(self):
        """The BG/NBD at ``as_of``, or ``None``."""
        return self.dropout_view_.model_

    @property
    def booster_(self):
        """The count booster (:class:`~cemlib.churn.supervised.CountBooster`), or ``None``."""
        return None if self.booster_view_ is None else self.booster_view_.booster_

    @property
    def calibration_(self):
        """The blend's count GLM, or ``None`` without a backtest."""
        return None if self.blend_ is None else self.blend_.counts_

    @property
    def p_calibration_(self) -> dict:
        """The blend's purchase-probability scalings per backtest horizon (empty without)."""
        return {} if self.blend_ is None else self.blend_.probabilities_

    @property
    def backtest_(self) -> pd.DataFrame:
        """Predicted and actual purchases in the backtest window, per customer."""
        return self.blend_.backtest_

    # -- predicting ------------------------------------------------------------------------
    def _views(self, horizons: list[int]) -> dict[str, np.ndarray]:
        """Every fitted view's figures at ``as_of`` for ``horizons``."""
        index = self.state_.index
        sim = self.spell_.predict(horizons)
        if self.blend_ is not None and self.calibration_dropout_:
            sim.update(self.dropout_view_.predict(index, horizons))
        if self.blend_ is not None and self.booster_view_ is not None:
            profile = self.dropout_view_.time_profile(index, self.backtest_days_, horizons)
            sim.update(self.booster_view_.predict(self.features_.reindex(index), profile))
        return sim

    def predict(self, horizons: tuple[int, ...] | list[int] | None = None) -> pd.DataFrame:
        """Per customer: ``p_purchase_<h>``, ``expected_purchases_<h>``, ``expected_revenue_<h>``,
        ``expected_margin_<h>``, ``clv_<h>`` (discounted margin, or revenue without margins)
        for each horizon, and the main horizon's figures without suffix plus ``risk_segment``."""
        hs = sorted({int(h) for h in (horizons or self.horizons)})
        state = self.state_
        sim = self._views(hs)
        spend = self.spend_["expected"].reindex(state.index).to_numpy()
        mrate = self.margin_rate_.reindex(state.index).to_numpy(dtype=float)
        out = pd.DataFrame(index=state.index)
        out.index.name = "customer_id"
        previous = previous_count = None
        for h in hs:
            count = sim[f"count_{h}"]
            if self.blend_ is not None:
                count = self.blend_.counts(sim, h, state)
                # a blend weight above one on a dropout view can shrink the blend over a longer
                # horizon for the nearly dead: expected purchases never fall with the horizon
                if previous_count is not None:
                    count = np.maximum(count, previous_count)
            previous_count = count
            raw = np.maximum(sim[f"count_{h}"], 1e-9)
            disc = np.where(sim[f"count_{h}"] > 0, sim[f"disc_{h}"] / raw, 1.0)
            p = sim[f"p_{h}"]
            if self.p_calibration_:
                p = self.blend_.probability(sim, h, state)
                if previous is not None:  # probabilities grow with the horizon
                    p = np.maximum(p, previous)
            previous = p
            out[f"p_purchase_{h}"] = p
            out[f"expected_purchases_{h}"] = count
            out[f"expected_revenue_{h}"] = count * spend
            out[f"expected_margin_{h}"] = count * spend * mrate
            value = out[f"expected_margin_{h}"] if np.isfinite(mrate).any() else count * spend
            out[f"clv_{h}"] = value * disc
        return self._main_horizon(out, hs[-1])

    def _main_horizon(self, out: pd.DataFrame, H: int) -> pd.DataFrame:
        """The main horizon's figures without suffix, the risk segment and the history."""
        for name in ("p_purchase", "expected_purchases", "expected_revenue", "expected_margin"):
            out[name] = out[f"{name}_{H}"]
        out["clv"] = out[f"clv_{H}"]
        p = out["p_purchase"].to_numpy()
        self.risk_thresholds_ = self.risk_thresholds or risk_thresholds_from(p)
        out["risk_segment"] = risk_segment(p, self.risk_thresholds_)
        f = self.features_.reindex(out.index)
        out["n_purchases"] = f["n_purchases"].astype(int)
        out["recency_days"] = f["recency_days"].astype(int)
        out["tenure_days"] = f["age_days"].astype(int)
        out["mean_amount"] = f["mean_amount"]
        out["horizon_days"] = H
        return out.reset_index()

    def survival_curves(self, times: np.ndarray | list[int]) -> pd.DataFrame:
        """P(no purchase by ``as_of + t``) per customer (rows) and day ``t`` (columns)."""
        return self.spell_.survival_curves(times)

    def curves(self, times: np.ndarray | list[int]):
        """The same curves computed when read, a block of customers at a time
        (:class:`~cemlib.churn.views.SurvivalCurves`; what the evaluations use)."""
        return self.spell_.curves(times)

    def score(self, transactions: pd.DataFrame, horizon: int | None = None) -> dict[str, float]:
        """Figures against what happened after ``as_of`` in ``transactions`` (see
        :func:`cemlib.churn.evaluate.evaluate_predictions`)."""
        from cemlib.churn.evaluate import evaluate_predictions

        H = int(horizon or max(self.horizons))
        # all fitted horizons: probabilities and counts are made monotone across them
        pred = self.predict(sorted({int(h) for h in self.horizons} | {H}))
        curves = self.curves(np.arange(1, H + 1))
        return evaluate_predictions(pred, transactions, self.as_of_, H, curves=curves)
