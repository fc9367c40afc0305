"""Trial 5's quality findings: children as customers (``min_age``) and events whose
``contact_id`` names no CRM record (a warning with its count per table)."""

from __future__ import annotations

import pandas as pd

from cemlib.collect import collect
from cemlib.quality import QualityStage

AS_OF = "2025-06-30"


def _crm() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "contact_id": ["P1", "P2", "P3", "P4", "P5"],
            "full_name": ["Орлова Анна", "Орлов Миша", "Орлова Вера", "Седов Пётр", "Ким Ли"],
            "birth_date": ["1988-02-03", "2019-05-06", "2012-07-01", "1911-01-01", "2025-08-01"],
            "registered_at": ["2024-01-10"] * 5,
        }
    )


def _events() -> dict[str, pd.DataFrame]:
    receipts = pd.DataFrame(
        {
            "receipt_id": ["r1", "r2", "r3", "r4", "r5"],
            "purchased_at": ["2025-06-01 10:00"] * 5,
            "contact_id": ["P1", "P2", "P9", None, "X-77"],  # r3, r5 name no CRM record
        }
    )
    tickets = pd.DataFrame(
        {
            "ticket_id": ["t1", "t2", "t3"],
            "created_at": ["2025-06-02 12:00"] * 3,
            "contact_id": ["P3", "P404", "P1"],  # t2 names no CRM record
        }
    )
    orders = pd.DataFrame({"order_id": ["o1"], "ordered_at": ["2025-06-03 09:00"]})  # no column
    return {"pos_receipts": receipts, "support_tickets": tickets, "online_orders": orders}


def _run(wh, folder, tables, **kw):
    folder.mkdir(parents=True, exist_ok=True)
    for name, df in tables.items():
        df.to_csv(folder / f"{name}.csv", index=False)
    collect(str(folder), warehouse=wh, run_id="r", as_of=AS_OF, progress=False)
    return QualityStage(progress=False, **kw).run(wh, run_id="r", as_of=AS_OF)


def _check(report, table: str, column: str, etype: str) -> pd.Series:
    r = report.results
    hit = r[(r["table"] == table) & (r["column"] == column) & (r["expectation_type"] == etype)]
    assert len(hit) == 1, hit
    return hit.iloc[0]


def test_the_youngest_plausible_customer_is_a_setting(wh, tmp_path):
    shop = _run(wh, tmp_path / "a", {"crm_contacts": _crm()})
    row = _check(shop, "crm_contacts", "birth_date", "expect_column_values_to_be_between")
    # 14 by default: the two children (6 and 12 at as_of), the 114-year-old and the unborn
    assert int(row["unexpected_count"]) == 4 and int(row["rows_quarantined"]) == 0
    assert "min_age" in row["reason"]
    clinic = _run(wh, tmp_path / "b", {"crm_contacts": _crm()}, min_age=0)
    row = _check(clinic, "crm_contacts", "birth_date", "expect_column_values_to_be_between")
    # children are patients: only the 114-year-old and a birth after as_of stay implausible
    assert int(row["unexpected_count"]) == 2
    assert len(wh.read_table("clean", "crm_contacts")) == 5


def test_events_naming_no_crm_record_are_warned_about_per_table(wh, tmp_path):
    report = _run(wh, tmp_path / "c", {"crm_contacts": _crm(), **_events()})
    etype = "expect_column_values_to_be_in_set"
    receipts = _check(report, "pos_receipts", "contact_id", etype)
    tickets = _check(report, "support_tickets", "contact_id", etype)
    assert (int(receipts["unexpected_count"]), int(tickets["unexpected_count"])) == (2, 1)
    assert receipts["severity"] == "warning" and not bool(receipts["success"])
    assert "names no CRM record" in receipts["reason"]
    # a warning: every event stays in clean, nothing is quarantined
    assert len(wh.read_table("clean", "pos_receipts")) == 5
    assert len(wh.read_table("clean", "support_tickets")) == 3
    assert int(receipts["rows_quarantined"]) == 0
    # a table without the column: the check is skipped and says why
    orders = _check(report, "online_orders", "contact_id", etype)
    assert orders["observed"] == "skipped: column 'contact_id' absent"
    assert pd.isna(orders["success"])


def test_without_a_crm_table_the_contact_check_is_skipped(wh, tmp_path):
    report = _run(wh, tmp_path / "d", _events())
    row = _check(report, "pos_receipts", "contact_id", "expect_column_values_to_be_in_set")
    assert row["observed"] == "skipped: parent table crm_contacts absent"
    assert pd.isna(row["success"]) and len(wh.read_table("clean", "pos_receipts")) == 5
