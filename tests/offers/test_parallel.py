"""Stage 04 on several cores: the same results as on one, and the worker count from the budget."""

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from cemlib import budget
from cemlib.offers import parallel, start
from cemlib.offers.training import DEFAULT_PARAMS, lgb_params
from cemlib.warehouse import Warehouse
from tests.offers.conftest import ranker_data
from tests.offers.test_start import _window
from tests.warehouses import checked_world

AS_OF = "2025-06-30"
GIB = 1024**3
two_cores = pytest.mark.skipif(budget.usable_cpus() < 2, reason="needs two usable cores")


@pytest.fixture(scope="module")
def small_wh(tmp_path_factory):
    return checked_world(tmp_path_factory.mktemp("par") / "w.duckdb", n_people=400, seed=8)


def _stage(path, workers: int, monkeypatch):
    from cemlib.offers.stage import run_stage

    monkeypatch.setenv(budget.WORKERS_ENV, str(workers))
    with Warehouse(path) as wh:
        return run_stage(wh, AS_OF, run_id="t", k=10, horizon_days=60, key="person", seed=3)


@two_cores
def test_the_stage_on_two_workers_writes_what_one_writes(small_wh, monkeypatch):
    one = _stage(small_wh, 1, monkeypatch)
    two = _stage(small_wh, 2, monkeypatch)
    assert (one.model.workers_, two.model.workers_) == (1, 2)
    # truth and consent read beside the fit, the baselines ranked beside recommend: the same
    # offers, reasons, metric table and candidate recall
    assert len(one.offers) > 0 and one.offers["profile_id"].nunique() == one.consent.reachable
    pd.testing.assert_frame_equal(one.offers, two.offers)
    pd.testing.assert_frame_equal(one.all_offers, two.all_offers)
    pd.testing.assert_frame_equal(one.metrics, two.metrics)
    assert list(one.metrics.index)[0] == "model" and len(one.metrics) == 6
    assert one.candidate_recall == two.candidate_recall and one.published == two.published
    assert one.model.validation_by_start_ == two.model.validation_by_start_


def test_the_start_trainings_side_by_side_equal_one_after_the_other():
    rng = np.random.default_rng(4)
    train, valid = _window(rng, 300, 20), _window(rng, 300, 20)
    names = ["ci_share", "ci_n_b", "it_n_cust", "x"]
    params = lgb_params(train, valid, {"min_data_in_leaf": 20}, 4)
    before = valid.frame.copy()
    runs2, back2 = start._four_trainings(train, valid, names, params, 80, 15, workers=2)
    # side by side, the windows are only read
    pd.testing.assert_frame_equal(valid.frame, before)
    runs1, back1 = start._four_trainings(train, valid, names, params, 80, 15, workers=1)
    for use in (False, True):
        np.testing.assert_array_equal(back1[use], back2[use])
        np.testing.assert_array_equal(runs1[use][2], runs2[use][2])  # per-query NDCG
        (b1, it1, v1, _), (b2, it2, v2, _) = runs1[use][1], runs2[use][1]
        assert it1 == it2 and v1 == v2 and 0 < v1 < 1
        assert _trees(b1) == _trees(b2)
    # the prior start differs from the plain one, so the comparison above is not vacuous
    assert not np.array_equal(runs1[False][2], runs1[True][2])


def _trees(booster) -> str:
    text = booster.model_to_string()
    return text[: text.find("parameters:")]


def test_lightgbm_grows_the_same_trees_on_one_thread_or_two():
    X, y = ranker_data(3000, seed=9)
    params = {**DEFAULT_PARAMS, "min_data_in_leaf": 20, "seed": 9}
    got = []
    for threads in (1, 2):
        data = lgb.Dataset(X, y, group=[20] * (len(X) // 20), init_score=np.sin(np.arange(len(X))))
        got.append(_trees(lgb.train({**params, "num_threads": threads}, data, 30)))
    assert got[0] == got[1] and got[0].count("Tree=") == 30


def test_lightgbm_threads_only_on_large_windows(monkeypatch):
    rng = np.random.default_rng(0)
    train, valid = _window(rng, 100, 20), _window(rng, 100, 20)
    assert lgb_params(train, valid, None, 0, workers=2)["num_threads"] == 1
    monkeypatch.setattr("cemlib.offers.training.THREADS_FROM_ROWS", 100)
    monkeypatch.setattr(parallel, "idle_cores", lambda: 2)
    assert lgb_params(train, valid, None, 0, workers=2)["num_threads"] == 2
    # a busy machine: no OpenMP thread beyond the idle cores (waiting threads spin)
    monkeypatch.setattr(parallel, "idle_cores", lambda: 1)
    assert lgb_params(train, valid, None, 0, workers=2)["num_threads"] == 1
    assert lgb_params(train, valid, None, 0, workers=1)["num_threads"] == 1
    assert lgb_params(train, valid, {"num_threads": 3}, 0, workers=2)["num_threads"] == 3


def test_the_workers_come_from_the_cores_and_the_memory_budget(monkeypatch):
    monkeypatch.delenv(budget.WORKERS_ENV, raising=False)
    cores = budget.usable_cpus()
    cost = budget.COSTS[parallel.STAGE]
    # 200,000 people (5.4 M input rows, about 2.6 GiB estimated): a 4 GiB budget holds a
    # second worker's 0.5 GiB, a budget just over the stage's own estimate does not
    rows = 5_438_509
    monkeypatch.setenv(budget.MEMORY_ENV, str(4 * GIB))
    assert parallel.workers(rows) == min(cores, 3)
    monkeypatch.setenv(budget.MEMORY_ENV, str(int(cost.estimate(rows) + 100 * 1024**2)))
    assert parallel.workers(rows) == 1
    # a million people (5x the rows): the stage alone is estimated at about 8.1 GiB, so an
    # 8.5 GiB budget leaves no room for a second worker and 12 GiB does
    big = 5 * rows
    assert 8 * GIB < cost.estimate(big) < 8.5 * GIB
    monkeypatch.setenv(budget.MEMORY_ENV, str(int(8.5 * GIB)))
    assert parallel.workers(big) == 1
    monkeypatch.setenv(budget.MEMORY_ENV, str(12 * GIB))
    assert parallel.workers(big) == min(cores, 9)
    # CEM_WORKERS caps them
    monkeypatch.setenv(budget.WORKERS_ENV, "1")
    assert parallel.workers(big) == 1


def test_idle_cores_follow_the_load(monkeypatch):
    import os

    for load, idle in ((0.1, 2), (1.4, 2), (1.6, 1), (16.0, 1)):
        monkeypatch.setattr(os, "getloadavg", lambda load=load: (load, load, load))
        assert parallel.idle_cores(2) == idle
        assert parallel.openmp_threads(2) == min(idle, budget.usable_cpus())
    assert parallel.openmp_threads(1) == 1


def test_beside_runs_in_a_thread_or_at_once_and_raises_the_errors():
    import threading

    for n, other in ((1, False), (2, True)):
        with parallel.Beside(n) as beside:
            got = beside.submit(lambda: threading.current_thread() is not threading.main_thread())
            assert got.result() is other
            bad = beside.submit(lambda: 1 / 0)
            with pytest.raises(ZeroDivisionError):
                bad.result()
