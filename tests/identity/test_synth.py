"""The stage against the synthetic world's truth and the naive peer, on a small world."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cemlib.identity import evaluate
from cemlib.identity.evaluate import record_persons
from cemlib.identity.resolve import IdentityResolver
from cemlib.identity.roles import has_identity
from cemlib.identity.stage import resolve_sources, source_records
from cemlib.synth import generate

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "identity_synth.py"


def _bench():
    spec = importlib.util.spec_from_file_location("identity_synth", BENCH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["identity_synth"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def world():
    return generate(1500, seed=7, defects=False)


def _identified_records(world):
    """The world's records that carry an identity (``sub``), their true persons (``sp``), the
    truth frame keyed by row number (``t``) and the row numbers (``rid``)."""
    records = source_records(world.sources)
    person = record_persons(records, world.truth["record_person"])
    ident = has_identity(records).to_numpy()
    sub, sp = records[ident].reset_index(drop=True), person[ident]
    t = pd.DataFrame({"record_id": np.arange(len(sub)), "person_id": sp})
    rid = np.arange(len(sub))
    return sub, sp, t, rid


def test_meets_the_issue_targets_against_both_peers(world):
    """Issue #5 targets on a small world with the synthetic noise: F1 at least 0.08 above the
    better of the naive phone/email union and Splink alone, false-merge rate <= 0.5% (share of
    profiles mixing two or more people; unattached records count as their own profiles)."""
    bench = _bench()
    sub, sp, t, rid = _identified_records(world)
    res = IdentityResolver(seed=7).fit(sub)
    ours = evaluate(
        pd.DataFrame({"record_id": rid, "profile_id": res.record_map()["profile_id"]}), t
    )
    naive = evaluate(pd.DataFrame({"record_id": rid, "profile_id": bench.naive_union(sub)}), t)
    alone = evaluate(pd.DataFrame({"record_id": rid, "profile_id": bench.splink_alone(sub, 7)}), t)
    assert ours["f1"] >= max(naive["f1"], alone["f1"]) + 0.08, (ours, naive, alone)
    assert ours["false_merge_rate"] <= 0.005, ours
    assert ours["precision"] >= 0.99, ours
    # the household guard is what brings the false merges down: without it they are 4x more
    off = IdentityResolver(seed=7, household_guard=False).fit(sub)
    before = evaluate(
        pd.DataFrame({"record_id": rid, "profile_id": off.record_map()["profile_id"]}), t
    )
    assert before["false_merged_profiles"] >= 2 * ours["false_merged_profiles"], (before, ours)
    # every record the guard leaves out is counted with its reason
    reasons = pd.Series(res.unattached_reason_).value_counts()
    assert reasons.get("household_profile", 0) == int(res.household_.sum()) > 0
    assert reasons.sum() == int((~res.attached_).sum())


def test_stage_maps_every_record_and_counts_unattached(world):
    res = resolve_sources(world.sources, truth=world.truth["record_person"], seed=7)
    n_in = sum(
        len(world.sources[t].drop_duplicates(c))
        for t, c in [
            ("crm_contacts", "contact_id"),
            ("online_orders", "order_id"),
            ("pos_receipts", "receipt_id"),
            ("web_events", "event_id"),
            ("support_tickets", "ticket_id"),
        ]
    )
    assert len(res.map) == n_in  # nothing lost
    f = res.figures
    assert f["attached_records"] + f["unattached_records"] == n_in
    anon = world.sources["pos_receipts"][["loyalty_card", "phone"]].isna().all(axis=1).sum()
    assert f["unattached_records"] >= anon > 0
    assert len(res.profiles) == res.map["profile_id"].nunique()
    assert res.profiles["phones"].map(len).sum() > 0
    assert res.evaluation["precision"] > 0.97
    # every phone of a profile is kept: profiles with two phones exist
    assert (res.profiles["phones"].map(len) >= 2).any()


def test_records_after_as_of_get_no_profile(world):
    from cemlib.identity.stage import source_records as prep

    res = resolve_sources(world.sources, seed=7, as_of="2024-12-31")
    records = prep(world.sources)
    late = (records["updated_at"] >= pd.Timestamp("2025-01-01")).to_numpy()
    assert late.sum() > 100
    key = records["source"] + "|" + records["record_id"]
    mkey = res.map["source_table"] + "|" + res.map["record_id"]
    pid = pd.Series(res.map["profile_id"].to_numpy(), index=mkey).reindex(key)
    assert pid[late].isna().all() and pid[~late].notna().sum() > 0
    assert res.profiles["last_seen"].max() < pd.Timestamp("2025-01-01")


def test_more_household_signals_trade_recall_for_precision(world):
    records = source_records(world.sources)
    sub = records[has_identity(records).to_numpy()].reset_index(drop=True)
    default = IdentityResolver(seed=7, use_model=False).fit(sub)
    strict = IdentityResolver(
        seed=7,
        use_model=False,
        household_signals=("refused_link", "shared_identifier", "shared_address", "surname_city"),
    ).fit(sub)
    # same clusters, fewer nameless records attached: a subset of the default's attachments
    assert (default.labels_ == strict.labels_).all()
    assert strict.attached_.sum() < default.attached_.sum()
    assert not (strict.attached_ & ~default.attached_).any()
    named = (sub["first_lat"].notna() | sub["last_lat"].notna()).to_numpy()
    assert (strict.attached_[named] == default.attached_[named]).all()
    with pytest.raises(ValueError, match="unknown household signal"):
        IdentityResolver(household_signals=("same_cat",), use_model=False).fit(sub)


def _mixed_and_multi(labels: pd.Series, person: np.ndarray) -> tuple[int, int]:
    lab = labels.astype(object).where(labels.notna(), pd.Series(np.arange(len(labels))).astype(str))
    cells = pd.DataFrame({"p": lab.to_numpy(), "t": person}).groupby("p")["t"]
    return int((cells.nunique() > 1).sum()), int((cells.size() > 1).sum())


def test_cem_identity_groups_a_households_held_back_node(world):
    """`cem identity`'s profiles (unattached=True) put a household's held-back records with equal
    identifying values and an e-mail login into one anonymous profile: more true pairs than
    records left alone, no new mixed profile. 1,500 people, seed 7: recall 0.530 -> 0.537,
    FMR(2+) 2.62% -> 2.28% (mixed 39 of 1,490 -> 39 of 1,707 profiles of 2+ records). (Before
    the corroborated records were attached, issue 15, the grouping gave 0.499 -> 0.515.)"""
    records = source_records(world.sources)
    person = record_persons(records, world.truth["record_person"])
    ident = has_identity(records).to_numpy()
    sub, sp = records[ident].reset_index(drop=True), person[ident]
    t = pd.DataFrame({"record_id": np.arange(len(sub)), "person_id": sp})
    res = IdentityResolver(seed=7).fit(sub)
    stage, cli = res.record_map()["profile_id"], res.record_map(unattached=True)["profile_id"]
    rid = np.arange(len(sub))
    before = evaluate(pd.DataFrame({"record_id": rid, "profile_id": stage}), t)
    after = evaluate(pd.DataFrame({"record_id": rid, "profile_id": cli}), t)
    assert after["recall"] >= before["recall"] + 0.005, (before, after)
    assert after["precision"] >= 0.995, after
    assert after["false_merge_rate_multi"] <= before["false_merge_rate_multi"] - 0.003
    mixed_before, multi_before = _mixed_and_multi(stage, sp)
    mixed_after, multi_after = _mixed_and_multi(cli, sp)
    assert mixed_after == mixed_before and multi_after >= multi_before + 200
    # attached records keep their profile; a held-back record never shares a named one's id
    att, held = res.attached_, res.household_
    assert (cli[att] == stage[att]).all()
    assert not set(cli[held]) & set(stage[att])
    # the anonymous profiles are nodes with an e-mail: two nodes never share one
    email = (sub["email"].notna() | sub["email_2"].notna()).to_numpy()
    grouped = held & email
    node = pd.Series(res.node_of_record_[grouped])
    assert (pd.Series(cli[grouped].to_numpy()).groupby(node.to_numpy()).nunique() == 1).all()
    assert (node.groupby(cli[grouped].to_numpy()).nunique() == 1).all()
    assert cli[held & ~email].is_unique


def test_corroborated_household_records_go_to_their_own_person(world):
    """The nameless records of household profiles that the data corroborates (two personal
    identifiers confirmed from another source, or the holder's own card) are attached: the
    truth's person of nearly every one is its profile's main person, and recall rises with
    precision held. 1,500 people, seed 7, rules only: 1,846 records, 99.9% right; recall
    0.499 -> 0.530, precision 0.9966 -> 0.9967, FMR(2+) 2.78% -> 2.55%."""
    sub, sp, t, rid = _identified_records(world)
    on = IdentityResolver(seed=7, use_model=False).fit(sub)  # rules: the test stays fast
    off = IdentityResolver(seed=7, use_model=False, corroborate=False).fit(sub)
    assert (on.labels_ == off.labels_).all()  # the same clusters; only who is attached moves
    c = on.corroborated_
    assert c.sum() >= 1000 and not (c & ~off.household_).any()
    assert not (on.attached_ & ~on.corroborated_ & ~off.attached_).any()
    labels, att = on.labels_, on.attached_
    main = pd.Series(sp[att]).groupby(labels[att]).agg(lambda s: s.value_counts().index[0])
    right = main.reindex(labels[c]).to_numpy() == sp[c]
    assert right.mean() >= 0.995, right.mean()
    sources = set(sub["source"].to_numpy()[c])
    assert {"online_orders", "pos_receipts"} <= sources
    m_on = evaluate(
        pd.DataFrame({"record_id": rid, "profile_id": on.record_map()["profile_id"]}), t
    )
    m_off = evaluate(
        pd.DataFrame({"record_id": rid, "profile_id": off.record_map()["profile_id"]}), t
    )
    assert m_on["recall"] >= m_off["recall"] + 0.025, (m_on, m_off)
    assert m_on["precision"] >= m_off["precision"] - 0.001, (m_on, m_off)
    assert m_on["false_merge_rate_multi"] <= m_off["false_merge_rate_multi"]
