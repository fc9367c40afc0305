import pandas as pd
import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cemlib.normalize import normalize_phone, phone_e164

CASES = [
    ("+7 (999) 123-45-67", "+79991234567"),
    ("8 999 123 45 67", "+79991234567"),
    ("8 999 1234567", "+79991234567"),
    ("89991234567", "+79991234567"),
    ("79991234567", "+79991234567"),
    ("9991234567", "+79991234567"),
    ("+7-999-123-45-67", "+79991234567"),
    ("8(999)123-45-67", "+79991234567"),
    ("  +7 999 123 45 67  ", "+79991234567"),
    ("0079991234567", "+79991234567"),
    ("8 (495) 123-45-67", "+74951234567"),
    ("8 800 555-35-35", "+78005553535"),
    ("+7 999 123-45-67 доб. 123", "+79991234567"),
    ("8 (999) 123-45-67, доб 5", "+79991234567"),
    ("+7 999 123 45 67 ext 12", "+79991234567"),
    ("+7 999 123 45 67 ext. 12", "+79991234567"),
    ("89991234567x12", "+79991234567"),
    ("+375 29 123-45-67", "+375291234567"),
    ("+380 50 123 4567", "+380501234567"),
    ("12345", None),
    ("123", None),
    ("+7 999 123", None),
    ("not a phone", None),
    ("ivan@mail.ru", None),
    ("", None),
    ("   ", None),
    ("8 999 123 45 67 89 12", None),
]


@pytest.mark.parametrize(("raw", "expected"), CASES)
def test_phone_e164_real_world_formats(raw, expected):
    assert phone_e164(raw) == expected


def test_normalize_phone_vectorized_keeps_index_and_missing():
    s = pd.Series(
        [c[0] for c in CASES] + [None, float("nan")], index=range(100, 100 + len(CASES) + 2)
    )
    out = normalize_phone(s)
    assert out.dtype == "string"
    assert list(out.index) == list(s.index)
    expected = [c[1] for c in CASES] + [None, None]
    assert [None if pd.isna(v) else v for v in out] == expected
    assert out.isna().sum() == sum(e is None for e in expected)


def test_region_changes_bare_national_numbers():
    # a Belarus national number with its trunk prefix 8 0..
    assert phone_e164("8 029 123-45-67", region="BY") == "+375291234567"
    assert phone_e164("029 123-45-67", region="RU") is None


def _mobile_national():
    # operator codes 900-999 hold valid Russian mobiles in libphonenumber's metadata
    return st.builds(
        lambda code, rest: f"{code}{rest:07d}",
        st.integers(min_value=900, max_value=999),
        st.integers(min_value=0, max_value=9_999_999),
    ).filter(lambda n: phonenumbers.is_valid_number(phonenumbers.parse("+7" + n)))


def _format(national: str, style: int, sep: str) -> str:
    a, b, c, d = national[:3], national[3:6], national[6:8], national[8:]
    body = {
        0: f"({a}) {b}{sep}{c}{sep}{d}",
        1: f"{a}{sep}{b}{sep}{c}{sep}{d}",
        2: f"{a} {b}{c}{d}",
        3: national,
    }[style % 4]
    return body


@settings(max_examples=300, deadline=None)
@given(
    national=_mobile_national(),
    prefix=st.sampled_from(["+7", "8", "7", "", "+7 ", "8 ", "007"]),
    style=st.integers(0, 3),
    sep=st.sampled_from(["-", " ", ".", ""]),
    ext=st.sampled_from(["", " доб. 123", " ext 12", " доб 7", " x45"]),
    pad=st.sampled_from(["", " ", "  "]),
)
def test_any_formatting_of_a_valid_mobile_gives_one_e164(national, prefix, style, sep, ext, pad):
    text = f"{pad}{prefix}{_format(national, style, sep)}{ext}{pad}"
    assert phone_e164(text) == "+7" + national


def test_vectorized_fast_path_agrees_with_phonenumbers_on_random_input():
    """The +7 fast path must give exactly phonenumbers' answer, valid or not."""
    import numpy as np

    from cemlib.normalize.phones import _e164_func

    rng = np.random.default_rng(0)
    n = 6000
    # random 10-digit nationals over every leading digit, so invalid ranges are hit too
    nationals = [f"{x:010d}" for x in rng.integers(0, 10**10, n)]
    prefixes = ["+7", "8", "7", "", "007", "+7 ", "8 (", "+8", "810", "+77"]
    texts = [
        f"{prefixes[i % len(prefixes)]}{nat[:3]}{' -'[i % 2]}{nat[3:6]}{nat[6:]}"
        for i, nat in enumerate(nationals)
    ]
    texts += [t[:-1] for t in texts[:500]] + [t + "1" for t in texts[500:1000]]
    fast = normalize_phone(pd.Series(texts))
    slow = [_e164_func("RU")(t) for t in texts]
    mismatches = [
        (t, f, s)
        for t, f, s in zip(texts, fast, slow, strict=True)
        if (None if pd.isna(f) else f) != s
    ]
    assert not mismatches[:10]
    assert fast.notna().sum() > 500  # the sample holds many valid numbers as well


@pytest.mark.parametrize("value", ["+44 20 7946 0958", "8 (999) 123-45-67", "abc"])
def test_one_row_series(value):
    """A one-row column (a chunk or a file of one row) goes through the slow path too."""
    expected = {"abc": None}.get(value, normalize_phone(pd.Series([value, "x"]))[0])
    out = normalize_phone(pd.Series([value], dtype="string"))
    assert len(out) == 1
    assert (out[0] if pd.notna(out[0]) else None) == expected
    if value != "abc":
        assert out[0].startswith("+")


# -- masked phones (trial 9, H2: a marketplace shows +7 (***) ***-87-48) ------------------------
def test_masked_phones_keep_their_visible_last_digits_and_are_never_a_phone():
    from cemlib.normalize import is_masked_phone, masked_phone_tail

    values = pd.Series(
        [
            "+7 (***) ***-87-48",  # the marketplace's form
            "+7 9xx xxx 12 34",  # Latin x, a visible operator digit
            "+7 (ххх) ххх-87-48",  # Cyrillic х
            "•••• •••• 8748",  # bullets
            "+7 (9**) ***-**-**",  # masked, nothing visible at the end
            "8 (999) 123-45-67 x12",  # an extension: one x, a whole phone
            "xxx",  # too short for a number
            "abc-87-48",  # garbage
            "+7 999 123 45 67",
            None,
        ]
    )
    tail = masked_phone_tail(values)
    assert tail.tolist()[:5] == ["8748", "1234", "8748", "8748", ""]
    assert tail.iloc[5:].isna().all()
    assert is_masked_phone(values).tolist() == [True] * 5 + [False] * 5
    # a masked value is never read as a whole phone
    e164 = normalize_phone(values)
    assert e164.iloc[:5].isna().all()
    assert e164.iloc[5] == "+79991234567" and e164.iloc[8] == "+79991234567"
