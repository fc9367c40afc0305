"""``new_items``: offers of items the customer did not buy before ``as_of`` (trial 10, H3)."""

import numpy as np
import pandas as pd
import pytest

from cemlib.cli import main
from cemlib.offers.data import prepare_transactions
from cemlib.offers.eligibility import EligibilityRules, fill_fitting
from cemlib.offers.model import NextOfferModel
from cemlib.offers.scoring import fill
from cemlib.offers.stage import baseline_metrics, new_item_ranking, new_only

AS_OF = "2025-06-15"


def _bought(tx: pd.DataFrame, as_of: str = AS_OF) -> pd.MultiIndex:
    known = tx[tx["ts"] <= pd.Timestamp(as_of) + pd.Timedelta(hours=23, minutes=59)]
    return pd.MultiIndex.from_frame(known[["customer_id", "item_id"]].astype(str)).unique()


@pytest.fixture(scope="module")
def fitted(transactions):
    return NextOfferModel(k=10, horizon_days=30, seed=3).fit(transactions, AS_OF)


def test_new_items_lists_hold_k_items_none_bought_before(fitted, transactions):
    bought = _bought(transactions)
    default = fitted.recommend(explain=False)
    new = fitted.recommend(explain=False, new_items=True)
    customers = transactions.loc[transactions["ts"] <= AS_OF, "customer_id"].unique()
    for recs in (default, new):
        assert set(recs["customer_id"]) == set(customers)
        assert recs.groupby("customer_id").size().eq(10).all()
    pairs = lambda r: pd.MultiIndex.from_frame(r[["customer_id", "item_id"]].astype(str))  # noqa: E731
    # the default lists are mostly the customers' own items; the new ones hold none of them
    assert pairs(default).isin(bought).mean() > 0.3
    assert pairs(new).isin(bought).sum() == 0
    assert new.groupby("customer_id")["item_id"].nunique().eq(10).all()


def test_new_items_rank_as_the_same_model_does(fitted, transactions):
    """The new-item list is the model's deep ranking without the customer's own items: the
    same model, the same order (and the popular fill after the scored candidates)."""
    bought = _bought(transactions)
    deep = fitted.recommend(explain=False, k=60)
    deep = deep[~pd.MultiIndex.from_frame(deep[["customer_id", "item_id"]]).isin(bought)]
    want = deep.sort_values(["customer_id", "rank"]).groupby("customer_id").head(10)
    new = fitted.recommend(explain=False, new_items=True)
    got = new.sort_values(["customer_id", "rank"])
    assert got["item_id"].tolist() == want["item_id"].tolist()
    scored = got["score"].to_numpy() > want["score"].min() - 1  # not a pad
    assert np.allclose(got["score"].to_numpy()[scored], want["score"].to_numpy()[scored])


def test_fill_never_pads_with_an_item_taken():
    top = pd.DataFrame({"c": [0, 1], "i": [5, 6], "rank": [1, 1], "score": [2.0, 1.0]})
    taken = pd.DataFrame({"c": [0, 0, 1], "i": [1, 2, 1]})
    out = fill(top, np.array([0, 1]), np.array([1, 2, 3, 4, 5]), 3, [], np.zeros(7), taken)
    lists = out.sort_values(["c", "rank"]).groupby("c")["i"].agg(list).to_dict()
    assert lists == {0: [5, 3, 4], 1: [6, 2, 3]}


def test_fill_fitting_skips_the_items_bought():
    purchases = pd.DataFrame(
        {"customer_id": ["a", "b", "c", "a", "b", "a"], "item_id": ["x", "x", "x", "y", "y", "z"]}
    )
    offers = pd.DataFrame(columns=["customer_id", "rank", "item_id", "score"])
    attributes = pd.DataFrame(columns=["customer_id", "gender", "age_min", "age_max"])
    rules = EligibilityRules()
    bought = purchases[purchases["customer_id"] == "b"]
    out = fill_fitting(offers, purchases, rules, attributes, 1, ["b"], bought)
    assert out["item_id"].tolist() == ["z"]  # x and y (more popular) bought by b
    out = fill_fitting(offers, purchases, rules, attributes, 1, ["b"])
    assert out["item_id"].tolist() == ["x"]


def test_baselines_restricted_and_graded_on_new_items(transactions):
    cut = pd.Timestamp("2025-05-16")
    history = prepare_transactions(transactions, as_of="2025-05-15")
    truth = transactions[transactions["ts"] >= cut][["customer_id", "item_id"]]
    new_truth = new_only(truth, history)
    assert 0 < len(new_truth) < len(truth)
    customers = history["customer_id"].unique()
    old = baseline_metrics(truth, history, customers, 5)
    new = baseline_metrics(truth, history, customers, 5, new_items=True)
    # own items only: nothing left to offer on new items; the popular ones still hit
    assert old["own_most_frequent"]["ndcg@5"] > 0.2 and new["own_most_frequent"]["ndcg@5"] == 0
    assert new["personal_then_popular"]["ndcg@5"] > 0
    assert (
        new["personal_then_popular"]["customers"]
        == new_truth["customer_id"].isin(customers).groupby(new_truth["customer_id"]).any().sum()
    )
    ranked = new_item_ranking(
        pd.DataFrame({"customer_id": ["C0000"] * 3, "rank": [1, 2, 3], "item_id": ["A", "B", "C"]}),
        pd.DataFrame({"customer_id": ["C0000"], "item_id": ["A"]}),
        1,
    )
    assert ranked[["rank", "item_id"]].values.tolist() == [[1, "B"]]


def test_cem_offers_new_items(tmp_path, transactions, capsys):
    transactions = transactions[transactions["customer_id"] < "C0150"]  # two fits: kept small
    src = tmp_path / "tx.csv"
    transactions.to_csv(src, index=False)
    out = tmp_path / "offers.csv"
    args = ["offers", str(src), "--as-of", AS_OF, "--k", "4", "--out", str(out)]
    assert main([*args, "--new-items"]) == 0
    offers = pd.read_csv(out, dtype=str)
    assert offers.groupby("customer_id").size().eq(4).all()
    pairs = pd.MultiIndex.from_frame(offers[["customer_id", "item_id"]])
    assert pairs.isin(_bought(transactions)).sum() == 0
    err = capsys.readouterr().err
    assert "backtest on items new to the customer: NDCG@4" in err
    assert "for the best sellers not bought" in err
    assert main(args) == 0  # the default: the figure and the lists as before
    default = pd.read_csv(out, dtype=str)
    assert "validation NDCG@10" in capsys.readouterr().err
    assert (
        pd.MultiIndex.from_frame(default[["customer_id", "item_id"]])
        .isin(_bought(transactions))
        .mean()
        > 0.3
    )


@pytest.fixture(scope="module")
def small_wh(tmp_path_factory):
    from tests.warehouses import checked_world

    return checked_world(tmp_path_factory.mktemp("new") / "w.duckdb", n_people=600, seed=7)


def test_stage_new_items_offers_none_bought_and_grades_new_purchases(small_wh):
    from cemlib.offers.report import OFFER_MODES, OWN_LIFT, headlines, verdict_of
    from cemlib.offers.stage import run_stage
    from cemlib.warehouse import Warehouse

    with Warehouse(small_wh) as wh:
        old = run_stage(wh, "2025-06-30", run_id="t", k=10, key="person", seed=2, write=False)
        new = run_stage(
            wh, "2025-06-30", run_id="t", k=10, key="person", seed=2, write=False, new_items=True
        )
    bought = pd.MultiIndex.from_frame(new.model.tx_[["customer_id", "item_id"]].astype(str))
    offered = pd.MultiIndex.from_frame(new.all_offers[["customer_id", "item_id"]].astype(str))
    n = new.all_offers["customer_id"].nunique()
    assert n == old.all_offers["customer_id"].nunique() and len(new.all_offers) == 10 * n
    assert offered.isin(bought).sum() == 0
    was = pd.MultiIndex.from_frame(old.all_offers[["customer_id", "item_id"]].astype(str))
    assert was.isin(bought).mean() > 0.2  # the default mode offers items bought before
    # graded on new items: the own items have nothing to offer; fewer customers graded
    m, m0 = new.metrics, old.metrics
    assert m.loc["own_most_frequent", "ndcg@10"] == 0 < m0.loc["own_most_frequent", "ndcg@10"]
    assert 0 < m.loc["model", "customers"] <= m0.loc["model", "customers"]
    assert m.loc["model", "repeat_hitrate@10"] == 0 or np.isnan(m.loc["model", "repeat_hitrate@10"])
    assert "items new to the profile only" in new.evaluation
    h, h0 = headlines(new), headlines(old)
    assert h["offers"] == OFFER_MODES[True] and h0["offers"] == OFFER_MODES[False]
    assert OWN_LIFT not in h and h0[OWN_LIFT] > 0
    said = " ".join(verdict_of(new)["caveats"])
    assert "without the items the profile bought" in verdict_of(new)["comparison"]
    assert "new_items" not in said and verdict_of(new)["figures"]["offers"] == OFFER_MODES[True]
    # default mode: the suggestion when the model ranks about as the own most bought items
    import dataclasses

    for ratio, suggested in ((1.004, True), (1.2, False)):
        metrics = old.metrics.copy()
        metrics.loc["own_most_frequent", "ndcg@10"] = metrics.loc["model", "ndcg@10"] / ratio
        said = " ".join(verdict_of(dataclasses.replace(old, metrics=metrics))["caveats"])
        assert ("04_next_offer.new_items=true" in said) is suggested
        assert (f"NDCG lift {ratio:.3f}" in said) is suggested
