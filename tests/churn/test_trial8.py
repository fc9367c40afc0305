"""Trial 8 M1: churn probabilities that stay honest for the long-silent.

A clinic's patients silent more than 540 days were scored 0.34 to visit within a year; 0.10
did. The backtest's cut (``as_of - 365``) was 1.5 years into the history, so nobody there had
been silent that long: the Platt scaling's figures were carried beyond what it had seen, and
the spell model has no dropout. The scaling's dropout term (the silence in years, its weight
learned on the longest backtest horizon and shared by the shorter ones) carries the fall of the
odds of still being a customer to those silences.

The world here is not the synthetic one: a few lines of numpy. Every customer leaves for good
after an exponential lifetime (mean two years) from the first purchase, the very dropout the
term assumes, and buys until then with log-normal gaps around a usual gap of their own.
Everyone's first purchase falls in the first 300 days, so at ``as_of`` many have been silent
longer than anyone at the backtest's cut. (A world where each purchase is the last with a fixed
probability, with the same gaps, gave the term a weight the window could not tell from 0 at
3,000 and at 6,000 customers: the term is left out there and the scores are the old ones.)
"""

import numpy as np
import pandas as pd
import pytest

from cemlib.churn import ChurnModel

AS_OF = pd.Timestamp("2025-06-30")
HISTORY = 900  # days of history before as_of
HORIZON = 365


def _leaving_world(n: int = 3000, seed: int = 5, lifetime: float = 730.0, usual_gap: float = 90.0):
    """Purchases from ``as_of - HISTORY`` to ``as_of + HORIZON`` (the held-out truth)."""
    rng = np.random.default_rng(seed)
    first = rng.uniform(0, 300, n)
    leaves = first + rng.exponential(lifetime, n)  # the day the customer is gone for good
    own_gap = np.exp(rng.normal(np.log(usual_gap), 0.7, n))
    steps = 60  # purchases drawn per customer, more than any lifetime uses
    gaps = np.exp(rng.normal(np.log(own_gap)[:, None], 0.8, (n, steps)))
    gaps[:, 0] = 0.0  # the first purchase at `first`
    day = first[:, None] + np.cumsum(gaps, axis=1)
    alive = (day <= leaves[:, None]) | (np.arange(steps)[None, :] == 0)
    cust, j = np.nonzero(alive & (day <= HISTORY + HORIZON))
    return pd.DataFrame(
        {
            "customer_id": np.char.add("c", cust.astype(str)),
            "ts": AS_OF - pd.Timedelta(days=HISTORY) + pd.to_timedelta(day[cust, j], unit="D"),
            "amount": rng.gamma(3.0, 300.0, len(cust)),
        }
    )


@pytest.fixture(scope="module")
def leaving():
    tx = _leaving_world()
    m = ChurnModel(horizons=(90, HORIZON), seed=1, n_sims=20).fit(tx, as_of=AS_OF)
    s = m.predict().set_index("customer_id")
    future = tx[tx.ts > AS_OF]
    s["bought"] = s.index.isin(set(future.customer_id)).astype(float)
    return m, s


def test_the_long_silent_are_scored_near_the_share_that_comes_back(leaving):
    """Measured (seed 5): silent 366-540 days 0.059 against 0.068 that bought again, more than
    540 days 0.030 against 0.018 (without the dropout term: 0.073 and 0.056). The backtest's
    cut is 535 days into the history: nobody there had been silent longer."""
    m, s = leaving
    assert m.backtest_days_ == HORIZON
    assert m.blend_.dropout_ < 0  # the window shows the dropout: the term is kept
    longest = s["recency_days"] > 540
    year = (s["recency_days"] > 365) & (s["recency_days"] <= 540)
    assert longest.sum() > 1000 and year.sum() > 400
    gap = {}
    for name, group in (("longest", longest), ("year", year)):
        gap[name] = s.loc[group, "p_purchase"].mean() - s.loc[group, "bought"].mean()
    assert abs(gap["longest"]) < 0.025, gap  # 0.038 without the term
    assert abs(gap["year"]) < 0.05, gap
    # and the recent ones stay calibrated
    recent = s["recency_days"] <= 180
    assert abs(s.loc[recent, "p_purchase"].mean() - s.loc[recent, "bought"].mean()) < 0.03


def test_the_dropout_weight_is_learned_once_and_shared_by_the_shorter_horizon(leaving):
    """The dropout term's weight is the longest backtest horizon's; the 90-day scaling keeps
    it (learned on its own it could rise with the silence, and the step that makes
    probabilities grow with the horizon would carry that into the long one)."""
    m, s = leaving
    blend = m.blend_
    assert blend.dropout_ < 0  # the longer the silence, the fewer are still customers
    weights = {h: sc.coef_[0, -1] for h, sc in blend.probabilities_.items()}
    assert set(weights) == {90, HORIZON}
    assert weights[90] == weights[HORIZON] == blend.dropout_
    # probabilities fall with the silence among the long-silent
    by_year = s.groupby(s["recency_days"] // 365)["p_purchase"].mean()
    assert by_year.is_monotonic_decreasing


def test_scaling_with_a_fixed_dropout_weight_fits_the_rest():
    """:class:`~cemlib.churn.blend.Scaling` with the last column's weight fixed recovers the
    other weights of a logistic whose dropout weight is known."""
    from cemlib.churn.blend import Scaling

    rng = np.random.default_rng(3)
    X = np.column_stack([rng.normal(size=20_000), rng.uniform(0, 3, 20_000)])
    z = 0.5 + 1.5 * X[:, 0] - 1.2 * X[:, 1]
    y = (rng.random(20_000) < 1 / (1 + np.exp(-z))).astype(float)
    free = Scaling().fit(X, y)
    fixed = Scaling().fit(X, y, dropout=-1.2)
    assert fixed.coef_[0, 1] == -1.2
    assert abs(fixed.coef_[0, 0] - 1.5) < 0.08 and abs(fixed.intercept_[0] - 0.5) < 0.08
    assert abs(free.coef_[0, 1] + 1.2) < 0.1
    p = fixed.predict_proba(X)
    assert p.shape == (20_000, 2) and np.allclose(p.sum(axis=1), 1.0)
    assert abs(p[:, 1].mean() - y.mean()) < 0.005


def test_the_dropout_term_is_kept_only_when_the_window_shows_it():
    """:func:`~cemlib.churn.blend._dropout_or_not`: a real negative weight is kept; a silence
    that tells nothing, or one that raises the odds, leaves the scaling without the term
    (weight 0, the other weights those of a logistic without the column)."""
    from sklearn.linear_model import LogisticRegression

    from cemlib.churn.blend import Scaling, _dropout_or_not

    rng = np.random.default_rng(4)
    n = 5_000
    x, s = rng.normal(size=n), rng.uniform(0, 2, n)
    X = np.column_stack([x, s])
    for weight, kept in ((-1.0, True), (0.0, False), (1.0, False)):
        z = 1.0 + 1.2 * x + weight * s
        y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(float)
        chosen = _dropout_or_not(Scaling().fit(X, y), X, y)
        if kept:
            assert abs(chosen.coef_[0, -1] - weight) < 0.2
        else:
            assert chosen.coef_[0, -1] == 0.0
            plain = LogisticRegression(C=1e4, max_iter=1000).fit(X[:, :1], y)
            assert np.allclose(chosen.coef_[0, :1], plain.coef_[0])
