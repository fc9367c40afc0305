"""Plain-language names for the columns, headline keys and model features a reviewer reads.

One glossary for every report: table headers, headline figures in the run index and SHAP
feature names all go through :func:`label`. A name not in the glossary is shown with its
underscores as spaces; prefixes of generated names (``cov_``, ``cc_``, ``ci_``) are spelt out.
"""

from __future__ import annotations

import re

GLOSSARY: dict[str, str] = {
    # collection
    "n_raw": "rows in raw",
    "n_staging": "rows in staging",
    "n_after_as_of": "rows after as_of",
    "first_date": "first date",
    "last_date": "last date",
    "p01_date": "1st percentile date",
    "p99_date": "99th percentile date",
    # monitor (trial 12 F9: 05's value at risk printed without its currency)
    "value at risk now": "value at risk now, ₽",
    "value at risk before": "value at risk before, ₽",
    "date_column": "date column",
    "n_values": "values",
    "n_changed": "rewritten",
    "n_unparsed": "not parseable",
    "share_changed": "share rewritten",
    "share_unparsed": "share not parseable",
    "share_present": "share present",
    "share_valid": "share valid",
    "n_present": "present",
    "n_valid": "valid",
    # quality
    "rows_in": "rows in",
    "quarantined_pct": "quarantined",
    "rows_quarantined": "rows quarantined",
    "pass_rate": "pass rate",
    "mostly": "threshold (mostly)",
    "unexpected_count": "rows failing",
    "element_count": "rows checked",
    "rows_change_pct": "change in rows",
    "share_passed": "checks passed",
    "share_passed_previous": "checks passed (previous run)",
    # churn
    "p_purchase": "probability of a purchase",
    "expected_purchases": "expected purchases",
    "expected_revenue": "expected revenue, ₽",
    "expected_margin": "expected margin, ₽",
    "clv": "customer lifetime value, ₽",
    "risk_segment": "risk",
    "monetary": "spent so far, ₽",
    "frequency": "repeat purchases",
    "recency": "days between first and last purchase",
    "hazard_ratio": "hazard ratio",
    "acceleration_factor": "acceleration factor",
    "log_k": "purchases so far (log)",
    "log_age": "days since the first purchase (log)",
    "log_monetary": "spent so far (log)",
    "log_amount": "last purchase amount (log)",
    "log_prev_gap": "last gap between purchases (log)",
    "log_mean_gap": "mean gap between purchases (log)",
    "web_events_90d": "web events in the last 90 days",
    "web_days": "days with web visits",
    "n_tickets": "support tickets",
    "low_csat_tickets": "tickets with low satisfaction",
    "mean_csat_missing": "no satisfaction score",
    "online_share_tx": "share of purchases online",
    "online_share": "share of purchases online",
    "loyalty_member": "loyalty member",
    "support_tickets": "support tickets",
    "mean_csat": "mean support satisfaction",
    "n_categories": "categories bought",
    "mean_basket": "mean basket, ₽",
    "days_since_last": "days since the last purchase",
    # offers
    "ndcg@10": "NDCG@10",
    "item_name": "item",
    "profile_id": "profile (pseudonymous)",
    # next-offer model features (SHAP), by the candidate item and its category
    "src_repeat": "candidate: bought before",
    "src_cooc": "candidate: bought together with a past item",
    "src_after": "candidate: bought next after a past item",
    "src_browse": "candidate: browsed",
    "src_segment": "candidate: popular in the customer's segment",
    "src_trend": "candidate: trending",
    "src_popular": "candidate: best seller",
    "ci_n_b": "times the customer bought the item",
    "ci_n_b30": "times bought the item, last 30 days",
    "ci_n_b90": "times bought the item, last 90 days",
    "ci_share": "share of the customer's baskets with the item",
    "ci_days_since": "days since the customer bought the item",
    "ci_gap": "customer's usual days between buying the item",
    "ci_due": "share of the usual interval passed (item)",
    "cc_n_b": "times the customer bought the category",
    "cc_n_b30": "times bought the category, last 30 days",
    "cc_share": "share of the customer's baskets with the category",
    "cc_days_since": "days since the customer bought the category",
    "it_n_cust": "customers who bought the item",
    "it_pop_rank": "item's best-seller rank",
    "it_n_recent": "item's baskets in the last 4 weeks",
    "it_recent_rank": "item's rank in the last 4 weeks",
    "it_trend": "item's sales trend (last 4 weeks)",
    "it_repeat_rate": "share of the item's buyers who buy again",
    "it_season": "item sold at this time last year",
    "cooc_sum": "bought together with past items (sum)",
    "cooc_max": "bought together with a past item (strongest)",
    "after_sum": "bought next after past items (sum)",
    "after_max": "bought next after a past item (strongest)",
    "seg_share": "item's share in the customer's segment",
    "seg_rank": "item's rank in the customer's segment",
    "price_ratio": "price against the customer's usual items",
    "br_item_7d": "views of the item, last 7 days",
    "br_item_30d": "views of the item, last 30 days",
    "br_item_days_since": "days since the customer viewed the item",
    "br_cat_7d": "views of the category, last 7 days",
    "br_cat_30d": "views of the category, last 30 days",
    "br_cat_days_since": "days since the customer viewed the category",
    "ci_qty": "quantity of the item the customer bought",
    "cu_n_baskets": "customer's baskets",
    "cu_days_since": "days since the customer's last basket",
    "cu_n_items": "distinct items the customer bought",
    "cu_tenure": "days since the customer's first basket",
    "cu_n_b30": "customer's baskets, last 30 days",
    "cu_spend": "customer's spend, ₽",
    "days_since": "days since",
}

#: prefixes of generated feature names, spelt out
PREFIXES: dict[str, str] = {
    "cov_": "",
    "cx_": "customer: ",
    "cu_": "customer: ",
    "cc_": "category: ",
    "ci_": "item: ",
    "it_": "item: ",
    "seg_": "segment: ",
}

_SPACES = re.compile(r"_+")


#: forecasts over a horizon, named ``<forecast>_<days>`` in the churn scores
_HORIZON = re.compile(r"(p_purchase|expected_purchases|expected_revenue|expected_margin)_(\d+)")


def label(name: object) -> str:
    """The plain-language name of a column, headline key or feature (``cc_n_b`` ->
    ``category: times bought``); unknown names keep their words, underscores as spaces."""
    text = str(name)
    if "=" in text:  # a one-hot column: ``cov_region=Москва`` -> ``region: Москва``
        column, _, value = text.partition("=")
        return f"{label(column)}: {value}"
    if text in GLOSSARY:
        return GLOSSARY[text]
    horizon = _HORIZON.fullmatch(text)
    if horizon:  # ``p_purchase_30``: the forecast over 30 days
        words, comma, unit = GLOSSARY[horizon.group(1)].partition(", ")
        return f"{words} in {int(horizon.group(2))} days{comma}{unit}"
    for prefix, words in PREFIXES.items():
        if text.startswith(prefix) and len(text) > len(prefix):
            rest = text[len(prefix) :]
            return words + GLOSSARY.get(rest, _SPACES.sub(" ", rest).strip())
    return _SPACES.sub(" ", text).strip() if "_" in text else text


def relabel(names, extra: dict[str, str] | None = None) -> list[str]:
    """:func:`label` of each name, with ``extra`` taking precedence."""
    extra = extra or {}
    return [extra.get(str(n), label(n)) for n in names]
