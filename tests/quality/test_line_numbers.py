"""Trial 10 (H1): a line is its receipt (order) and its line number. A till numbers the lines of
each receipt 1, 2, 3...; those numbers pass, a number repeated within one receipt is
quarantined (both copies), and a table quarantined whole says so in the run and in
``cem validate``'s exit."""

from __future__ import annotations

import pandas as pd
import pytest

from cemlib.cli import main
from cemlib.collect import collect
from cemlib.quality import QualityStage
from cemlib.quality.context import offline_context
from cemlib.quality.report import mostly_quarantined
from cemlib.quality.rowsql import failure_predicate
from cemlib.quality.suites import Check, load_suites
from cemlib.quality.table import validate_frame

AS_OF = "2025-06-30"
REASON = "duplicated line number within its receipt (receipt_id, line_id)"


def _shop(line_ids: list, receipt_ids: list | None = None) -> dict[str, pd.DataFrame]:
    """Three receipts and their lines, numbered as the till numbers them unless told."""
    products = pd.DataFrame({"sku": ["A", "B", "C"], "price": [10.0, 20.0, 30.0]})
    receipts = pd.DataFrame(
        {
            "receipt_id": ["r1", "r2", "r3"],
            "purchased_at": ["2025-06-01 10:00", "2025-06-02 11:00", "2025-06-03 12:00"],
            "loyalty_card": ["c1", "c2", None],
        }
    )
    lines = pd.DataFrame(
        {
            "receipt_id": receipt_ids or ["r1", "r1", "r1", "r2", "r2", "r3"],
            "line_id": line_ids,
            "sku": ["A", "B", "A", "C", "C", "B"],
            "quantity": [1, 2, 1, 1, 1, 3],
            "price": [10.0, 20.0, 10.0, 30.0, 30.0, 20.0],
        }
    )
    return {"products": products, "pos_receipts": receipts, "receipt_lines": lines}


def _run(wh, src):
    collect(str(src), warehouse=wh, run_id="r1", as_of=AS_OF, progress=False)
    return QualityStage(progress=False).run(wh, run_id="r1", as_of=AS_OF)


def _uniqueness_row(report) -> pd.Series:
    res = report.results
    return res[
        (res["table"] == "receipt_lines")
        & (res["expectation_type"] == "expect_compound_columns_to_be_unique")
    ].iloc[0]


def test_line_numbers_restarting_on_every_receipt_pass(wh, tmp_path, sources):
    # the till's numbers: 1, 2, 3 on r1, 1, 2 on r2, 1 on r3 (line 1 appears three times);
    # two equal lines of r2 (C x1 at 30) stay two lines
    src = sources(tmp_path / "src", _shop([1, 2, 3, 1, 2, 1]))
    report = _run(wh, src)
    cons = report.conservation.set_index("table")
    assert cons.loc["receipt_lines", ["rows_in", "clean", "quarantined"]].tolist() == [6, 6, 0]
    row = _uniqueness_row(report)
    assert bool(row["success"]) and int(row["unexpected_count"]) == 0
    assert row["column"] == "receipt_id, line_id"
    clean = wh.read_table("clean", "receipt_lines")
    assert sorted(zip(clean["receipt_id"], clean["line_id"], strict=True)) == [
        ("r1", "1"), ("r1", "2"), ("r1", "3"), ("r2", "1"), ("r2", "2"), ("r3", "1"),
    ]  # fmt: skip


def test_line_ids_unique_across_the_table_still_pass(wh, tmp_path, sources):
    src = sources(tmp_path / "src", _shop(["L1", "L2", "L3", "L4", "L5", "L6"]))
    report = _run(wh, src)
    assert report.conservation.set_index("table").loc["receipt_lines", "quarantined"] == 0
    assert bool(_uniqueness_row(report)["success"])


def test_a_line_number_repeated_within_its_receipt_is_quarantined(wh, tmp_path, sources):
    # r1 has two lines numbered 2 (rows 1 and 2); r2's line 2 and r3's line 1 are fine
    src = sources(tmp_path / "src", _shop([1, 2, 2, 1, 2, 1]))
    report = _run(wh, src)
    cons = report.conservation.set_index("table")
    assert cons.loc["receipt_lines", ["rows_in", "clean", "quarantined"]].tolist() == [6, 4, 2]
    q = wh.read_table("quarantine", "receipt_lines")
    assert sorted(q["_source_row"].astype(int)) == [1, 2]
    assert set(q["reason"]) == {REASON}
    assert set(q["expectation"]) == {"expect_compound_columns_to_be_unique(receipt_id, line_id)"}
    # Great Expectations counts what the SQL routed
    row = _uniqueness_row(report)
    assert not bool(row["success"])
    assert int(row["unexpected_count"]) == int(row["sql_unexpected_count"]) == 2
    assert int(row["rows_quarantined"]) == 2


def test_lines_without_a_number_are_not_judged_by_the_pair(wh, tmp_path, sources):
    # no line numbers on r1 (blank): not compared with each other
    src = sources(tmp_path / "src", _shop([None, None, None, 1, 2, 1]))
    report = _run(wh, src)
    assert report.conservation.set_index("table").loc["receipt_lines", "quarantined"] == 0


@pytest.mark.parametrize("ignore", ["any_value_is_missing", "all_values_are_missing", "never"])
def test_compound_uniqueness_in_sql_counts_as_great_expectations(wh, ignore):
    frame = pd.DataFrame(
        {
            "receipt_id": ["r1", "r1", "r1", "r2", None, None, "r3", "r3", None, None],
            "line_id": [1, 1, 2, 1, 1, 1, None, None, None, None],
        }
    )
    frame["_source_row"] = range(len(frame))
    wh.con.register("frame_v", frame)
    check = Check(
        type="expect_compound_columns_to_be_unique",
        kwargs={"column_list": ["receipt_id", "line_id"], "ignore_row_if": ignore},
        severity="critical",
        reason="duplicated line",
    )
    ctx = offline_context()
    result = validate_frame(
        ctx, f"lines_{ignore}", [(0, (check, (check, check.kwargs)))], None,
        frame.drop(columns="_source_row"), ctx.data_sources.add_pandas,
    )  # fmt: skip
    got = result.results[0].result["unexpected_count"]
    for relation in (None, "frame_v"):
        pred = failure_predicate(check, check.kwargs, relation=relation)
        sql = wh.con.execute(
            f"SELECT count(*) FILTER (WHERE f) FROM (SELECT {pred} AS f FROM frame_v)"
        ).fetchone()[0]
        assert sql == got, (ignore, relation)
    # the two copies of (r1, 1) fail in every mode; (None, 1) and (r3, None) twice each
    # unless a missing value ignores the row; (None, None) twice only under "never"
    expected = {"any_value_is_missing": 2, "all_values_are_missing": 6, "never": 8}[ignore]
    assert got == expected


def test_the_shipped_line_suites_check_the_pair():
    suites = load_suites()
    for table, parent in (("receipt_lines", "receipt_id"), ("order_lines", "order_id")):
        checks = [c for c in suites[table].checks if "unique" in c.type]
        assert [(c.type, c.kwargs["column_list"]) for c in checks] == [
            ("expect_compound_columns_to_be_unique", [parent, "line_id"])
        ]


def _all_line_ones() -> dict[str, pd.DataFrame]:
    """Every line of r1 and of r2 numbered 1 (a mapping that took the wrong column)."""
    return _shop([1] * 6, ["r1", "r1", "r1", "r2", "r2", "r2"])


def test_a_wholly_quarantined_table_is_named_with_its_share_and_reason(wh, tmp_path, sources):
    from cemlib.pipeline.runner import quarantine_warning
    from cemlib.quality.report import MOSTLY_QUARANTINED, headlines, verdict_of

    report = _run(wh, sources(tmp_path / "src", _all_line_ones()))
    cons = report.conservation.set_index("table")
    assert cons.loc["receipt_lines", ["rows_in", "quarantined"]].tolist() == [6, 6]
    msg = f"receipt_lines: 100% of its rows quarantined (6 of 6), most often {REASON!r} (6 rows)"
    assert mostly_quarantined(report) == [msg]
    h = headlines(report)
    assert h[MOSTLY_QUARANTINED] == msg
    # the run line: the warning cem run prints under stage 01 (and keeps in run.warnings)
    assert quarantine_warning(h) == (
        f"{msg}: the later stages see only the rest (reasons in quarantine.<table>)"
    )
    assert verdict_of(report)["status"] == "warning"


def test_half_a_table_quarantined_or_less_is_no_such_warning(wh, tmp_path, sources):
    from cemlib.pipeline.runner import quarantine_warning
    from cemlib.quality.report import MOSTLY_QUARANTINED, headlines

    # r1's three lines all numbered 1: 3 of 6 quarantined, exactly half
    report = _run(wh, sources(tmp_path / "src", _shop([1, 1, 1, 1, 2, 1])))
    assert report.conservation.set_index("table").loc["receipt_lines", "quarantined"] == 3
    assert mostly_quarantined(report) == []
    assert MOSTLY_QUARANTINED not in headlines(report)
    assert quarantine_warning(headlines(report)) is None


def test_scattered_defects_over_half_a_tiny_table_are_no_such_warning(wh, base_dir):
    # the base shop's order_lines: 4 of 7 lines quarantined by four different checks
    report = _run(wh, base_dir)
    assert report.conservation.set_index("table").loc["order_lines", "quarantined"] == 4
    assert mostly_quarantined(report) == []


def test_rows_after_as_of_are_not_counted_as_defects(wh, tmp_path, sources):
    # two of the three receipts after as_of (a backtest): held back, not a broken table
    tables = _shop([1, 2, 3, 1, 2, 1])
    tables["pos_receipts"]["purchased_at"] = ["2025-06-01 10:00", "2025-07-02", "2025-07-03"]
    report = _run(wh, sources(tmp_path / "src", tables))
    assert report.conservation.set_index("table").loc["pos_receipts", "quarantined"] == 2
    assert mostly_quarantined(report) == []


def test_cem_validate_exits_2_with_one_line_when_a_table_is_wholly_quarantined(
    tmp_path, sources, capsys
):
    src = sources(tmp_path / "src", _all_line_ones(), sep=";", encoding="cp1251")
    out = tmp_path / "out"
    code = main(["validate", str(src), "--out", str(out), "--as-of", AS_OF])
    printed = capsys.readouterr()
    assert code == 2
    err = printed.err.strip().splitlines()
    assert err == [
        f"cem validate: error: receipt_lines: 100% of its rows quarantined (6 of 6), most often "
        f"{REASON!r} (6 rows) (rows and reasons in {out}/quarantine/<table>.csv)"
    ]
    assert "Traceback" not in printed.err
    # the rows and their reason are written for the user to look at
    q = pd.read_csv(out / "quarantine" / "receipt_lines.csv", sep=",", dtype=str)
    assert len(q) == 6 and set(q["reason"]) == {REASON}


def test_cem_validate_exits_0_on_line_numbers_per_receipt(tmp_path, sources, capsys):
    src = sources(tmp_path / "src", _shop([1, 2, 3, 1, 2, 1]))
    code = main(["validate", str(src), "--out", str(tmp_path / "out"), "--as-of", AS_OF])
    assert code == 0
    assert capsys.readouterr().err == ""
