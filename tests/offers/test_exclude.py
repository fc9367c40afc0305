"""Products kept out of the offers: removed from the candidates before ranking, every customer
still gets k offers, the remaining items keep their order, and the counts are right."""

from __future__ import annotations

import pandas as pd
import pytest

from cemlib.errors import InputError
from cemlib.offers import NextOfferModel
from cemlib.offers.exclude import read_exclusions
from cemlib.offers.stage import baseline_offers
from tests.offers.conftest import AS_OF

K = 10


@pytest.fixture(scope="module")
def fitted(transactions):
    # six categories of ten items each (I00..I59 -> category K0..K5)
    tx = transactions.assign(category="K" + transactions["item_id"].str[1])
    model = NextOfferModel(k=K, horizon_days=30, n_estimators=40, seed=3).fit(tx, AS_OF)
    plain = model.recommend(explain=False)
    return model, plain


def test_excluded_items_and_categories_are_never_offered_and_k_offers_remain(fitted):
    model, plain = fitted
    # the two items offered most often, the whole category K0, and an entry naming nothing
    top2 = plain["item_id"].value_counts().index[:2].tolist()
    cats = {i: "K" + i[1] for i in plain["item_id"].unique()}
    entries = [*top2, "K0", "NOPE"]
    kept_out = set(top2) | {f"I0{j}" for j in range(10)}
    offers = model.recommend(explain=False, exclude=entries)
    ex = model.exclusion_
    assert ex.items == len(kept_out) == 10 + sum(cats[i] != "K0" for i in top2)
    assert ex.by_item == 2 and ex.by_category == 1 and ex.unmatched == ["NOPE"]
    assert not set(offers["item_id"]) & kept_out
    # every customer still gets k offers: 60 - |kept out| allowed items exist
    per = offers.groupby("customer_id").size()
    assert len(per) == plain["customer_id"].nunique() == 300 and (per == K).all()
    ranks = offers.groupby("customer_id")["rank"].apply(sorted)
    assert all(r == list(range(1, K + 1)) for r in ranks)
    # excluded before ranking: the allowed items of the plain list keep their order and lead
    # the new list (the same scores, minus the excluded rows)
    lead = 0
    new = offers.groupby("customer_id")["item_id"].apply(list)
    for c, items in plain.sort_values("rank").groupby("customer_id")["item_id"]:
        allowed = [i for i in items if i not in kept_out]
        assert new[c][: len(allowed)] == allowed
        lead += len(allowed) < K
    assert lead > 0  # some lists did hold excluded items and were refilled
    # counts: every candidate pair of an excluded item was dropped
    cand = model.candidate_frame()
    hit = cand[cand["item_id"].isin(kept_out)]
    assert ex.candidates_dropped == len(hit) > 0
    assert ex.customers_affected == hit["customer_id"].nunique()
    assert ex.figures()["items excluded from offers"] == ex.items


def test_no_exclusion_gives_the_same_offers(fitted):
    model, plain = fitted
    again = model.recommend(explain=False, exclude=[])
    pd.testing.assert_frame_equal(again, plain)
    assert model.exclusion_.items == 0 and model.exclusion_.candidates_dropped == 0


def test_a_published_baseline_keeps_excluded_items_out_and_k_each(fitted):
    history = fitted[0].tx_  # prepared as the stage passes it
    customers = history["customer_id"].unique()
    plain = baseline_offers("global_popularity", history, K, customers)
    top3 = set(plain.loc[plain["rank"] <= 3, "item_id"])
    out = baseline_offers("global_popularity", history, K, customers, exclude=top3)
    assert not set(out["item_id"]) & top3
    assert (out.groupby("customer_id").size() == K).all()
    # ranks 4..10 of the plain list become ranks 1..7, then the next best sellers
    first = out[out["customer_id"] == customers[0]].sort_values("rank")["item_id"].tolist()
    base = plain[plain["customer_id"] == customers[0]].sort_values("rank")["item_id"].tolist()
    assert first[:7] == base[3:] and len(set(first)) == K


def test_exclusion_lists_from_text_lists_and_files(tmp_path):
    assert read_exclusions(None) == [] and read_exclusions("") == []
    assert read_exclusions("A1, B2,,A1") == ["A1", "B2"]
    assert read_exclusions(["Rx", " A1 "]) == ["Rx", "A1"]
    txt = tmp_path / "rx.txt"
    txt.write_text("# prescription only\nSKU-1\nSKU-2  # tramadol\n\nРецептурные\n", "utf-8")
    assert read_exclusions(str(txt)) == ["SKU-1", "SKU-2", "Рецептурные"]
    csv = tmp_path / "rx.csv"
    csv.write_text("sku;category\nSKU-3;\n;Rx\n", encoding="cp1251")
    assert read_exclusions(str(csv)) == ["SKU-3", "Rx"]
    with pytest.raises(InputError, match="exclusion file not found"):
        read_exclusions(str(tmp_path / "missing.csv"))
    with pytest.raises(InputError, match="exclusion file not found"):
        read_exclusions(str(tmp_path / "missing"))  # written as a path: a path
    # a category with a slash in its name is an entry, not a folder
    assert read_exclusions("Простуда/грипп, SKU-9") == ["Простуда/грипп", "SKU-9"]
    bad = tmp_path / "bad.csv"
    bad.write_text("name\nx\n", encoding="utf-8")
    with pytest.raises(InputError, match="no item_id, sku or category column"):
        read_exclusions(str(bad))


def test_reasons_never_name_an_excluded_item(fitted):
    # a telecom's offers read "often bought next after TOPUP" on nearly every line once the
    # monthly top-up was kept out of the offers: an excluded item is no reason either
    model, _ = fitted
    plain = model.recommend(explain=True)
    named = plain["reasons"].str.extractall(r"(?:after|with) (I\d\d)")[0]
    assert len(named) > 100
    anchors = named.value_counts().index[:3].tolist()
    offers = model.recommend(explain=True, exclude=anchors)
    assert not offers["reasons"].str.contains("|".join(anchors)).any()
    # the next reasons take their place: as many offers carry a reason as before
    given = (offers["reasons"] != "").mean()
    assert given >= (plain["reasons"] != "").mean() - 0.01 and given > 0.9
    # other anchors are still named
    assert offers["reasons"].str.contains(r"(?:after|with) I\d\d").sum() > 0


def test_reasons_never_name_an_excluded_category(transactions):
    """Trial 11 M4: with the payments category kept out, 10,718 of 17,460 reasons said "popular
    with subscribers who like <payments>": a payment on every purchase makes payments every
    customer's dominant category (the segment, which the features still read). A category kept
    out is named by no reason; the next reasons take its place."""
    tx = transactions.assign(category="K" + transactions["item_id"].str[1])
    pay = transactions.assign(  # a payment the day after each purchase
        item_id="P0" + (transactions.index % 3).astype(str),
        category="PAY",
        ts=pd.to_datetime(transactions["ts"]) + pd.Timedelta(days=1),
    )
    model = NextOfferModel(k=K, horizon_days=30, n_estimators=40, seed=3)
    model.fit(pd.concat([tx, pay], ignore_index=True), AS_OF)
    before = model.recommend(explain=True, exclude=["PAY"])  # the phrase as it was
    model._unnamed_segments = lambda: None
    said = model.recommend(explain=True, exclude=["PAY"])["reasons"]
    del model._unnamed_segments
    assert said.str.contains("who like PAY").sum() > 100
    offers = model.recommend(explain=True, exclude=["PAY"])
    assert offers.equals(before) and not offers["item_id"].str.startswith("P").any()
    assert not offers["reasons"].str.contains("PAY").any()
    # the next reasons take their place: as many offers carry a reason
    assert (offers["reasons"] != "").mean() >= (said != "").mean() - 0.01


def test_a_category_all_of_whose_items_are_listed_counts_as_kept_out(fitted):
    model, _ = fitted
    model.recommend(explain=False, exclude=[f"I1{j}" for j in range(10)] + ["I20", "K4"])
    cats = model.enc_.categories
    assert sorted(cats[model.exclusion_.categories]) == ["K1", "K4"]  # not K2: one item of ten
