"""SHAP reason codes: why an item is offered, in plain words.

For each offer the features that pushed its score up most (exact TreeSHAP values of the LightGBM
ranker: per-tree tables of :mod:`cemlib.offers.treeshap`, or LightGBM's ``pred_contrib=True``)
are turned into short phrases using the feature's value: "bought 3 times in the last 90 days",
"browsed Headphones this week", "often bought together with Milk". Customer-level features
(activity, churn risk) move all of a customer's items alike, so they never serve as a reason.
"""

from __future__ import annotations

from collections.abc import Callable

import lightgbm as lgb
import numpy as np
import pandas as pd
import shap

from cemlib.offers.treeshap import ShapTables

# features that describe the customer only, not the (customer, item) pair
_CUSTOMER_LEVEL = ("cu_", "cx_")


def _n(v: pd.Series) -> pd.Series:
    return v.fillna(0).round().astype(int)


def _per_value(n: pd.Series, word: Callable[[int], str]) -> pd.Series:
    """``n.map(word)`` with ``word`` called once per distinct value (offers repeat counts)."""
    uniq, inverse = np.unique(n.to_numpy(), return_inverse=True)
    words = np.array([word(int(x)) for x in uniq], dtype=object)
    return pd.Series(words[inverse.reshape(-1)], index=n.index, dtype=object)


def _times(v: pd.Series) -> pd.Series:
    return _per_value(_n(v), lambda x: "once" if x == 1 else f"{x} times")


def _days(v: pd.Series) -> pd.Series:
    return _per_value(
        _n(v), lambda x: "today" if x == 0 else ("yesterday" if x == 1 else f"{x} days ago")
    )


def _ranked(v: pd.Series, ranked: pd.Series, unranked: pd.Series | str) -> pd.Series:
    """``ranked`` where the rank is 1 or more, else ``unranked`` (a missing rank is no "#0")."""
    return ranked.where(_n(v) >= 1, unranked)


def _trend(v: pd.Series) -> pd.Series:
    """The phrase "sales up N% in the last 4 weeks" where sales rose by 1% or more; none otherwise
    ("sales up 0%" is no reason)."""
    pct = ((v.astype(float) - 1) * 100).round()
    up = pct >= 1
    text = "sales up " + pct.where(up, 0).astype(int).astype(str) + "% in the last 4 weeks"
    return text.where(up, "")


def _due(v: pd.Series) -> pd.Series:
    """ "due again: 80% of the usual interval has passed" up to twice the interval, then "due
    again: 3 times the usual interval has passed" (not "1209% of the usual interval")."""
    share = v.astype(float).fillna(0)
    pct = "due again: " + (share * 100).round().astype(int).astype(str) + "% of the usual interval"
    times = "due again: " + _times(share.round()) + " the usual interval"
    return pct.where(share < 2, times) + " has passed"


def _templates(cat: pd.Series, anchor_cooc: pd.Series, anchor_after: pd.Series, seg: pd.Series):
    """feature -> function(values, rows) -> phrases (``rows`` selects the matching offers)."""
    return {
        **_source_templates(anchor_cooc, anchor_after, seg),
        **_customer_templates(cat),
        **_item_templates(anchor_cooc, anchor_after, seg),
        **_browse_templates(cat),
    }


def _source_templates(anchor_cooc: pd.Series, anchor_after: pd.Series, seg: pd.Series):
    """Phrases of the candidate sources."""
    return {
        "src_repeat": lambda v, r: pd.Series("bought before", index=r),
        "src_cooc": lambda v, r: "goes with " + anchor_cooc[r],
        "src_after": lambda v, r: "often bought next after " + anchor_after[r],
        "src_browse": lambda v, r: "matches recent browsing",
        "src_segment": lambda v, r: "popular with customers who like " + seg[r],
        "src_trend": lambda v, r: pd.Series("selling well right now", index=r),
        "src_popular": lambda v, r: pd.Series("one of the best sellers", index=r),
    }


def _customer_templates(cat: pd.Series):
    """Phrases of the customer's purchases of the item and of its category."""
    return {
        "ci_n_b": lambda v, r: "bought " + _times(v) + " before",
        "ci_n_b30": lambda v, r: "bought " + _times(v) + " in the last 30 days",
        "ci_n_b90": lambda v, r: "bought " + _times(v) + " in the last 90 days",
        "ci_share": lambda v, r: (
            "bought in " + (v * 100).round().astype(int).astype(str) + "% of your baskets"
        ),
        "ci_days_since": lambda v, r: "last bought " + _days(v),
        "ci_gap": lambda v, r: "usually bought every " + _n(v).astype(str) + " days",
        "ci_due": lambda v, r: _due(v),
        "cu_repeat_share": lambda v, r: (
            (v * 100).round().fillna(0).astype(int).astype(str)
            + "% of your purchases are re-orders"
        ),
        "cc_n_b": lambda v, r: "buys " + cat[r] + " regularly (" + _times(v) + ")",
        "cc_n_b30": lambda v, r: "bought " + cat[r] + " " + _times(v) + " in the last 30 days",
        "cc_share": lambda v, r: (
            "bought "
            + cat[r]
            + " in "
            + (v * 100).round().astype(int).astype(str)
            + "% of your baskets"
        ),
        "cc_days_since": lambda v, r: "bought " + cat[r] + " " + _days(v),
    }


def _item_templates(anchor_cooc: pd.Series, anchor_after: pd.Series, seg: pd.Series):
    """Phrases of the item's popularity, co-purchases, segment and price."""
    return {
        "it_n_cust": lambda v, r: "bought by " + _n(v).astype(str) + " customers",
        "it_pop_rank": lambda v, r: _ranked(
            v, "best seller #" + _n(v).astype(str), "one of the best sellers"
        ),
        "it_n_recent": lambda v, r: (
            "popular in the last 4 weeks (" + _n(v).astype(str) + " baskets)"
        ),
        "it_recent_rank": lambda v, r: _ranked(
            v, "#" + _n(v).astype(str) + " in the last 4 weeks", "selling well in the last 4 weeks"
        ),
        "it_trend": lambda v, r: _trend(v),
        "it_repeat_rate": lambda v, r: (
            (v * 100).round().fillna(0).astype(int).astype(str) + "% of its buyers buy it again"
        ),
        "it_season": lambda v, r: pd.Series("in season: sold well at this time last year", index=r),
        "cooc_sum": lambda v, r: "often bought together with " + anchor_cooc[r],
        "cooc_max": lambda v, r: "often bought together with " + anchor_cooc[r],
        "after_sum": lambda v, r: "often bought next after " + anchor_after[r],
        "after_max": lambda v, r: "often bought next after " + anchor_after[r],
        "seg_share": lambda v, r: "popular with customers who like " + seg[r],
        "seg_rank": lambda v, r: _ranked(
            v,
            "#" + _n(v).astype(str) + " with customers who like " + seg[r],
            "popular with customers who like " + seg[r],
        ),
        "price_ratio": lambda v, r: pd.Series(
            np.where(
                v.fillna(0) > 0.3,
                "premium pick for you",
                np.where(
                    v.fillna(0) < -0.3,
                    "cheaper than your usual items",
                    "priced like your usual items",
                ),
            ),
            index=r,
        ),
    }


def _browse_templates(cat: pd.Series):
    """Phrases of the browsing of the item and of its category."""
    return {
        "br_item_7d": lambda v, r: "viewed it this week",
        "br_item_30d": lambda v, r: "viewed it in the last 30 days",
        "br_item_days_since": lambda v, r: "viewed it " + _days(v),
        "br_cat_7d": lambda v, r: "browsed " + cat[r] + " this week",
        "br_cat_30d": lambda v, r: "browsed " + cat[r] + " in the last 30 days",
        "br_cat_days_since": lambda v, r: "browsed " + cat[r] + " " + _days(v),
    }


_GROUPS: dict[str, str] = {
    "src_repeat": "ci_count", "ci_n_b": "ci_count", "ci_n_b30": "ci_count", "ci_n_b90": "ci_count",
    "ci_share": "ci_count", "ci_days_since": "ci_time", "ci_gap": "ci_time", "ci_due": "ci_time",
    "cc_n_b": "cc", "cc_n_b30": "cc", "cc_share": "cc", "cc_days_since": "cc",
    "src_cooc": "cooc", "cooc_sum": "cooc", "cooc_max": "cooc",
    "src_after": "after", "after_sum": "after", "after_max": "after",
    "src_segment": "seg", "seg_share": "seg", "seg_rank": "seg",
    "src_popular": "pop", "it_n_cust": "pop", "it_pop_rank": "pop",
    "src_trend": "trend", "it_n_recent": "trend", "it_recent_rank": "trend", "it_trend": "trend",
    "src_browse": "br_item", "br_item_7d": "br_item", "br_item_30d": "br_item",
    "br_item_days_since": "br_item", "br_cat_7d": "br_cat", "br_cat_30d": "br_cat",
    "br_cat_days_since": "br_cat",
}  # fmt: skip

# the column naming the item a group's phrase speaks of ("goes with <anchor>")
#: the column of the item (segment) a group's phrases name
_ANCHOR_OF = {"cooc": "cooc_anchor", "after": "after_anchor", "seg": "seg"}


def contributions(
    booster: lgb.Booster,
    X: np.ndarray,
    *,
    num_threads: int = 1,
    tables: ShapTables | None = None,
) -> np.ndarray:
    """Exact TreeSHAP values of the ranking score, shape (rows, features).

    With ``tables`` (:func:`cemlib.offers.treeshap.build_tables` of ``booster``) by table look-up;
    otherwise LightGBM's ``pred_contrib=True``, the same path-dependent TreeSHAP algorithm as
    ``shap.TreeExplainer`` (default settings) in C++, without the last column LightGBM returns
    (the expected value). Used for the per-offer reason codes.
    """
    if len(X) == 0:
        return np.zeros((0, booster.num_feature()), dtype=np.float64)
    if tables is not None:
        return tables.contributions(X, num_threads=num_threads)
    values = booster.predict(X, pred_contrib=True, num_threads=num_threads)
    return np.asarray(values)[:, :-1]


# counts and shares whose phrase says nothing (or something false: "bought 0 times") at zero
_ZERO_SAYS_NOTHING = ("ci_n_b", "ci_n_b30", "ci_n_b90", "ci_share", "ci_gap", "cc_n_b",
                      "cc_n_b30", "cc_share", "it_n_cust", "it_n_recent", "it_repeat_rate")  # fmt: skip


def _factual(frame: pd.DataFrame, name: str, rows: pd.Index) -> pd.Series:
    """Where the phrase of feature ``name`` states a fact about the offer of ``rows``: a phrase
    about the customer's purchases of the item (``ci_*``: "last bought today") or of its
    category (``cc_*``) only where the customer bought it, its usual interval only where they
    bought it twice or more; a count, share or interval only above zero
    (a SHAP value is also positive for an item never bought: its absence is what it weighs)."""
    ok = pd.Series(True, index=rows)
    for prefix, count in (("ci_", "ci_n_b"), ("cc_", "cc_n_b")):
        if name.startswith(prefix) and count in frame.columns:
            ok &= frame.loc[rows, count].astype(float).fillna(0).to_numpy() > 0
    if name in ("ci_gap", "ci_due") and "ci_n_b" in frame.columns:  # an interval needs two
        ok &= frame.loc[rows, "ci_n_b"].astype(float).fillna(0).to_numpy() >= 2
    if name in _ZERO_SAYS_NOTHING:
        v = frame.loc[rows, name].astype(float).fillna(0)
        shown = v * 100 if name.endswith(("_share", "_rate")) else v  # as the phrase rounds it
        ok &= shown.round().to_numpy() >= 1
    return ok


def shap_values(explainer: shap.TreeExplainer, X: np.ndarray) -> np.ndarray:
    """SHAP values of the ranking score, shape (rows, features)."""
    values = explainer.shap_values(X)
    if isinstance(values, list):  # pragma: no cover - older shap
        values = values[0]
    return np.asarray(values)


def reason_codes(
    frame: pd.DataFrame,
    values: np.ndarray,
    names: list[str],
    *,
    n_reasons: int = 3,
    category_name: Callable[[pd.Series], pd.Series],
    item_name: Callable[[pd.Series], pd.Series],
    segment_name: Callable[[pd.Series], pd.Series],
    unnamed: np.ndarray | None = None,
    unnamed_segments: np.ndarray | None = None,
) -> pd.Series:
    """Plain-word reasons per row of ``frame`` (features + ``cat``/anchor columns), joined by '; '.

    A reason is a feature with a positive SHAP value, strongest first; one phrase per group of
    related features (e.g. the browsing of the item), so the reasons say different things.
    ``unnamed``: item codes a reason never names (the items kept out of the offers: "often
    bought next after <a top-up>" says nothing); a phrase about such an anchor is left out and
    the next reason takes its place. ``unnamed_segments``: segment codes (``seg``) a reason
    never names, the categories kept out when the segments are the customers' dominant
    categories (trial 11 M4: "popular with subscribers who like <payments>").
    """
    frame = frame.reset_index(drop=True)
    idx = frame.index
    cat = category_name(frame["cat"]).set_axis(idx)
    a_cooc = item_name(frame["cooc_anchor"]).set_axis(idx)
    a_after = item_name(frame["after_anchor"]).set_axis(idx)
    seg = segment_name(frame["seg"]).set_axis(idx) if "seg" in frame else cat
    templates = _templates(cat, a_cooc, a_after, seg)
    usable = np.array(
        [n in templates and not n.startswith(_CUSTOMER_LEVEL) for n in names], dtype=bool
    )
    masked = np.where(usable[None, :], values, -np.inf)
    order = np.argsort(-masked, axis=1)[:, : n_reasons + 2]
    phrases = [pd.Series("", index=idx, dtype=object) for _ in range(order.shape[1])]
    rows = np.arange(len(frame))
    group_of = np.array([_GROUPS.get(n, n) for n in names], dtype=object)
    groups = [
        np.where(masked[rows, order[:, j]] > 0, group_of[order[:, j]], "")
        for j in range(order.shape[1])
    ]
    for slot in range(order.shape[1]):
        fidx = order[:, slot]
        ok = masked[rows, fidx] > 0
        for f in np.unique(fidx[ok]):
            sel = idx[ok & (fidx == f)]
            name = names[f]
            text = templates[name](frame.loc[sel, name].astype(float), sel)
            if not isinstance(text, pd.Series):
                text = pd.Series(text, index=sel)
            ok_rows = _factual(frame, name, sel)
            anchor = _ANCHOR_OF.get(_GROUPS.get(name, ""))
            hidden = unnamed if anchor != "seg" else unnamed_segments
            if anchor and hidden is not None and len(hidden) and anchor in frame.columns:
                ok_rows &= ~np.isin(frame.loc[sel, anchor].to_numpy(), hidden)
            text = text.astype(str).where(ok_rows, "")
            phrases[slot].loc[sel] = text.to_numpy()
    return _joined(phrases, groups, n_reasons)


def _joined(phrases: list[pd.Series], groups: list[np.ndarray], n_reasons: int) -> pd.Series:
    """Per row, the slots' phrases kept (new, of a group unused by the slots kept before it, at
    most ``n_reasons``) joined by '; '. Phrases and groups are compared as integer codes and
    each distinct list of kept phrases is joined once."""
    idx = phrases[0].index
    n, slots = len(idx), len(phrases)
    if n == 0 or slots == 0 or n_reasons <= 0:
        return pd.Series("", index=idx, dtype=object)
    text_codes, texts = pd.factorize(np.concatenate([p.to_numpy(dtype=object) for p in phrases]))
    text_codes = text_codes.reshape(slots, n)
    hit = np.flatnonzero(texts == "")
    empty = hit[0] if len(hit) else -1  # the code of "" (-1: no slot is empty)
    group_codes = pd.factorize(np.concatenate(groups))[0].reshape(slots, n)
    kept = np.zeros(n, dtype=np.int64)
    chosen = np.full((n, max(n_reasons, 0)), -1, dtype=np.int64)  # text codes, in order
    keep_prev: list[np.ndarray] = []
    for j in range(slots):
        keep = (text_codes[j] != empty) & (kept < n_reasons)
        for i in range(j):
            same = (text_codes[j] == text_codes[i]) | (group_codes[j] == group_codes[i])
            keep &= ~(keep_prev[i] & same)
        rows = np.flatnonzero(keep)
        chosen[rows, kept[rows]] = text_codes[j][rows]
        kept += keep
        keep_prev.append(keep)
    base = len(texts) + 1
    if base**n_reasons < 2**62:  # one integer per list of kept phrases: a 1-d unique
        key = ((chosen + 1) * base ** np.arange(n_reasons)).sum(axis=1)
        first, inverse = np.unique(key, return_index=True, return_inverse=True)[1:]
        combos = chosen[first]
    else:
        combos, inverse = np.unique(chosen, axis=0, return_inverse=True)
    words = np.asarray(texts, dtype=object)
    joined = np.array(
        ["; ".join(words[c] for c in combo if c >= 0) for combo in combos], dtype=object
    )
    return pd.Series(joined[inverse.reshape(-1)], index=idx, dtype=object)


def global_importance(values: np.ndarray, names: list[str]) -> pd.DataFrame:
    """Mean absolute SHAP value per feature, largest first (the global SHAP summary)."""
    imp = np.abs(values).mean(axis=0)
    return (
        pd.DataFrame({"feature": names, "mean_abs_shap": imp})
        .sort_values("mean_abs_shap", ascending=False)
        .reset_index(drop=True)
    )
