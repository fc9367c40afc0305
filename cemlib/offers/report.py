"""What ``04_next_offer.ipynb`` shows beyond the tables: the verdict, the consent table in
words and SHAP waterfalls of example offers (plain-language feature names, no personal data)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cemlib.offers.stage import OfferStageResult
from cemlib.reports import fmt_number, label

BASELINE_WORDS = {
    "global_popularity": "global best sellers",
    "own_most_frequent": "the customer's own most frequent items",
    "personal_then_popular": "own items, then best sellers",
    "tifu_knn": "TIFU-KNN (own and similar customers' items)",
    "repurchase_cycle": "the repurchase cycle",
}

SOURCE_WORDS = {
    "all": "all sources together",
    "repeat": "bought before",
    "cooc": "bought together with a past item",
    "after": "bought next after a past item",
    "browse": "browsed",
    "segment": "popular in the segment",
    "trend": "trending",
    "popular": "best sellers",
}


def headlines(result: OfferStageResult, k: int = 10) -> dict:
    """The stage's headline figures for the run index: NDCG@k of the model and of the best
    baseline, the lift, the candidate recall and the profiles offered and reachable."""
    m = result.metrics
    best = m.drop(index="model")[f"ndcg@{k}"]
    return {
        f"model NDCG@{k}": round(float(m.loc["model", f"ndcg@{k}"]), 4),
        f"best baseline NDCG@{k}": round(float(best.max()), 4),
        "best baseline": str(best.idxmax()),
        "lift over best baseline": round(float(m.loc["model", f"ndcg@{k}"] / best.max()), 3),
        "candidate recall": round(float(result.candidate_recall), 3),
        "profiles with offers": int(result.all_offers["customer_id"].nunique()),
        "profiles reachable (consent)": int(result.consent.reachable),
        "profiles without consent": int(result.consent.no_consent),
        "profiles with consent but no address": int(result.consent.no_address),
        "profiles under the contact age": int(getattr(result.consent, "minors", 0)),
        CLOSED_HEADLINE: int(result.extras.get("closed_not_offered", 0)),
        "published ranking": result.published,
        "offers": OFFER_MODES[bool(result.extras.get("new_items"))],
        **_own_items_lift(m, k),
        **_extra_headlines(result),
    }


#: profiles whose every CRM record closed by as_of (``crm_contacts.closed_at``): no outbound offer
CLOSED_HEADLINE = "profiles left (all contracts closed): not offered"

#: the ``offers`` headline: which mode ran (``new_items`` False, True)
OFFER_MODES = {
    False: "any item (repeat purchases included)",
    True: "items new to the profile only (new_items)",
}
#: the headline of the model's NDCG@k over the customer's own most bought items
OWN_LIFT = "lift over own most bought items"
#: a lift over the own most bought items below this: the model adds little to the customer's
#: own weekly basket, and the report suggests ``new_items`` (a repeat-heavy shop)
NEAR_OWN = 1.05


def _own_items_lift(m: pd.DataFrame, k: int) -> dict:
    """The model's NDCG@k over ``own_most_frequent``'s (none when that baseline scored 0, as
    it does on new items only, where it has nothing to offer)."""
    if "own_most_frequent" not in m.index:
        return {}
    own = float(m.loc["own_most_frequent", f"ndcg@{k}"])
    if own <= 0:
        return {}
    return {OWN_LIFT: round(float(m.loc["model", f"ndcg@{k}"]) / own, 3)}


def new_items_sentence(lift: float) -> str:
    """The verdict's suggestion when the model's lists are the customer's own most bought
    items (``lift``: NDCG@k of the model over theirs, default mode)."""
    return (
        f"the offers rank about as the profile's own most bought items do (NDCG lift "
        f"{lift:.3f}): in a repeat-heavy shop (a grocery) they are mostly what the profile buys "
        "anyway; `-p 04_next_offer.new_items=true` (run config `notebooks: {04_next_offer: "
        "{new_items: true}}`) offers only items new to the profile"
    )


def _extra_headlines(result: OfferStageResult) -> dict:
    """Consent lost to a refusal on a shared address, the product groups ranked and the
    products kept out of offers."""
    shared = result.consent.shared_refusals or {}
    out = {
        "profiles losing e-mail to a refusal on a shared e-mail": int(shared.get("email", 0)),
        "profiles losing SMS to a refusal on a shared phone": int(shared.get("sms", 0)),
    }
    if result.extras.get("granularity") == "group":  # the catalogue's product groups ranked
        out["product groups ranked (the sizes of one model are one offer)"] = len(
            result.model.enc_.items
        )
    rule = getattr(result.model, "owned_rule_", None)
    if rule is not None:  # cemlib.offers.owned: durables their owners do not buy again
        owned = rule.p_again[~np.isnan(rule.p_again)]
        out[OWNED_HEADLINE] = int((owned < rule.bar).sum())
    ex = result.extras.get("exclusion")
    if ex is not None and ex.entries:
        out.update(ex.figures())
    fit = result.extras.get("eligibility")
    if fit is not None:
        rules = fit["rules"]
        key = HELD_RETURNED if rules.returned is not None else HELD
        out[key] = int(fit["held_back"])
        out["items offered to one gender or age band only"] = len(rules.items)
        if rules.declared:
            out["items whose audience the catalogue declares"] = int(rules.declared)
        if rules.returned is not None:
            out["items returned and never kept (held back from their customer)"] = len(
                rules.returned
            )
    return out


#: items not offered to their owners: bought again within the horizon less often than anyone
#: buys the k-th best seller (:mod:`cemlib.offers.owned`)
OWNED_HEADLINE = "items not offered again to their owners (rarely bought twice)"

#: the headline counting the offers the eligibility rules held back (and with returns)
HELD = "offers held back as not fitting the profile's gender/age"
HELD_RETURNED = "offers held back as not fitting the profile's gender/age or returned by it"


def eligibility_sentence(
    n_held: int, n_items: int, declared: int = 0, returned: int | None = None
) -> str:
    """The verdict's line on the offers held back by :mod:`cemlib.offers.eligibility`
    (``declared``: the items whose audience the catalogue declares; ``returned``: the
    customer-item pairs returned and never kept, None without returns)."""
    said = (
        f" ({declared:,} item{'s' if declared != 1 else ''} by the catalogue's audience column)"
        if declared
        else ""
    )
    back = (
        f"; {returned:,} time{'s' if returned != 1 else ''} a profile returned an item and never "
        "kept it, and that item is not offered back to it"
        if returned
        else ""
    )
    return (
        f"{n_held:,} offer{'s' if n_held != 1 else ''} held back as not fitting the profile's "
        f"gender/age{' or returned by it' if returned else ''}: {n_items:,} "
        f"item{'s are' if n_items != 1 else ' is'} for one gender or one age band only{said}"
        f"{back}; the profile got its next fitting item instead"
    )


def verdict_of(result: OfferStageResult, k: int = 10) -> dict:
    """The stage's verdict (``cemlib.reports.verdict`` arguments)."""
    h = headlines(result, k)
    lift = h["lift over best baseline"] - 1.0
    new = " without the items the profile bought" if result.extras.get("new_items") else ""
    best = BASELINE_WORDS.get(h["best baseline"], h["best baseline"]) + new
    status, caveats = "ok", []
    if h["published ranking"] != "model":
        status = "warning"
        shown = BASELINE_WORDS.get(h["published ranking"], h["published ranking"]) + new
        caveats.append(
            f"the model ranked worse than {shown} on the backtest, so `marts.next_offers` holds "
            f"{shown}'s list (publish: auto; `-p 04_next_offer.publish=model` sends the model's)"
        )
    elif lift <= 0:
        status = "warning"
        caveats.append("the model ranks no better than the best naive baseline")
    own = h.get(OWN_LIFT)
    if not result.extras.get("new_items") and own is not None and own < NEAR_OWN:
        caveats.append(new_items_sentence(own))
    if h["candidate recall"] < 0.5:
        caveats.append(
            f"the candidates hold only {h['candidate recall']:.0%} of what customers bought next: "
            "the rest can never be offered"
        )
    if h.get("exclusion entries matching nothing"):
        status = "warning"
        ex = result.extras["exclusion"]
        caveats.append(
            f"{len(ex.unmatched)} exclusion entr{'y' if len(ex.unmatched) == 1 else 'ies'} name "
            f"no item or category of the data (e.g. {ex.unmatched[0]!r}): check the spelling"
        )
    if h.get("items excluded from offers"):
        n_items = h["items excluded from offers"]
        n_prof = h["profiles with an excluded candidate"]
        caveats.append(
            f"{n_items:,} item{'s are' if n_items != 1 else ' is'} kept out of the offers "
            f"(exclusion list); {'they were candidates' if n_items != 1 else 'it was a candidate'}"
            f" of {n_prof:,} profile{'s' if n_prof != 1 else ''}, who got the next allowed "
            "items instead"
        )
    held = h.get(HELD, h.get(HELD_RETURNED))
    if held:
        caveats.append(
            eligibility_sentence(
                held,
                h["items offered to one gender or age band only"],
                h.get("items whose audience the catalogue declares", 0),
                h.get("items returned and never kept (held back from their customer)"),
            )
        )
    lost = [
        f"{n:,} {what}"
        for n, what in (
            (h["profiles losing SMS to a refusal on a shared phone"], "lose SMS"),
            (h["profiles losing e-mail to a refusal on a shared e-mail"], "lose e-mail"),
        )
        if n
    ]
    if lost:
        caveats.append(
            f"{' and '.join(lost)} because another record holding the same phone or e-mail "
            "(a family member, a duplicate) refused that channel: a refusal belongs to the address"
        )
    if h["profiles without consent"]:
        caveats.append(
            f"{h['profiles without consent']:,} profiles consented to no channel and get no "
            "outbound offer"
        )
    if h["profiles under the contact age"]:
        caveats.append(
            f"{h['profiles under the contact age']:,} profiles are younger than the contact age "
            "(`04_next_offer.min_contact_age`) and get no outbound offer, whatever their consent"
        )
    if h[CLOSED_HEADLINE]:
        caveats.append(
            f"{h[CLOSED_HEADLINE]:,} profiles left (all contracts closed by as_of): not offered; "
            "a phone or e-mail only closed contracts carry is not used either (operators "
            "recycle numbers)"
        )
    return {
        "status": status,
        "title": f"{k} offers for each of {h['profiles with offers']:,} profiles; "
        f"{h['profiles reachable (consent)']:,} reachable with consent",
        "figures": {
            f"NDCG@{k} of the model": f"{h[f'model NDCG@{k}']:.3f}",
            f"NDCG@{k} of the best baseline": f"{h[f'best baseline NDCG@{k}']:.3f}",
            "lift over the best baseline": f"{lift:+.0%}",
            "profiles reachable": f"{h['profiles reachable (consent)']:,}",
            # trial 11 L7: "candidate recall" said nothing to a newcomer
            "of what customers bought next, share the model could offer": (
                f"{h['candidate recall']:.0%}"
            ),
            "offers": h["offers"],
        },
        "comparison": f"On {result.evaluation}: NDCG@{k} {h[f'model NDCG@{k}']:.3f} against "
        f"{h[f'best baseline NDCG@{k}']:.3f} for the best baseline ({best}), {lift:+.0%}.",
        "caveats": caveats,
    }


def consent_table(result: OfferStageResult) -> tuple[pd.DataFrame, str]:
    """Profiles per allowed channel, and a sentence on why the shares may add up past 100%."""
    cov = result.consent.as_frame()
    total = float(cov["share"].sum())
    note = ""
    if total > 1.0005:
        note = (
            f"A profile that allows both e-mail and SMS is counted under each channel (its offer "
            f"goes by e-mail), so the shares add up to {total:.0%}."
        )
    return cov, note


def waterfall_examples(model, n: int = 2, max_display: int = 10) -> list:
    """SHAP waterfall figures of ``n`` example candidates of the validation sample (the highest
    scored ones), features in plain words. Returns matplotlib figures."""
    import matplotlib.pyplot as plt
    import shap

    values = getattr(model, "shap_sample_values_", None)
    if values is None or not len(values):
        return []
    base = float(np.ravel(model.explainer_.expected_value)[0])
    scores = values.sum(axis=1)
    rows = np.argsort(-scores)[:n]
    names = [label(f) for f in model.shap_sample_.columns]
    figs = []
    for j, row in enumerate(rows, start=1):
        exp = shap.Explanation(
            values=values[row],
            base_values=base,
            data=np.array(
                # as the tables show them (no "nan", separators); the trailing no-break space
                # keeps shap's format_value from stripping the zeros of "100"
                [fmt_number(v) + "\u00a0" for v in model.shap_sample_.iloc[row].to_numpy(float)],
                dtype=object,
            ),
            feature_names=names,
        )
        with plt.rc_context({"figure.constrained_layout.use": False}):
            plt.figure()  # shap draws on the current figure, with no layout engine
            shap.plots.waterfall(exp, max_display=max_display, show=False)
            fig = plt.gcf()
            fig.set_size_inches(10, 0.42 * max_display + 1.6)
            ax = fig.axes[0]
            ax.set_title(f"Why example offer {j} ranks high (SHAP, ranking score)")
            ax.set_ylabel("feature (value)")
            fig.subplots_adjust(left=0.42)
        figs.append(fig)
    return figs
