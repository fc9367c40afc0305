"""A consent refusal counts from every record of a profile, quarantined ones included."""

from __future__ import annotations

import pandas as pd

from cemlib.collect import collect
from cemlib.identity.stage import run_stage as resolve
from cemlib.offers.consent import assign_channels
from cemlib.offers.stage import profile_consent_table
from cemlib.quality import QualityStage
from cemlib.warehouse import Warehouse
from tests.reliability.conftest import AS_OF


def _pipeline(wh: Warehouse, src) -> None:
    collect(str(src), warehouse=wh, run_id="r", as_of=AS_OF, progress=False)
    QualityStage(progress=False).run(wh, run_id="r", as_of=AS_OF)
    resolve(wh, run_id="r", as_of=AS_OF)


def test_refusal_of_a_quarantined_record_reaches_its_profile(tmp_path, crm_dir):
    with Warehouse(tmp_path / "w.duckdb") as wh:
        _pipeline(wh, crm_dir)
        quarantined = set(wh.read_table("quarantine", "crm_contacts")["contact_id"])
        mapped = wh.read_table("identity", "map").set_index("record_id")["profile_id"]
        consent = profile_consent_table(wh).set_index("customer_id")
    assert "C2" in quarantined and "C2" not in mapped.index  # the refusing record has no profile
    ivan = mapped["C1"]
    assert not consent.loc[ivan, "consent_email"] and not consent.loc[ivan, "consent_sms"]
    # the others keep their consent
    assert consent.loc[mapped["C3"], "consent_email"] and consent.loc[mapped["C3"], "consent_sms"]
    assert (
        consent.loc[mapped["C4"], "consent_email"] and not consent.loc[mapped["C4"], "consent_sms"]
    )
    offers = pd.DataFrame({"customer_id": list(mapped), "rank": 1, "item_id": "x"})
    sent, summary = assign_channels(offers, consent.reset_index())
    assert ivan not in set(sent["customer_id"]) and summary.no_consent == 1


def test_refusal_matched_by_phone_when_the_email_differs(tmp_path, crm_dir):
    crm = crm_dir / "crm_contacts.csv"
    text = crm.read_text(encoding="utf-8").replace("Ivan.Ivanov@mail.ru", "other@list.ru")
    crm.write_text(text, encoding="utf-8")
    with Warehouse(tmp_path / "w.duckdb") as wh:
        _pipeline(wh, crm_dir)
        mapped = wh.read_table("identity", "map").set_index("record_id")["profile_id"]
        consent = profile_consent_table(wh).set_index("customer_id")
    assert "C2" not in mapped.index
    assert not consent.loc[mapped["C1"], "consent_email"]


def test_unreadable_consent_value_counts_as_refusal(tmp_path, crm_dir):
    crm = crm_dir / "crm_contacts.csv"
    lines = crm.read_text(encoding="utf-8").splitlines()
    # C2 gets a proper registration date (so it is clean) but an unreadable consent value
    lines[2] = lines[2].replace("1970-01-01 00:00:00,false,false", "2024-01-11 10:00:00,N0,N0")
    crm.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with Warehouse(tmp_path / "w.duckdb") as wh:
        _pipeline(wh, crm_dir)
        mapped = wh.read_table("identity", "map").set_index("record_id")["profile_id"]
        consent = profile_consent_table(wh).set_index("customer_id")
    assert not consent.loc[mapped["C1"], "consent_email"]


def test_a_profile_consenting_to_email_without_an_email_is_offered_by_sms(tmp_path, crm_dir):
    # C5 says yes to e-mail and SMS but gave only a phone: its offer goes by SMS
    crm = crm_dir / "crm_contacts.csv"
    crm.write_text(
        crm.read_text(encoding="utf-8")
        + "C5,Орлова Анна,+7 903 777-88-99,,1992-04-04,2024-04-01 09:00:00,true,true\n",
        encoding="utf-8",
    )
    with Warehouse(tmp_path / "w.duckdb") as wh:
        _pipeline(wh, crm_dir)
        mapped = wh.read_table("identity", "map").set_index("record_id")["profile_id"]
        consent = profile_consent_table(wh).set_index("customer_id")
    anna, maria = mapped["C5"], mapped["C3"]
    assert consent.loc[anna, "consent_email"] and not consent.loc[anna, "address_email"]
    offers = pd.DataFrame({"customer_id": [anna, maria], "rank": 1, "item_id": "x"})
    sent, summary = assign_channels(offers, consent.reset_index())
    assert dict(zip(sent["customer_id"], sent["channel"], strict=True)) == {
        anna: "sms",
        maria: "email",
    }
    assert summary.no_address == 0 and summary.reachable == 2


def _with_children(crm_dir):
    crm = crm_dir / "crm_contacts.csv"
    crm.write_text(
        crm.read_text(encoding="utf-8")
        # Maria's son on her phone (a clinic's child registration), consent given by her
        + "C5,Петров Артём Игоревич,+7 916 555-44-33,,2015-05-05,2024-02-11 11:05:00,true,true\n"
        # 16 tomorrow: still 15 at as_of
        + "C6,Козлова Дарья Андреевна,+7 903 100-20-30,dasha.k@ya.ru,2009-07-01,"
        "2024-05-01 09:00:00,true,true\n"
        # 16 on as_of
         + "C7,Волков Илья Сергеевич,+7 903 400-50-60,ilya.v@ya.ru,2009-06-30,"
        "2024-05-02 09:00:00,true,true\n",
        encoding="utf-8",
    )


def test_no_outbound_offer_to_a_profile_under_the_contact_age(tmp_path, crm_dir):
    _with_children(crm_dir)
    with Warehouse(tmp_path / "w.duckdb") as wh:
        _pipeline(wh, crm_dir)
        mapped = wh.read_table("identity", "map").set_index("record_id")["profile_id"]
        consent = profile_consent_table(wh, as_of=AS_OF).set_index("customer_id")
        no_rule = profile_consent_table(wh, as_of=AS_OF, min_contact_age=0)
    son, dasha, ilya, maria = (mapped[c] for c in ("C5", "C6", "C7", "C3"))
    assert len({son, dasha, ilya, maria}) == 4  # four people, four profiles
    assert consent.loc[son, "consent_sms"] and consent.loc[son, "minor"]
    assert consent.loc[dasha, "minor"] and not consent.loc[ilya, "minor"]
    assert int(consent["minor"].sum()) == 2
    offers = pd.DataFrame({"customer_id": list(mapped.unique()), "rank": 1, "item_id": "x"})
    sent, summary = assign_channels(offers, consent.reset_index())
    # the son's "yes" does not send an SMS to his mother's phone; Ilya (16 today) is written to
    assert not {son, dasha} & set(sent["customer_id"]) and ilya in set(sent["customer_id"])
    assert (summary.minors, summary.no_consent, summary.reachable) == (2, 1, 3)
    assert summary.profiles == summary.reachable + summary.no_consent + summary.minors
    frame = summary.as_frame().set_index("channel")
    assert frame.loc["younger than the contact age (no outbound offer)", "profiles"] == 2
    # min_contact_age 0: no age rule, both children are reached by their consented channel
    sent0, summary0 = assign_channels(offers, no_rule)
    assert {son, dasha} <= set(sent0["customer_id"]) and summary0.minors == 0
    assert summary0.reachable == 5


def test_a_refusal_still_wins_over_the_age_rule_being_off(tmp_path, crm_dir):
    _with_children(crm_dir)
    with Warehouse(tmp_path / "w.duckdb") as wh:
        _pipeline(wh, crm_dir)
        mapped = wh.read_table("identity", "map").set_index("record_id")["profile_id"]
        consent = profile_consent_table(wh, as_of=AS_OF, min_contact_age=0)
    consent = consent.set_index("customer_id")
    ivan = mapped["C1"]  # adult, refused both channels on a quarantined record
    assert not consent.loc[ivan, "minor"]
    assert not consent.loc[ivan, "consent_email"] and not consent.loc[ivan, "consent_sms"]
