"""Next offers: candidates from several sources re-ranked by LightGBM LambdaRank, baselines,
ranking metrics split repeat/new, SHAP reason codes in plain words, and consent-aware channels."""

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
