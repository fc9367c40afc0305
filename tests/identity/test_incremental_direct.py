"""New records that join one kept profile directly (issue #14): the profile is not resolved
again, and the run gives what a full run gives for it; a record that could change one of the
last run's decisions is resolved as before."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

import cemlib.identity.incremental as incremental
from cemlib.collect.stage import collect
from cemlib.identity.golden import SURVIVING
from cemlib.identity.incremental_direct import direct_candidates, joined_parts
from cemlib.identity.stage import run_stage
from cemlib.identity.store import read_prepared
from cemlib.warehouse import Warehouse

N, SEED, MAY, JUNE = 800, 5, "2025-05-31", "2025-06-30"


@pytest.fixture(scope="module")
def may(tmp_path_factory):
    """A warehouse after a full May run, with June's records collected."""
    path = tmp_path_factory.mktemp("direct") / "w.duckdb"
    collect("synthetic", warehouse=path, n_people=N, seed=SEED, as_of=MAY, progress=False)
    with Warehouse(path) as wh:
        run_stage(wh, run_id="may", as_of=MAY)
    collect("synthetic", warehouse=path, n_people=N, seed=SEED, as_of=JUNE, progress=False)
    return path


@pytest.fixture(scope="module")
def june(may, tmp_path_factory):
    """June incremental (the records joining directly captured) and full, each on a copy."""
    seen = {}
    parts = incremental.joined_parts

    def spy(wh, joined, profile_ids):
        seen["keys"] = set(zip(joined["source"].astype(str), joined["record_id"].astype(str),
                               strict=True))  # fmt: skip
        seen["ids"] = set(map(str, profile_ids))
        return parts(wh, joined, profile_ids)

    out = {}
    for mode in ("auto", "full"):
        copy = tmp_path_factory.mktemp(mode) / "w.duckdb"
        shutil.copyfile(may, copy)
        mp = pytest.MonkeyPatch()
        mp.setattr(incremental, "joined_parts", spy)
        try:
            with Warehouse(copy) as wh:
                res = run_stage(wh, run_id="june", as_of=JUNE, identity_mode=mode)
                out[mode] = (res, wh.read_table("identity", "map"),
                             wh.read_table("identity", "profiles"),
                             wh.read_table("identity", "links"))  # fmt: skip
        finally:
            mp.undo()
    return out, seen


def _members(m: pd.DataFrame) -> pd.Series:
    att = m.dropna(subset=["profile_id"])
    key = att["source_table"].astype(str) + "|" + att["record_id"].astype(str)
    return key.groupby(att["profile_id"].astype(str).to_numpy()).agg(frozenset)


def test_new_records_join_kept_profiles_directly_as_a_full_run_would(june):
    out, seen = june
    fig = out["auto"][0].figures["identity_mode"]
    assert fig["used"] == "incremental"
    joined = fig["records_joined_directly"]
    assert joined == len(seen["keys"]) > 50
    assert fig["profiles_joined_directly"] == len(seen["ids"]) > 20
    assert joined + fig["not_joined_directly"] == fig["new_records"] - fig["new_after_as_of"]
    # fewer records resolved than the new ones and every record of the profiles they touch
    assert fig["records_resolved"] < fig["new_records"] + fig["earlier_records_resolved_again"]
    inc, full = _members(out["auto"][1]), _members(out["full"][1])
    # each profile joined directly holds, in the full run, the same records under the same id
    for pid in seen["ids"]:
        assert inc[pid] == full[pid], pid
    keys = {f"{s}|{r}" for s, r in seen["keys"]}
    assert keys <= set().union(*(inc[p] for p in seen["ids"]))
    # and its golden record is the full run's (counted from its stored records and the new)
    cols = ["profile_id", "n_records", "first_seen", "last_seen", *SURVIVING]
    gi = out["auto"][2].set_index("profile_id").loc[sorted(seen["ids"])].reset_index()[cols]
    gf = out["full"][2].set_index("profile_id").loc[sorted(seen["ids"])].reset_index()[cols]
    pd.testing.assert_frame_equal(gi.astype(str), gf.astype(str))
    for col in ("sources", "phones", "emails"):
        a = out["auto"][2].set_index("profile_id").loc[sorted(seen["ids"]), col].map(list)
        b = out["full"][2].set_index("profile_id").loc[sorted(seen["ids"]), col].map(list)
        assert a.tolist() == b.tolist(), col
    # each joined record has an accepted identifier link to a record of its profile
    lk = out["auto"][3]
    right = set(zip(lk.loc[lk["accepted"], "right_source"].astype(str),
                    lk.loc[lk["accepted"], "right_record_id"].astype(str), strict=True))  # fmt: skip
    assert seen["keys"] <= right


def test_the_whole_june_agrees_with_a_full_run(june):
    out, _ = june
    inc, full = _members(out["auto"][1]), _members(out["full"][1])
    same = sum(1 for p in full.index if p in inc.index and inc[p] == full[p])
    assert same / len(full) > 0.995, (same, len(full))


def _copies(may, tmp_path, where: str):
    """A copy of May's warehouse and ten attached earlier records (``where``) with identifiers
    no hub guard flagged, copies of which may join their profile directly."""
    copy = tmp_path / "w.duckdb"
    shutil.copyfile(may, copy)
    wh = Warehouse(copy)
    guarded = "(SELECT CAST(value AS VARCHAR) FROM identity.guarded)"
    rows = wh.con.execute(
        "SELECT p.source, p.record_id FROM identity.prepared p JOIN identity.map m "
        "ON m.source_table = p.source AND m.record_id = p.record_id "
        f"WHERE m.profile_id IS NOT NULL AND {where} AND p.phone_2 IS NULL "
        "AND p.email_2 IS NULL AND p.contact_id IS NULL AND p.source <> 'crm_contacts' "
        f"AND coalesce(p.phone, '') NOT IN {guarded} AND coalesce(p.email, '') NOT IN {guarded} "
        f"AND coalesce(p.device_id, '') NOT IN {guarded} ORDER BY 1, 2"
    ).fetchall()
    keys = pd.DataFrame(rows, columns=["source", "record_id"])
    base = read_prepared(wh, keys)
    ok = direct_candidates(wh, _renamed(base), hub_records=500)
    assert len(ok) > 10  # copies of many of them may join directly
    return wh, base.iloc[ok["i"].to_numpy()[:10]].reset_index(drop=True), ok["profile_id"][:10]


@pytest.fixture()
def orders(may, tmp_path):
    """Nameless online orders with a phone, an e-mail and a device (the synthetic world's
    orders carry no name: its CRM records do)."""
    wh, base, pids = _copies(may, tmp_path, "p.source = 'online_orders' AND p.phone IS NOT NULL "
                             "AND p.email IS NOT NULL AND p.device_id IS NOT NULL")  # fmt: skip
    yield wh, base, pids
    wh.close()


def _renamed(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` as new records (new ids, same values)."""
    out = frame.copy()
    out["record_id"] = ("new-" + out["record_id"].astype(str)).astype("category")
    return out


def _set(frame: pd.DataFrame, col: str, value) -> pd.DataFrame:
    out = frame.copy()
    out[col] = pd.Series([value] * len(out), dtype=object).astype("category")
    return out


def test_a_copy_joins_its_profile_a_new_fact_does_not(orders):
    wh, base, pids = orders
    ok = direct_candidates(wh, _renamed(base), hub_records=500)
    assert ok["i"].tolist() == list(range(10))
    assert ok["profile_id"].tolist() == pids.tolist()
    # a birth date, a patronymic, a first name, a gender no earlier holder of its
    # identifiers carries (the cluster constraints, the chain guard, the hub guard's counts
    # could see something new): resolved, never joined directly
    for col, value in (("birth_date", "1911-11-11"), ("middle_lat", "zzzovich"),
                       ("first_lat", "zzz"), ("gender", "X")):  # fmt: skip
        assert direct_candidates(wh, _set(_renamed(base), col, value), hub_records=500).empty
    # a second phone, a reference to a CRM record, a CRM record: resolved
    assert direct_candidates(wh, _set(_renamed(base), "phone_2", "+70001112233"),
                             hub_records=500).empty  # fmt: skip
    assert direct_candidates(wh, _set(_renamed(base), "contact_id", "c1"), hub_records=500).empty
    assert direct_candidates(wh, _set(_renamed(base), "source", "crm_contacts"),
                             hub_records=500).empty  # fmt: skip
    # a phone nobody had before, or a device its holders' phone is not the dominant one of
    assert direct_candidates(wh, _set(_renamed(base), "phone", "+70009998877"),
                             hub_records=500).empty  # fmt: skip
    # more holders than the hub guard allows an identifier: resolved
    assert direct_candidates(wh, _renamed(base), hub_records=1).empty


def test_an_identifier_the_last_run_guarded_is_never_joined_through(orders):
    wh, base, _ = orders
    phone = str(base["phone"].iloc[0])
    wh.con.execute(
        "INSERT INTO identity.guarded (kind, value, status, n_records, n_names, n_birth_dates) "
        "VALUES ('phone', ?, 'shared', 3, 2, 2)",
        [phone],
    )
    ok = direct_candidates(wh, _renamed(base), hub_records=500)
    assert 0 not in ok["i"].tolist()
    assert len(ok) == int((base["phone"].astype(str) != phone).sum())


def test_a_nameless_record_joins_no_profile_with_household_evidence(orders):
    wh, base, pids = orders
    assert len(direct_candidates(wh, _renamed(base), hub_records=500)) == 10
    # a link refused by the chain guard on a record of the first profile: household evidence
    # (its nameless records cannot tell which member of the family they belong to)
    rec = wh.con.execute(
        "SELECT source_table, record_id FROM identity.map WHERE CAST(profile_id AS VARCHAR) = ? "
        "ORDER BY 1, 2 LIMIT 1",
        [str(pids.iloc[0])],
    ).fetchall()[0]
    wh.con.execute(
        "INSERT INTO identity.links (left_source, left_record_id, right_source, right_record_id, "
        "rule, accepted, refused_by) VALUES (?, ?, 'x', 'y', 'phone', FALSE, 'guard')",
        [rec[0], rec[1]],
    )
    again = direct_candidates(wh, _renamed(base), hub_records=500)
    assert str(pids.iloc[0]) not in set(again["profile_id"])
    assert len(again) == int((pids.astype(str) != str(pids.iloc[0])).sum())


def test_joined_parts_count_the_profile_again_from_its_stored_records(orders):
    wh, base, pids = orders
    jmap, golden, links = joined_parts(wh, _renamed(base.iloc[:2]), pids[:2].to_numpy())
    assert jmap["profile_id"].tolist() == pids[:2].tolist()
    before = wh.con.execute(
        "SELECT CAST(profile_id AS VARCHAR), n_records FROM identity.profiles "
        "WHERE CAST(profile_id AS VARCHAR) IN (?, ?)",
        [str(pids.iloc[0]), str(pids.iloc[1])],
    ).fetchall()
    n = golden.set_index("profile_id")["n_records"]
    assert {p: int(n[p]) for p, _ in before} == {p: k + 1 for p, k in before}
    # one accepted link per identifier kind (phone, e-mail, device) of each joined record
    assert len(links) == 6 and links["accepted"].all()
    assert set(links["rule"]) == {"phone", "email", "device_id"}
    empty = joined_parts(wh, base.iloc[:0], [])
    assert [len(f) for f in empty] == [0, 0, 0] and "profile_id" in empty[1]
