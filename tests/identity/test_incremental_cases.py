"""Incremental = full on a world whose month holds hand-made records only (issue #14): a new
order that carries the e-mail of one profile and the phone of another merges the two, and a
ticket with a known e-mail joins its profile and splits nothing. The incremental run
and a full run of the same data give the same profiles, record for record."""

from __future__ import annotations

import pandas as pd
import pytest

from cemlib.collect.stage import collect
from cemlib.identity.registry import resolve_ids
from cemlib.identity.stage import run_stage
from cemlib.warehouse import Warehouse
from tests.warehouses import insert_row, partition, profile_of, profiled_both_ways

N, SEED, MAY, JUNE = 800, 11, "2025-05-31", "2025-06-30"
EMAIL, PHONE, DEVICE = "zinaida.quuxova@example.org", "+79160001122", "dev-quux-0001"
EMAIL2, PHONE2 = "efim.kvazirov@example.org", "+79160003344"


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    """May's world with two hand-made profiles of one person that nothing links yet (a CRM
    contact with an e-mail, an order with a phone and a device), profiled in full; then, in
    June, an order carrying both the e-mail and the phone (a merge), and a ticket with the
    e-mail of another person's CRM contact (joins that profile). Profiled in June twice: auto and full."""
    path = tmp_path_factory.mktemp("cases") / "w.duckdb"
    collect("synthetic", warehouse=path, n_people=N, seed=SEED, as_of=MAY, progress=False)
    with Warehouse(path) as wh:
        insert_row(wh, "crm_contacts", {"contact_id": "Z-1", "first_name": "Зинаида",
                                     "last_name": "Куксова", "birth_date": "1971-03-04",
                                     "email": EMAIL, "registered_at": "2025-05-02"})  # fmt: skip
        insert_row(wh, "online_orders", {"order_id": "Z-O1", "phone": PHONE, "device_id": DEVICE,
                                      "ordered_at": "2025-05-03"})  # fmt: skip
        insert_row(wh, "crm_contacts", {"contact_id": "Z-2", "first_name": "Ефим",
                                     "last_name": "Квазиров", "birth_date": "1980-11-12",
                                     "email": EMAIL2, "phone": PHONE2,
                                     "registered_at": "2025-05-04"})  # fmt: skip
        insert_row(wh, "support_tickets", {"ticket_id": "Z-T1", "phone": PHONE2,
                                        "created_at": "2025-05-05"})  # fmt: skip
        first = run_stage(wh, run_id="may", as_of=MAY)
        may_map = wh.read_table("identity", "map")
        insert_row(wh, "online_orders", {"order_id": "Z-O2", "email": EMAIL, "phone": PHONE,
                                      "ordered_at": "2025-06-10"})  # fmt: skip
        insert_row(wh, "support_tickets", {"ticket_id": "Z-T2", "email": EMAIL2,
                                        "created_at": "2025-06-11"})  # fmt: skip
    assert first.figures["identity_mode"]["used"] == "full"
    out = profiled_both_ways(
        path, tmp_path_factory, run_id="june", as_of=JUNE, tables=("map", "registry")
    )
    return out, may_map


def test_the_month_is_resolved_incrementally_with_two_new_records(cases):
    out, _ = cases
    mode = out["auto"][0].figures["identity_mode"]
    # the two hand-made records, beside records dated after May that wait in the sources
    assert mode["used"] == "incremental", mode
    assert mode["new_records"] - mode["new_after_as_of"] == 2, mode
    assert 0 < mode["earlier_records_resolved_again"] < 200
    assert out["full"][0].figures["identity_mode"]["used"] == "full"


def test_incremental_equals_full_record_for_record(cases):
    out, _ = cases
    (_, m_inc, _), (_, m_full, _) = out["auto"], out["full"]
    assert len(m_inc) == len(m_full)
    key = ["source_table", "record_id"]
    both = m_inc.merge(m_full, on=key, suffixes=("_i", "_f"))
    assert len(both) == len(m_inc)
    # attached alike, and the same groups of records (the ids are each run's own)
    assert (both["profile_id_i"].isna() == both["profile_id_f"].isna()).all()
    assert partition(m_inc) == partition(m_full)


def test_a_new_record_merges_two_profiles_in_both_modes(cases):
    out, may_map = cases
    a, b = (
        profile_of(may_map, "crm_contacts", "Z-1"),
        profile_of(may_map, "online_orders", "Z-O1"),
    )
    assert pd.notna(a) and pd.notna(b) and a != b  # two profiles in May
    for mode in ("auto", "full"):
        _, rmap, registry = out[mode]
        ids = {profile_of(rmap, s, r) for s, r in (("crm_contacts", "Z-1"),
               ("online_orders", "Z-O1"), ("online_orders", "Z-O2"))}  # fmt: skip
        assert len(ids) == 1 and pd.notna(next(iter(ids))), mode
        survivor = next(iter(ids))
        assert survivor in (a, b)  # the merge keeps one of the two ids
        gone = b if survivor == a else a
        row = registry[registry["profile_id"].astype(str).eq(str(gone))].iloc[0]
        assert row["status"] == "merged" and str(row["merged_into"]) == str(survivor), mode
        assert resolve_ids(registry, [a, b]).tolist() == [survivor, survivor]


def test_a_new_record_that_joins_one_profile_splits_nothing(cases):
    out, may_map = cases
    before = profile_of(may_map, "crm_contacts", "Z-2")
    assert profile_of(may_map, "support_tickets", "Z-T1") == before
    old = may_map[may_map["profile_id"].astype(str).eq(str(before))]
    for mode in ("auto", "full"):
        res, rmap, _ = out[mode]
        assert profile_of(rmap, "support_tickets", "Z-T2") == before, mode
        now = rmap[rmap["profile_id"].astype(str).eq(str(before))]
        # the profile's May records all kept its id, and it gained the receipt only
        assert len(now) == len(old) + 1, mode
        assert set(old["record_id"].astype(str)) < set(now["record_id"].astype(str))
        assert res.figures["id_changes"]["split"] == 0, mode
