"""A CRM card's second phone and e-mail (trial 11 L1): optional ``phone2`` / ``email2`` columns
of ``crm_contacts`` are normalized by stage 00, checked by stage 01 (an unreadable value is
emptied, the row kept) and join the first ones as identifiers in stage 02."""

from __future__ import annotations

from pathlib import Path

import pytest

from cemlib.collect import collect
from cemlib.errors import InputError
from cemlib.identity.stage import run_stage as resolve
from cemlib.quality import QualityStage
from cemlib.warehouse import Warehouse

AS_OF = "2025-06-30"
HEADER = "Лицевой счет;ФИО;Телефон;Доп. телефон;Email;Доп. email;Дата подключения\n"
ROWS = (
    # Орлов's first contract lists his second number, his second contract only that number:
    # nothing but the second phone says they are one person
    "A1;Орлов Иван Петрович;+7 912 100-00-01;8 (912) 200-00-02;ivan.orlov@mail.ru;;10.01.2024\n"
    "A2;Орлов Иван Петрович;+7 912 200-00-02;;;;11.02.2024\n"
    # Седова's second e-mail is her other contract's only address
    "B1;Седова Анна Павловна;+7 912 100-00-03;;anna.sedova@ya.ru;Anna.Sedova@gmail.com;12.01.2024\n"
    "B2;Седова Анна Павловна;;;annasedova@gmail.com;;13.01.2024\n"
    # unreadable second phone and e-mail: emptied with a warning, the row kept
    "C1;Ким Лев Сергеевич;+7 912 100-00-04;12;lev.kim@ya.ru;нет;14.01.2024\n"
)
# Орлов's wife lists his number as her contact phone: another card's phone, another name
WIFE = "D1;Орлова Мария Сергеевна;+7 912 300-00-09;+7 912 100-00-01;;;15.01.2024\n"
MAPPING = {
    "crm_contacts": {
        "Лицевой счет": "contact_id",
        "ФИО": "full_name",
        "Телефон": "phone",
        "Доп. телефон": "phone2",
        "Email": "email",
        "Доп. email": "email2",
        "Дата подключения": "registered_at",
    }
}


def _run(tmp_path: Path, mapping: dict, rows: str = ROWS):
    src = tmp_path / "src"
    src.mkdir()
    (src / "crm_contacts.csv").write_text(HEADER + rows, encoding="utf-8")
    wh = Warehouse(tmp_path / "w.duckdb")
    got = collect(str(src), warehouse=wh, run_id="r", as_of=AS_OF, mapping=mapping, progress=False)
    quality = QualityStage(progress=False).run(wh, run_id="r", as_of=AS_OF)
    resolve(wh, run_id="r", as_of=AS_OF)
    quality.collect_warnings = got.warnings
    return wh, quality


def _profiles(wh: Warehouse) -> dict[str, str]:
    m = wh.read_table("identity", "map")
    return dict(zip(m["record_id"].astype(str), m["profile_id"].astype(str), strict=True))


def test_second_phone_and_email_reach_the_profiles(tmp_path):
    wh, quality = _run(tmp_path, MAPPING)
    with wh:
        staged = wh.read_table("staging", "crm_contacts").set_index("contact_id")
        assert staged.loc["A1", "phone2_e164"] == "+79122000002"
        assert staged.loc["B1", "email2_norm"] == "anna.sedova@gmail.com"
        clean = wh.read_table("clean", "crm_contacts").set_index("contact_id")
        assert len(clean) == 5  # nothing quarantined: a bad second phone is only a warning
        # C1's unreadable second phone and e-mail are emptied in clean, its first ones kept
        assert clean.loc["C1", ["phone2", "phone2_e164", "email2", "email2_norm"]].isna().all()
        assert clean.loc["C1", "phone_e164"] == "+79121000004"
        r = quality.results.set_index("reason")
        bad_phone = r.loc["second phone present but not a valid number after normalization"]
        bad_email = r.loc["second email present but malformed (no single @, no domain, spaces)"]
        assert bad_phone["unexpected_count"] == 1 and bad_email["unexpected_count"] == 1
        profiles = _profiles(wh)
        golden = wh.read_table("identity", "profiles").set_index("profile_id")
    assert profiles["A1"] == profiles["A2"]
    assert profiles["B1"] == profiles["B2"]
    assert profiles["C1"] not in {profiles["A1"], profiles["B1"]}
    assert len(set(profiles.values())) == 3
    assert not [w for w in quality.collect_warnings if "phone2" in w]  # his own numbers
    # the golden record keeps both of Орлов's phones
    assert sorted(golden.loc[profiles["A1"], "phones"]) == ["+79121000001", "+79122000002"]


def test_without_the_second_columns_the_cards_stay_apart(tmp_path):
    mapping = {"crm_contacts": {k: v for k, v in MAPPING["crm_contacts"].items() if "Доп" not in k}}
    wh, _ = _run(tmp_path, mapping)
    with wh:
        profiles = _profiles(wh)
        assert "phone2" not in wh.read_table("clean", "crm_contacts").columns
    assert profiles["A1"] != profiles["A2"] and profiles["B1"] != profiles["B2"]
    assert len(set(profiles.values())) == 5


def test_two_columns_mapped_to_phone_name_phone2_in_one_line(tmp_path):
    mapping = {"crm_contacts": {**MAPPING["crm_contacts"], "Доп. телефон": "phone"}}
    with pytest.raises(InputError) as err:
        _run(tmp_path, mapping)
    text = str(err.value)
    assert "\n" not in text
    assert "duplicate column(s) ['phone']" in text and "map a second one to phone2" in text


def test_a_relatives_number_as_second_phone_is_named_by_collect(tmp_path):
    """Trial 11 L4: a contact phone (a relative's number) mapped as ``phone2`` is household
    evidence; 00 says how many second phones are another card's phone under another name."""
    wh, quality = _run(tmp_path, MAPPING, ROWS + WIFE)
    with wh:
        profiles = _profiles(wh)
    warned = [w for w in quality.collect_warnings if w.startswith("crm_contacts.phone2")]
    assert (
        len(warned) == 1
        and "1 of 2 values are another card's phone under another name" in warned[0]
    )
    assert profiles["D1"] != profiles["A1"]  # no merge of husband and wife


def test_the_spark_engines_preparer_reads_the_second_columns():
    """Stage 02 on Spark prepares each source's rows with the same role list (no Spark needed:
    the ``mapInPandas`` function on one batch); a table without ``email2`` keeps one column."""
    import pandas as pd

    from cemlib.identity.sources import SOURCE_ROLES, present_roles
    from cemlib.identity.sparkstage import _preparer

    have = {"contact_id", "full_name", "phone", "phone2", "email"}
    roles = present_roles(SOURCE_ROLES["crm_contacts"][1], have)
    assert roles["phone"] == ["phone", "phone2"] and roles["email"] == ["email"]
    assert "loyalty_card" not in roles
    batch = pd.DataFrame({
        "contact_id": ["A1"], "full_name": ["Орлов Иван Петрович"],
        "phone": ["+7 912 100-00-01"], "phone2": ["8 (912) 200-00-02"], "email": [None],
    })  # fmt: skip
    out = next(_preparer("crm_contacts", "contact_id", roles)(iter([batch])))
    assert out.loc[0, "phone"] == "+79121000001" and out.loc[0, "phone_2"] == "+79122000002"
