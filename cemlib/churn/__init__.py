"""Survival churn and customer lifetime value (stage 3)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from cemlib import DEFAULT_SEED
from cemlib.churn.blend import Blend
from cemlib.churn.evaluate import concordance_vs_dropout, evaluate_predictions
from cemlib.churn.features import customer_features, purchase_occasions, validate_transactions
from cemlib.churn.gaps import GapModel, spell_table
from cemlib.churn.models import ChurnModel, risk_segment
from cemlib.churn.subscriptions import SubscriptionChurnModel, subscription_table
from cemlib.churn.survival import (
    CoxExplainer,
    acceleration_factors,
    drivers_in_words,
    km_by,
    lifetime_table,
)
from cemlib.churn.views import BoosterView, DropoutView, SpellView
from cemlib.contract import StageResult, run_declared

__all__ = [
    "run",
    "Blend",
    "BoosterView",
    "ChurnModel",
    "CoxExplainer",
    "DropoutView",
    "GapModel",
    "SpellView",
    "SubscriptionChurnModel",
    "acceleration_factors",
    "concordance_vs_dropout",
    "customer_features",
    "drivers_in_words",
    "evaluate_predictions",
    "km_by",
    "lifetime_table",
    "purchase_occasions",
    "risk_segment",
    "spell_table",
    "subscription_table",
    "validate_transactions",
]


def run(
    wh, *, run_id: str, as_of: str | dt.date, seed: int = DEFAULT_SEED,
    use_truth_profiles: bool = False, **params: Any,
) -> StageResult:  # fmt: skip
    """Fit the churn model on ``clean.*`` purchases keyed by ``identity.map`` and write
    ``marts.churn_scores`` (the stage 03 contract).

    ``use_truth_profiles`` keys customers by the synthetic truth (``truth.record_person``)
    instead, for evaluation. ``params`` are ``cemlib.churn.stage.run_stage``'s options
    (``horizons``, ``annual_discount``, ``write``); ``detail`` is its ``ChurnStageResult``.
    ``wh`` a :class:`~cemlib.engine.Lake`: the stage runs on Spark
    (:mod:`cemlib.churn.sparkstage`).
    """
    from cemlib.churn.fitwarnings import held_back
    from cemlib.engine import Lake

    # lifelines' warnings name server paths and speak to a statistician: counted on the
    # result (``detail.fit_warnings``), for one plain sentence in the report
    with held_back() as fit_warnings:
        if isinstance(wh, Lake):  # engine spark
            from cemlib.churn.sparkstage import run_on_spark

            result = run_on_spark(wh, run_id=run_id, as_of=as_of, seed=seed,
                                  use_truth_profiles=use_truth_profiles, spark=wh.spark(),
                                  **params)  # fmt: skip
        else:
            from cemlib.churn import report
            from cemlib.churn.stage import run_stage

            key = "person" if use_truth_profiles else "profile"
            instead = {"identity.map": "truth.record_person"} if use_truth_profiles else None

            def call():
                return run_stage(wh, as_of, run_id=run_id, key=key, seed=seed, **params)

            result = run_declared("churn", wh, call, report.headlines, run_id=run_id,
                                  as_of=as_of, instead=instead)  # fmt: skip
    if hasattr(result.detail, "fit_warnings"):
        result.detail.fit_warnings = fit_warnings
    return result
