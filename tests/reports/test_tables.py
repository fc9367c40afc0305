"""The house style of report tables: figures as a reviewer reads them."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from cemlib.reports import fmt_cell, fmt_number, fmt_pct, fmt_rub, label, table_html


def test_numbers_have_separators_and_never_scientific_notation():
    assert fmt_number(269014) == "269,014"
    assert fmt_number(26783.0) == "26,783"
    assert fmt_number(np.int64(104)) == "104"
    assert fmt_number(6.762996e07) == "67,629,960"
    assert fmt_number(1234.567) == "1,235"
    assert fmt_number(3.14159) == "3.14"
    assert fmt_number(0.00123456) == "0.00123"
    assert fmt_number(1.5e-12) == "< 0.001"
    assert fmt_number(float("nan")) == "—"
    assert fmt_number(None) == "—"
    assert fmt_pct(0.5283) == "52.8%"
    assert fmt_pct(1.0) == "100.0%"
    assert fmt_rub(311204680) == "311,204,680 ₽"
    assert fmt_cell("nan") == "—"
    assert fmt_cell(pd.Timestamp("2025-06-30")) == "2025-06-30"
    assert fmt_cell(True) == "yes"


def test_glossary_names_columns_and_features_in_words():
    assert label("n_raw") == "rows in raw"
    assert label("cc_n_b") == "times the customer bought the category"
    assert label("ci_days_since") == "days since the customer bought the item"
    assert label("cx_expected_revenue") == "customer: expected revenue, ₽"
    assert label("cov_region=Москва") == "region: Москва"
    assert label("cov_online_share_tx") == "share of purchases online"
    assert label("some_new_column") == "some new column"


def test_forecasts_over_a_horizon_name_it():
    assert label("p_purchase_30") == "probability of a purchase in 30 days"
    assert label("expected_revenue_365") == "expected revenue in 365 days, ₽"
    assert label("p_purchase") == "probability of a purchase"
    assert label("p01_date") == "1st percentile date"


def test_table_shows_15_rows_and_collapses_the_rest():
    df = pd.DataFrame({"table": [f"t{i}" for i in range(40)], "n_raw": range(1000, 1040),
                       "share_valid": np.linspace(0, 1, 40), "x": [np.nan] * 40})  # fmt: skip
    html = table_html(df, pct=["share_valid"])
    visible, _, hidden = html.partition("<details>")
    assert visible.count("<tr>") == 1 + 15  # header + 15 rows
    assert hidden.count("<tr>") == 1 + 25
    assert "25 more rows" in hidden
    assert "rows in raw" in visible and "n_raw" not in visible
    assert "1,000" in visible and "100.0%" in hidden
    assert not re.search(r"\bnan\b|e\+\d\d|\.000000", html)
    assert "<th></th>" not in html  # no index column
