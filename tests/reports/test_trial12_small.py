"""Trial 12 F9: small figures that read wrong in the reports."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

from cemlib.collect.stage import _table_row
from cemlib.monitor.movement import profile_changes
from cemlib.reports import fmt_probability, show_figures
from cemlib.warehouse import Warehouse


def test_a_threshold_near_one_keeps_the_digits_that_matter():
    # 02's "match threshold 1.000" (trial 12): the distance to 1 shows two significant digits
    assert fmt_probability(0.9998734) == "0.99987"
    assert fmt_probability(0.99949) == "0.99949"
    assert fmt_probability(0.903) == "0.903"
    assert fmt_probability(0.0000231) == "0.000023"
    assert fmt_probability(float("nan")) == "—"


def test_value_at_risk_is_shown_in_rubles(capsys, monkeypatch):
    shown = {}
    monkeypatch.setattr(
        "cemlib.reports.tables.show_table", lambda frame, **_: shown.setdefault("f", frame)
    )
    show_figures({"value at risk now": 85_388_160.0, "became high-risk": 26})
    f = shown["f"]
    assert list(f["value"]) == ["85,388,160 ₽", "26"]
    assert f["figure"].iloc[0] == "value at risk now, ₽"


def test_records_per_profile_counts_attached_records_only(tmp_path):
    # 20 records, 15 attached to 4 profiles, 5 unattached: 3.75, not 20 / 4 = 5 (4.32 vs 02's 3.6)
    m = pd.DataFrame(
        {
            "source_table": ["pos_receipts"] * 20,
            "record_id": [str(i) for i in range(20)],
            "profile_id": ["a"] * 6 + ["b"] * 4 + ["c"] * 3 + ["d"] * 2 + [None] * 5,
        }
    )
    reg = pd.DataFrame({"profile_id": list("abcd"), "status": ["active"] * 4,
                        "first_run_id": ["r1"] * 4})  # fmt: skip
    with Warehouse(tmp_path / "w.duckdb") as wh:
        wh.write_table("identity", "map", m, run_id="r1", as_of="2025-06-30")
        wh.write_table("identity", "registry", reg, run_id="r1", as_of="2025-06-30")
        got = profile_changes(wh, "r1", previous_active=None)
    assert got["records per profile"] == 15 / 4


def test_percentile_dates_of_a_date_only_column_have_no_time():
    loaded = SimpleNamespace(path=None, format="csv", encoding="cp1251", delimiter=";",
                             frame=pd.DataFrame({"a": [1]}), extra_columns=[], long_lines=None,
                             header_only=False)  # fmt: skip
    days = pd.Series(
        pd.to_datetime(["2022-08-14", "2022-08-15", "2022-08-16"] * 30 + ["2025-01-01"])
    )
    row = _table_row("support_tickets", loaded, 91, 91, days, pd.Timestamp("2025-06-30"))
    # the 99th percentile falls between 2022-08-16 and the stray 2025-01-01: a day, no time
    assert row["p01_date"] == pd.Timestamp("2022-08-14")
    assert row["p99_date"] == pd.Timestamp("2022-11-10")
    stamped = days + pd.Timedelta(hours=13, minutes=7)
    row = _table_row("support_tickets", loaded, 91, 91, stamped, pd.Timestamp("2025-06-30"))
    assert row["p01_date"] == pd.Timestamp("2022-08-14 13:07")
