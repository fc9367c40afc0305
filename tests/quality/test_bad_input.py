"""Bad input tried as a new user would: each gets a clean pass or a clear error, never a
library traceback, and never partial tables in the warehouse."""

import pandas as pd
import pytest

from cemlib.cli import main
from cemlib.collect import collect
from cemlib.errors import CemError, InputError, StageFailure
from cemlib.quality import QualityStage

AS_OF = "2025-06-30"


def _stage(wh, src):
    collect(str(src), warehouse=wh, run_id="r1", as_of=AS_OF, progress=False)
    return QualityStage(progress=False).run(wh, run_id="r1", as_of=AS_OF)


def _nothing_written(wh):
    return wh.tables("clean") == [] and wh.tables("quarantine") == [] and wh.tables("quality") == []


def test_cp1251_semicolon_decimal_comma_passes(wh, tmp_path, tables, sources, base_defects):
    src = sources(tmp_path / "src", tables, sep=";", decimal=",", encoding="cp1251")
    raw = (src / "products.csv").read_bytes()
    assert "Чай".encode("cp1251") in raw and b"250,5" in raw
    report = _stage(wh, src)
    products = wh.read_table("clean", "products").set_index("sku")
    assert products.loc["B", "price"] == pytest.approx(250.5)
    assert products.loc["A", "name"] == "Чай"
    quarantined = {
        (t, int(r)) for t in report.outcomes for r in wh.read_table("quarantine", t)["_source_row"]
    }
    assert quarantined == base_defects


def test_required_column_missing_is_a_clear_error(wh, tmp_path, tables, sources):
    tables["online_orders"] = tables["online_orders"].drop(columns=["ordered_at"])
    src = sources(tmp_path / "src", tables)
    with pytest.raises(CemError) as err:
        _stage(wh, src)
    assert "online_orders" in str(err.value) and "ordered_at" in str(err.value)
    assert _nothing_written(wh)


def test_required_column_missing_in_staging_stops_the_quality_stage(wh, tables):
    # a staging table written by other means (e.g. a user's own DuckDB) without a required column
    orders = tables["online_orders"].drop(columns=["ordered_at"]).assign(_source_row=range(8))
    wh.write_table("staging", "online_orders", orders, run_id="r1", as_of=AS_OF)
    with pytest.raises(StageFailure, match=r"online_orders: required column 'ordered_at'"):
        QualityStage(progress=False).run(wh, run_id="r1", as_of=AS_OF)
    assert _nothing_written(wh)


def test_empty_file_is_a_clear_error(wh, tmp_path, tables, sources):
    src = sources(tmp_path / "src", tables)
    (src / "order_lines.csv").write_bytes(b"")
    with pytest.raises(CemError, match="order_lines"):
        _stage(wh, src)
    assert _nothing_written(wh)


def test_an_empty_table_stops_the_stage(wh, tmp_path, tables, sources):
    from cemlib.errors import InputError

    empty = dict(tables, order_lines=tables["order_lines"].iloc[:0])
    # a header-only file of it is refused by collect up front (cemlib.collect.empty) ...
    with pytest.raises(InputError, match="order_lines.csv: no data rows"):
        collect(str(sources(tmp_path / "bad", empty)), warehouse=wh, run_id="r1", as_of=AS_OF,
                progress=False)  # fmt: skip
    # ... and a table that reaches 01 empty another way stops the stage, nothing written
    collect(str(sources(tmp_path / "src", tables)), warehouse=wh, run_id="r1", as_of=AS_OF,
            progress=False)  # fmt: skip
    wh.con.execute("DELETE FROM staging.order_lines")
    with pytest.raises(StageFailure) as err:
        QualityStage(progress=False).run(wh, run_id="r1", as_of=AS_OF)
    msg = str(err.value)
    assert "order_lines" in msg and "expect_table_row_count_to_be_between" in msg
    assert "observed 0" in msg
    assert _nothing_written(wh)


def test_extra_unknown_column_is_kept_and_warned(wh, tmp_path, tables, sources):
    tables["online_orders"]["promo_code"] = ["X1", None, "Y", None, None, "Z", None, None]
    src = sources(tmp_path / "src", tables)
    report = _stage(wh, src)
    assert any("promo_code" in w for w in report.warnings)
    clean = wh.read_table("clean", "online_orders")
    assert "promo_code" in clean.columns
    assert sorted(clean["promo_code"].dropna()) == ["X1", "Z"]


def test_dates_in_three_formats(wh, tmp_path, tables, sources):
    tables["online_orders"]["ordered_at"] = [
        "2025-06-01 10:00",
        "01.06.2025",
        "2025/06/02",
        "05.05.2025 08:00",
        "2025-06-03T09:15:00",
        "30.06.2025",
        "2025-04-04",
        "04.04.2025",
    ]
    tables["online_orders"]["phone"] = None
    tables["online_orders"]["email"] = None
    src = sources(tmp_path / "src", tables)
    report = _stage(wh, src)
    orders = report.conservation.set_index("table").loc["online_orders"]
    assert (orders["rows_in"], orders["quarantined"]) == (8, 0)
    clean = wh.read_table("clean", "online_orders").set_index("order_id")
    assert clean.loc["o2", "ordered_at"] == pd.Timestamp("2025-06-01")
    assert clean.loc["o4", "ordered_at"] == pd.Timestamp("2025-05-05 08:00")


def test_all_ids_duplicated_are_quarantined_not_lost(wh, tmp_path, tables, sources):
    tables["online_orders"]["order_id"] = "o1"
    tables["online_orders"]["phone"] = None
    tables["online_orders"]["email"] = None
    src = sources(tmp_path / "src", tables)
    report = _stage(wh, src)
    c = report.conservation.set_index("table").loc["online_orders"]
    assert (c["rows_in"], c["clean"], c["quarantined"]) == (8, 0, 8)
    q = wh.read_table("quarantine", "online_orders")
    assert q["reason"].str.contains("duplicated order id").all()


def test_cli_prints_the_error_without_traceback(tmp_path, tables, sources, capsys):
    tables["order_lines"] = tables["order_lines"].iloc[:0]
    src = sources(tmp_path / "src", tables)
    code = main(["validate", str(src), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert "order_lines" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "clean").exists()


def test_not_a_folder_is_a_clear_error(tmp_path, capsys):
    code = main(["validate", str(tmp_path / "nope")])
    assert code == 2
    assert "not a folder" in capsys.readouterr().err
    with pytest.raises(InputError):
        from cemlib.cli.validate import run

        class A:
            source_dir = str(tmp_path / "nope")

        run(A())


def test_staging_without_source_row_is_a_clear_error(wh, tables):
    wh.write_table("staging", "products", tables["products"], run_id="r1", as_of=AS_OF)
    with pytest.raises(InputError, match=r"staging.products, column '_source_row'"):
        QualityStage(progress=False).run(wh, run_id="r1", as_of=AS_OF)
    assert _nothing_written(wh)


def test_header_only_optional_source_is_a_warning_not_a_stop(wh, tmp_path, tables, sources):
    # "no tickets this month" is a legitimate export: the optional sources' suites warn
    tables["support_tickets"] = pd.DataFrame(columns=["ticket_id", "created_at", "phone", "csat"])
    src = sources(tmp_path / "src", tables)
    report = _stage(wh, src)
    assert report.outcomes["support_tickets"].rows_in == 0
    assert any("support_tickets" in w and "the table is empty" in w for w in report.warnings)
    assert wh.read_table("clean", "support_tickets").empty
    assert len(wh.read_table("clean", "order_lines")) > 0


def test_a_row_sent_twice_is_kept_once_and_differing_copies_are_all_held_back(
    wh, tmp_path, tables, sources, base_defects
):
    # keep: identical (online_orders.order_id): o1 sent again byte for byte (row 8) keeps row 0
    # clean; o4 sent again with another e-mail (row 9) holds back both copies (rows 3 and 9)
    orders = tables["online_orders"]
    again = orders.iloc[[0, 3]].copy()
    again.iloc[1, again.columns.get_loc("email")] = "other@mail.ru"
    tables["online_orders"] = pd.concat([orders, again], ignore_index=True)
    report = _stage(wh, sources(tmp_path / "src", tables))
    q = wh.read_table("quarantine", "online_orders").set_index("_source_row")
    dup = q[q["reason"].str.contains("duplicated order id")]
    assert sorted(dup.index) == [3, 8, 9]
    held = {
        (t, int(r)) for t in report.outcomes for r in wh.read_table("quarantine", t)["_source_row"]
    }
    assert held == base_defects | {("online_orders", r) for r in (3, 8, 9)}  # nothing else
    assert wh.read_table("clean", "online_orders")["order_id"].value_counts()["o1"] == 1
    r = report.results.set_index("expectation")
    row = r.loc[
        [e for e in r.index if e.startswith("expect_column_values_to_be_unique(order_id")][0]
    ]
    assert int(row["unexpected_count"]) == 4 and int(row["sql_unexpected_count"]) == 3


def test_a_long_line_is_quarantined_with_its_line_and_the_rest_is_clean(
    wh, tmp_path, tables, sources, capsys
):
    src = sources(tmp_path / "src", tables, sep=";")
    path = src / "online_orders.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[4] = lines[4] + ";extra"  # data row 3 (clean o4): 5 fields where the header has 4
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = collect(str(src), warehouse=wh, run_id="r1", as_of=AS_OF, progress=False)
    row = result.tables.set_index("table").loc["online_orders"]
    assert (row["n_raw"], row["n_staging"], row["n_set_aside"]) == (8, 8, 1)
    assert any(
        "online_orders.csv: 1 of 8 lines set aside" in w and "line 5" in w for w in result.warnings
    )
    report = QualityStage(progress=False).run(wh, run_id="r1", as_of=AS_OF)
    cons = report.conservation.set_index("table").loc["online_orders"]
    assert (cons["rows_in"], cons["clean"], cons["quarantined"]) == (8, 4, 4)
    q = wh.read_table("quarantine", "online_orders").set_index("_source_row")
    assert set(q.index) == {1, 2, 3, 4}
    assert q.loc[3, "reason"].startswith("line not read: more fields than the header")
    assert q.loc[3, "_row_defect"] == "5 fields where the header has 4"
    assert q.loc[3, "_line"] == 5 and q.loc[3, "_raw_line"] == lines[4]
    assert "contact" not in q.loc[3, "reason"] and ";" not in q.loc[3, "expectation"]
    clean = wh.read_table("clean", "online_orders")
    assert "_row_defect" not in clean.columns and "o4" not in set(clean["order_id"])
    by_reason = report.quarantine_by_reason.set_index("expectation")
    assert by_reason.loc["expect_column_values_to_be_null(_row_defect)", "rows_quarantined"] == 1
    # the 01 report's examples show the reason, never the line's text
    from cemlib.quality.report import masked_examples

    shown = masked_examples(wh, report)
    shown = shown[shown["table"] == "online_orders"].set_index("row")
    assert shown.loc[3, "reason"].startswith("line not read")
    assert (
        "D.Ivanov" not in shown.loc[3, "values (masked)"]
        and "_raw_line" not in shown.loc[3, "values (masked)"]
    )
    assert "_line=5" in shown.loc[3, "values (masked)"]
    # the user's file: the exported quarantine holds the line as received
    code = main(["validate", str(src), "--out", str(tmp_path / "out"), "--as-of", AS_OF])
    out = capsys.readouterr().out
    assert code == 0 and "line not read" in out
    exported = pd.read_csv(tmp_path / "out" / "quarantine" / "online_orders.csv", dtype=str)
    assert exported.loc[exported["_line"] == "5", "_raw_line"].item() == lines[4]


def test_invalid_phone_and_email_are_emptied_and_the_rows_kept(wh, base_dir):
    from tests.quality.conftest import BASE_BLANKED

    report = _stage(wh, base_dir)
    clean = wh.read_table("clean", "online_orders").set_index("_source_row")
    raw = wh.read_table("raw", "online_orders").set_index("_source_row")
    for _table, row, col in BASE_BLANKED:
        assert row in clean.index
        assert pd.isna(clean.loc[row, col]) and raw.loc[row, col] is not None
    assert raw.loc[6, "phone"] == "12-34" and raw.loc[7, "email"] == "ivan.mail.ru"
    assert clean.loc[6, "order_id"] == "o7" and pd.isna(clean.loc[6, "phone_e164"])
    assert pd.isna(clean.loc[7, "email_norm"]) and pd.isna(clean.loc[7, "email_key"])
    # valid identifiers are untouched
    assert clean.loc[0, "phone_e164"] == "+79991234567" and clean.loc[0, "email"] == "a@mail.ru"
    assert report.outcomes["online_orders"].blanked == {
        "phone": 1,
        "phone_e164": 1,
        "email": 1,
        "email_norm": 1,
        "email_key": 1,
    }
    warnings = report.outcomes["online_orders"].warnings
    assert "online_orders: 1 phone values not valid: left empty in clean, rows kept" in " ".join(
        warnings
    )
    assert "online_orders: 1 email values not valid" in " ".join(warnings)
    res = report.results.set_index("expectation")
    phone = res.loc["expect_column_values_to_not_be_null(phone_e164, when phone present)"]
    assert (phone["severity"], phone["unexpected_count"], phone["rows_quarantined"]) == (
        "warning",
        1,
        0,
    )
