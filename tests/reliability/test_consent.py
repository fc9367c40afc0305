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
