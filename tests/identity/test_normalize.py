import pandas as pd

from cemlib.identity import resolve
from cemlib.identity.normalize import email_hints


def test_an_email_that_reads_as_a_name_of_either_gender_hints_no_gender():
    hints = email_hints(
        pd.Series(
            [
                "evgenijaiva431@mail.ru",  # Evgeni + aiva, or Evgenia + iva
                "aleksandrapop546@yandex.ru",  # Aleksandr + apop, or Aleksandra + pop
                "valentinakrylova@gmail.com",
                "sergeiaksenov@mail.ru",
                "irina.sokolova@mail.ru",
            ]
        )
    )
    assert hints["gender_hint"].tolist() == [pd.NA, pd.NA, "F", "M", "F"]
    assert hints["first_hint"].tolist() == ["evgeni", "aleksandr", "valentina", "sergei", "irina"]


def test_a_till_phone_links_the_web_login_of_an_ambiguous_email():
    # Евгения's phone at the till and on her web login evgenijaiva431@: the e-mail's hint read
    # "Evgeni, male" and the chain guard refused the phone link (independent world, seed 7)
    df = pd.DataFrame(
        {
            "id": ["T1", "W1"],
            "src": ["till", "web"],
            "name": ["Евгения", None],
            "tel": ["+7 946 189-82-26", "+7 946 189-82-26"],
            "mail": [None, "evgenijaiva431@mail.ru"],
        }
    )
    roles = {"first_name": "name", "phone": "tel", "email": "mail", "source": "src"}
    out = resolve(df, roles, id_column="id", use_model=False)
    assert out["profile_id"].nunique() == 1


def test_masked_phone_tail_parses_only_values_with_enough_mask_characters_and_agrees_with_core():
    from cemlib import normalize as core
    from cemlib.identity import normalize as nz

    values = pd.Series(
        ["+7 (***) ***-87-48", "+7 (9**) ***-**-**", "+79991234567", "8 999 123 45 67", None,
         "", "xxx-xx-12", "+7 xxx xxx 1", "***", "abc", " +7(***)***8748 ", "7•••••••12",
         "+7 (999) 12*-**-48", "ХХХ-ХХ-34", "x1", "no phone ***"],
        dtype="string",
    )  # fmt: skip
    got = nz.masked_phone_tail(values)
    assert got.tolist() == [
        "8748", pd.NA, pd.NA, pd.NA, pd.NA, pd.NA, "12", pd.NA, pd.NA, pd.NA, "8748", "12",
        "48", "34", pd.NA, pd.NA,
    ]  # fmt: skip
    # the same answers as the core parser on every value (which the pre-filter skips)
    whole = core.masked_phone_tail(values).astype("string")
    assert got.fillna("").tolist() == whole.fillna("").tolist()


def test_a_bare_word_is_a_first_name_unless_it_is_shaped_like_a_surname():
    # issue 12: a till row signed «Лилия», «Диана» or «Инна» (no listed first name) was read as
    # a surname, so no first-name check saw it; a typo («Одьга») alike
    from cemlib.identity.roles import prepare_records

    names = ["Лилия", "Диана", "Инна", "Одьга", "Анна", "Тютчев", "Иванова", "Элина"]
    df = pd.DataFrame({"id": [f"R{i}" for i in range(len(names))], "fio": names})
    p = prepare_records(df, {"fio": "full_name"}, id_column="id")
    assert p["first_lat"].notna().tolist() == [True] * 5 + [False] * 3
    assert p["last_lat"].notna().tolist() == [False] * 5 + [True] * 3
    # «Элина» ends like a surname (-ина, as Ильина) and is no listed name: still a surname


def test_a_wife_signing_a_till_row_on_her_husbands_phone_is_not_his():
    # independent world, seed 2026: «Алена» at the till on Михаил's phone joined his profile,
    # her bare name read as a surname; as a first name the chain guard refuses the family phone
    df = pd.DataFrame(
        {
            "id": ["C1", "T1", "T2"],
            "src": ["crm", "till", "till"],
            "fio": ["Иванов Михаил Викторович", "Михаил", "Алена"],
            "tel": ["+7 (933) 408-72-02", "9334087202", "79334087202"],
        }
    )
    roles = {"full_name": "fio", "phone": "tel", "source": "src"}
    out = resolve(df, roles, id_column="id", use_model=False).set_index("record_id")
    assert out.at["C1", "profile_id"] == out.at["T1", "profile_id"]
    assert out.at["T2", "profile_id"] != out.at["C1", "profile_id"]
