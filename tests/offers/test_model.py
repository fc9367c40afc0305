import numpy as np
import pandas as pd
import pytest

from cemlib.errors import InputError
from cemlib.offers import NextOfferModel, all_baselines, candidate_recall, evaluate
from cemlib.offers.explain import contributions, shap_values

from .conftest import AS_OF


@pytest.fixture(scope="module")
def fitted_world(world_frames):
    f = world_frames
    model = NextOfferModel(horizon_days=60, seed=3, n_estimators=150)
    model.fit(f["transactions"], AS_OF, events=f["events"], items=f["items"])
    recs = model.recommend()
    return model, recs


def test_model_beats_every_baseline_on_the_synthetic_world(world_frames, fitted_world):
    model, recs = fitted_world
    fut = world_frames["future"]
    fut = fut[fut["ts"] < AS_OF + pd.Timedelta(days=61)]
    hist = model.tx_
    custs = hist["customer_id"].unique()
    res = evaluate(recs, fut, k=10, history=hist, customers=custs)
    base = {
        n: evaluate(b, fut, k=10, history=hist, customers=custs)
        for n, b in all_baselines(hist, 10, custs).items()
    }
    best = max(b["ndcg@10"] for b in base.values())
    assert res["customers"] > 300
    assert res["ndcg@10"] >= 1.10 * best, (
        res["ndcg@10"],
        {n: b["ndcg@10"] for n, b in base.items()},
    )
    # new items are where the baselines are blind: own-most-frequent cannot recommend them
    assert base["own_most_frequent"]["new_recall@10"] == 0.0
    assert res["new_recall@10"] > base["personal_then_popular"]["new_recall@10"]
    # candidates find more of the future purchases than the customer's own history alone
    cands = model.candidate_frame()
    rec_all = candidate_recall(cands, fut, customers=custs)
    rec_own = candidate_recall(cands[cands["src_repeat"] == 1], fut, customers=custs)
    assert 0 < rec_own < rec_all <= 1
    # the same figure counted chunk by chunk on integer codes, without the features frame
    small = NextOfferModel(horizon_days=60, seed=3)
    small.__dict__.update(model.__dict__)
    small.chunk_size = 97  # several chunks
    assert small.candidate_recall(fut, customers=custs) == pytest.approx(rec_all, abs=1e-12)
    # and counted on the candidates scoring builds anyway (the stage's single pass)
    small.recommend(explain=False, recall_of=fut, recall_customers=custs)
    assert small.scored_recall_ == pytest.approx(rec_all, abs=1e-12)
    assert (
        model.split_ == "time"
        and model.windows_["train"]["cutoff"] < model.windows_["validation"]["cutoff"]
    )


def test_every_customer_with_history_gets_k_distinct_offers_with_reasons(fitted_world):
    model, recs = fitted_world
    n_hist = model.tx_["customer_id"].nunique()
    assert recs["customer_id"].nunique() == n_hist
    assert len(recs) == 10 * n_hist
    assert (
        recs.groupby("customer_id")["rank"].apply(lambda r: sorted(r) == list(range(1, 11))).all()
    )
    assert not recs.duplicated(["customer_id", "item_id"]).any()
    # scores fall with rank
    assert (
        recs.sort_values(["customer_id", "rank"]).groupby("customer_id")["score"].diff().dropna()
        <= 1e-9
    ).all()
    assert (recs["reasons"].str.len() > 0).mean() > 0.9
    assert (
        recs["reasons"]
        .str.contains("browsed|viewed|bought|together|popular|best seller|season")
        .mean()
        > 0.9
    )
    assert model.importance_["mean_abs_shap"].iloc[0] > 0


def test_rows_after_as_of_change_nothing_and_seed_fixes_the_result(transactions):
    kw = dict(horizon_days=30, seed=5, n_estimators=40, k=5)
    a = NextOfferModel(**kw).fit(transactions, "2025-05-31").recommend(explain=False)
    later = transactions[transactions["ts"] > pd.Timestamp("2025-05-31 23:59:59")]
    assert len(later) > 100
    noisy = pd.concat([transactions, later.assign(item_id="LEAK")])
    b = NextOfferModel(**kw).fit(noisy, "2025-05-31").recommend(explain=False)
    pd.testing.assert_frame_equal(a, b)
    assert "LEAK" not in set(b["item_id"])
    assert b.groupby("customer_id").size().eq(5).all()


def test_category_granularity_and_customer_subset(transactions):
    tx = transactions.assign(category="cat" + transactions["item_id"].str[1])
    m = NextOfferModel(granularity="category", horizon_days=30, k=3, n_estimators=30, seed=1).fit(
        tx, "2025-06-30"
    )
    recs = m.recommend(customers=["C0001", "C0002", "nobody"])
    assert set(recs["customer_id"]) == {"C0001", "C0002"}
    assert set(recs["item_id"]) <= set(tx["category"]) and len(recs) == 6


def test_too_little_history_is_an_input_error(transactions):
    tiny = transactions.head(3)
    with pytest.raises(InputError, match="too little history"):
        NextOfferModel(horizon_days=30).fit(tiny, "2025-06-30")
    with pytest.raises(InputError, match="no purchases"):
        NextOfferModel().fit(transactions, "1990-01-01")


def test_reason_shap_values_agree_with_shap_tree_explainer(fitted_world):
    # reasons use LightGBM's own TreeSHAP (pred_contrib); it must equal shap.TreeExplainer's
    model, _ = fitted_world
    X = model.shap_sample_.iloc[:300].to_numpy(np.float32)
    X[:5] = np.nan  # padded offers carry missing features
    fast = contributions(model.booster_, X, num_threads=2)
    ref = shap_values(model.explainer_, X)
    assert fast.shape == ref.shape == (300, len(model.feature_names_))
    np.testing.assert_allclose(fast, ref, rtol=1e-4, atol=1e-6)
    # local accuracy: contributions + expected value = the ranking score
    raw = model.booster_.predict(X)
    np.testing.assert_allclose(fast.sum(axis=1) + model.explainer_.expected_value, raw, atol=1e-4)
    assert np.abs(fast).sum() > 0
    # the per-tree tables used by recommend give LightGBM's values
    assert model.shap_tables_ is not None
    tabled = contributions(model.booster_, X, tables=model.shap_tables_)
    np.testing.assert_allclose(tabled, fast, rtol=0, atol=1e-9)
    # and the compiled scoring of recommend gives LightGBM's scores bit for bit
    assert model.forest_ is not None
    assert np.array_equal(model.forest_.predict(X), raw)


def test_unsorted_scoring_features_are_the_sorted_rows(fitted_world):
    from cemlib.offers.candidates import CandidateConfig, build_candidates
    from cemlib.offers.features import build_features

    model, recs = fitted_world
    snap, hist, _ = model._scoring_snapshot(None, 10)
    cand = build_candidates(snap, model._query_table(snap, hist), CandidateConfig())
    ordered = build_features(snap, cand)
    loose = build_features(snap, cand, ordered=False)
    snap.drop()
    assert len(loose) == len(ordered) > 10 * len(hist)
    keys = ordered["c"].to_numpy() * (ordered["i"].max() + 1) + ordered["i"].to_numpy()
    assert np.all(np.diff(keys) > 0)  # ordered: by customer, then item, no pair twice
    back = loose.sort_values(["c", "i"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(back, ordered)
    # scored twice from unsorted rows (DuckDB free to order them anew): the same offers, bit for bit
    again = model.recommend()
    pd.testing.assert_frame_equal(again, recs)
