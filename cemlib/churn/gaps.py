"""Inter-purchase survival: the time from each purchase occasion to the next one.

Every occasion starts a spell that ends at the next occasion (event) or at the cut-off
(censored). Parametric AFT models from lifelines (Weibull, log-normal, log-logistic) describe
the spell length given the customer's state at that occasion (purchases so far, typical gap,
tenure, spend, covariates); the family is chosen by cross-validated concordance. Simulating
spells forward from the current open spell gives, for any horizon, the probability of a purchase,
the expected number of purchases and their discounted timing.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from lifelines import LogLogisticAFTFitter, LogNormalAFTFitter, WeibullAFTFitter
from lifelines.utils import concordance_index
from scipy import special

from cemlib import DEFAULT_SEED
from cemlib.churn.features import independent_columns

FAMILIES = {
    "weibull": (WeibullAFTFitter, "lambda_", "rho_"),
    "lognormal": (LogNormalAFTFitter, "mu_", "sigma_"),
    "loglogistic": (LogLogisticAFTFitter, "alpha_", "beta_"),
}
STATE = ("log_k", "log_mean_gap", "log_prev_gap", "first_purchase", "log_age", "log_amount")


class _StepColumns(Mapping):
    """The columns of one step of the simulation: the STATE columns computed for every path
    (``own``), and each customer's static columns (covariates) gathered for the paths only when
    read, one at a time: all of them at once were 20 covariates x 5 M paths, 0.8 GB per chunk."""

    def __init__(self, own: dict, static: np.ndarray, names: list[str], rows: np.ndarray):
        self._own, self._static, self._rows = own, static, rows
        self._pos = {c: j for j, c in enumerate(names)}

    def __getitem__(self, c: str) -> np.ndarray:
        if c in self._own:
            return self._own[c]
        return self._static[self._rows, self._pos[c]]

    def __iter__(self):
        yield from self._own
        yield from (c for c in self._pos if c not in self._own)

    def __len__(self) -> int:
        return len(set(self._own) | set(self._pos))


class TooFewSpells(ValueError):
    """Fewer ended spells (repeat purchases) than the AFT model has parameters to learn."""


def spell_table(
    occasions: pd.DataFrame, cutoff: pd.Timestamp, covariates: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per purchase occasion on or before ``cutoff``: the customer's state at it,
    ``duration`` (days to the next occasion, or to the end of ``cutoff``+0.5 when censored) and
    ``event``."""
    cut = pd.Timestamp(cutoff).normalize()
    occ = occasions[occasions["day"] <= cut].sort_values(["customer_id", "day"])
    cid = occ["customer_id"].to_numpy()
    day = occ["day"].to_numpy()
    new = np.r_[True, cid[1:] != cid[:-1]]
    last = np.r_[cid[1:] != cid[:-1], True]
    grp = np.cumsum(new) - 1
    start_idx = np.flatnonzero(new)
    k = np.arange(len(occ)) - start_idx[grp] + 1
    days = (day - day[start_idx[grp]]).astype("timedelta64[D]").astype(float)
    prev_gap = np.r_[np.nan, np.diff(days)]
    prev_gap[new] = np.nan
    mean_gap = np.where(k > 1, days / np.maximum(k - 1, 1), np.nan)
    nxt = np.r_[days[1:], np.nan]
    to_cut = (cut - occ["day"]).dt.days.to_numpy().astype(float)
    duration = np.where(last, to_cut + 0.5, nxt - days)
    amount = occ["amount"].to_numpy(dtype=float)
    cum_amt = pd.Series(amount).groupby(grp).cumsum().to_numpy() / k
    log_mean, log_sd = _log_gap_spread(
        np.where(new, np.nan, np.log1p(np.nan_to_num(prev_gap))), grp
    )
    out = pd.DataFrame(
        {
            "customer_id": cid,
            "day": day,
            "k": k,
            "log_k": np.log(k),
            "mean_gap": mean_gap,
            "log_mean_gap": np.where(k > 1, np.log1p(np.nan_to_num(mean_gap)), 0.0),
            "log_prev_gap": np.where(k > 1, np.log1p(np.nan_to_num(prev_gap)), 0.0),
            "first_purchase": (k == 1).astype(float),
            "age": days,
            "log_age": np.log1p(days),
            "log_amount": np.log1p(np.clip(cum_amt, 0, None)),
            "log_gap_mean": log_mean,
            "log_gap_sd": log_sd,
            "log_max_gap": pd.Series(np.log1p(np.nan_to_num(prev_gap)))
            .groupby(grp)
            .cummax()
            .to_numpy(),
            "duration": np.maximum(duration, 0.5),
            "event": (~last).astype(int),
        }
    )
    if covariates is not None and len(covariates.columns):
        out = out.join(covariates, on="customer_id")
    return out


def _log_gap_spread(log_gap: np.ndarray, grp: np.ndarray, prior: float = 2.0):
    """Each occasion's running mean and spread of the customer's log gaps so far (``log_gap``:
    ``log1p`` of the gap that ended at the occasion, NaN at a first purchase; ``grp``: the
    customer's number, occasions in time order).

    The spread is a customer's regularity: a clockwork buyer's log gaps hardly vary, so a
    silence of twice the usual gap is a break in the rhythm, while for an irregular buyer it is
    an ordinary long gap. With few gaps the sample spread means little: it is shrunk towards
    the pooled within-customer spread of everyone's gaps (the data's own), weighted as
    ``prior`` gaps; a customer with fewer than two gaps has the pooled spread. The mean is that
    of the gaps so far (0 before the first gap)."""
    ok = np.isfinite(log_gap)
    x = np.where(ok, log_gap, 0.0)
    n = pd.Series(ok.astype(float)).groupby(grp).cumsum().to_numpy()
    s1 = pd.Series(x).groupby(grp).cumsum().to_numpy()
    s2 = pd.Series(x * x).groupby(grp).cumsum().to_numpy()
    mean = np.where(n > 0, s1 / np.maximum(n, 1), 0.0)
    ss = np.maximum(s2 - n * mean**2, 0.0)  # sum of squared deviations so far
    last = np.r_[grp[1:] != grp[:-1], True]
    dof = np.maximum(n[last] - 1, 0).sum()
    pooled = float(ss[last].sum() / dof) if dof > 0 else 1.0
    var = (ss + prior * pooled) / (np.maximum(n - 1, 0) + prior)
    return mean, np.sqrt(np.maximum(var, 1e-6))


def _cdf(family: str, t, a, b):
    t = np.maximum(t, 1e-9)
    if family == "weibull":
        return -np.expm1(-((t / a) ** b))
    if family == "lognormal":
        return special.ndtr((np.log(t) - a) / b)
    return 1.0 / (1.0 + (t / a) ** (-b))


def _ppf(family: str, u, a, b):
    u = np.clip(u, 1e-12, 1 - 1e-12)
    if family == "weibull":
        return a * (-np.log1p(-u)) ** (1.0 / b)
    if family == "lognormal":
        return np.exp(a + b * special.ndtri(u))
    return a * (u / (1.0 - u)) ** (1.0 / b)


class GapModel:
    """Parametric AFT model of inter-purchase spells, family chosen by CV concordance.

    Parameters: ``families`` to try, ``cv_folds``, ``max_rows`` (spells subsampled for fitting,
    deterministic with ``seed``), ``penalizer``, ``choice`` (the cross-validated concordances
    of an earlier fit on the same population, family -> mean C: the best of them is taken and
    the cross-validation is skipped; kept as ``cv_concordance_``).
    Fitted: ``family_``, ``fitter_`` (lifelines), ``cv_concordance_`` (family -> mean C),
    ``columns_``.
    """

    def __init__(
        self,
        families: tuple[str, ...] = ("weibull", "lognormal", "loglogistic"),
        cv_folds: int = 3,
        max_rows: int = 15_000,
        penalizer: float = 0.0,
        ancillary: bool = True,
        cv_rows: int = 6_000,
        seed: int = DEFAULT_SEED,
        choice: dict[str, float] | None = None,
    ):
        self.choice = choice
        self.cv_rows = cv_rows
        self.ancillary = ancillary
        self.families = families
        self.cv_folds = cv_folds
        self.max_rows = max_rows
        self.penalizer = penalizer
        self.seed = seed

    def _design(self, spells: pd.DataFrame) -> pd.DataFrame:
        return spells[self.columns_].astype(float)

    def fit(self, spells: pd.DataFrame, covariate_cols: list[str] | tuple = ()) -> GapModel:
        """Fit each family's AFT model on ``spells`` (a seeded sample above ``max_rows``)
        and keep the one with the best cross-validated concordance; returns ``self``.
        """
        self.columns_ = list(STATE) + list(covariate_cols)
        rng = np.random.default_rng(self.seed)
        data = spells
        if len(data) > self.max_rows:
            data = data.iloc[np.sort(rng.choice(len(data), self.max_rows, replace=False))]
        df = self._design(data).assign(duration=data["duration"].values, event=data["event"].values)
        # no column without variance or aliased with the others (no unique coefficient)
        self.columns_ = independent_columns(df, self.columns_)
        df = df[[*self.columns_, "duration", "event"]]
        # each parameter (scale and, with ``ancillary``, shape: intercept + one per column)
        # needs ended spells to learn from; below that lifelines fails with a traceback or
        # does not converge
        n_params = (len(self.columns_) + 1) * (2 if self.ancillary else 1) + 1
        n_events = int(df["event"].sum())
        if n_events <= n_params:
            raise TooFewSpells(
                f"{n_events} repeat purchases to learn the {n_params} parameters of the "
                "gap model from"
            )
        cv = df if len(df) <= self.cv_rows else df.sample(self.cv_rows, random_state=self.seed)
        folds = rng.integers(0, max(self.cv_folds, 1), len(cv))
        scores: dict[str, float] = dict(self.choice or {})
        if not scores and (len(self.families) == 1 or self.cv_folds < 2):
            scores = {self.families[0]: float("nan")}
        for fam in self.families if not scores else ():
            cs = []
            for f in range(self.cv_folds):
                tr, te = cv[folds != f], cv[folds == f]
                m = self._new(fam).fit(tr, "duration", "event", ancillary=self._ancillary(tr))
                pred = m.predict_median(te).to_numpy().ravel()
                pred = np.where(np.isfinite(pred), pred, np.nanmax(pred[np.isfinite(pred)]))
                cs.append(concordance_index(te["duration"], pred, te["event"]))
            scores[fam] = float(np.mean(cs))
        self.cv_concordance_ = scores
        self.family_ = max(scores, key=lambda f: -np.inf if np.isnan(scores[f]) else scores[f])
        self.fitter_ = self._new(self.family_).fit(
            df, "duration", "event", ancillary=self._ancillary(df)
        )
        self.n_spells_ = len(df)
        # the simulation never moves a state beyond what the fit has seen
        self.state_max_ = {c: float(df[c].quantile(0.99)) for c in self.columns_ if c in STATE}
        return self

    def _new(self, family: str):
        fitter = FAMILIES[family][0](penalizer=self.penalizer)
        # lifelines' log-logistic default (SLSQP) is several times slower than BFGS here
        fitter._scipy_fit_method = "BFGS"
        return fitter

    def _ancillary(self, df: pd.DataFrame) -> pd.DataFrame | None:
        """The shape parameter depends on the purchase-history state only (not covariates)."""
        if not self.ancillary:
            return None
        cols = [c for c in STATE if c in df.columns and df[c].nunique() > 1]
        return df[cols] if cols else None

    def _params(self, X) -> tuple[np.ndarray, np.ndarray]:
        """The family's two parameters for each spell of ``X`` (a DataFrame, or a dict of
        column arrays of equal length: the simulation's steps build no frame)."""
        _, p1, p2 = FAMILIES[self.family_]
        par = self.fitter_.params_
        n = len(X) if isinstance(X, pd.DataFrame) else len(X[next(iter(X))])
        lin = []
        for name in (p1, p2):
            coef = par.loc[name]
            v = np.full(n, float(coef.get("Intercept", 0.0)))
            for c, b in coef.items():
                if c != "Intercept":
                    v = v + float(b) * np.asarray(X[c], dtype=float)
            lin.append(v)
        if self.family_ == "lognormal":
            return lin[0], np.exp(lin[1])
        return np.exp(lin[0]), np.exp(lin[1])

    def survival(self, X: pd.DataFrame, t: np.ndarray) -> np.ndarray:
        """P(gap > ``t``) for the spells described by ``X``."""
        a, b = self._params(X)
        return 1.0 - _cdf(self.family_, np.asarray(t, dtype=float), a, b)

    def _next_state(self, kk, sum_gap, prev, age, log_amount) -> dict[str, np.ndarray]:
        """The STATE columns of the next spell after the ``kk``-th purchase, clipped to the
        largest values seen in training (column arrays: one step of every path at once)."""
        Xn = {
            "log_k": np.log(kk),
            "log_mean_gap": np.log1p(sum_gap / (kk - 1)),
            "log_prev_gap": np.log1p(prev),
            "first_purchase": np.zeros(len(kk)),
            "log_age": np.log1p(age),
            "log_amount": log_amount,
        }
        for c in ("log_k", "log_age", "log_mean_gap", "log_prev_gap"):
            if c in self.state_max_:
                Xn[c] = np.minimum(Xn[c], self.state_max_[c])
        return Xn

    def simulate(
        self,
        state: pd.DataFrame,
        elapsed: np.ndarray,
        horizons: list[int],
        annual_discount: float = 0.0,
        n_sims: int = 200,
        max_steps: int = 400,
        seed_offset: int = 0,
    ) -> dict[str, np.ndarray]:
        """Forward-simulate spells for each customer from its open spell of ``elapsed`` days.

        ``state`` holds, per customer, the STATE columns after the last purchase plus covariates
        and ``k``/``age``/``mean_gap`` raw values. Returns per customer and horizon: ``count_h``
        (expected purchases), ``p_h`` (probability of at least one, closed form),
        ``disc_h`` (expected discount factor summed over purchases).
        """
        rng = np.random.default_rng([self.seed, seed_offset])
        n = len(state)
        H = max(horizons)
        elapsed = np.asarray(elapsed, dtype=float)
        X0 = state[self.columns_]
        a, b = self._params(X0)
        # closed-form probability of a purchase within h: the open spell ends before s + h
        S_s = 1.0 - _cdf(self.family_, elapsed, a, b)
        # how unusual the silence so far is for this customer's gaps: P(gap > elapsed)
        out: dict[str, np.ndarray] = {"log_s": np.log(np.maximum(S_s, 1e-300))}
        for h in horizons:
            S_sh = 1.0 - _cdf(self.family_, elapsed + h, a, b)
            out[f"p_{h}"] = np.clip(1.0 - S_sh / np.maximum(S_s, 1e-300), 0.0, 1.0)
        idx = np.repeat(np.arange(n), n_sims)
        F_s = 1.0 - S_s[idx]
        u = rng.random(len(idx))
        gap = _ppf(self.family_, F_s + u * (1.0 - F_s), a[idx], b[idx])
        del F_s, u
        t = gap - elapsed[idx]
        counts = {h: np.zeros(n) for h in horizons}
        disc = {h: np.zeros(n) for h in horizons}
        k0 = state["k"].to_numpy(dtype=float)
        sum_gap0 = state["mean_gap"].fillna(0).to_numpy(dtype=float) * (k0 - 1)
        # covariates column by column in memory: each step gathers whole columns for its paths
        static = np.asfortranarray(
            X0.drop(columns=[c for c in STATE if c in X0.columns]).to_numpy(dtype=float)
        )
        static_cols = [c for c in self.columns_ if c not in STATE]
        log_amount0 = state["log_amount"].to_numpy(dtype=float)
        # only the paths still inside the horizon are kept, compacted after every step (in
        # path order: the same draws, sums and counts as updating them in place)
        keep = np.flatnonzero(t <= H)
        cust, t, gap = idx[keep], t[keep], gap[keep]
        del idx
        k = k0[cust]
        age = state["age"].to_numpy(dtype=float)[cust] + gap
        sum_gap = sum_gap0[cust] + gap
        log_amount = log_amount0[cust]
        prev = gap
        delta = np.log1p(annual_discount) / 365.0
        for _ in range(max_steps):
            if cust.size == 0:
                break
            decay = np.exp(-delta * t)
            for h in horizons:
                hit = t <= h
                np.add.at(counts[h], cust[hit], 1.0)
                np.add.at(disc[h], cust[hit], decay[hit])
            k += 1
            Xn = self._next_state(k, sum_gap, prev, age, log_amount)
            an, bn = self._params(_StepColumns(Xn, static, static_cols, cust))
            g = _ppf(self.family_, rng.random(cust.size), an, bn)
            t = t + g
            age += g
            sum_gap += g
            prev = g
            inside = t <= H
            if not inside.all():
                cust, t, k, age = cust[inside], t[inside], k[inside], age[inside]
                sum_gap, prev, log_amount = sum_gap[inside], prev[inside], log_amount[inside]
        for h in horizons:
            out[f"count_{h}"] = counts[h] / max(n_sims, 1)
            out[f"disc_{h}"] = disc[h] / max(n_sims, 1)
        return out
