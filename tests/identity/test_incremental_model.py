"""The saved Splink model (issue #14): a full run keeps its fitted model in the warehouse and
an incremental run with the same settings scores with it instead of training one again."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from cemlib.collect.stage import collect
from cemlib.identity.incremental import settings_fingerprint
from cemlib.identity.model import SplinkModel
from cemlib.identity.resolve import DEFAULT_HOUSEHOLD_SIGNALS
from cemlib.identity.stage import SOURCE_ROLES, run_stage
from cemlib.identity.store import read_model, read_prepared, write_model
from cemlib.warehouse import Warehouse

N, SEED, MAY, JUNE = 800, 5, "2025-05-31", "2025-06-30"


def _fingerprint(**kw) -> str:
    base = {"seed": 42, "guard": None, "match_threshold": "auto",
            "household_signals": DEFAULT_HOUSEHOLD_SIGNALS, "sources": SOURCE_ROLES}  # fmt: skip
    return settings_fingerprint(**(base | kw))


@pytest.fixture(scope="module")
def may(tmp_path_factory):
    """A warehouse after a full May run (its model saved), June's records collected."""
    path = tmp_path_factory.mktemp("incm") / "w.duckdb"
    collect("synthetic", warehouse=path, n_people=N, seed=SEED, as_of=MAY, progress=False)
    with Warehouse(path) as wh:
        first = run_stage(wh, run_id="may", as_of=MAY)
        weights = first.resolver.model_.match_weights()
    collect("synthetic", warehouse=path, n_people=N, seed=SEED, as_of=JUNE, progress=False)
    return path, weights


def _named_prepared(wh) -> pd.DataFrame:
    keys = wh.sql("SELECT source, record_id FROM identity.prepared")
    p = read_prepared(wh, keys)
    return p[(p["first_lat"].notna() | p["last_lat"].notna()).to_numpy()].reset_index(drop=True)


def test_a_full_run_saves_its_model_with_its_settings_fingerprint(may):
    path, weights = may
    with Warehouse(path, read_only=True) as wh:
        saved = read_model(wh, _fingerprint())
        assert saved is not None and saved["run_id"] == "may"
        # the m and u of every trained level as trained
        trained = {
            (c["output_column_name"], lvl["label_for_charts"]): (lvl["m_probability"],
                                                                 lvl["u_probability"])
            for c in saved["settings"]["comparisons"] for lvl in c["comparison_levels"]
            if "m_probability" in lvl and "u_probability" in lvl
        }  # fmt: skip
        assert len(trained) >= 15
        w = weights.set_index(["comparison", "level"])
        for key, (m, u) in trained.items():
            assert (w.loc[key, "m_probability"], w.loc[key, "u_probability"]) == (m, u), key
        # the name frequencies of the fitted records
        assert {"first_lat", "last_lat"} <= set(saved["tf"])
        first = saved["tf"]["first_lat"]
        assert first["tf"].between(0, 1).all() and abs(first["tf"].sum() - 1) < 1e-9
        # other settings: no model to load
        assert read_model(wh, _fingerprint(seed=7)) is None


def test_a_saved_model_scores_pairs_as_the_fitted_one(may, tmp_path):
    """Saved to the warehouse and loaded over the same records, the model gives the same
    pairs with the same probabilities (term-frequency adjustments included)."""
    path, _ = may
    copy = tmp_path / "w.duckdb"
    shutil.copyfile(path, copy)
    with Warehouse(copy) as wh:
        named = _named_prepared(wh)
        fitted = SplinkModel(seed=SEED).fit(named)
        before = fitted.predict(0.5)
        write_model(wh, fitted, fingerprint="f", run_id="x", as_of=JUNE)
        saved = read_model(wh, "f")
    loaded = SplinkModel(seed=SEED).fit(named, saved=saved)
    after = loaded.predict(0.5)
    assert loaded.loaded_ and not fitted.loaded_
    assert len(before) > 100
    pd.testing.assert_frame_equal(before, after)
    # without the saved name frequencies (taken from fewer records) the scores move
    sub = named.iloc[: len(named) // 3].reset_index(drop=True)
    no_tf = SplinkModel(seed=SEED).fit(sub, saved={**saved, "tf": {}}).predict(0.01)
    with_tf = SplinkModel(seed=SEED).fit(sub, saved=saved).predict(0.01)
    key = ["rid_l", "rid_r"]
    both = no_tf.merge(with_tf, on=key)
    assert len(both) >= 10
    assert not np.allclose(both["match_weight_x"], both["match_weight_y"])


def test_an_incremental_run_scores_with_the_saved_model_not_one_trained_again(may, tmp_path):
    path, weights = may
    out = {}
    for mode in ("auto", "full"):
        copy = tmp_path / f"{mode}.duckdb"
        shutil.copyfile(path, copy)
        with Warehouse(copy) as wh:
            res = run_stage(wh, run_id="june", as_of=JUNE, identity_mode=mode)
            out[mode] = (res, read_model(wh, _fingerprint()))
    inc, saved_after = out["auto"]
    assert inc.figures["identity_mode"]["used"] == "incremental"
    assert inc.figures["identity_mode"]["model"] == "saved by run may"
    # the model's m and u are May's, to the last digit: nothing was trained
    pd.testing.assert_frame_equal(inc.resolver.model_.match_weights(), weights)
    assert saved_after["run_id"] == "may"  # an incremental run keeps the full run's model
    full, saved_full = out["full"]
    assert full.figures["identity_mode"]["used"] == "full"
    assert saved_full["run_id"] == "june"  # a full run trains and saves its own
    assert not np.allclose(
        full.resolver.model_.match_weights()["m_probability"].to_numpy(dtype=float),
        weights["m_probability"].to_numpy(dtype=float),
        equal_nan=True,
    )


def test_without_a_saved_model_an_incremental_run_trains_one_on_its_part(may, tmp_path):
    """A warehouse whose last full run saved no model (written before the model was kept)
    still runs incrementally, training a model on the records it resolves, and says so."""
    path, weights = may
    copy = tmp_path / "w.duckdb"
    shutil.copyfile(path, copy)
    with Warehouse(copy) as wh:
        wh.drop_table("identity", "model")
        res = run_stage(wh, run_id="june", as_of=JUNE, identity_mode="auto")
        assert read_model(wh, _fingerprint()) is None  # nor does an incremental run save one
    mode = res.figures["identity_mode"]
    assert mode["used"] == "incremental"
    assert mode["model"] == "trained on the records resolved"
    trained = res.resolver.model_.match_weights()["m_probability"].to_numpy(dtype=float)
    assert not np.allclose(trained, weights["m_probability"].to_numpy(dtype=float), equal_nan=True)


def test_the_incremental_resolver_keeps_the_constraints_without_silver_pairs(may):
    """An incremental fit takes the last run's constraints as they are: it draws no silver
    pairs, and resolves a part of the warehouse exactly as the plain resolver with the same
    constraints and a tolerance of 1 (which no rate can exceed) does."""
    from cemlib.identity.incremental import IncrementalResolver, choose_mode, resolver_for
    from cemlib.identity.resolve import IdentityResolver

    path, _ = may
    with Warehouse(path, read_only=True) as wh:
        used, _, state = choose_mode(wh, "auto", _fingerprint(), JUNE)
        keys = wh.sql("SELECT source, record_id FROM identity.prepared ORDER BY 1, 2 LIMIT 6000")
        part = read_prepared(wh, keys)
    assert used == "incremental" and state["constraints"]
    kw = {"guard": None, "seed": 42, "household_signals": DEFAULT_HOUSEHOLD_SIGNALS,
          "match_threshold": "auto"}  # fmt: skip
    inc = resolver_for(state, **kw).fit(part)
    assert isinstance(inc, IncrementalResolver)
    assert inc.silver_disagreement_ == {} and inc.constraints_ == state["constraints"]
    plain = IdentityResolver(
        saved_model=state["model"], guard=None, match_threshold=state["threshold"],
        constraints=state["constraints"], constraint_tolerance=1.0, seed=42,
        household_guard=True, household_signals=DEFAULT_HOUSEHOLD_SIGNALS,
    ).fit(part)  # fmt: skip
    assert plain.silver_disagreement_  # the plain resolver drew them, to no effect
    assert plain.constraints_ == inc.constraints_
    assert np.array_equal(plain.labels_, inc.labels_)
    assert (plain.attached_ == inc.attached_).all() and inc.attached_.sum() > 1000
    cols = ["rid_l", "rid_r", "rule", "accepted"]
    assert plain.links_[cols].equals(inc.links_[cols]) and len(inc.links_) > 100
