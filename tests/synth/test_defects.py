"""Defect injection helpers on their own, including multi-chunk text columns (big worlds)."""

from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd
import phonenumbers
import pyarrow as pa

from cemlib.synth.defects import _replace, malformed_email, malformed_phone


def test_replace_across_chunks_keeps_everything_else():
    chunks = [
        pa.array([f"v{i}" for i in range(a, a + 5)], type=pa.large_string()) for a in (0, 5, 10)
    ]
    col = pd.Series(
        pd.arrays.ArrowStringArray(pa.chunked_array(chunks)), dtype=pd.StringDtype("pyarrow")
    )
    rows = np.array([0, 4, 5, 9, 14])
    out = _replace(col, rows, ["a", "b", "c", "d", "e"])
    expected = [f"v{i}" for i in range(15)]
    for r, v in zip(rows, "abcde", strict=True):
        expected[r] = v
    assert out.tolist() == expected
    assert col.tolist() == [f"v{i}" for i in range(15)]  # the input is left alone


def test_replace_in_categorical_and_numeric_columns():
    cat = pd.Series(pd.Categorical(["SKU1", "SKU2", "SKU1"]))
    out = _replace(cat, np.array([1]), ["SKU999"])
    assert out.tolist() == ["SKU1", "SKU999", "SKU1"] and "SKU999" in out.cat.categories
    num = pd.Series([1, 2, 3])
    assert _replace(num, np.array([0, 2]), [0, -1]).tolist() == [0, 2, -1]


def test_malformed_values_are_invalid():
    rng = np.random.default_rng(0)
    phones = malformed_phone(rng, ["+7 (916) 123-45-67"] * 300 + [None] * 10)
    for p in phones:
        with contextlib.suppress(phonenumbers.NumberParseException):
            assert not phonenumbers.is_valid_number(phonenumbers.parse(p, "RU"))
    emails = malformed_email(rng, ["ivan.petrov@mail.ru"] * 300)
    assert all(e.count("@") != 1 or " " in e for e in emails)
