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
