"""The parts of a churn fit run beside it in a thread (cemlib.churn.beside): the same scores,
bit for bit, with one worker and with two, and the simulation's column arrays."""

import threading

import numpy as np
import pandas as pd

from cemlib.churn import ChurnModel, beside
from cemlib.churn.dropout import BGNBD
from cemlib.churn.supervised import CountBooster

from .conftest import AS_OF


def _fit_recording_threads(monkeypatch, tx, cov, workers):
    """The model fitted with ``workers``, and the names of the threads the BG/NBD and the
    booster fits ran on (our own fit methods wrapped, the libraries untouched)."""
    threads: list[tuple[str, str]] = []
    for cls in (BGNBD, CountBooster):
        original = cls.fit

        def fit(self, *a, _original=original, _name=cls.__name__, **k):
            threads.append((_name, threading.current_thread().name))
            return _original(self, *a, **k)

        monkeypatch.setattr(cls, "fit", fit)
    # the family handed over: the AFT cross-validation (nine fits) is not what is tested
    model = ChurnModel(horizons=(90, 365), seed=3, workers=workers, family_choice={"weibull": 1.0})
    model.fit(tx, as_of=AS_OF, covariates=cov)
    monkeypatch.undo()
    return model, threads


def test_two_workers_give_the_same_scores_bit_for_bit(world, monkeypatch):
    tx, cov, _ = world
    one, threads_one = _fit_recording_threads(monkeypatch, tx, cov, 1)
    two, threads_two = _fit_recording_threads(monkeypatch, tx, cov, 2)
    # two BG/NBDs (at as_of and at the backtest's cut) and the booster, in the caller alone
    # with one worker and all three in the thread beside it with two
    assert sorted(n for n, _ in threads_one) == ["BGNBD", "BGNBD", "CountBooster"]
    assert {t for _, t in threads_one} == {threading.main_thread().name}
    assert sorted(n for n, _ in threads_two) == ["BGNBD", "BGNBD", "CountBooster"]
    assert all(t.startswith("cem-beside") for _, t in threads_two)
    a, b = one.predict(), two.predict()
    assert len(a) == tx["customer_id"].nunique() == 400
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert one.dropout_.params_ == two.dropout_.params_
    assert np.array_equal(one.booster_.oof_, two.booster_.oof_)
    assert one.blend_.counts_.coef_.tolist() == two.blend_.counts_.coef_.tolist()


def test_workers_follow_cem_workers(monkeypatch):
    monkeypatch.setenv("CEM_WORKERS", "1")
    assert beside.workers(1_000) == 1
    monkeypatch.setenv("CEM_WORKERS", "8")
    assert beside.workers(1_000) == min(2, beside_cpus())


def beside_cpus() -> int:
    from cemlib.budget import usable_cpus

    return usable_cpus()


def test_an_error_beside_is_raised_by_result():
    with beside.Beside(2) as pool:
        fut = pool.submit(lambda: 1 / 0)
        try:
            fut.result()
        except ZeroDivisionError:
            pass
        else:  # pragma: no cover - the test's own failure
            raise AssertionError("the thread's error was not raised")
        assert pool.submit(lambda x: x + 1, 41).result() == 42


def test_simulation_columns_as_arrays_or_frame_give_the_same_parameters(fitted):
    gm = fitted.count_model_
    state = fitted.state_
    X = state[gm.columns_]
    a1, b1 = gm._params(X)
    a2, b2 = gm._params({c: X[c].to_numpy() for c in X.columns})
    assert len(a1) == len(state) == 400
    assert np.array_equal(a1, a2) and np.array_equal(b1, b2)
    nxt = gm._next_state(
        np.array([2.0, 5.0]), np.array([30.0, 400.0]), np.array([30.0, 90.0]),
        np.array([60.0, 500.0]), np.array([7.0, 6.5]),
    )  # fmt: skip
    assert nxt["first_purchase"].tolist() == [0.0, 0.0]
    assert nxt["log_mean_gap"][0] == min(np.log1p(30.0), gm.state_max_["log_mean_gap"])


def test_chunks_simulated_beside_give_the_same_counts(fitted):
    spell = fitted.spell_
    assert len(spell.state_) == 400
    spell.workers = 1
    alone = spell.predict([30, 365], chunk=90)  # five chunks, each with its own stream
    spell.workers = 2
    both = spell.predict([30, 365], chunk=90)
    spell.workers = 1
    assert (
        sorted(alone)
        == sorted(both)
        == sorted([f"{k}_{h}" for k in ("count", "disc", "p") for h in (30, 365)] + ["log_s"])
    )
    for k in alone:
        assert len(alone[k]) == 400
        assert np.array_equal(alone[k], both[k]), k
    assert alone["count_365"].sum() > alone["count_30"].sum() > 0
