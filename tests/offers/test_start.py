"""The choice of the ranker's start: per-query NDCG, the paired test and the fitted choice."""

import numpy as np
import pandas as pd
import pytest

from cemlib.offers import start
from cemlib.offers.training import WindowData, lgb_params


def test_query_ndcg_by_hand():
    # query 0: the one positive ranked 2nd of 3 -> 1/log2(3); query 1: positive first -> 1;
    # query 2: no positive -> 0; equal scores keep the row order (query 3: positive 2nd)
    scores = np.array([3, 2, 1, 5, 4, 1, 1, 0.5, 0.5])
    labels = np.array([0, 1, 0, 1, 0, 0, 0, 0, 1])
    got = start.query_ndcg(scores, labels, np.array([3, 2, 2, 2]), k=10)
    assert got == pytest.approx([1 / np.log2(3), 1.0, 0.0, 1 / np.log2(3)])
    # cut at k: the positive at rank 3 counts nothing at k = 2
    assert start.query_ndcg(np.array([3.0, 2, 1]), np.array([0, 0, 1]), np.array([3]), k=2)[0] == 0


def _window_evidence(rng, noise_plain: float, noise_prior: float, n_q=3000, rows=20):
    """Per-query NDCG of two rankers of a validation window: true relevance plus noise of the
    given sizes (the less noise, the better the ranker)."""
    truth = rng.normal(size=n_q * rows)
    labels = (truth + rng.normal(size=len(truth)) > 2.0).astype(np.int8)
    groups = np.full(n_q, rows)
    return tuple(
        start.query_ndcg(truth + rng.normal(scale=s, size=len(truth)), labels, groups)
        for s in (noise_plain, noise_prior)
    )


def test_the_start_better_over_both_windows_wins():
    rng = np.random.default_rng(7)
    # plain a little better in one window, the prior much better in the other: the prior
    # (one window alone would have chosen plain)
    slightly = _window_evidence(rng, 0.9, 1.0)
    much = _window_evidence(rng, 1.5, 0.7)
    assert slightly[0].mean() > slightly[1].mean() and not start.prior_wins([slightly])
    assert start.prior_wins([slightly, much])
    # plain better in both windows: plain, whatever the order of the windows
    both = _window_evidence(rng, 0.5, 1.0)
    assert not start.prior_wins([slightly, both]) and not start.prior_wins([both, slightly])
    # the prior better in both: the prior; no difference at all: plain (ties)
    assert start.prior_wins([much, _window_evidence(rng, 1.0, 0.5)])
    assert not start.prior_wins([(slightly[0], slightly[0])])
    assert start.paired_z(both[1], both[0]) > 5  # plain's gain there is far beyond chance


def _window(rng, n_q: int, rows: int) -> WindowData:
    """Candidates of ``n_q`` customers whose label follows GP-TopFreq's signals through the
    prior's own model (a logistic in share, ln(1 + baskets), ln(1 + buyers)); ``x`` is noise."""
    n = n_q * rows
    share, nb, cust, x = (
        rng.random(n),
        rng.integers(0, 20, n),
        rng.integers(1, 500, n),
        rng.random(n),
    )
    logit = 4 * share + 0.5 * np.log1p(nb) + 0.4 * np.log1p(cust) - 6
    label = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    f = pd.DataFrame(
        {
            "c": np.repeat(np.arange(n_q), rows),
            "i": np.tile(np.arange(rows), n_q),
            "ci_share": share,
            "ci_n_b": nb.astype(float),
            "it_n_cust": cust.astype(float),
            "x": x,
            "label": label,
        }
    )
    f = f[f.groupby("c")["label"].transform("max") > 0].reset_index(drop=True)
    return WindowData(pd.Timestamp("2025-01-01"), f, f.groupby("c").size().to_numpy())


@pytest.mark.parametrize("seed", [0, 1])
def test_a_world_of_the_priors_own_signals_starts_from_the_prior(seed):
    rng = np.random.default_rng(seed)
    train, valid = _window(rng, 400, 20), _window(rng, 400, 20)
    names = ["ci_share", "ci_n_b", "it_n_cust", "x"]
    params = lgb_params(train, valid, {"min_data_in_leaf": 20}, seed)
    prior, result, seen = start.train_from_chosen_start(train, valid, names, params, 100, 20)
    # the prior start wins over both windows
    assert seen["prior"] + seen["prior_back"] > seen["plain"] + seen["plain_back"]
    assert prior.coef_[0] == pytest.approx(4, abs=0.6)  # the world's own share coefficient
    # the winner's start is left on the windows, and the validation NDCG is the prior start's
    assert np.allclose(valid.frame["_prior"], prior(valid.frame))
    assert result[2] == seen["prior"]


def test_the_higher_mean_rule_kept_for_the_variants_benchmark():
    """``offers_variants.py --prior mean``: the rule before, the validation window alone (it
    left the package for that benchmark)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from offers_variants import higher_mean_start

    rng = np.random.default_rng(3)
    train, valid = _window(rng, 400, 20), _window(rng, 400, 20)
    names = ["ci_share", "ci_n_b", "it_n_cust", "x"]
    params = lgb_params(train, valid, {"min_data_in_leaf": 20}, 3)
    prior, result, seen = higher_mean_start(train, valid, names, params, 100, 20)
    assert set(seen) == {"plain", "prior"}
    # the start with the higher validation NDCG is kept, and its start left on the windows
    won = "prior" if prior.coef_.any() else "plain"
    assert seen[won] == max(seen.values()) and result[2] == seen[won]
    assert np.allclose(valid.frame["_prior"], prior(valid.frame))


def test_a_sample_of_a_window_keeps_every_kind_of_query_and_all_its_rows():
    rng = np.random.default_rng(5)
    # 1,000 queries: 600 with one positive in 10 rows, 300 with two in 20 rows, 100 with five
    kinds = [(600, 1, 10), (300, 2, 20), (100, 5, 30)]
    parts, c = [], 0
    for n, pos, rows in kinds:
        for _ in range(n):
            label = np.zeros(rows, dtype=np.int8)
            label[rng.choice(rows, pos, replace=False)] = 1
            parts.append(pd.DataFrame({"c": c, "i": np.arange(rows), "label": label}))
            c += 1
    f = pd.concat(parts, ignore_index=True)
    w = WindowData(pd.Timestamp("2025-01-01"), f, f.groupby("c").size().to_numpy())
    s = start.sample_window(w, 100, np.random.default_rng(0))
    assert len(s.groups) == 100 and s.n_customers == 100
    pos = s.frame.groupby("c")["label"].sum()
    # stratified: exactly the population's shares of each kind (60 / 30 / 10)
    assert pos.value_counts().to_dict() == {1: 60, 2: 30, 5: 10}
    # every sampled query keeps all its rows, in order
    assert (s.groups == w.groups[np.unique(s.frame["c"])]).all()
    assert s.groups.sum() == len(s.frame) == 60 * 10 + 30 * 20 + 10 * 30
    # a sample as large as the window is the window itself
    assert start.sample_window(w, 1000, rng) is w


def test_a_large_window_is_decided_on_a_sample_then_the_winner_trained_on_all(monkeypatch):
    monkeypatch.setattr(start, "FIRST_SAMPLE", 200)  # windows of ~1,000 queries are "large"
    rng = np.random.default_rng(2)
    train, valid = _window(rng, 1000, 20), _window(rng, 1000, 20)
    names = ["ci_share", "ci_n_b", "it_n_cust", "x"]
    params = lgb_params(train, valid, {"min_data_in_leaf": 20}, 2)
    prior, result, seen = start.train_from_chosen_start(train, valid, names, params, 100, 20)
    # the world follows the prior's own model: a sample of 200 queries per window decides
    assert seen["sample"] == 200 and seen["z"] >= start.DECISIVE_Z
    assert prior.coef_.any() and np.allclose(valid.frame["_prior"], prior(valid.frame))
    # the winner is the prior start trained on the whole windows, as without the samples
    again = start._early_stopped(
        train, valid, names, params, 100, 20, True, start.window_datasets(train, valid, names)
    )
    assert result[1] == again[1][1] and result[2] == pytest.approx(again[1][2])
    assert result[0].num_trees() == again[1][0].num_trees()


def test_no_decisive_sample_leaves_the_choice_to_the_whole_windows(monkeypatch):
    monkeypatch.setattr(start, "FIRST_SAMPLE", 200)
    monkeypatch.setattr(start, "DECISIVE_Z", np.inf)  # no sample can decide
    rng = np.random.default_rng(11)
    train, valid = _window(rng, 1000, 20), _window(rng, 1000, 20)
    names = ["ci_share", "ci_n_b", "it_n_cust", "x"]
    params = lgb_params(train, valid, {"min_data_in_leaf": 20}, 11)
    assert start.decide_on_samples(train, valid, names, params, 100, 20) is None
    prior, result, seen = start.train_from_chosen_start(train, valid, names, params, 100, 20)
    assert set(seen) == {"plain", "prior", "plain_back", "prior_back"}
    assert seen["prior"] + seen["prior_back"] > seen["plain"] + seen["plain_back"]
    assert result[2] == seen["prior"]
    # windows smaller than four first samples are never sampled
    monkeypatch.setattr(start, "FIRST_SAMPLE", 300)
    monkeypatch.setattr(start, "DECISIVE_Z", 0.0)
    assert start.decide_on_samples(train, valid, names, params, 100, 20) is None
