"""Input files: nothing silently skipped or cut; a bad file is one line naming it, exit 2."""

from __future__ import annotations

import codecs

import duckdb
import pandas as pd

from tests.reliability.conftest import CRM, cem, one_line_error

ORDERS = "order_id,ordered_at,email\nO1,2024-01-01 10:00:00,ivan.ivanov@mail.ru\n"
TX = (
    "customer_id,ts,item_id,quantity,amount\n"
    "A,2024-01-01,SKU100046\0X,1,10\n"
    "A,2024-02-01,SKU100046,1,10\n"
    "B,2024-01-02,SKU2,1,5\n"
)


def test_a_folder_named_like_a_table_file_is_an_error(tmp_path, crm_dir):
    (crm_dir / "online_orders.csv").write_text(ORDERS, encoding="utf-8")
    (crm_dir / "order_lines.csv").mkdir()
    proc = cem("collect", "--source", crm_dir, "--warehouse", tmp_path / "w.duckdb", "--quiet")
    one_line_error(proc, crm_dir / "order_lines.csv", "folder")
    proc = cem("validate", crm_dir, "--out", tmp_path / "v")
    one_line_error(proc, crm_dir / "order_lines.csv", "folder")


def test_nul_byte_kept_exactly_in_raw_and_staging(tmp_path, crm_dir):
    crm = crm_dir / "crm_contacts.csv"
    crm.write_text(CRM.replace("Иванов Иван Петрович", "Иван\0ов Иван Петрович", 1), "utf-8")
    wh = tmp_path / "w.duckdb"
    proc = cem("collect", "--source", crm_dir, "--warehouse", wh, "--quiet")
    assert proc.returncode == 0, proc.stderr
    con = duckdb.connect(str(wh), read_only=True)
    raw = con.sql("SELECT full_name FROM raw.crm_contacts ORDER BY _source_row").fetchall()
    staged = con.sql("SELECT full_name FROM staging.crm_contacts ORDER BY _source_row").fetchall()
    con.close()
    assert raw[0][0] == "Иван\0ов Иван Петрович" and staged[0][0] == raw[0][0]
    assert len(raw) == 4


def test_nul_byte_sku_is_refused_by_offers_not_cut(tmp_path):
    path = tmp_path / "tx.csv"
    path.write_text(TX, encoding="utf-8")
    proc = cem("offers", path, "--as-of", "2025-06-30", "--out", tmp_path / "o.csv")
    assert "NUL" in one_line_error(proc, path, "item_id", "line 2")
    assert not (tmp_path / "o.csv").exists()


def test_csv_reader_keeps_nul_bytes_exactly(tmp_path):
    from cemlib.io import read_file

    path = tmp_path / "tx.csv"
    path.write_text(TX, encoding="utf-8")
    assert list(read_file(path)["item_id"]) == ["SKU100046\0X", "SKU100046", "SKU2"]


def test_utf16_file_is_refused_with_one_line(tmp_path, crm_dir):
    crm = crm_dir / "crm_contacts.csv"
    crm.write_bytes(codecs.BOM_UTF16_LE + CRM.encode("utf-16-le"))
    proc = cem("collect", "--source", crm_dir, "--warehouse", tmp_path / "w.duckdb", "--quiet")
    assert "UTF-16 is not supported" in one_line_error(proc, crm)
    crm.write_bytes(CRM.encode("utf-16-le"))  # no BOM
    proc = cem("collect", "--source", crm_dir, "--warehouse", tmp_path / "w.duckdb", "--quiet")
    assert "UTF-16" in one_line_error(proc, crm)


def test_offers_errors_name_the_file(tmp_path):
    path = tmp_path / "my_sales.csv"
    pd.DataFrame(
        {
            "customer_id": ["A"],
            "ts": ["not a date"],
            "item_id": ["X"],
            "quantity": [1],
            "amount": [1],
        }
    ).to_csv(path, index=False)
    proc = cem("offers", path, "--as-of", "2025-06-30", "--out", tmp_path / "o.csv")
    one_line_error(proc, path, "ts")
