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
    "log_k": "log of the number of purchases",
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
    "days_since": "days since",
    "n_b": "times bought",
    "n_v": "times viewed",
    "n_c": "times carted",
}

#: prefixes of generated feature names, spelt out
PREFIXES: dict[str, str] = {
    "cov_": "",
    "cc_": "category: ",
    "ci_": "item: ",
    "c_": "customer: ",
    "i_": "item: ",
    "x_": "",
    "seg_": "segment: ",
}

_SPACES = re.compile(r"_+")


def label(name: object) -> str:
    """The plain-language name of a column, headline key or feature (``cc_n_b`` ->
    ``category: times bought``); unknown names keep their words, underscores as spaces."""
    text = str(name)
    if text in GLOSSARY:
        return GLOSSARY[text]
    for prefix, words in PREFIXES.items():
        if text.startswith(prefix) and len(text) > len(prefix):
            rest = text[len(prefix) :]
            return words + GLOSSARY.get(rest, _SPACES.sub(" ", rest).strip())
    return _SPACES.sub(" ", text).strip() if "_" in text else text


def relabel(names, extra: dict[str, str] | None = None) -> list[str]:
    """:func:`label` of each name, with ``extra`` taking precedence."""
    extra = extra or {}
    return [extra.get(str(n), label(n)) for n in names]
