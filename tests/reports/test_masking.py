import pandas as pd

from cemlib.reports import mask_email, mask_frame, mask_name, mask_phone


def test_mask_phone_keeps_only_last_four():
    assert mask_phone("+79991234567") == "+7 *** ***-45-67"
    assert mask_phone("8 (999) 123-45-67") == "+7 *** ***-45-67"
    assert mask_phone(None) == ""
    assert mask_phone("12") == "***"


def test_mask_email_and_name():
    assert mask_email("Ivan.Petrov@mail.ru") == "I***@mail.ru"
    assert mask_email("broken") == "***"
    assert mask_name("Иванов Иван Петрович") == "И. И. П."
    assert mask_name(float("nan")) == ""


def test_mask_frame_by_column_name():
    df = pd.DataFrame(
        {
            "full_name": ["Петрова Анна"],
            "phone": ["+79161112233"],
            "email": ["anna@yandex.ru"],
            "delivery_address": ["Москва, ул. Ленина 1"],
            "amount": [10.0],
        }
    )
    out = mask_frame(df)
    assert out.iloc[0].to_dict() == {
        "full_name": "П. А.",
        "phone": "+7 *** ***-22-33",
        "email": "a***@yandex.ru",
        "amount": 10.0,
    }
