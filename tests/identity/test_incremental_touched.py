"""What an incremental run reads again (issue #14): an identifier no new record carries keeps
the last run's status instead of being counted again on all its holders, and a namesake of a
new record is read again only when the saved model can link the pair."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cemlib.collect.stage import collect
from cemlib.identity.rules import HubGuard, deterministic_links
from cemlib.identity.stage import run_stage
from cemlib.identity.store import read_model, read_prepared
from cemlib.identity.touched import NAME_KEYS, reachable_partners
from cemlib.warehouse import Warehouse

N, SEED, MAY = 800, 7, "2025-05-31"
PHONE = "+79161234567"


def _people(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["first_lat", "last_lat", "birth_date", "phone"])


def test_a_known_status_replaces_the_one_counted_on_some_of_the_holders():
    # the last run saw the phone with Anna, Boris and Vera: shared (3 names, 3 dates)
    everyone = _people([("anna", "petrova", "1980-01-02", PHONE),
                        ("anna", "petrova", "1980-01-02", PHONE),
                        ("boris", "petrov", "1978-05-06", PHONE),
                        ("vera", "petrova", "2001-07-08", PHONE)])  # fmt: skip
    links, guarded = deterministic_links(everyone, HubGuard())
    assert guarded[["status", "n_records", "n_names", "n_birth_dates"]].values.tolist() == [
        ["shared", 4, 3, 3]
    ]
    assert links["rule"].tolist() == ["phone+name"]  # Anna's two records only
    # a run that reads Anna's two records and a nameless order with the phone again
    part = pd.concat([everyone.iloc[:2], _people([(None, None, None, PHONE)])], ignore_index=True)
    alone, alone_guarded = deterministic_links(part, HubGuard())
    # counted on these records only, the phone looks personal: it links all three
    assert len(alone_guarded) == 0
    assert sorted(alone["rid_r"].tolist()) == [1, 2] and set(alone["rule"]) == {"phone"}
    known, known_guarded = deterministic_links(part, HubGuard(), known=guarded)
    # with the last run's status: Anna's records by name only, the nameless order not at all
    assert known[["rid_l", "rid_r", "rule"]].values.tolist() == [[0, 1, "phone+name"]]
    assert known_guarded.to_dict("records") == guarded.to_dict("records")


def test_a_known_identifier_on_one_record_here_is_still_listed():
    guarded = pd.DataFrame({"kind": ["phone"], "value": [PHONE], "status": ["hub"],
                            "n_records": [900], "n_names": [12], "n_birth_dates": [40]})  # fmt: skip
    one = _people([("anna", "petrova", "1980-01-02", PHONE),
                   ("anna", "petrova", "1980-01-02", "+79169999999")])  # fmt: skip
    links, out = deterministic_links(one, HubGuard(), known=guarded)
    assert links.empty
    assert out[["kind", "value", "status", "n_records"]].values.tolist() == [
        ["phone", PHONE, "hub", 900]
    ]


@pytest.fixture(scope="module")
def may(tmp_path_factory):
    """A world profiled in full (its model and threshold saved)."""
    path = tmp_path_factory.mktemp("reach") / "w.duckdb"
    collect("synthetic", warehouse=path, n_people=N, seed=SEED, as_of=MAY, progress=False)
    with Warehouse(path) as wh:
        res = run_stage(wh, run_id="may", as_of=MAY)
    return path, res.resolver.threshold_


def test_every_namesake_the_model_linked_can_reach_the_threshold(may):
    """Take some named records as if they were new: each earlier record the full run linked
    to one of them by the model (its score at least the threshold, identifiers masked where
    guarded) shares a name key with it and is kept by the bound; most namesakes are not."""
    path, threshold = may
    with Warehouse(path, read_only=True) as wh:
        fingerprint = wh.con.execute("SELECT fingerprint FROM identity.state").fetchall()[0][0]
        saved = read_model(wh, fingerprint)
        wh.con.execute("SELECT 1").fetchall()
        links = wh.read_table("identity", "links")
        model = links[links["rule"].eq("model")]
        keys = wh.sql("SELECT source, record_id FROM identity.prepared")
        every = read_prepared(wh, keys)
        named = every[(every["first_lat"].notna() & every["last_lat"].notna()).to_numpy()]
        # the left records of half the model links, as the new ones
        left = model[["left_source", "left_record_id"]].drop_duplicates().iloc[::2]
        key = named["source"].astype(str) + "|" + named["record_id"].astype(str)
        new_keys = set(left["left_source"].astype(str) + "|" + left["left_record_id"].astype(str))
        # and every fifth other named record (most of whose namesakes are other people)
        new_keys |= set(key.iloc[::5])
        is_new = key.isin(new_keys).to_numpy()
        new = named[is_new].reset_index(drop=True)
        rest = named[~is_new]
        share = np.zeros(len(rest), dtype=bool)
        for cols in NAME_KEYS:
            k_rest = pd.MultiIndex.from_frame(rest[list(cols)].astype(object))
            k_new = pd.MultiIndex.from_frame(new[list(cols)].astype(object).dropna())
            share |= k_rest.isin(k_new)
        partners = rest[share][["source", "record_id"]].astype(str).reset_index(drop=True)
        kept = reachable_partners(wh, new, partners, saved, threshold)
    pk = set(partners["source"] + "|" + partners["record_id"])
    kk = set(kept["source"].astype(str) + "|" + kept["record_id"].astype(str))
    lk = model.assign(
        left=model["left_source"].astype(str) + "|" + model["left_record_id"].astype(str),
        right=model["right_source"].astype(str) + "|" + model["right_record_id"].astype(str),
    )
    linked = set(lk.loc[lk["left"].isin(new_keys), "right"]) & pk
    linked |= set(lk.loc[lk["right"].isin(new_keys), "left"]) & pk
    assert len(new) >= 20 and len(linked) >= 10
    assert linked <= kk  # no namesake the model linked is left out
    assert kk <= pk
    assert len(kk - linked) <= len(pk - linked) / 2  # most of the others are not read again
