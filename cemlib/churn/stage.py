"""The warehouse stage: profile transactions in, ``marts.churn_scores`` out.

Reads :func:`cemlib.marts.profile_transactions` and :func:`cemlib.marts.profile_covariates`
as of ``as_of``, fits :class:`~cemlib.churn.models.ChurnModel`, writes one row per customer to
``marts.churn_scores`` and, on the synthetic world, scores the result against the truth.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cemlib import DEFAULT_SEED
from cemlib.churn.evaluate import (
    calibration_table,
    concordance_vs_dropout,
    evaluate_predictions,
    future_outcomes,
)
from cemlib.churn.models import ChurnModel
from cemlib.churn.survival import (
    CoxExplainer,
    inactivity_threshold,
    lifetime_table,
)
from cemlib.frames import fetch_objects
from cemlib.marts import profile_covariates, profile_transactions, unattributed_orders
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
    curves: pd.DataFrame | None = None,
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
    res = evaluate_predictions(
        pred.drop(columns="_orig"), fut, pd.Timestamp(as_of), horizon, curves
    )
    cal = {}
    for col in [c for c in pred.columns if c.startswith("p_purchase_")]:
        h = int(col.rsplit("_", 1)[1])
        out = future_outcomes(fut, pd.Timestamp(as_of), h, pd.Index(pred["customer_id"]))
        cal[h] = calibration_table(pred[col].to_numpy(), (out["n"] > 0).to_numpy(float))
    res["calibration"] = cal
    res["dropout_concordance"] = concordance_vs_dropout(pred, people, as_of)
    res["dropout_concordance_alive"] = concordance_vs_dropout(pred, people, as_of, alive_only=True)
    return res


def holdout_evaluation(
    wh: Warehouse,
    transactions: pd.DataFrame,
    as_of: str | dt.date,
    horizons: tuple[int, ...],
    *,
    key: str = "profile",
    annual_discount: float = 0.1,
    seed: int = DEFAULT_SEED,
    max_customers: int | None = 100_000,
) -> dict:
    """The model refitted at ``as_of - H`` and scored on the same customers' own purchases in
    ``(as_of - H, as_of]`` (``H`` the main horizon): customers keyed as in the run, so the
    actual counts exactly the purchases the model can predict for.

    Besides :func:`~cemlib.churn.evaluate.evaluate_predictions`' figures: ``holdout_start`` /
    ``holdout_end``, ``new_customer_purchases`` (occasions in the window of customers whose
    first purchase falls in it: nothing to predict from) and ``unattributable_orders``
    (orders and receipts in the window that belong to no customer under ``key``, e.g. anonymous
    till receipts). Empty when the history is shorter than ``H`` + 60 days.

    Beyond ``max_customers`` customers the refit and its scores use a seeded sample of that
    many (``holdout_customers`` / ``holdout_customers_of``; the figures are ratios, rank
    statistics and totals of the sample): the second fit is half of the stage's time, and a
    hundred thousand customers measure it as well as a million."""
    H = max(horizons)
    as_of = pd.Timestamp(as_of).normalize()
    cut = as_of - pd.Timedelta(days=H)
    tx = transactions[transactions["ts"] < as_of + pd.Timedelta(days=1)]
    if tx.empty or (cut - tx["ts"].min()).days < 60:
        return {}
    every_customer = tx["customer_id"].unique()
    fit_tx = tx
    if max_customers is not None and len(every_customer) > max_customers:
        rng = np.random.default_rng(seed)
        sample = np.sort(rng.choice(np.sort(every_customer), max_customers, replace=False))
        fit_tx = tx[tx["customer_id"].isin(sample)]
    cov = profile_covariates(wh, cut, key=key).drop(columns=["web_events"])
    model = ChurnModel(horizons=horizons, annual_discount=annual_discount, seed=seed)
    model.fit(fit_tx, as_of=cut, covariates=cov, source="marts.profile_transactions")
    pred = model.predict()
    curves = model.survival_curves(np.arange(1, H + 1))
    res = evaluate_predictions(pred, fit_tx, cut, H, curves)
    res["calibration"] = {}
    for col in [c for c in pred.columns if c.startswith("p_purchase_")]:
        h = int(col.rsplit("_", 1)[1])
        out = future_outcomes(fit_tx, cut, h, pd.Index(pred["customer_id"]))
        res["calibration"][h] = calibration_table(
            pred[col].to_numpy(), (out["n"] > 0).to_numpy(float)
        )
    known = set(pred["customer_id"])
    if fit_tx is not tx:  # customers left out of the sample are known too, not new
        known = set(tx.loc[tx["ts"] < cut + pd.Timedelta(days=1), "customer_id"])
    every = future_outcomes(tx, cut, H, pd.Index(tx["customer_id"].unique()))
    res["new_customer_purchases"] = float(every.loc[~every.index.isin(known), "n"].sum())
    res["unattributable_orders"] = float(
        unattributed_orders(wh, cut + pd.Timedelta(days=1), as_of, key=key)
    )
    res["holdout_customers"] = int(fit_tx["customer_id"].nunique())
    res["holdout_customers_of"] = len(every_customer)
    res["holdout_start"] = str((cut + pd.Timedelta(days=1)).date())
    res["holdout_end"] = str(as_of.date())
    res["evaluation"] = "holdout"
    return res


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
) -> ChurnStageResult:
    """Fit, score and (``write=True``) replace ``marts.churn_scores``."""
    from cemlib.budget import configure_warehouse

    configure_warehouse(wh)  # DuckDB spills past its share of the stage's memory budget
    tx = profile_transactions(wh, as_of, key=key)
    cov = profile_covariates(wh, as_of, key=key).drop(columns=["web_events"])
    model = ChurnModel(horizons=horizons, annual_discount=annual_discount, seed=seed)
    model.fit(tx, as_of=as_of, covariates=cov, source="marts.profile_transactions")
    scores = model.predict()
    if write:
        wh.write_table("marts", "churn_scores", scores, run_id=run_id, as_of=as_of)
    tau = inactivity_threshold(model.occasions_)
    life = lifetime_table(model.features_, as_of, tau)
    cols = [c for c in COX_COVARIATES if c in life.columns]
    cols += [c for c in model.covariate_columns_ if c.startswith("cov_region=")][:5]
    cox = None
    if life["lapsed"].sum() >= 20 and cols:
        cox = CoxExplainer(seed=seed).fit(life, cols)
    H = max(horizons)
    curves = model.survival_curves(np.arange(1, H + 1))
    truth = evaluate_against_truth(wh, scores, as_of, H, key, curves)
    if key != "person":
        # a profile's future can only be read from the profile's own records: the synthetic
        # future belongs to people and counts purchases that reach no profile (anonymous
        # receipts), so the count figures come from the profile-keyed holdout instead
        holdout = holdout_evaluation(
            wh, tx, as_of, tuple(horizons), key=key, annual_discount=annual_discount, seed=seed
        )
        if holdout:
            person = {f"person_future_{k}": v for k, v in truth.items() if k != "calibration"}
            drop = {k: truth[k] for k in truth if k.startswith("dropout_concordance")}
            truth = {**holdout, **drop, **person}
    elif truth:
        truth["evaluation"] = "future"
        truth["unattributable_orders"] = 0.0
    return ChurnStageResult(model, scores, tx, cov, life, tau, cox, truth)
