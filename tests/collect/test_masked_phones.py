"""Masked phones (``+7 *** ***-12-34``, a marketplace's buyers) are counted apart from the phones
that are not valid, per table and column, in the figures, the headlines and the 00 summary."""

from __future__ import annotations

import pandas as pd

from cemlib.collect.report import headlines, masked_phones_markdown, summary_markdown
from cemlib.collect.stage import collect


def test_masked_phones_are_counted_apart_from_the_not_valid(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    pd.DataFrame(
        {
            "order_id": ["o1", "o2", "o3", "o4", "o5", "o6"],
            "ordered_at": ["2025-05-10 10:00"] * 6,
            "phone": [
                "+7 (***) ***-87-48",  # masked, four digits shown
                "+7 (xxx) xxx-33-44",  # masked, Latin x
                "+7 916 111 87 48",  # valid
                "не знаю",  # not valid
                "12",  # not valid
                None,
            ],
        }
    ).to_csv(src / "online_orders.csv", index=False)
    pd.DataFrame(
        {"contact_id": ["c1", "c2"], "phone": ["+7 903 222 33 44", "+7 (***) ***-00-11"]}
    ).to_csv(src / "crm_contacts.csv", index=False)
    result = collect(src, warehouse=tmp_path / "w.duckdb", as_of="2025-06-30", progress=False)
    norm = result.normalization.set_index(["table", "column"])
    orders, crm = norm.loc[("online_orders", "phone")], norm.loc[("crm_contacts", "phone")]
    assert (orders["n_values"], orders["n_unparsed"], orders["n_masked"]) == (5, 4, 2)
    assert (crm["n_values"], crm["n_unparsed"], crm["n_masked"]) == (2, 1, 1)
    assert norm.loc[("online_orders", "ordered_at"), "n_masked"] == 0
    heads = headlines(result)
    assert heads["phone values masked"] == 3
    # 5 values not parsed in all (4 + 1), 3 of them masked: 2 bad values; 2 of the 4 phones
    # that are not masked are valid
    assert heads["values not parseable"] == 2
    assert heads["phones valid (E.164)"] == "50.0%"
    text = summary_markdown(result)
    # 5 phones not parsed, 3 of them masked: 2 not valid
    assert "and 2 are not valid (3 more are masked, below)" in text
    masked = masked_phones_markdown(result.normalization)
    assert "`online_orders.phone`: **2** of 5 values" in masked
    assert "`crm_contacts.phone`: **1** of 2 values" in masked
    assert masked in text
    # counts and the pattern only: no shown digits of the data in the report
    for digits in ("87-48", "33-44", "00-11", "8748", "3344"):
        assert digits not in masked
    # a table with no masked phone is not named; none at all: no sentence
    assert masked_phones_markdown(result.normalization.assign(n_masked=0)) == ""
