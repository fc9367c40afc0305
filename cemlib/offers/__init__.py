"""Next offers: candidates from several sources re-ranked by LightGBM LambdaRank, baselines,
ranking metrics split repeat/new, SHAP reason codes in plain words, and consent-aware channels."""

from __future__ import annotations

import datetime as dt
from typing import Any

from cemlib import DEFAULT_SEED
from cemlib.contract import StageResult, run_declared
from cemlib.offers.baselines import (
    BASELINES,
    all_baselines,
    global_popularity,
    own_most_frequent,
    personal_then_popular,
    repurchase_cycle,
    tifu_knn,
)
from cemlib.offers.candidates import SOURCES, CandidateConfig
from cemlib.offers.data import prepare_events, prepare_items, prepare_transactions, read_table
from cemlib.offers.metrics import METRICS, candidate_recall, evaluate
from cemlib.offers.model import NextOfferModel
from cemlib.offers.snapshot import Windows

__all__ = [
    "run",
    "BASELINES",
    "METRICS",
    "SOURCES",
    "CandidateConfig",
    "NextOfferModel",
    "Windows",
    "all_baselines",
    "candidate_recall",
    "evaluate",
    "global_popularity",
    "own_most_frequent",
    "personal_then_popular",
    "prepare_events",
    "prepare_items",
    "prepare_transactions",
    "read_table",
    "repurchase_cycle",
    "tifu_knn",
]


def run(
    wh, *, run_id: str, as_of: str | dt.date, seed: int = DEFAULT_SEED,
    use_truth_profiles: bool = False, k: int = 10, **params: Any,
) -> StageResult:  # fmt: skip
    """Rank ``k`` next offers per profile from ``clean.*`` keyed by ``identity.map`` and write
    ``marts.next_offers`` (the stage 04 contract).

    ``use_truth_profiles`` keys customers by the synthetic truth instead, for evaluation.
    ``params`` are ``cemlib.offers.stage.run_stage``'s options (``granularity``,
    ``horizon_days``, ``write``, ``progress``, ``publish``, ``exclude``, ``new_items``); ``detail`` is its ``OfferStageResult``.
    ``wh`` a :class:`~cemlib.engine.Lake`: the stage runs on Spark (:mod:`cemlib.offers.sparkstage`).
    """
    from cemlib.engine import Lake
    from cemlib.offers import report
    from cemlib.offers.exclude import read_exclusions
    from cemlib.offers.stage import run_stage

    key = "person" if use_truth_profiles else "profile"
    if isinstance(wh, Lake):  # engine spark
        from cemlib.errors import InputError
        from cemlib.offers.sparkstage import run_on_spark

        if params.pop("new_items", False):
            raise InputError("new_items: not with the Spark engine (run the stage on DuckDB)")

        return run_on_spark(wh, run_id=run_id, as_of=as_of, seed=seed, k=k, key=key, **params)
    instead = {"identity.map": "truth.record_person"} if use_truth_profiles else None

    def call():
        if params.get("exclude") is not None:  # a missing exclusion file fails before the fit
            params["exclude"] = read_exclusions(params["exclude"])
        return run_stage(wh, as_of, run_id=run_id, k=k, key=key, seed=seed, **params)

    def headlines(result):
        return report.headlines(result, k)

    return run_declared("offers", wh, call, headlines, run_id=run_id, as_of=as_of,
                        instead=instead)  # fmt: skip
