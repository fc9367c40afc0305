"""A CRM that overwrites a card's phone keeps no history (trial 12 F3): the number the card
held in the last run stays evidence for the records dated before the change
(``identity.former_identifiers``), so the card keeps its old service ticket; a new person
given the old number later does not join the card's profile. Incremental and full runs read
the same table and agree record for record."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from cemlib.collect.stage import collect
from cemlib.identity.stage import run_stage
from cemlib.warehouse import Warehouse
from tests.warehouses import insert_row, partition, profile_of, profiled_both_ways, source_schema

N, SEED, MAY, JUNE, JULY = 800, 11, "2025-05-31", "2025-06-30", "2025-07-31"
OLD, NEW = "+79830009058", "+79710001260"
OLD_B, NEW_B = "+79830007711", "+79710007722"
EMAIL_B2 = "efrosinia.lapteva@example.org"


@pytest.fixture(scope="module")
def changed(tmp_path_factory):
    """May: card G-1 (Гремислав Макаров) with phone OLD and a 2024 service ticket with OLD
    only; card B-1 (Бронислава Кузьмина) with OLD_B and a 2024 ticket with OLD_B. June: the
    CRM overwrites both cards' phones; profiled in June twice (auto, i.e. incremental, and
    full). July, on the incremental June: OLD_B is given to a new person (card B-2, Ефросинья
    Лаптева, registered in July, and her July ticket); profiled in July twice."""
    path = tmp_path_factory.mktemp("former") / "w.duckdb"
    collect("synthetic", warehouse=path, n_people=N, seed=SEED, as_of=MAY, progress=False)
    with Warehouse(path) as wh:
        insert_row(wh, "crm_contacts", {"contact_id": "G-1", "first_name": "Гремислав",
                                     "last_name": "Макаров", "birth_date": "1979-02-03",
                                     "phone": OLD, "registered_at": "2023-04-02"})  # fmt: skip
        insert_row(wh, "support_tickets", {"ticket_id": "G-T1", "phone": OLD,
                                        "created_at": "2024-08-15"})  # fmt: skip
        insert_row(wh, "crm_contacts", {"contact_id": "B-1", "first_name": "Бронислава",
                                     "last_name": "Кузьмина", "birth_date": "1968-09-21",
                                     "phone": OLD_B, "registered_at": "2022-01-12"})  # fmt: skip
        insert_row(wh, "support_tickets", {"ticket_id": "B-T1", "phone": OLD_B,
                                        "created_at": "2024-03-05"})  # fmt: skip
        first = run_stage(wh, run_id="may", as_of=MAY)
        may_map = wh.read_table("identity", "map")
        for cid, phone in (("G-1", NEW), ("B-1", NEW_B)):
            wh.con.execute(
                f"UPDATE {source_schema(wh, 'crm_contacts')}.crm_contacts SET phone = ? "
                "WHERE contact_id = ?",
                [phone, cid],
            )
    assert first.figures["identity_mode"]["used"] == "full"
    copy = tmp_path_factory.mktemp("june_full") / "w.duckdb"
    shutil.copyfile(path, copy)
    june = {}
    for mode, at in (("full", copy), ("auto", path)):
        with Warehouse(at) as wh:
            res = run_stage(wh, run_id="june", as_of=JUNE, identity_mode=mode)
            june[mode] = (
                res,
                *(wh.read_table("identity", t) for t in ("map", "former_identifiers")),
            )
    with Warehouse(path) as wh:
        insert_row(wh, "crm_contacts", {"contact_id": "B-2", "first_name": "Ефросинья",
                                     "last_name": "Лаптева", "birth_date": "1999-12-30",
                                     "phone": OLD_B, "email": EMAIL_B2,
                                     "registered_at": "2025-07-10"})  # fmt: skip
        # (with the phone alone her ticket would be one node with B-T1: equal identifying
        # values are resolved once, whatever their dates)
        insert_row(wh, "support_tickets", {"ticket_id": "B-T2", "phone": OLD_B, "email": EMAIL_B2,
                                        "created_at": "2025-07-15"})  # fmt: skip
    july = profiled_both_ways(
        path, tmp_path_factory, run_id="july", as_of=JULY, tables=("map", "former_identifiers")
    )
    return may_map, june, july


def test_may_links_each_ticket_to_its_card(changed):
    may_map = changed[0]
    assert profile_of(may_map, "support_tickets", "G-T1") == profile_of(
        may_map, "crm_contacts", "G-1"
    )
    assert profile_of(may_map, "support_tickets", "B-T1") == profile_of(
        may_map, "crm_contacts", "B-1"
    )


def test_the_overwritten_phones_are_kept_as_former_identifiers(changed):
    _, june, july = changed
    want = {
        ("crm_contacts", "G-1", "phone", OLD, JUNE),
        ("crm_contacts", "B-1", "phone", OLD_B, JUNE),
    }
    for month in (june, july):
        for mode in ("auto", "full"):
            former = month[mode][2]
            rows = {(r.source, r.record_id, r.kind, r.value, str(pd.Timestamp(r.until).date()))
                    for r in former.itertuples()}  # fmt: skip
            assert rows == want, mode


def test_a_card_whose_phone_changed_keeps_its_old_ticket(changed):
    may_map, june, july = changed
    card = profile_of(may_map, "crm_contacts", "G-1")
    assert pd.notna(card)
    for month in (june, july):
        for mode in ("auto", "full"):
            rmap = month[mode][1]
            assert profile_of(rmap, "crm_contacts", "G-1") == card, mode
            assert profile_of(rmap, "support_tickets", "G-T1") == card, mode
    # the June run that saw the change split nothing off
    assert june["auto"][0].figures["id_changes"]["split"] == 0


def test_the_new_holder_of_an_old_number_does_not_join(changed):
    may_map, june, july = changed
    card = profile_of(may_map, "crm_contacts", "B-1")
    for mode in ("auto", "full"):
        assert profile_of(june[mode][1], "support_tickets", "B-T1") == card, mode
        rmap = july[mode][1]
        assert profile_of(rmap, "crm_contacts", "B-1") == card, mode
        # her card and her July ticket are hers, not the card that held the number before
        assert profile_of(rmap, "crm_contacts", "B-2") != card, mode
        assert profile_of(rmap, "support_tickets", "B-T2") != card, mode
        assert profile_of(rmap, "support_tickets", "B-T2") == profile_of(
            rmap, "crm_contacts", "B-2"
        ), mode


def test_incremental_and_full_agree(changed):
    _, june, july = changed
    for month in (june, july):
        assert month["auto"][0].figures["identity_mode"]["used"] == "incremental"
        m_inc, m_full = month["auto"][1], month["full"][1]
        assert len(m_inc) == len(m_full)
        assert partition(m_inc) == partition(m_full)
