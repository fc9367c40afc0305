"""Bad arguments and outputs: one line, exit 2, checked before any work, no partial file."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.reliability.conftest import cem, one_line_error

TX = (
    "customer_id,ts,item_id,quantity,amount\n"
    "A,2024-01-01,S1,1,10\nA,2024-03-01,S2,1,10\nB,2024-01-02,S1,1,5\nB,2024-04-02,S1,1,5\n"
)


@pytest.fixture
def tx(tmp_path):
    path = tmp_path / "tx.csv"
    path.write_text(TX, encoding="utf-8")
    return path


def _no_leftovers(folder):
    assert not [p.name for p in folder.rglob("*.tmp")]


@pytest.mark.parametrize("command", ["churn", "offers"])
def test_out_pointing_at_a_folder(tmp_path, tx, command):
    out = tmp_path / "outdir"
    out.mkdir()
    proc = cem(command, tx, "--as-of", "2025-06-30", "--out", out)
    one_line_error(proc, out, "--out", "folder")
    assert list(out.iterdir()) == []
    _no_leftovers(tmp_path)


def test_out_under_a_file(tmp_path, tx):
    proc = cem("churn", tx, "--as-of", "2025-06-30", "--out", tx / "scores.csv")
    one_line_error(proc, tx / "scores.csv", "is a file")


def test_offers_k_zero_refused(tmp_path, tx):
    proc = cem("offers", tx, "--as-of", "2025-06-30", "--k", "0", "--out", tmp_path / "o.csv")
    one_line_error(proc, "--k")
    assert not (tmp_path / "o.csv").exists()


def test_validate_out_pointing_at_a_file(tmp_path, crm_dir):
    out = tmp_path / "taken"
    out.write_text("x")
    one_line_error(cem("validate", crm_dir, "--out", out), out, "--out")
    assert out.read_text() == "x"


def test_collect_warehouse_pointing_at_a_folder(tmp_path, crm_dir):
    wh = tmp_path / "whdir"
    wh.mkdir()
    one_line_error(cem("collect", "--source", crm_dir, "--warehouse", wh, "--quiet"), wh)


@pytest.mark.parametrize("value", [[["x"], ["y"]], [{"a": 1}, {"a": 2}]])
def test_parquet_nested_columns(tmp_path, value):
    path = tmp_path / "tx.parquet"
    pd.DataFrame(
        {
            "customer_id": ["A", "B"],
            "ts": pd.to_datetime(["2024-01-01", "2024-02-01"]),
            "item_id": value,
            "quantity": [1, 1],
            "amount": [1.0, 2.0],
        }
    ).to_parquet(path)
    for command in ("churn", "offers"):
        proc = cem(command, path, "--as-of", "2025-06-30", "--out", tmp_path / "o.csv")
        one_line_error(proc, path, "item_id")
    src = tmp_path / "src"
    src.mkdir()
    pd.DataFrame(
        {"contact_id": ["C1", "C2"], "full_name": ["Иванов Иван", "Петров Пётр"], "phone": value}
    ).to_parquet(src / "crm_contacts.parquet")
    proc = cem("collect", "--source", src, "--warehouse", tmp_path / "w.duckdb", "--quiet")
    one_line_error(proc, src / "crm_contacts.parquet", "phone")


def test_validate_reused_out_holds_only_this_run(tmp_path, crm_dir):
    out = tmp_path / "v"
    (out / "quarantine").mkdir(parents=True)
    stale = out / "quarantine" / "online_orders.csv"
    stale.write_text("old run\n")
    proc = cem("validate", crm_dir, "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert not stale.exists()
    assert (out / "quarantine" / "crm_contacts.csv").exists()
    assert (out / "clean" / "crm_contacts.parquet").exists()
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("bad", ["31.06.2025", "2025-06-31", "garbage"])
@pytest.mark.parametrize("command", ["collect", "validate", "generate", "churn", "offers"])
def test_an_impossible_as_of_is_one_line_in_every_command(tmp_path, tx, command, bad):
    # a new user's `cem collect --as-of 31.06.2025` was a pandas traceback
    args = {
        "collect": ("--source", tmp_path, "--warehouse", tmp_path / "w.duckdb"),
        "validate": (tmp_path, "--out", tmp_path / "out"),
        "generate": ("--out", tmp_path / "gen", "--people", "10"),
        "churn": (tx, "--out", tmp_path / "s.csv"),
        "offers": (tx, "--out", tmp_path / "o.csv"),
    }[command]
    proc = cem(command, *args, "--as-of", bad)
    one_line_error(proc, "--as-of", bad)
    assert not (tmp_path / "w.duckdb").exists() and not (tmp_path / "gen").exists()


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (
            ("identity", "x.csv", "--id-column", "id", "--match-threshold", "1.5"),
            ("--match-threshold", "1.5"),
        ),
        (("offers", "tx.csv", "--as-of", "2025-06-30", "--out", "o.csv", "--bogus"), ("--bogus",)),
        (("nosuch",), ("nosuch",)),
    ],
)
def test_an_argument_error_is_one_line_without_the_usage_block(tmp_path, args, names):
    proc = cem(*args, cwd=tmp_path)
    err = one_line_error(proc, *names)
    assert "usage:" not in err and "--help" in err
