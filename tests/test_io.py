"""The one reader of users' files (:mod:`cemlib.io`): encodings, delimiters, NUL bytes, Parquet,
one error style."""

from __future__ import annotations

import codecs

import pandas as pd
import pytest

from cemlib.errors import InputError
from cemlib.io import atomic_file, output_file, read_csv, read_file

TEXT = "Клиент;Дата;Сумма\nc1;05.03.2024;1 234,50\nc2;06.03.2024;99,90\n"


@pytest.mark.parametrize(
    ("data", "encoding", "delimiter"),
    [
        (TEXT.encode("utf-8"), "utf-8", ";"),
        (codecs.BOM_UTF8 + TEXT.encode("utf-8"), "utf-8-sig", ";"),
        (TEXT.encode("cp1251"), "cp1251", ";"),
        (TEXT.replace(";", "\t").encode("cp1251"), "cp1251", "\t"),
        (TEXT.replace(";", ",").replace(",50", "").replace(",90", "").encode(), "utf-8", ","),
    ],
)
def test_encodings_and_delimiters_are_detected(tmp_path, data, encoding, delimiter):
    path = tmp_path / "export.csv"
    path.write_bytes(data)
    frame, used, sep = read_csv(path)
    assert (used, sep) == (encoding, delimiter)
    df = read_file(path)
    assert list(df.columns) == ["Клиент", "Дата", "Сумма"]
    assert df.loc[0, "Клиент"] == "c1" and df.loc[1, "Дата"] == "06.03.2024"
    assert df.attrs["source"] == str(path)


def test_values_stay_text_exactly_as_received(tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes(TEXT.encode("cp1251"))
    df = read_file(path)
    assert list(df["Сумма"]) == ["1 234,50", "99,90"]  # a decimal comma is parsed where used
    assert all(isinstance(dtype, pd.StringDtype) for dtype in df.dtypes)


@pytest.mark.parametrize(
    "data",
    [codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le"), codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be")]
    + [TEXT.encode("utf-16-le")],
)
def test_utf16_is_refused_in_one_line(tmp_path, data):
    path = tmp_path / "export.csv"
    path.write_bytes(data)
    with pytest.raises(InputError, match="UTF-16 is not supported, save the file as UTF-8") as err:
        read_file(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_nul_bytes_are_kept_not_cut(tmp_path):
    path = tmp_path / "tx.csv"
    path.write_text("customer_id,item_id\nA,SKU1\0X\nB,SKU1\n", encoding="utf-8")
    assert list(read_file(path)["item_id"]) == ["SKU1\0X", "SKU1"]


def test_parquet_typed_or_as_text_and_nested_columns_refused(tmp_path):
    path = tmp_path / "tx.parquet"
    pd.DataFrame({"customer_id": ["A", "B"], "amount": [1.5, 2.0]}).to_parquet(path)
    assert read_file(path)["amount"].tolist() == [1.5, 2.0]
    assert read_file(path, text=True)["amount"].tolist() == ["1.5", "2"]
    nested = tmp_path / "nested.parquet"
    pd.DataFrame({"customer_id": ["A"], "items": [["x", "y"]]}).to_parquet(nested)
    with pytest.raises(InputError, match=r"column 'items': Parquet column of type list") as err:
        read_file(nested)
    assert str(nested) in str(err.value) and err.value.column == "items"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "file not found"),
        (lambda p: p.mkdir(), "is a folder"),
        (lambda p: p.write_bytes(b""), r"empty file \(0 bytes\)"),
        (lambda p: p.write_text("a;b\n"), r"no data rows \(only a header\)"),
        (lambda p: p.write_text("a,a\n1,2\n"), r"duplicate column\(s\) \['a'\]"),
    ],
)
def test_one_error_style_naming_the_file(tmp_path, make, message):
    path = tmp_path / "export.csv"
    make(path)
    with pytest.raises(InputError, match=message) as err:
        read_file(path)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_atomic_file_leaves_nothing_on_failure(tmp_path):
    out = output_file(tmp_path / "sub" / "out.csv")
    with pytest.raises(RuntimeError), atomic_file(out) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert not out.parent.exists()  # nothing left, not even the folder made for the file
    with atomic_file(out) as tmp:
        tmp.write_text("whole")
    assert out.read_text() == "whole" and list(out.parent.iterdir()) == [out]
    with pytest.raises(InputError, match="--out is a folder"):
        output_file(tmp_path)
