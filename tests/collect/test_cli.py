from cemlib.cli import main
from cemlib.warehouse import Warehouse
from tests.collect.conftest import write


def test_cem_collect_from_folder_prints_summary(russian_export, tmp_path, capsys):
    mapping = write(
        tmp_path / "mapping.yaml", "crm_contacts:\n  ФИО: full_name\n  Телефон: phone\n"
    )
    wh = tmp_path / "cem.duckdb"
    code = main(
        ["collect", "--source", str(russian_export), "--warehouse", str(wh), "--mapping", str(mapping),
         "--run-id", "cli1", "--quiet"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "crm_contacts" in out and "order_lines" in out
    assert "tables not in the source (optional): pos_receipts" in out
    with Warehouse(wh, read_only=True) as w:
        assert w.stamp("staging", "crm_contacts")[0] == "cli1"
        assert w.read_table("staging", "crm_contacts")["phone_e164"].notna().sum() == 2


def test_cem_collect_bad_input_exits_2_with_a_clear_message(russian_export, tmp_path, capsys):
    # without the mapping the CRM file lacks nothing required, but order lines do
    write(russian_export / "order_lines.csv", "order_id;sku;price\nO1;S1;10\n")
    code = main(
        [
            "collect",
            "--source",
            str(russian_export),
            "--warehouse",
            str(tmp_path / "w.duckdb"),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "order_lines.csv" in err and "'quantity'" in err
    assert "Traceback" not in err


def test_cem_collect_names_a_date_column_it_could_not_read(russian_export, tmp_path, capsys):
    # a third of the order dates in no readable format: "ok" would hide a wrong date format
    orders = "order_id;ordered_at;email\nO1;01.07.2024 10:00;a@b.ru\nO2;2024/13/45;c@d.ru\nO3;02.07.2024;\n"
    write(russian_export / "online_orders.csv", orders)
    write(russian_export / "order_lines.csv", "line_id;order_id;sku;quantity;price\nL1;O1;S1;1;5\n")
    mapping = write(tmp_path / "m.yaml", "crm_contacts:\n  ФИО: full_name\n  Телефон: phone\n")
    code = main(["collect", "--source", str(russian_export), "--warehouse", str(tmp_path / "w.duckdb"),
                 "--mapping", str(mapping), "--quiet"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "note: online_orders.ordered_at: 1 of 3 values (33.3%) are no date" in out
    line = next(ln for ln in out.splitlines() if ln.lstrip().startswith("online_orders"))
    assert line.rstrip().endswith("dates unread (note)")
    line = next(ln for ln in out.splitlines() if ln.lstrip().startswith("order_lines"))
    assert line.rstrip().endswith("ok")


def test_cem_collect_a_bad_value_translation_exits_2_naming_file_and_column(
    russian_export, tmp_path, capsys
):
    """Trial 12 F4: a translation listing one value under two event types is refused in one
    line naming the mapping file and the user's column, before anything is written."""
    mapping = write(
        tmp_path / "mapping.yaml",
        "web_events:\n  Тип: {event_type: {cart: [add_to_cart], view: [Add_To_Cart]}}\n",
    )
    wh = tmp_path / "w.duckdb"
    code = main(["collect", "--source", str(russian_export), "--warehouse", str(wh),
                 "--mapping", str(mapping), "--quiet"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert str(mapping) in err and "'Тип'" in err
    assert "value 'Add_To_Cart' is listed under both 'cart' and 'view'" in err
    assert "Traceback" not in err and len(err.splitlines()) == 1
    assert not wh.exists()
