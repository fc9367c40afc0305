"""The repeat-heavy synthetic world (``BehaviourParams.reorder_share``) and the ranker on it."""

import numpy as np
import pandas as pd
import pytest

from cemlib.offers import NextOfferModel, all_baselines, evaluate
from cemlib.offers.world import frames_from_world
from cemlib.synth import SynthConfig, generate

from .conftest import AS_OF

REPEAT = SynthConfig().with_rates(reorder_share=0.6)


@pytest.fixture(scope="module")
def repeat_frames():
    return frames_from_world(generate(1200, seed=5, config=REPEAT))


def test_the_setting_off_leaves_the_world_unchanged():
    a = generate(300, seed=2)
    b = generate(300, seed=2, config=SynthConfig().with_rates(reorder_share=0.0))
    for name in a.sources:
        pd.testing.assert_frame_equal(a.sources[name], b.sources[name])
    pd.testing.assert_frame_equal(a.truth["future_lines"], b.truth["future_lines"])


def test_reorders_make_repeat_buying_dominate_on_cycles(repeat_frames, world_frames):
    def repeat_share(f):
        hist = f["transactions"]
        fut = f["future"][f["future"]["ts"] < AS_OF + pd.Timedelta(days=61)]
        seen = hist[["customer_id", "item_id"]].drop_duplicates().assign(seen=True)
        pairs = fut[["customer_id", "item_id"]].drop_duplicates().merge(seen, how="left")
        return pairs["seen"].eq(True).mean()

    assert repeat_share(world_frames) < 0.35 < 0.6 < repeat_share(repeat_frames)
    # a re-ordered staple comes back on a cycle: the median gap between two purchases of the
    # same item by the same customer is near the 21-day re-order cycle (x 1..4 sub-cycles)
    tx = repeat_frames["transactions"]
    days = tx.assign(d=tx["ts"].dt.normalize()).drop_duplicates(["customer_id", "item_id", "d"])
    gaps = days.sort_values("d").groupby(["customer_id", "item_id"])["d"].diff().dt.days.dropna()
    assert len(gaps) > 20_000
    assert 15 <= np.median(gaps) <= 50


def test_model_beats_tifu_knn_and_every_baseline_on_the_repeat_world(repeat_frames):
    f = repeat_frames
    model = NextOfferModel(horizon_days=30, seed=3, n_estimators=150)
    model.fit(f["transactions"], AS_OF, events=f["events"], items=f["items"])
    recs = model.recommend(explain=False)
    fut = f["future"][f["future"]["ts"] < AS_OF + pd.Timedelta(days=31)]
    hist = model.tx_
    custs = hist["customer_id"].unique()
    res = evaluate(recs, fut, k=10, history=hist, customers=custs)
    base = {
        n: evaluate(b, fut, k=10, history=hist, customers=custs)["ndcg@10"]
        for n, b in all_baselines(hist, 10, custs).items()
    }
    assert res["customers"] > 300 and res["repeat_share"] > 0.6
    assert base["tifu_knn"] > base["personal_then_popular"]  # the strong baseline is strong
    assert res["ndcg@10"] >= 1.10 * max(base.values()), (res["ndcg@10"], base)
