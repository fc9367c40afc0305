import datetime as dt

import pandas as pd
import pytest

from cemlib.offers.report import headlines
from cemlib.warehouse import Warehouse
from tests.warehouses import checked_world

AS_OF = "2025-06-30"


@pytest.fixture(scope="module")
def offers_wh(tmp_path_factory):
    return checked_world(tmp_path_factory.mktemp("offers") / "w.duckdb", n_people=1500, seed=5)


def test_stage_writes_next_offers_with_consented_channels_only(offers_wh):
    from cemlib.offers.stage import (
        OFFER_COLUMNS,
        profile_consent_table,
        run_stage,
    )

    with Warehouse(offers_wh) as wh:
        res = run_stage(wh, AS_OF, run_id="t", k=10, horizon_days=60, key="person", seed=2)
        mart = wh.read_table("marts", "next_offers")
        stamp = wh.stamp("marts", "next_offers")
        consent = profile_consent_table(wh, key="person").set_index("customer_id")
    assert stamp == ("t", dt.date(2025, 6, 30))
    assert list(mart.columns) == list(OFFER_COLUMNS)
    n_profiles = res.all_offers["customer_id"].nunique()
    assert len(res.all_offers) == 10 * n_profiles
    # every outbound offer uses a channel the profile consented to; the others are counted
    for ch in ("email", "sms"):
        ids = mart.loc[mart["channel"] == ch, "profile_id"].unique()
        assert consent.reindex(ids)[f"consent_{ch}"].fillna(False).all()
    assert mart["profile_id"].nunique() == res.consent.reachable
    n_off = res.consent.no_consent + res.consent.no_address
    assert res.consent.reachable + n_off == n_profiles
    assert 0 < res.consent.no_consent < n_profiles
    assert (mart["reasons"].str.len() > 0).mean() > 0.9
    # scored against the world's real future purchases: the model beats every baseline
    m = res.metrics
    assert m.loc["model", "ndcg@10"] > m.drop(index="model")["ndcg@10"].max()
    assert "synthetic truth" in res.evaluation and 0 < res.candidate_recall <= 1
    h = headlines(res)
    assert h["profiles with offers"] == n_profiles and h["lift over best baseline"] > 1
    assert pd.api.types.is_float_dtype(mart["score"])
    # reasons only for the offers written, the same as with every offer explained
    sent = set(mart["profile_id"])
    unsent = res.all_offers[~res.all_offers["customer_id"].astype(str).isin(sent)]
    assert len(unsent) == 10 * n_off and (unsent["reasons"] == "").all()
    every = res.model.recommend().set_index(["customer_id", "rank"])
    written = mart.set_index(["profile_id", "rank"])["reasons"]
    assert (every.loc[written.index, "reasons"].to_numpy() == written.to_numpy()).all()
    assert (every.loc[written.index, "item_id"].to_numpy() == mart["item_id"].to_numpy()).all()


def test_stage_on_resolved_profiles_skips_anonymous_events(offers_wh):
    from cemlib.identity.stage import run_stage as resolve
    from cemlib.offers.stage import profile_events, run_stage

    with Warehouse(offers_wh) as wh:
        resolve(wh, run_id="t", as_of=AS_OF)
        events = profile_events(wh, AS_OF, key="profile")
        n_events = int(
            wh.sql(
                "SELECT count(*) AS n FROM clean.web_events "
                "WHERE ts IS NOT NULL AND CAST(ts AS TIMESTAMP) < TIMESTAMP '2025-07-01'"
            )["n"].iloc[0]
        )
        res = run_stage(wh, AS_OF, run_id="t", k=10, horizon_days=60, key="profile", seed=2)
        mart = wh.read_table("marts", "next_offers")
    # identified + anonymous = every event dated up to as_of (defects push a few later)
    assert events["customer_id"].notna().all()
    assert len(events) + events.attrs["anonymous_events"] == n_events
    assert events.attrs["anonymous_events"] > 0
    assert (
        mart["profile_id"].notna().all() and mart["profile_id"].nunique() == res.consent.reachable
    )
    m = res.metrics
    assert m.loc["model", "ndcg@10"] > m.drop(index="model")["ndcg@10"].max()


def test_backtest_without_truth_counts_the_candidate_recall_while_scoring(offers_wh, tmp_path):
    """Own data has no future: the stage refits at as_of - horizon and scores the last window,
    its candidate recall counted on the candidates of that scoring."""
    import shutil

    from cemlib.offers.stage import run_stage

    path = tmp_path / "own.duckdb"
    shutil.copy(offers_wh, path)
    with Warehouse(path) as wh:
        wh.drop_table("truth", "future_lines")
        res = run_stage(wh, AS_OF, run_id="t", k=10, horizon_days=60, key="person", seed=2,
                        write=False)  # fmt: skip
    assert res.evaluation.startswith("backtest")
    assert 0.2 < res.candidate_recall < 1
    assert res.metrics.loc["model", "customers"] > 100
    # the backtest decides what is published: the model when it wins it, else the best baseline
    ndcg = res.metrics["ndcg@10"]
    best = ndcg.drop(index="model")
    assert res.published == ("model" if ndcg["model"] >= best.max() else best.idxmax())


def test_the_better_ranking_is_published_and_the_future_never_decides():
    from cemlib.errors import InputError
    from cemlib.offers.stage import choose_published

    metrics = pd.DataFrame(
        {"ndcg@10": [0.160, 0.164, 0.120]},
        index=["model", "global_popularity", "own_most_frequent"],
    )
    # a trial's backtest: the model 0.160 against global best sellers 0.164
    assert choose_published(metrics, 10, "auto", backtest=True) == "global_popularity"
    assert choose_published(metrics, 10, "auto", backtest=False) == "model"  # truth: future
    assert choose_published(metrics, 10, "model", backtest=True) == "model"
    assert choose_published(metrics.assign(**{"ndcg@10": [0.2, 0.164, 0.12]}), 10, "auto",
                            backtest=True) == "model"  # fmt: skip
    assert choose_published(metrics, 10, "baseline", backtest=False) == "global_popularity"
    with pytest.raises(InputError, match="publish must be one of"):
        choose_published(metrics, 10, "best", backtest=True)


def test_a_published_baseline_fills_next_offers_with_its_list(offers_wh, tmp_path):
    import shutil

    from cemlib.offers.stage import baseline_offers, run_stage

    path = tmp_path / "b.duckdb"
    shutil.copy(offers_wh, path)
    with Warehouse(path) as wh:
        res = run_stage(wh, AS_OF, run_id="t", k=10, horizon_days=60, key="person", seed=2,
                        publish="baseline")  # fmt: skip
        mart = wh.read_table("marts", "next_offers")
    assert res.published == res.metrics.drop(index="model")["ndcg@10"].idxmax()
    assert headlines(res)["published ranking"] == res.published
    # the mart is the baseline's own list for each reachable profile, rank by rank
    reach = mart["profile_id"].unique()
    expect = baseline_offers(res.published, res.model.tx_, 10, reach)
    exp = pd.DataFrame({"profile_id": expect["customer_id"].astype(str),
                        "rank": expect["rank"].astype("int64"),
                        "item_id": expect["item_id"].astype(str)})  # fmt: skip
    key = ["profile_id", "rank"]
    got = mart[[*key, "item_id"]].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, exp.sort_values(key).reset_index(drop=True))
    assert len(reach) == res.consent.reachable > 100
    assert mart["reasons"].ne("").all()


def test_web_events_without_the_optional_sku_and_category_are_read_as_null(offers_wh, tmp_path):
    """Trial 7 H1: a portal export without ``category`` (and ``sku``), both optional in
    docs/own-data.md, is read with those columns NULL: the same events, the stage runs."""
    import shutil

    from cemlib.offers.stage import profile_events, run_stage

    path = tmp_path / "no_category.duckdb"
    shutil.copy(offers_wh, path)
    with Warehouse(path) as wh:
        full = profile_events(wh, AS_OF, key="person")
        for schema in ("staging", "clean"):
            wh.con.execute(f"ALTER TABLE {schema}.web_events DROP COLUMN category")
        no_cat = profile_events(wh, AS_OF, key="person")
        for schema in ("staging", "clean"):
            wh.con.execute(f"ALTER TABLE {schema}.web_events DROP COLUMN sku")
        bare = profile_events(wh, AS_OF, key="person")
        res = run_stage(wh, AS_OF, run_id="t", k=10, horizon_days=60, key="person", seed=2,
                        write=False)  # fmt: skip
    assert full["category"].notna().sum() > 1000 and full["item_id"].notna().sum() > 1000
    # the same events, only the missing columns empty
    assert len(no_cat) == len(bare) == len(full)
    assert no_cat["category"].isna().all() and bare["item_id"].isna().all()
    assert (no_cat["item_id"].fillna("") == full["item_id"].fillna("")).all()
    assert (bare["event_type"] == full["event_type"]).all()
    assert (
        res.extras["events"] and len(res.all_offers) == 10 * res.all_offers["customer_id"].nunique()
    )
    assert res.metrics.loc["model", "customers"] > 100


def test_baselines_are_graded_without_the_excluded_items():
    """Trial 7 M2: an item kept out of the offers is neither in the baselines' lists nor in
    their truth; an item every customer buys otherwise gives every ranking a hit."""
    from cemlib.offers.metrics import evaluate
    from cemlib.offers.stage import baseline_metrics, baseline_offers
    from tests.offers.conftest import make_transactions

    tx = make_transactions(300, seed=3)
    # a top-up every customer buys every month, history and window alike
    start = tx["ts"].min()
    topups = pd.DataFrame(
        [
            (c, start + pd.Timedelta(days=30 * m), "TOPUP", 1, 5.0)
            for c in tx["customer_id"].unique()
            for m in range(8)
        ],  # fmt: skip
        columns=tx.columns,
    )
    tx = pd.concat([tx, topups], ignore_index=True)
    cut = tx["ts"].max() - pd.Timedelta(days=60)
    history = tx[tx["ts"] <= cut].assign(basket_id=lambda d: d["customer_id"] + d["ts"].astype(str))
    truth = tx[tx["ts"] > cut][["customer_id", "item_id"]]
    customers = history["customer_id"].unique()
    counted = baseline_metrics(truth, history, customers, 10)
    graded = baseline_metrics(truth, history, customers, 10, exclude={"TOPUP"})
    # with the top-up counted every ranking hits it: hit rate 1 for the best sellers
    assert counted["global_popularity"]["hitrate@10"] == 1.0
    real = truth[truth["item_id"] != "TOPUP"]
    assert graded["global_popularity"]["customers"] == real["customer_id"].nunique()
    assert graded["global_popularity"]["customers"] < counted["global_popularity"]["customers"]
    for name, row in graded.items():
        lists = baseline_offers(name, history, 10, customers, exclude={"TOPUP"})
        assert not (lists["item_id"] == "TOPUP").any()
        assert lists.groupby("customer_id").size().le(10).all()
        expect = evaluate(lists, real, k=10, history=history, customers=customers)
        assert row["ndcg@10"] == pytest.approx(expect["ndcg@10"], abs=1e-12)
        assert row["hitrate@10"] < 1.0 and row["hitrate@10"] < counted[name]["hitrate@10"]


def test_the_backtest_and_publish_choice_leave_the_excluded_item_out(offers_wh, tmp_path):
    """With ``exclude``, the backtest's lists and truth are without the excluded item: the
    graded customers are those with another purchase in the window, and the published ranking
    is chosen on those figures."""
    import shutil

    from cemlib.marts.transactions import profile_transactions
    from cemlib.offers.stage import run_stage

    path = tmp_path / "ex.duckdb"
    shutil.copy(offers_wh, path)
    with Warehouse(path) as wh:
        wh.drop_table("truth", "future_lines")
        tx = profile_transactions(wh, AS_OF, key="person")
        back = pd.Timestamp(AS_OF) - pd.Timedelta(days=60)
        window = tx[tx["ts"] >= back + pd.Timedelta(days=1)]
        had = set(tx.loc[tx["ts"] < back + pd.Timedelta(days=1), "customer_id"])
        # the item most often the only one a customer bought in the window
        mine = window[window["customer_id"].isin(had)].groupby("customer_id")["item_id"]
        only = mine.agg(lambda v: v.iloc[0] if v.nunique() == 1 else None).dropna()
        top = only.value_counts().idxmax()
        res = run_stage(wh, AS_OF, run_id="t", k=10, horizon_days=60, key="person", seed=2,
                        write=False, exclude=[top])  # fmt: skip
    window = window[window["customer_id"].isin(had)]
    graded = window.loc[window["item_id"] != top, "customer_id"].nunique()
    assert graded < window["customer_id"].nunique()
    assert (res.metrics["customers"] == graded).all()
    assert not (res.all_offers["item_id"] == top).any()
    ndcg = res.metrics["ndcg@10"]
    best = ndcg.drop(index="model")
    assert res.published == ("model" if ndcg["model"] >= best.max() else best.idxmax())
