"""Closed contracts (``crm_contacts.closed_at``, trial 11 M3): checked by stage 01, a profile
whose every CRM record closed by ``as_of`` gets no outbound offer, and a phone or e-mail only
closed records carry is no address (operators recycle numbers)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cemlib.collect import collect
from cemlib.identity.stage import run_stage as resolve
from cemlib.marts.closed import crm_closure
from cemlib.offers.consent import assign_channels
from cemlib.offers.report import CLOSED_HEADLINE
from cemlib.offers.stage import profile_consent_table, without_closed_profiles
from cemlib.quality import QualityStage
from cemlib.warehouse import Warehouse

AS_OF = "2025-06-30"
CRM = (
    "contact_id;full_name;phone;email;birth_date;registered_at;closed_at;consent_email;consent_sms\n"
    # A left: his one contract closed in 2024
    "A1;Орлов Иван Петрович;+7 912 100-00-01;ivan.orlov@mail.ru;01.02.1980;10.01.2024;"
    "01.03.2024;да;да\n"
    # B: an old contract closed (its phone only there), a new one open without a phone
    "B1;Седова Анна Павловна;+7 912 100-00-02;anna.sedova@ya.ru;03.04.1985;11.01.2024;"
    "15.01.2025;да;да\n"
    "B2;Седова Анна Павловна;;anna.sedova@ya.ru;03.04.1985;20.01.2024;;да;да\n"
    # C closes after as_of: open as of as_of (no leakage)
    "C1;Ким Лев Сергеевич;+7 912 100-00-03;lev.kim@gmail.com;05.06.1990;12.01.2024;"
    "01.08.2025;да;да\n"
    # C2 closes on as_of itself: closed (as_of is the last day of known history, inclusive)
    "C2;Зуев Олег Ильич;+7 912 100-00-04;oleg.zuev@gmail.com;07.08.1970;13.01.2024;"
    "30.06.2025;да;да\n"
    # D closed before it was registered, E's closing date unreadable: both quarantined
    "D1;Лис Ольга Петровна;+7 912 100-00-05;olga.lis@mail.ru;09.10.1975;10.01.2024;"
    "10.01.2023;да;да\n"
    "E1;Бор Иван Ильич;+7 912 100-00-06;ivan.bor@mail.ru;11.12.1978;10.01.2024;скоро;да;да\n"
)


def _warehouse(tmp_path: Path) -> Warehouse:
    src = tmp_path / "src"
    src.mkdir()
    (src / "crm_contacts.csv").write_text(CRM, encoding="utf-8")
    wh = Warehouse(tmp_path / "w.duckdb")
    collect(str(src), warehouse=wh, run_id="r", as_of=AS_OF, progress=False)
    quality = QualityStage(progress=False).run(wh, run_id="r", as_of=AS_OF)
    resolve(wh, run_id="r", as_of=AS_OF)
    return wh, quality


def test_closed_at_is_checked_and_closed_profiles_get_no_offer(tmp_path):
    wh, quality = _warehouse(tmp_path)
    with wh:
        q = wh.read_table("quarantine", "crm_contacts").set_index("contact_id")
        assert sorted(q.index) == ["D1", "E1"]
        assert "contract closed before it was registered" in q.loc["D1", "reason"]
        assert "closing date cannot be parsed" in q.loc["E1", "reason"]
        r = quality.results
        pair = r[r["expectation_type"] == "expect_column_pair_values_a_to_be_greater_than_b"]
        assert len(pair) == 1 and pair.iloc[0]["rows_quarantined"] == 1
        # Great Expectations' own count agrees with the SQL that routed the row
        assert pair.iloc[0]["unexpected_count"] == pair.iloc[0]["sql_unexpected_count"] == 1
        clean = wh.read_table("clean", "crm_contacts")
        assert len(clean) + len(q) == 7  # nothing lost
        mapped = wh.read_table("identity", "map").set_index("record_id")["profile_id"]
        assert mapped["B1"] == mapped["B2"]  # one person, an old and a new contract
        closure = crm_closure(wh, AS_OF).set_index("customer_id")
        a, b, c, z = (str(mapped[x]) for x in ("A1", "B1", "C1", "C2"))
        assert closure["closed"].to_dict() == {a: True, b: False, c: False, z: True}
        assert closure.loc[b, "crm_records"] == 2 and closure.loc[b, "crm_closed"] == 1
        consent = profile_consent_table(wh, as_of=AS_OF).set_index("customer_id")
    # B's phone is only on her closed contract: e-mail only; A and Z left: nothing
    assert consent.loc[b, "address_email"] and not consent.loc[b, "address_sms"]
    assert consent.loc[c, "address_email"] and consent.loc[c, "address_sms"]
    for gone in (a, z):
        assert consent.loc[gone, "closed"]
        assert not consent.loc[gone, "address_email"] and not consent.loc[gone, "address_sms"]
    recs = pd.DataFrame({"customer_id": [a, a, b, c, z], "rank": [1, 2, 1, 1, 1], "item_id": "x"})
    kept, left = without_closed_profiles(recs, consent.reset_index())
    assert left == 2 and sorted(kept["customer_id"].unique()) == sorted([b, c])
    sent, summary = assign_channels(kept, consent.reset_index())
    assert dict(zip(sent["customer_id"], sent["channel"], strict=True)) == {b: "email", c: "email"}
    assert summary.profiles == 2 and summary.reachable == 2
    assert CLOSED_HEADLINE == "profiles left (all contracts closed): not offered"


def test_without_closed_at_nothing_changes(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    text = "\n".join(
        ";".join(line.split(";")[:6] + line.split(";")[7:]) for line in CRM.split("\n")
    )
    (src / "crm_contacts.csv").write_text(text, encoding="utf-8")
    with Warehouse(tmp_path / "w.duckdb") as wh:
        collect(str(src), warehouse=wh, run_id="r", as_of=AS_OF, progress=False)
        QualityStage(progress=False).run(wh, run_id="r", as_of=AS_OF)
        resolve(wh, run_id="r", as_of=AS_OF)
        assert crm_closure(wh, AS_OF).empty
        consent = profile_consent_table(wh, as_of=AS_OF)
    assert "closed" not in consent.columns
    assert bool(consent["address_sms"].sum() >= 5)


def test_the_pair_check_reads_the_same_in_duckdb_and_spark_sql():
    from cemlib.quality.rowsql import failure_predicate
    from cemlib.quality.sparksql import spark_failure_predicate
    from cemlib.quality.suites import PAIR, Check

    kw = {"column_A": "closed_at", "column_B": "registered_at", "or_equal": True}
    check = Check(type=PAIR, kwargs=kw, severity="critical", reason="r")
    assert check.columns() == ["closed_at", "registered_at"]
    assert check.column_label == "closed_at, registered_at"
    duck = failure_predicate(check, kw)
    assert duck == (
        'coalesce(("closed_at" IS NOT NULL AND "registered_at" IS NOT NULL AND '
        '"closed_at" < "registered_at"), FALSE)'
    )
    assert spark_failure_predicate(check, kw, None) == duck.replace('"', "`")


def test_a_pair_check_without_its_second_column_is_refused_in_one_line(tmp_path):
    import pytest

    from cemlib.errors import InputError
    from cemlib.quality.suites import load_suite

    suite = tmp_path / "crm_contacts.yaml"
    suite.write_text(
        "table: crm_contacts\nexpectations:\n"
        "  - type: expect_column_pair_values_a_to_be_greater_than_b\n"
        "    kwargs: {column_A: closed_at}\n    severity: critical\n    reason: r\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError, match="needs 'column_A' and 'column_B'"):
        load_suite(suite)
