"""The vectorised noise helpers, table-driven."""

from __future__ import annotations

import numpy as np
import phonenumbers
import pyarrow as pa
import pytest

from cemlib.synth.config import NoiseRates
from cemlib.synth.noise import (
    PHONE_STYLES,
    by_group,
    format_phones,
    hash64,
    hex_of,
    name_typo,
    other_provider,
    translit,
    vary_emails,
)


@pytest.mark.parametrize(
    "style,expected",
    list(
        enumerate(
            [
                "+7 (999) 123-45-67",
                "8 999 1234567",
                "9991234567",
                "+79991234567",
                "8-999-123-45-67",
                "8 (999) 123-45-67",
                "+7 999 123 45 67",
                "89991234567",
            ]
        )
    ),
)
def test_phone_styles(style, expected):
    out = format_phones(pa.array(["9991234567"]), np.array([style]))
    assert out.to_pylist() == [expected] == [PHONE_STYLES[style]]
    assert (
        phonenumbers.format_number(
            phonenumbers.parse(expected, "RU"), phonenumbers.PhoneNumberFormat.E164
        )
        == "+79991234567"
    )


def test_phone_styles_keep_row_order_and_nulls():
    digits = pa.array(["9161112233", None, "9031234567"])
    out = format_phones(digits, np.array([3, 0, 2])).to_pylist()
    assert out == ["+79161112233", None, "9031234567"]


@pytest.mark.parametrize(
    "cyr,lat",
    [
        ("Иванов", "Ivanov"),
        ("Юлия", "Yuliya"),
        ("Щукин", "Shchukin"),
        ("Сергеевич", "Sergeevich"),
        ("Артём", "Artem"),
        ("Хабибуллина", "Khabibullina"),
    ],
)
def test_translit(cyr, lat):
    assert translit(cyr) == lat


def test_name_typo_changes_but_keeps_a_name():
    rng = np.random.default_rng(0)
    typos = [name_typo("Константинов", rng) for _ in range(200)]
    assert sum(t != "Константинов" for t in typos) > 190
    assert all(abs(len(t) - 12) <= 1 and t[0] == "К" for t in typos)


def test_vary_emails_rates_and_validity():
    rng = np.random.default_rng(1)
    emails = pa.array(["ivan.petrov@gmail.com"] * 5000 + ["olga.smirnova@mail.ru"] * 5000)
    rates = NoiseRates()
    out = np.array(vary_emails(rng, emails, rates).to_pylist())
    gm, mr = out[:5000], out[5000:]
    assert abs(np.mean([("+" in e) for e in gm]) - rates.gmail_variant / 2) < 0.03
    assert abs(np.mean([e != e.lower() for e in mr]) - rates.email_case) < 0.02
    assert all(e.count("@") == 1 and " " not in e and ".." not in e for e in out)


def test_other_provider_moves_the_mailbox():
    out = other_provider(pa.array(["a.b@mail.ru", "c@yandex.ru", "d@gmail.com", "e@bk.ru", None]))
    assert out.to_pylist() == ["a.b@yandex.ru", "c@mail.ru", "d@mail.ru", "e@gmail.com", None]


def test_hash64_hex_is_stable_and_distinct():
    keys = np.arange(100_000)
    a = hex_of(hash64(keys, 7), 14).to_pylist()
    assert a == hex_of(hash64(keys, 7), 14).to_pylist()
    assert len(set(a)) == len(a) and all(len(x) == 14 for x in a)
    assert a != hex_of(hash64(keys, 8), 14).to_pylist()


def test_by_group_restores_order():
    groups = np.array([2, 0, 1, 0, 2])
    out = by_group(groups, 3, lambda k, idx: pa.array([f"{k}:{i}" for i in idx]))
    assert out.to_pylist() == ["2:0", "0:1", "1:2", "0:3", "2:4"]
