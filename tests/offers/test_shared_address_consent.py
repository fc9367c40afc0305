"""A refusal given for a phone (e-mail) is the address holder's: it blocks SMS (e-mail) for
every profile holding that address, whether the refusing record is clean or quarantined."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cemlib.collect import collect
from cemlib.identity.stage import run_stage as resolve
from cemlib.offers.consent import address_refusals, assign_channels, shared_refusal_flags
from cemlib.offers.stage import profile_consent_table
from cemlib.quality import QualityStage
from cemlib.warehouse import Warehouse

AS_OF = "2025-06-30"
HEADER = "contact_id,full_name,phone,email,birth_date,registered_at,consent_email,consent_sms\n"
# a household: husband and wife, two people with their own e-mails, one family phone; the wife
# refuses SMS (and allows e-mail), the husband allows both. A third person, alone, allows both.
HOUSEHOLD = (
    "H1,Смирнов Алексей Викторович,+7 912 345-67-89,a.smirnov@mail.ru,1980-05-01,"
    "2024-01-10 10:00:00,true,true\n"
    "H2,Смирнова Елена Игоревна,8 (912) 345 67 89,elena.smirnova@ya.ru,1983-09-12,"
    "{registered},{wife}\n"
    "S1,Козлов Павел Андреевич,+7 903 111-22-33,p.kozlov@gmail.com,1975-02-03,"
    "2024-02-11 11:00:00,true,true\n"
)


def _consent(tmp_path: Path, registered: str, wife: str = "true,false"):
    src = tmp_path / "src"
    src.mkdir()
    crm = HEADER + HOUSEHOLD.format(registered=registered, wife=wife)
    (src / "crm_contacts.csv").write_text(crm, encoding="utf-8")
    with Warehouse(tmp_path / "w.duckdb") as wh:
        collect(str(src), warehouse=wh, run_id="r", as_of=AS_OF, progress=False)
        QualityStage(progress=False).run(wh, run_id="r", as_of=AS_OF)
        resolve(wh, run_id="r", as_of=AS_OF)
        quarantined = (
            set(wh.read_table("quarantine", "crm_contacts")["contact_id"].astype(str))
            if wh.has_table("quarantine", "crm_contacts")
            else set()
        )
        mapped = wh.read_table("identity", "map").set_index("record_id")["profile_id"]
        consent = profile_consent_table(wh)
    return consent, mapped, quarantined


# clean: the wife's record passes every check; quarantined: registered 1970-01-01
@pytest.mark.parametrize("registered", ["2024-01-10 10:05:00", "1970-01-01 00:00:00"])
def test_a_refusal_on_a_family_phone_blocks_sms_for_every_profile_holding_it(tmp_path, registered):
    consent, mapped, quarantined = _consent(tmp_path, registered)
    assert ("H2" in quarantined) == registered.startswith("1970")
    husband = mapped["H1"]
    # two different people: the husband has his own profile
    assert "H2" in quarantined or mapped["H2"] != husband
    offers = pd.DataFrame({"customer_id": sorted(set(mapped)), "rank": 1, "item_id": "x"})
    sent, summary = assign_channels(offers, consent)
    c = consent.set_index("customer_id")
    # the husband's own records allow SMS; his wife's refusal on their shared phone blocks it
    assert not c.loc[husband, "consent_sms"] and c.loc[husband, "shared_refusal_sms"]
    assert c.loc[husband, "consent_email"] and not c.loc[husband, "shared_refusal_email"]
    assert not c.loc[mapped["S1"], "shared_refusal_sms"] and c.loc[mapped["S1"], "consent_sms"]
    channels = dict(zip(sent["customer_id"], sent["channel"], strict=True))
    assert channels[husband] == "email" and channels[mapped["S1"]] == "email"
    assert summary.shared_refusals == {"email": 0, "sms": 1}
    if "H2" not in quarantined:
        wife = mapped["H2"]
        # her own refusal: not counted as lost through someone else's
        assert not c.loc[wife, "consent_sms"] and not c.loc[wife, "shared_refusal_sms"]
        assert summary.profiles == 3
    else:
        assert summary.profiles == 2


def test_a_refusal_of_email_on_the_family_phone_record_leaves_the_other_email_alone(tmp_path):
    # the wife refuses e-mail (her own address) and allows SMS: the husband's e-mail is his
    consent, mapped, _ = _consent(tmp_path, "2024-01-10 10:05:00", wife="false,true")
    c = consent.set_index("customer_id")
    husband, wife = mapped["H1"], mapped["H2"]
    assert c.loc[husband, "consent_email"] and c.loc[husband, "consent_sms"]
    assert not c.loc[wife, "consent_email"] and c.loc[wife, "consent_sms"]
    assert int(c["shared_refusal_sms"].sum()) == 0 and int(c["shared_refusal_email"].sum()) == 0


def test_a_consent_file_with_phones_applies_the_same_rule():
    contacts = pd.DataFrame(
        {
            "customer_id": ["A", "B", "C", "D"],
            "phone": ["+7 912 345-67-89", "8 (912) 345 67 89", "+7 903 111-22-33", None],
            "email": ["a@x.ru", "B@X.RU", "c@x.ru", "b@ x.ru"],
            "consent_email": ["yes", "no", "yes", "yes"],
            "consent_sms": ["yes", "no", "yes", "yes"],
        }
    )
    refusals = address_refusals(contacts)
    consent = shared_refusal_flags(contacts, refusals).set_index("customer_id")
    # B refused both: A shares B's phone (loses SMS), D holds B's e-mail written with a blank
    # after the @ and in another case (loses e-mail); C shares nothing
    assert list(consent["consent_sms"]) == [False, False, True, True]
    assert list(consent["consent_email"]) == [True, False, True, False]
    assert list(consent["shared_refusal_sms"]) == [True, False, False, False]
    assert list(consent["shared_refusal_email"]) == [False, False, False, True]
    offers = pd.DataFrame({"customer_id": list("ABCD"), "rank": 1, "item_id": "x"})
    sent, summary = assign_channels(offers, consent.reset_index())
    assert dict(zip(sent["customer_id"], sent["channel"], strict=True)) == {
        "A": "email",
        "C": "email",
        "D": "sms",
    }
    assert summary.shared_refusals == {"email": 1, "sms": 1} and summary.no_consent == 1
