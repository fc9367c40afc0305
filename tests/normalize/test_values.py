"""Dates, amounts and yes/no flags."""

import numpy as np
import pandas as pd
import pytest

from cemlib.normalize import parse_amounts, parse_bools, parse_dates

DATE_CASES = [
    ("05.03.2024", "2024-03-05 00:00:00"),
    ("5.3.2024", "2024-03-05 00:00:00"),
    ("05.03.2024 14:30", "2024-03-05 14:30:00"),
    ("05.03.2024 14:30:15", "2024-03-05 14:30:15"),
    ("05.03.24", "2024-03-05 00:00:00"),
    ("2024-03-05", "2024-03-05 00:00:00"),
    ("2024-03-05 14:30:15", "2024-03-05 14:30:15"),
    ("2024-03-05 14:30", "2024-03-05 14:30:00"),
    ("2024-03-05T14:30:15", "2024-03-05 14:30:15"),
    ("2024-03-05T14:30:15.250", "2024-03-05 14:30:15.250"),
    ("2024-03-05T14:30:15Z", "2024-03-05 14:30:15"),
    ("2024-03-05T14:30:15+03:00", "2024-03-05 14:30:15"),
    ("05/03/2024", "2024-03-05 00:00:00"),
    ("05-03-2024", "2024-03-05 00:00:00"),
    ("2024/03/05", "2024-03-05 00:00:00"),
    (" 05.03.2024 ", "2024-03-05 00:00:00"),
    ("31.02.2024", None),  # no such day
    ("13/13/2024", None),
    ("вчера", None),
    ("", None),
]


@pytest.mark.parametrize(("raw", "expected"), DATE_CASES)
def test_parse_dates_day_first(raw, expected):
    got = parse_dates(pd.Series([raw]))[0]
    if expected is None:
        assert pd.isna(got)
    else:
        assert got == pd.Timestamp(expected)


def test_parse_dates_vectorized_counts_unparsed():
    s = pd.Series([c[0] for c in DATE_CASES] * 3 + [None])
    out = parse_dates(s)
    assert out.dtype == "datetime64[ns]"
    assert out.isna().sum() == 3 * sum(c[1] is None for c in DATE_CASES) + 1


def test_a_column_written_month_first_is_read_month_first_throughout():
    # a US-locale Excel re-save: 13 and 21 can only be days, so 5/4 is the 4th of May
    us = pd.Series(["6/13/2025 21:44", "5/4/2025 13:06", "06/21/2025", "6/13/2025 21:44"])
    assert parse_dates(us).tolist() == [
        pd.Timestamp("2025-06-13 21:44"),
        pd.Timestamp("2025-05-04 13:06"),
        pd.Timestamp("2025-06-21"),
        pd.Timestamp("2025-06-13 21:44"),
    ]
    # day first stays the reading wherever a first part above 12 proves it, or nothing proves
    # the other order; one impossible month alone is a typo, not a month-first column
    ru = pd.Series(["13/06/2025", "05/04/2025", "06/21/2025"])
    assert parse_dates(ru)[1] == pd.Timestamp("2025-04-05") and pd.isna(parse_dates(ru)[2])
    slip = pd.Series(["05/04/2025", "06/05/2025", "05/13/2025"])
    assert parse_dates(slip).tolist()[:2] == [
        pd.Timestamp("2025-04-05"),
        pd.Timestamp("2025-05-06"),
    ]


def test_a_value_that_is_a_date_in_neither_order_does_not_decide_the_column():
    # a US re-save with one typed-in value that is no date at all (day 32, month 13): the
    # column is still month first, and only that value stays unparsed
    us = pd.Series(["11/23/2024 11:19", "11/4/2024 10:00", "2/14/2025", "32.13.2025 10:00"])
    assert parse_dates(us).tolist()[:3] == [
        pd.Timestamp("2024-11-23 11:19"),
        pd.Timestamp("2024-11-04 10:00"),
        pd.Timestamp("2025-02-14"),
    ]
    assert pd.isna(parse_dates(us)[3])


def test_parse_dates_passes_datetimes_through():
    s = pd.Series(pd.to_datetime(["2024-03-05 10:00"]).tz_localize("Europe/Moscow"))
    assert parse_dates(s)[0] == pd.Timestamp("2024-03-05 10:00")


AMOUNT_CASES = [
    ("1234,50", 1234.5),
    ("1 234,50", 1234.5),
    ("1\u00a0234,50 руб.", 1234.5),
    ("1 234,50 ₽", 1234.5),
    ("1.234,50", 1234.5),
    ("1,234.50", 1234.5),
    ("1 234 567", 1234567.0),
    ("1.234.567", 1234567.0),
    ("-12,5", -12.5),
    ("(12,5)", -12.5),
    ("99 р.", 99.0),
    ("RUB 10", 10.0),
    ("0", 0.0),
    (".5", 0.5),
    ("1e3", 1000.0),
    ("abc", None),
    ("12,5,3.1", None),
    ("", None),
]


@pytest.mark.parametrize(("raw", "expected"), AMOUNT_CASES)
def test_parse_amounts(raw, expected):
    got = parse_amounts(pd.Series([raw]))[0]
    if expected is None:
        assert np.isnan(got)
    else:
        assert got == pytest.approx(expected)


def test_parse_amounts_numeric_passthrough_and_dtype():
    assert parse_amounts(pd.Series([1, 2])).dtype == "float64"
    out = parse_amounts(pd.Series(["1,5", None, "x"]))
    assert out.dtype == "float64"
    assert out.isna().sum() == 2


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", True),
        ("0", False),
        ("Да", True),
        ("нет", False),
        ("TRUE", True),
        ("f", False),
        ("Y", True),
        ("n", False),
        ("+", True),
        ("-", False),
        ("может быть", None),
        ("", None),
    ],
)
def test_parse_bools(raw, expected):
    got = parse_bools(pd.Series([raw]))[0]
    assert (None if pd.isna(got) else bool(got)) == expected


CITY_CASES = [
    ("г. Москва", "Москва"),
    ("г.Москва", "Москва"),
    ("Г. Москва", "Москва"),
    ("город Санкт-Петербург", "Санкт-Петербург"),
    ("Казань г.", "Казань"),
    ("Казань, г", "Казань"),
    ("  Нижний   Новгород ", "Нижний Новгород"),
    ("г Москва", "Москва"),  # FIAS style, no dot
    ("с. Ивановка", "Ивановка"),
    ("с Ивановка", "Ивановка"),
    ("Гор. Орёл", "Орёл"),
    ("пгт Новый Уренгой", "Новый Уренгой"),
    ("Сочи", "Сочи"),  # "С" without a dot is part of the name
    ("Городец", "Городец"),  # a name that starts like the type word
    ("г.", None),
    ("", None),
]


@pytest.mark.parametrize(("raw", "expected"), CITY_CASES)
def test_city_name_drops_the_settlement_type(raw, expected):
    from cemlib.normalize import city_name

    got = city_name(pd.Series([raw]))[0]
    assert (pd.isna(got) and expected is None) or got == expected


def test_two_digit_years_not_after_a_day_go_back_a_century():
    s = pd.Series(["18.12.59", "01.02.03", "01.07.25", "01.07.2059", None])
    posix = parse_dates(s).dt.year.tolist()
    assert posix[:4] == [2059, 2003, 2025, 2059]
    past = parse_dates(s, not_after="2025-06-30")
    # only dates written with two digits move; a four-digit 2059 is what the file says
    assert past.dt.strftime("%Y-%m-%d").tolist()[:4] == [
        "1959-12-18", "2003-02-01", "1925-07-01", "2059-07-01",
    ]  # fmt: skip
    assert pd.isna(past[4])
