"""The three views of ChurnModel, each asked on its own (fitted inside the session's model)."""

import numpy as np
import pandas as pd

from cemlib.churn.features import purchase_occasions
from cemlib.churn.views import BoosterView, DropoutView

from .conftest import AS_OF


def test_spell_view_probabilities_are_its_survival_curves(fitted):
    spell = fitted.spell_
    sim = spell.predict([30, 90])
    curves = spell.survival_curves([30, 90])
    # the closed-form purchase probability within h days is one minus the survival to h
    np.testing.assert_allclose(sim["p_30"], 1 - curves[30.0].to_numpy(), atol=1e-9)
    np.testing.assert_allclose(sim["p_90"], 1 - curves[90.0].to_numpy(), atol=1e-9)
    assert (sim["p_90"] >= sim["p_30"] - 1e-12).all()
    # simulated counts grow with the horizon, and the discounted ones never exceed them
    assert (sim["count_90"] >= sim["count_30"]).all()
    assert (sim["disc_90"] <= sim["count_90"] + 1e-9).all()
    assert len(sim["p_30"]) == len(spell.state_) == 400


def test_dropout_view_knows_who_has_stopped(world, fitted):
    tx, _, truth = world
    view = fitted.dropout_view_
    customers = fitted.state_.index
    out = view.predict(customers, [90])
    alive = pd.Series(out["bg_alive"], index=customers)
    dead = truth.set_index("person_id")["true_dropout_date"].reindex(customers) <= AS_OF
    # the customers truly gone by as_of are, on average, much less alive to the BG/NBD
    assert alive[dead].mean() < 0.6 * alive[~dead].mean()
    # the time profile is one at the window's own length (where the window's expected count is
    # not vanishing: long-gone heavy buyers expect ~1e-13) and grows with the horizon
    profile = view.time_profile(customers, 90, [90, 365])
    base = view.model_.expected_purchases(view.rfm_.reindex(customers), 90)
    live = base > 1e-12
    assert live.sum() > 300
    np.testing.assert_allclose(profile[90][live], 1.0)
    assert (profile[365][live] >= 1.0 - 1e-9).all()


def test_dropout_view_without_a_model_stretches_linearly(world):
    tx, _, _ = world
    occ = purchase_occasions(tx.assign(ts=pd.to_datetime(tx["ts"])), AS_OF)
    off = DropoutView(enabled=False).fit(occ, AS_OF)
    assert off.model_ is None
    assert off.time_profile(pd.Index(["c0001"]), 90, [30, 180]) == {30: 30 / 90, 180: 2.0}
    # too few repeat buyers: no model either
    assert DropoutView(min_repeaters=10**6).fit(occ, AS_OF).model_ is None
    assert DropoutView().fit(occ, AS_OF).model_ is not None


def test_booster_view_stretches_its_window_counts():
    rng = np.random.default_rng(3)
    x = rng.gamma(1.0, 1.0, 1000)
    features = pd.DataFrame({"rate": x})
    view = BoosterView(seed=0).fit(features, rng.poisson(2 * x), window=60)
    assert view.window_ == 60
    out = view.predict(features, {60: 1.0, 120: 2.0})
    np.testing.assert_allclose(out["lgb_120"], 2 * out["lgb_60"])
    assert abs(out["lgb_60"].mean() / (2 * x).mean() - 1) < 0.1


def test_blend_matches_the_backtest_total(fitted):
    bt = fitted.blend_.backtest_
    # a Poisson GLM with an intercept reproduces the window's total on its own customers
    assert abs(bt["predicted"].sum() / bt["actual"].sum() - 1) < 0.01
    assert fitted.blend_.window_ == fitted.backtest_days_
    p = fitted.predict()
    assert p["p_purchase_90"].between(0, 1).all()


def test_lazy_survival_curves_are_the_table_row_for_row(world, fitted):
    """The curves the evaluations read block by block are the survival table itself, in any
    customer order, and give the same figures as the whole table."""
    from cemlib.churn.evaluate import brier_scores, evaluate_predictions

    tx, _, _ = world
    times = np.arange(1, 366)
    table = fitted.survival_curves(times)
    lazy = fitted.curves(times)
    assert lazy.shape == table.shape == (400, 365)
    np.testing.assert_array_equal(lazy.rows(np.array([5, 0, 399])), table.to_numpy()[[5, 0, 399]])
    # blocks of 150 customers make up the same table
    whole = np.vstack([rows for _, rows in lazy.blocks(150)])
    np.testing.assert_array_equal(whole, table.to_numpy())
    # reindexed to another order with an unknown customer, and relabelled
    order = ["c0399", "nobody", "c0007"]
    again = lazy.reindex(order).rows(slice(None))
    np.testing.assert_array_equal(again[[0, 2]], table.loc[["c0399", "c0007"]].to_numpy())
    assert np.isnan(again[1]).all()
    named = lazy.reindex(["c0003", "c0001"]).set_axis(["x", "y"])
    assert list(named.index) == ["x", "y"]
    np.testing.assert_array_equal(named.rows([1]), table.loc[["c0001"]].to_numpy())
    # the evaluation's figures are the same from both
    pred = fitted.predict()
    future = tx[tx["ts"] > AS_OF]
    a = evaluate_predictions(pred, future, AS_OF, 365, table)
    b = evaluate_predictions(pred, future, AS_OF, 365, lazy)
    assert a["td_concordance"] == b["td_concordance"] and 0.6 < a["td_concordance"] < 1.0
    assert a["integrated_brier"] == b["integrated_brier"] and 0.0 < a["integrated_brier"] < 0.3
    pd.testing.assert_series_equal(brier_scores(table, np.full(400, 365.0)),
                                   brier_scores(lazy, np.full(400, 365.0)))  # fmt: skip


def test_simulated_counts_of_memoryless_gaps_are_the_renewal_rate():
    # gaps drawn exponential with a mean of 20 days, whatever the customer's history: the
    # simulation (many purchases per path over a year, paths dropped as they pass the horizon)
    # must count h / 20 purchases in h days, and discount them as the continuous rate would
    from cemlib.churn.gaps import GapModel, spell_table

    rng = np.random.default_rng(11)
    cut = pd.Timestamp("2025-06-30")
    n, mean_gap = 3000, 20.0
    rows = []
    for i in range(n):
        t = -rng.uniform(0, 400)
        days = []
        while t < 0:
            days.append(t)
            t += rng.exponential(mean_gap)
        rows += [(f"c{i:05d}", cut + pd.Timedelta(days=int(np.floor(d)))) for d in days]
    occ = pd.DataFrame(rows, columns=["customer_id", "day"]).drop_duplicates()
    occ["amount"] = 10.0
    spells = spell_table(occ, cut)
    model = GapModel(families=("weibull",), ancillary=False, seed=3).fit(spells)
    state = spells.groupby("customer_id", sort=True).tail(1).set_index("customer_id")
    sim = model.simulate(state, state["duration"].to_numpy(), [30, 365], 0.1, n_sims=50)
    for h in (30, 365):
        assert abs(sim[f"count_{h}"].mean() / (h / mean_gap) - 1) < 0.05
    # the discount: exp(-delta t) averaged over a uniform purchase time in the year
    delta = np.log1p(0.1) / 365.0
    factor = (1 - np.exp(-delta * 365)) / (delta * 365)
    assert abs(sim["disc_365"].sum() / sim["count_365"].sum() / factor - 1) < 0.01
    assert (sim["disc_365"] <= sim["count_365"] + 1e-9).all()
