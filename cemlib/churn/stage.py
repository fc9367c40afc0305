"""The warehouse stage: profile transactions in, ``marts.churn_scores`` out.

Reads :func:`cemlib.marts.profile_transactions` and :func:`cemlib.marts.profile_covariates`
as of ``as_of``, fits :class:`~cemlib.churn.models.ChurnModel`, writes one row per customer to
``marts.churn_scores`` and, on the synthetic world, scores the result against the truth.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cemlib import DEFAULT_SEED
from cemlib.churn.baseline import graded_against_recency
from cemlib.churn.beside import Beside
from cemlib.churn.beside import workers as beside_workers
from cemlib.churn.evaluate import (
    calibration_table,
    concordance_vs_dropout,
    evaluate_predictions,
    outcomes_of_occasions,
)
from cemlib.churn.features import purchase_occasions, return_rows, validate_transactions
from cemlib.churn.models import ChurnModel, risk_segment, risk_thresholds_from
from cemlib.churn.survival import (
    CoxExplainer,
    inactivity_threshold,
    lifetime_table,
)
from cemlib.frames import fetch_objects
from cemlib.marts import profile_covariates, profile_transactions, unattributed_orders
from cemlib.marts.closed import crm_closure
from cemlib.warehouse import Warehouse

COX_COVARIATES = (
    "log_monetary",
    "online_share_tx",
    "cov_n_tickets",
    "cov_mean_csat",
    "cov_low_csat_tickets",
    "cov_loyalty_member",
    "cov_web_days",
)


@dataclass
class ChurnStageResult:
    """What the churn stage computed: the fitted model, its scores, the transactions and
    covariates it read, the lifetimes behind the Kaplan-Meier curves, the Cox drivers (None when
    they could not be fitted), and its figures against what followed (``truth``).
    """

    model: ChurnModel
    scores: pd.DataFrame
    transactions: pd.DataFrame
    covariates: pd.DataFrame
    lifetimes: pd.DataFrame
    inactivity_days: int
    cox: CoxExplainer | None
    truth: dict = field(default_factory=dict)
    #: the lifelines warnings of the fits, counted (:func:`cemlib.churn.fitwarnings.held_back`;
    #: set by :func:`cemlib.churn.run`)
    fit_warnings: Any = None
    #: profiles whose every CRM record closed by ``as_of`` (``crm_contacts.closed_at``): gone
    #: already, left out of the scores and the risk list; None when the CRM has no ``closed_at``
    already_closed: int | None = None
    #: the previous run's forecast graded against recency on the purchases realized since
    #: (:func:`graded_since_last_run`); None without one
    graded: dict | None = None


def _truth_person(wh: Warehouse, key: str) -> pd.DataFrame | None:
    """customer_id -> person_id (for profiles: the person most of its records belong to)."""
    if not wh.has_table("truth", "record_person"):
        return None
    if key == "person":
        return None
    return fetch_objects(
        wh.con,
        """
        SELECT customer_id, person_id FROM (
          SELECT CAST(m.profile_id AS VARCHAR) AS customer_id, t.person_id,
                 row_number() OVER (PARTITION BY m.profile_id ORDER BY count(*) DESC,
                                    t.person_id) AS r
          FROM identity.map m JOIN truth.record_person t
            ON t.source_table = m.source_table
           AND CAST(t.record_id AS VARCHAR) = CAST(m.record_id AS VARCHAR)
          GROUP BY m.profile_id, t.person_id) WHERE r = 1
        """,
    )


def evaluate_against_truth(
    wh: Warehouse,
    scores: pd.DataFrame,
    as_of: str | dt.date,
    horizon: int,
    key: str,
    curves=None,
) -> dict:
    """Figures against the synthetic truth: future purchases (``truth.future_orders``) and
    true dropout dates (``truth.people``); empty without ``truth.*``."""
    if not (wh.has_table("truth", "future_orders") and wh.has_table("truth", "people")):
        return {}
    # only the columns used, text shared per distinct value (not the whole truth tables)
    people = fetch_objects(wh.con, "SELECT person_id, true_dropout_date FROM truth.people")
    fut = fetch_objects(wh.con, "SELECT person_id, ts, amount FROM truth.future_orders")
    pred = scores.copy()
    pred["_orig"] = pred["customer_id"]
    if key != "person":
        link = _truth_person(wh, key)
        pred = pred.merge(link, on="customer_id", how="inner")
        # several profiles of one person: keep the one with most purchases
        pred = pred.sort_values("n_purchases", ascending=False).drop_duplicates("person_id")
        pred["customer_id"] = pred["person_id"].astype(str)
    fut = fut.rename(columns={"person_id": "customer_id"})
    fut["customer_id"] = fut["customer_id"].astype(str)
    if curves is not None:
        curves = curves.reindex(pred["_orig"]).set_axis(pred["customer_id"].to_numpy())
    fut_occ = purchase_occasions(validate_transactions(fut))  # once for every horizon
    customers = pd.Index(pred["customer_id"])
    res = evaluate_predictions(
        pred.drop(columns="_orig"), fut, pd.Timestamp(as_of), horizon, curves,
        outcomes=outcomes_of_occasions(fut_occ, pd.Timestamp(as_of), horizon, customers),
    )  # fmt: skip
    cal = {}
    for col in [c for c in pred.columns if c.startswith("p_purchase_")]:
        h = int(col.rsplit("_", 1)[1])
        out = outcomes_of_occasions(fut_occ, pd.Timestamp(as_of), h, customers)
        cal[h] = calibration_table(pred[col].to_numpy(), (out["n"] > 0).to_numpy(float))
    res["calibration"] = cal
    res["dropout_concordance"] = concordance_vs_dropout(pred, people, as_of)
    res["dropout_concordance_alive"] = concordance_vs_dropout(pred, people, as_of, alive_only=True)
    return res


def holdout_size(
    bought: np.ndarray,
    pilot: np.ndarray,
    counts: np.ndarray,
    *,
    auc_se: float = 0.0025,
    total_se: float = 0.005,
) -> int:
    """Customers the held-out refit needs for its figures to be as precise as asked.

    Two figures of the held-out year carry the report's verdict: the AUC (held against the naive
    baselines, a margin below 0.01 is called out) and the total error (more than 10 % is called
    out). From what is known before any fit, per customer of the population: ``bought``
    (a purchase in the window), ``pilot`` (a score that needs no fit, the recency at the cut)
    and ``counts`` (purchases in the window), the smallest seeded sample with

    - the AUC's standard error (Hanley & McNeil 1982, at the pilot's AUC and the population's
      share of buyers) at most ``auc_se``. A model that ranks better than the pilot has a smaller
      error than planned;
    - the relative standard error of the total at most ``total_se``: the spread of the counts
      around their mean (the error of a forecast that knows nothing but the mean; a model's
      errors spread less), with the finite-population correction. Half a point, not the one
      point the verdict's 10 % would suggest: the refit on a sample has a variance of its own
      that this plan does not count, and at 200,000 people a 1 % plan (35,329 customers)
      moved the held-out total error by 2.4 points from the old 100,000-customer sample's
      over three seeds, where 0.5 % (54,748) moved it by 1.2 (docs/scale.md).

    Returns the population's size when no smaller sample is enough."""
    y = np.asarray(bought, dtype=bool)
    n = len(y)
    share = y.mean() if n else 0.0
    if n == 0 or share in (0.0, 1.0):
        return n
    from sklearn.metrics import roc_auc_score

    A = float(np.clip(roc_auc_score(y, pilot), 0.5, 1 - 1e-6))
    q1, q2 = A / (2 - A), 2 * A * A / (1 + A)
    # var(AUC) = [A(1-A) + (n1-1)(q1-A^2) + (n2-1)(q2-A^2)] / (n1 n2) with n1 = share m and
    # n2 = (1 - share) m buyers and non-buyers: var = auc_se^2 is a quadratic in m
    lin = share * (q1 - A * A) + (1 - share) * (q2 - A * A)
    const = A * (1 - A) - (q1 - A * A) - (q2 - A * A)
    quad = share * (1 - share) * auc_se**2
    m_auc = (lin + np.sqrt(lin * lin + 4 * quad * const)) / (2 * quad)
    c = np.asarray(counts, dtype=float)
    cv = c.std() / c.mean() if c.mean() > 0 else 0.0
    m0 = (cv / total_se) ** 2
    m_total = m0 / (1 + m0 / n)
    return int(min(n, np.ceil(max(m_auc, m_total))))


def holdout_evaluation(
    wh: Warehouse,
    transactions: pd.DataFrame,
    as_of: str | dt.date,
    horizons: tuple[int, ...],
    *,
    key: str = "profile",
    annual_discount: float = 0.1,
    seed: int = DEFAULT_SEED,
    max_customers: int | None = None,
    return_model: bool = False,
    workers: int | None = None,
    covariates_at=None,
    unattributed=None,
) -> dict | tuple[dict, ChurnModel | None]:
    """The model refitted at ``as_of - H`` and scored on the same customers' own purchases in
    ``(as_of - H, as_of]`` (``H`` the main horizon): customers keyed as in the run, so the
    actual counts exactly the purchases the model can predict for.

    Besides :func:`~cemlib.churn.evaluate.evaluate_predictions`' figures: ``holdout_start`` /
    ``holdout_end``, ``new_customer_purchases`` (occasions in the window of customers whose
    first purchase falls in it: nothing to predict from) and ``unattributable_orders``
    (orders and receipts in the window that belong to no customer under ``key``, e.g. anonymous
    till receipts). Empty when the history is shorter than ``H`` + 60 days.

    The refit and its scores use a seeded sample of the customers known at the cut, as large
    as :func:`holdout_size` finds the figures need (``max_customers`` caps it;
    ``holdout_customers`` of ``holdout_customers_of``, and ``holdout_auc_se``, the AUC's
    standard error at the size used): the figures are ratios, rank statistics and totals of
    the sample, and a larger one narrows their sampling spread. The refit's own variance (its
    seed, the sample it is fitted on) is not in that plan: at 200,000 people the total error
    moved by 1-3 points between seeds at every sample size tried (docs/scale.md).
    ``return_model=True`` also returns the refitted model (``None`` when empty); ``workers``
    is the refit's (:class:`~cemlib.churn.models.ChurnModel`). ``covariates_at(cut)`` and
    ``unattributed(start, end)`` replace the DuckDB marts' covariates and unattributed orders
    (the Spark engine gives its own, :mod:`cemlib.churn.sparkstage`)."""
    H = max(horizons)
    as_of = pd.Timestamp(as_of).normalize()
    cut = as_of - pd.Timedelta(days=H)
    inside = transactions["ts"] < as_of + pd.Timedelta(days=1)
    # no copy of the whole frame when every line is inside (the run's own read, as of as_of)
    tx = transactions if inside.all() else transactions[inside]
    if tx.empty or (cut - tx["ts"].min()).days < 60:
        return ({}, None) if return_model else {}
    ts_before = tx["ts"].where(tx["ts"] < cut + pd.Timedelta(days=1))
    returned = return_rows(tx)
    if returned is not None:  # a return is no purchase: the last purchase is the last sale's
        ts_before = ts_before.mask(returned)
    last = ts_before.groupby(tx["customer_id"], sort=True).max().dropna()
    del ts_before
    # the purchase occasions of every customer, once: the sizing, the figures and the
    # calibration per horizon all read the held-out window from them
    occ = purchase_occasions(validate_transactions(tx))
    every = outcomes_of_occasions(occ, cut, H, pd.Index(tx["customer_id"].unique()))
    window = {h: outcomes_of_occasions(occ, cut, h, last.index) for h in {*horizons, H}}
    del occ
    known = window[H]
    size = holdout_size(
        (known["n"] > 0).to_numpy(), last.to_numpy(dtype="datetime64[ns]").astype(float),
        known["n"].to_numpy(),
    )  # fmt: skip
    if max_customers is not None:
        size = min(size, max_customers)
    fit_tx = tx
    if size < len(last):
        rng = np.random.default_rng(seed)
        sample = np.sort(rng.choice(last.index.to_numpy(), size, replace=False))
        fit_tx = tx[tx["customer_id"].isin(sample)]
    if covariates_at is None:
        cov = profile_covariates(wh, cut, key=key).drop(columns=["web_events"])
    else:
        cov = covariates_at(cut).drop(columns=["web_events"])
    model = ChurnModel(
        horizons=horizons, annual_discount=annual_discount, seed=seed, workers=workers
    )
    model.fit(fit_tx, as_of=cut, covariates=cov, source="marts.profile_transactions")
    pred = model.predict()
    curves = model.curves(np.arange(1, H + 1))
    scored = pd.Index(pred["customer_id"])
    res = evaluate_predictions(pred, fit_tx, cut, H, curves, outcomes=window[H].reindex(scored))
    del curves
    res["calibration"] = {}
    for col in [c for c in pred.columns if c.startswith("p_purchase_")]:
        h = int(col.rsplit("_", 1)[1])
        out = window[h].reindex(scored)
        res["calibration"][h] = calibration_table(
            pred[col].to_numpy(), (out["n"] > 0).to_numpy(float)
        )
    res["new_customer_purchases"] = float(every.loc[~every.index.isin(last.index), "n"].sum())
    if unattributed is None:
        unattributed = functools.partial(unattributed_orders, wh, key=key)
    res["unattributable_orders"] = float(unattributed(cut + pd.Timedelta(days=1), as_of))
    res["holdout_customers"] = len(pred)
    res["holdout_customers_of"] = len(last)
    res["holdout_auc_se"] = auc_standard_error(res["auc"], res["customers"], known["n"] > 0)
    res["holdout_start"] = str((cut + pd.Timedelta(days=1)).date())
    res["holdout_end"] = str(as_of.date())
    res["evaluation"] = "holdout"
    return (res, model) if return_model else res


def auc_standard_error(auc: float, customers: float, bought: pd.Series) -> float:
    """Hanley & McNeil's standard error of ``auc`` over ``customers`` with the share of buyers
    of ``bought``."""
    share = float(np.mean(bought))
    n1, n2 = customers * share, customers * (1 - share)
    if not np.isfinite(auc) or n1 < 1 or n2 < 1:
        return float("nan")
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (n1 - 1) * (q1 - auc**2) + (n2 - 1) * (q2 - auc**2)) / (n1 * n2)
    return float(np.sqrt(max(var, 0.0)))


def fit_at_as_of(tx, as_of, cov, *, horizons, annual_discount, seed, choice, workers):
    """The churn model fitted on ``tx`` up to ``as_of`` with the covariates ``cov`` and the
    family ``choice`` of the held-out refit, its customers' lifetimes, the inactivity threshold
    that defines them and the covariates of the Cox model of them: what both engines' stages
    fit (the Spark one on its sample)."""
    model = ChurnModel(
        horizons=horizons, annual_discount=annual_discount, seed=seed, family_choice=choice,
        workers=workers,
    )  # fmt: skip
    model.fit(tx, as_of=as_of, covariates=cov, source="marts.profile_transactions")
    tau = inactivity_threshold(model.occasions_, as_of=model.as_of_)
    life = lifetime_table(model.features_, as_of, tau)
    cols = [c for c in COX_COVARIATES if c in life.columns]
    cols += [c for c in model.covariate_columns_ if c.startswith("cov_region=")][:5]
    return model, life, tau, cols


def run_stage(
    wh: Warehouse,
    as_of: str | dt.date,
    *,
    run_id: str = "dev",
    horizons: tuple[int, ...] = (90, 180, 365),
    annual_discount: float = 0.1,
    key: str = "profile",
    seed: int = DEFAULT_SEED,
    write: bool = True,
    workers: int | None = None,
) -> ChurnStageResult:
    """Fit, score and (``write=True``) replace ``marts.churn_scores``.

    ``workers``: 2 runs the parts that need no other part in a thread beside the rest (each
    fit's BG/NBDs and backtest booster, :mod:`cemlib.churn.beside`; the Cox model beside the
    evaluation), 1 everything in turn; ``None``: :func:`cemlib.churn.beside.workers` for the
    stage's input rows. The results are the same either way."""
    from cemlib.budget import configure_warehouse

    configure_warehouse(wh)  # DuckDB spills past its share of the stage's memory budget
    tx = profile_transactions(wh, as_of, key=key)
    if workers is None:
        workers = beside_workers(len(tx))
    H = max(horizons)
    holdout, refit = {}, None
    if key != "person":
        # a profile's future can only be read from the profile's own records: the synthetic
        # future belongs to people and counts purchases that reach no profile (anonymous
        # receipts), so the count figures come from the profile-keyed holdout instead
        holdout, refit = holdout_evaluation(
            wh, tx, as_of, tuple(horizons), key=key, annual_discount=annual_discount,
            seed=seed, return_model=True, workers=workers,
        )  # fmt: skip
    # The held-out refit (first) chose the AFT family by cross-validated concordance on the
    # same customers' spells up to as_of - H; the fit at as_of takes that choice instead of
    # cross-validating the three families again. The choice is the data's (the best
    # concordance), the population is the same and a year of spells more rarely changes it;
    # the other way round (the held-out refit taking the choice made at as_of) would let the
    # held-out year's spells pick the model it is graded with.
    choice = refit.prob_model_.cv_concordance_ if refit is not None else None
    del refit
    cov = profile_covariates(wh, as_of, key=key).drop(columns=["web_events"])
    model, life, tau, cols = fit_at_as_of(
        tx, as_of, cov, horizons=horizons, annual_discount=annual_discount, seed=seed,
        choice=choice, workers=workers,
    )  # fmt: skip
    with Beside(workers) as beside:
        # the Cox model of the lifetimes (a sample of them) needs no score: it is fitted beside
        # the scores, the survival curves and the figures
        cox = None
        if life["lapsed"].sum() >= 20 and cols:
            cox = beside.submit(CoxExplainer(seed=seed).fit, life, cols)
        scores, gone = without_closed(wh, model.predict(), as_of, key, model=model)
        if write:
            wh.write_table("marts", "churn_scores", scores, run_id=run_id, as_of=as_of)
        curves = model.curves(np.arange(1, H + 1))
        truth = evaluate_against_truth(wh, scores, as_of, H, key, curves)
        del curves
        if cox is not None:
            cox = cox.result()
    if holdout:
        person = {f"person_future_{k}": v for k, v in truth.items() if k != "calibration"}
        drop = {k: truth[k] for k in truth if k.startswith("dropout_concordance")}
        truth = {**holdout, **drop, **person}
    elif truth and key == "person":
        truth["evaluation"] = "future"
        truth["unattributable_orders"] = 0.0
    return ChurnStageResult(
        model, scores, tx, cov, life, tau, cox, truth, already_closed=gone,
        graded=graded_since_last_run(wh, tx, as_of),
    )  # fmt: skip


def graded_since_last_run(wh: Warehouse, tx: pd.DataFrame, as_of) -> dict | None:
    """The forecast the monitor kept from an earlier run (``monitor.churn_forecast`` dated
    before ``as_of``) graded against recency on the purchases made since
    (:func:`cemlib.churn.baseline.graded_against_recency`); None without one."""
    if not wh.has_table("monitor", "churn_forecast"):
        return None
    f = wh.con.execute(
        "SELECT customer_id, p_purchase, _as_of FROM monitor.churn_forecast WHERE _as_of < ?",
        [pd.Timestamp(as_of).date()],
    ).df()
    if f.empty:
        return None
    since = pd.Timestamp(f["_as_of"].max())
    f = f[pd.to_datetime(f["_as_of"]) == since]
    return graded_against_recency(f, tx, since, as_of)


def without_closed(
    wh: Warehouse, scores: pd.DataFrame, as_of, key: str, *, model: ChurnModel | None = None
) -> tuple[pd.DataFrame, int | None]:
    """``scores`` without the customers who already left (every CRM record closed on or before
    ``as_of``, :func:`cemlib.marts.closed.crm_closure`) and how many they were; the scores as
    they are and None when ``crm_contacts`` has no ``closed_at``.

    With ``model`` whose risk cut-offs were chosen from the scores (``risk_thresholds`` None),
    they are chosen again from the customers kept, the population the segments label, and kept
    as the model's ``risk_thresholds_``."""
    closure = crm_closure(wh, as_of, key)
    if not len(closure):
        return scores, None
    gone = scores["customer_id"].astype(str).isin(closure.loc[closure["closed"], "customer_id"])
    kept = scores[~gone].reset_index(drop=True)
    if model is not None and model.risk_thresholds is None and gone.any() and len(kept):
        model.risk_thresholds_ = risk_thresholds_from(kept["p_purchase"].to_numpy())
        kept["risk_segment"] = risk_segment(kept["p_purchase"].to_numpy(), model.risk_thresholds_)
    return kept, int(gone.sum())
