"""Survival churn and customer lifetime value (stage 3)."""

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

__all__ = [
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
