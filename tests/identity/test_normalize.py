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
