import socket

import pandas as pd
import pytest

from cemlib.collect import collect
from cemlib.errors import StageFailure
from cemlib.quality import QualityStage

AS_OF = "2025-06-30"


def _run(wh, src, run_id="r1", as_of=AS_OF, **kw):
    collect(str(src), warehouse=wh, run_id=run_id, as_of=as_of, progress=False)
    return QualityStage(progress=False, **kw).run(wh, run_id=run_id, as_of=as_of)


def test_quarantines_exactly_the_defective_rows_with_reasons(wh, base_dir, base_defects):
    _run(wh, base_dir)
    got = set()
    for table in ("online_orders", "order_lines", "products"):
        q = wh.read_table("quarantine", table)
        got |= {(table, int(r)) for r in q["_source_row"]}
        assert q["reason"].str.len().gt(0).all()
    assert got == base_defects
    q = wh.read_table("quarantine", "online_orders").set_index("_source_row")
    assert q.loc[1, "reason"] == "order dated after as_of (future date)"
    assert q.loc[2, "reason"] == "order dated before the business began"
    assert q.loc[4, "reason"] == "order date cannot be parsed"
    # an invalid phone (row 6) or e-mail (row 7) is emptied in clean, the row kept
    assert 6 not in q.index and 7 not in q.index
    clean = wh.read_table("clean", "online_orders").set_index("_source_row")
    assert pd.isna(clean.loc[6, "phone"]) and pd.isna(clean.loc[7, "email"])
    lines = wh.read_table("quarantine", "order_lines").set_index("_source_row")
    assert lines.loc[3, "reason"] == "orphan line, its order is unknown"
    assert lines.loc[4, "reason"] == "unknown product (SKU not in the catalogue)"


def test_rows_in_equal_clean_plus_quarantined(wh, base_dir):
    report = _run(wh, base_dir)
    cons = report.conservation.set_index("table")
    assert cons.loc["online_orders", ["rows_in", "clean", "quarantined"]].tolist() == [8, 5, 3]
    assert cons.loc["order_lines", ["rows_in", "clean", "quarantined"]].tolist() == [7, 3, 4]
    assert cons["conserved"].all()
    for table in cons.index:
        assert len(wh.read_table("clean", table)) == cons.loc[table, "clean"]
    stored = wh.read_table("quality", "conservation")
    assert (stored["rows_in"] == stored["clean"] + stored["quarantined"]).all()


def test_great_expectations_counts_match_the_sql_routing(wh, base_dir, base_defects):
    report = _run(wh, base_dir)
    row = report.results[(report.results["level"] == "row") & report.results["success"].notna()]
    assert len(row) > 20
    uniq_first = row["expectation"].str.contains("be_unique") & (row["table"] == "pos_receipts")
    row = row[~uniq_first]
    assert (row["unexpected_count"].astype(int) == row["sql_unexpected_count"].astype(int)).all()
    assert int(row["unexpected_count"].sum()) >= len(base_defects)


def test_results_history_is_appended_and_volume_compared(wh, base_dir):
    _run(wh, base_dir, run_id="r1")
    report = _run(wh, base_dir, run_id="r2")
    hist = wh.read_table("quality", "results")
    assert set(hist["run_id"]) == {"r1", "r2"}
    assert report.previous_run_id == "r1"
    vol = report.results[
        report.results["expectation"].str.contains("volume_min") & report.results["success"].notna()
    ]
    assert len(vol) == 3 and vol["success"].all()
    # re-running r2 replaces its rows instead of duplicating them
    _run(wh, base_dir, run_id="r2")
    hist2 = wh.read_table("quality", "results")
    assert len(hist2) == len(hist)


def test_stale_data_stops_the_stage_and_writes_nothing(wh, base_dir):
    with pytest.raises(StageFailure) as err:
        _run(wh, base_dir, as_of="2026-12-31")
    msg = str(err.value)
    assert "online_orders" in msg and "expect_column_max_to_be_between" in msg
    assert "observed 2026-01-01 12:00:00" in msg and "2026-12-01" in msg
    assert wh.tables("clean") == [] and wh.tables("quarantine") == []
    assert not wh.has_table("quality", "results")


def test_no_network_during_a_run(wh, base_dir, base_defects, monkeypatch):
    collect(str(base_dir), warehouse=wh, run_id="r1", as_of=AS_OF, progress=False)

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    report = QualityStage(progress=False).run(wh, run_id="r1", as_of=AS_OF)
    assert report.gx_context.config.analytics_enabled is False
    assert int(report.conservation["quarantined"].sum()) == len(base_defects)


def test_data_docs_are_written_and_masked(wh, base_dir, tmp_path):
    report = _run(wh, base_dir)
    index = report.write_data_docs(tmp_path / "docs")
    assert index.is_file()
    pages = list((tmp_path / "docs" / "validations").rglob("*.html"))
    assert len(pages) == 6  # table-level and row-level validation of 3 tables
    text = "".join(p.read_text(encoding="utf-8") for p in pages)
    assert "ivan.mail.ru" not in text


def test_warnings_do_not_quarantine(wh, base_dir):
    report = _run(wh, base_dir)
    warn = report.results[(report.results["severity"] == "warning")]
    assert (warn["rows_quarantined"] == 0).all()
    assert isinstance(report.results, pd.DataFrame)


def test_sampled_great_expectations_keeps_exact_routing_and_counts(wh, base_dir, base_defects):
    full = _run(wh, base_dir, run_id="full")
    sampled = QualityStage(progress=False, gx_max_rows=3).run(wh, run_id="sampled", as_of=AS_OF)
    assert sampled.outcomes["online_orders"].gx_rows == 3
    assert full.outcomes["online_orders"].gx_rows == 8
    got = {
        (t, int(r)) for t in sampled.outcomes for r in wh.read_table("quarantine", t)["_source_row"]
    }
    assert got == base_defects
    a = full.results.set_index(["table", "expectation"])
    b = sampled.results.set_index(["table", "expectation"])
    row = a["level"] == "row"
    # (a check skipped in both, e.g. on a column the table lacks, has no count in either)
    assert a.loc[row, "unexpected_count"].equals(b.loc[row, "unexpected_count"])
    assert a.loc[row, "unexpected_count"].notna().sum() > 10
    crit = a["severity"] == "critical"  # warnings with `mostly` are judged on the sample
    assert (
        a.loc[crit, "success"].astype(str).tolist() == b.loc[crit, "success"].astype(str).tolist()
    )
    # table-level checks still see every row
    count = b.loc[("online_orders", "expect_table_row_count_to_be_between(min_value=1)")]
    assert count["observed"] == 8


def test_output_of_a_table_the_new_source_lacks_is_removed(wh, tmp_path, tables, sources):
    src = sources(tmp_path / "a", tables)
    _run(wh, src, run_id="r1")
    assert wh.has_table("clean", "order_lines")
    del tables["order_lines"]
    src2 = sources(tmp_path / "b", tables)
    report = _run(wh, src2, run_id="r2")
    assert "order_lines" not in report.outcomes
    assert not wh.has_table("clean", "order_lines")
    assert not wh.has_table("quarantine", "order_lines")
    assert wh.has_table("clean", "online_orders")


def test_a_zero_price_is_kept_with_a_warning_a_negative_one_quarantined(
    wh, tmp_path, tables, sources
):
    tables["products"] = pd.concat(
        [
            tables["products"],
            pd.DataFrame(
                {
                    "sku": ["TOPUP", "BAD"],
                    "name": ["Пополнение", "Ошибка"],
                    "category": ["service", "food"],
                    "price": [0.0, -5.0],
                    "margin": [0.0, 0.1],
                }
            ),
        ],
        ignore_index=True,
    )
    free = {"line_id": "l8", "order_id": "o1", "sku": "A", "quantity": 1, "price": 0.0}
    tables["order_lines"] = pd.concat([tables["order_lines"], pd.DataFrame([free])])
    report = _run(wh, sources(tmp_path / "src", tables))
    lines = wh.read_table("clean", "order_lines").set_index("line_id")
    assert lines.loc["l8", "price"] == 0.0  # a free line is kept
    assert "l7" not in lines.index  # a negative price is quarantined
    assert (
        wh.read_table("quarantine", "order_lines").set_index("line_id").loc["l7", "reason"]
        == "price is negative on a line that is not a return (no return flag, no sale of the "
        "item in its order)"
    )
    clean = set(wh.read_table("clean", "products")["sku"])
    quarantined = wh.read_table("quarantine", "products")
    assert "TOPUP" in clean and "BAD" not in clean
    assert quarantined["sku"].tolist() == ["BAD"]
    assert quarantined["reason"].tolist() == ["list price is negative"]
    res = report.results.set_index("reason")
    zero = res.loc[res.index.str.startswith("list price is zero")].iloc[0]
    # the zero and the negative price both fail "above zero"; only the negative is quarantined
    assert zero["severity"] == "warning" and int(zero["unexpected_count"]) == 2
    assert int(zero["rows_quarantined"]) == 0


def test_clean_and_quarantine_tables_are_stored_in_source_row_order(wh, base_dir):
    """Whatever order staging holds its rows in (stage 00 writes chunks as they are ready),
    clean and quarantine are stored in ``_source_row`` order: two runs write the same tables."""
    collect(str(base_dir), warehouse=wh, run_id="r1", as_of=AS_OF, progress=False)
    tables = [t for t in wh.sql("SELECT table_name FROM information_schema.tables "
                                "WHERE table_schema = 'staging'")["table_name"]]  # fmt: skip
    for t in tables:  # the staging rows stored in another order, the content unchanged
        wh.con.execute(
            f'CREATE OR REPLACE TABLE staging."{t}" AS SELECT * FROM staging."{t}" '
            "ORDER BY hash(_source_row, 7)"
        )
    shuffled = sum(
        wh.sql(f'SELECT _source_row FROM staging."{t}" ORDER BY rowid')[
            "_source_row"
        ].is_monotonic_increasing
        is False
        for t in tables
    )
    assert shuffled >= 3
    report = QualityStage(progress=False).run(wh, run_id="r1", as_of=AS_OF)
    assert report.conservation["conserved"].all()
    for t in tables:
        for schema in ("clean", "quarantine"):
            rows = wh.sql(f'SELECT _source_row FROM {schema}."{t}" ORDER BY rowid')["_source_row"]
            assert rows.is_monotonic_increasing and rows.is_unique, (schema, t)
    assert len(wh.read_table("clean", "online_orders")) == 5
