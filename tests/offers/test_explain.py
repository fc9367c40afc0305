import numpy as np
import pandas as pd

from cemlib.offers.explain import global_importance, reason_codes


def test_reasons_in_plain_words_from_top_positive_shap():
    names = ["ci_n_b90", "br_cat_7d", "cu_n_baskets", "cooc_sum"]
    frame = pd.DataFrame(
        {
            "ci_n_b90": [3.0, 1.0],
            "br_cat_7d": [2.0, 0.0],
            "cu_n_baskets": [9.0, 9.0],
            "cooc_sum": [0.0, 0.4],
            "cat": [0, 0],
            "cooc_anchor": [-1, 5],
            "after_anchor": [-1, -1],
            "seg": [0, 0],
        }
    )
    shap = np.array([[0.5, 0.9, 5.0, -0.1], [-0.2, 0.0, 3.0, 0.7]])
    out = reason_codes(
        frame,
        shap,
        names,
        n_reasons=3,
        category_name=lambda s: pd.Series(["Headphones"] * len(s)),
        item_name=lambda s: pd.Series(["Milk" if v == 5 else "your items" for v in s]),
        segment_name=lambda s: pd.Series(["Audio"] * len(s)),
    )
    # customer-level features never become reasons; negative contributions are left out
    assert out[0] == "browsed Headphones this week; bought 3 times in the last 90 days"
    assert out[1] == "often bought together with Milk"
    imp = global_importance(shap, names)
    assert imp["feature"].iloc[0] == "cu_n_baskets" and imp["mean_abs_shap"].iloc[0] == 4.0


def test_reason_phrases_never_say_rank_zero_and_have_a_verb():
    # a new user's offers read "#0 with customers who like ..." (a missing rank) and
    # "in 17% of your baskets; ..." (no verb)
    import pandas as pd

    from cemlib.offers.explain import _templates

    idx = pd.Index([0, 1, 2])
    text = pd.Series(["чай"] * 3, index=idx)
    t = _templates(text, text, text, text)
    ranks = pd.Series([0.0, 3.0, None], index=idx)
    assert t["seg_rank"](ranks, idx).tolist() == [
        "popular with customers who like чай",
        "#3 with customers who like чай",
        "popular with customers who like чай",
    ]
    assert t["it_pop_rank"](ranks, idx).tolist()[:2] == [
        "one of the best sellers",
        "best seller #3",
    ]
    assert t["it_recent_rank"](ranks, idx).tolist()[0] == "selling well in the last 4 weeks"
    shares = pd.Series([0.17, 0.5, 0.2], index=idx)
    assert t["ci_share"](shares, idx).tolist()[0] == "bought in 17% of your baskets"
    assert t["cc_share"](shares, idx).tolist()[0] == "bought чай in 17% of your baskets"


def test_a_trend_that_did_not_rise_gives_no_phrase():
    from cemlib.offers.explain import _templates

    empty = pd.Series(dtype=object)
    trend = _templates(empty, empty, empty, empty)["it_trend"]
    v = pd.Series([1.0, 1.004, 0.8, 1.25, float("nan")])
    assert trend(v, v.index).tolist() == ["", "", "", "sales up 25% in the last 4 weeks", ""]


def _tea_reasons(frame: pd.DataFrame, shap: np.ndarray, names: list[str]) -> pd.Series:
    """Three reasons per row, every category and segment named "tea", every item "x"."""
    return reason_codes(
        frame, shap, names, n_reasons=3,
        category_name=lambda s: pd.Series(["tea"] * len(s)),
        item_name=lambda s: pd.Series(["x"] * len(s)),
        segment_name=lambda s: pd.Series(["tea"] * len(s)),
    )  # fmt: skip


def test_no_purchase_history_reason_for_an_item_never_bought():
    # a new user's offers read "bought in 0% of your baskets; last bought today" for items the
    # customer never bought: a missing history weighs in the model, but it is no reason
    names = ["ci_days_since", "ci_share", "ci_n_b", "cc_days_since", "it_n_cust"]
    frame = pd.DataFrame({
        "ci_days_since": [0.0, 12.0], "ci_share": [0.0, 0.25], "ci_n_b": [0.0, 2.0],
        "cc_days_since": [0.0, 3.0], "it_n_cust": [40.0, 40.0], "cc_n_b": [0.0, 4.0],
        "cat": [0, 0], "cooc_anchor": [-1, -1], "after_anchor": [-1, -1], "seg": [0, 0],
    })  # fmt: skip
    shap = np.array([[0.9, 0.8, 0.7, 0.6, 0.1], [0.9, 0.8, 0.7, 0.6, 0.1]])
    out = _tea_reasons(frame, shap, names)
    assert out[0] == "bought by 40 customers"
    assert out[1] == "last bought 12 days ago; bought in 25% of your baskets; bought tea 3 days ago"


def test_joined_keeps_new_phrases_of_unused_groups_in_slot_order():
    from cemlib.offers.explain import _joined

    idx = pd.RangeIndex(4)
    slots = [
        ["a", "a", "", "x"],
        ["b", "a", "c", "y"],  # row 1: the same phrase again -> dropped
        ["d", "e", "c", "z"],  # row 2: "c" again; row 0: group of "b" -> dropped
        ["f", "g", "h", "w"],  # row 3: already three kept -> dropped
    ]
    groups = [
        np.array(["g1", "g1", "", "g1"], dtype=object),
        np.array(["g2", "g1", "g3", "g2"], dtype=object),
        np.array(["g2", "g4", "g3", "g3"], dtype=object),
        np.array(["g5", "g5", "g5", "g4"], dtype=object),
    ]
    phrases = [pd.Series(s, index=idx, dtype=object) for s in slots]
    out = _joined(phrases, groups, n_reasons=3)
    assert out.tolist() == ["a; b; f", "a; e; g", "c; h", "x; y; z"]
    assert _joined(phrases, groups, n_reasons=0).tolist() == [""] * 4


def test_no_usual_interval_for_an_item_bought_once():
    # "usually bought every 0 days" on 429 offers of items bought exactly once (trial 3)
    names = ["ci_gap", "ci_days_since", "ci_n_b"]
    frame = pd.DataFrame({
        "ci_gap": [0.0, 20.0], "ci_days_since": [30.0, 12.0], "ci_n_b": [1.0, 3.0],
        "cat": [0, 0], "cooc_anchor": [-1, -1], "after_anchor": [-1, -1], "seg": [0, 0],
    })  # fmt: skip
    shap = np.array([[0.9, 0.5, 0.4], [0.9, 0.5, 0.4]])
    out = _tea_reasons(frame, shap, names)
    assert "every" not in out[0] and out[0].startswith("last bought 30 days ago")
    assert out[1].startswith("usually bought every 20 days")


def test_an_unnamed_anchor_gives_way_to_the_next_reason():
    names = ["after_sum", "cooc_sum", "it_n_cust"]
    frame = pd.DataFrame({
        "after_sum": [0.5, 0.5], "cooc_sum": [0.3, 0.3], "it_n_cust": [40.0, 40.0],
        "cat": [0, 0], "cooc_anchor": [7, 5], "after_anchor": [5, 7], "seg": [0, 0],
    })  # fmt: skip
    shap = np.array([[0.9, 0.5, 0.1], [0.9, 0.5, 0.1]])
    out = reason_codes(
        frame, shap, names, n_reasons=2,
        category_name=lambda s: pd.Series(["tea"] * len(s)),
        item_name=lambda s: pd.Series(["TOPUP" if v == 5 else "Milk" for v in s]),
        segment_name=lambda s: pd.Series(["tea"] * len(s)),
        unnamed=np.array([5]),
    )  # fmt: skip
    assert out.tolist() == [
        "often bought together with Milk; bought by 40 customers",
        "often bought next after Milk; bought by 40 customers",
    ]


def test_a_long_overdue_item_reads_in_times_not_thousands_of_percent():
    # trial 7: "due again: 1209% of the usual interval has passed" on a 4G router
    from cemlib.offers.explain import _templates

    empty = pd.Series(dtype=object)
    due = _templates(empty, empty, empty, empty)["ci_due"]
    v = pd.Series([0.8, 1.994, 2.0, 12.09])
    assert due(v, v.index).tolist() == [
        "due again: 80% of the usual interval has passed",
        "due again: 199% of the usual interval has passed",
        "due again: 2 times the usual interval has passed",
        "due again: 12 times the usual interval has passed",
    ]
