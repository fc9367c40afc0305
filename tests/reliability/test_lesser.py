"""Counts that add up: a column of the wrong type fails its table; churn says what it left out."""

from __future__ import annotations

import pandas as pd

from tests.reliability.conftest import cem

ORDERS = (
    "order_id,ordered_at,email\n"
    "O1,2025-06-01 10:00:00,ivan.ivanov@mail.ru\nO2,2025-06-02 10:00:00,maria.p@ya.ru\n"
)
LINES = "order_id,sku,quantity,price\nO1,S1,много,10\nO2,S2,мало,20\n"


def test_a_whole_column_of_the_wrong_type_is_a_table_level_failure(tmp_path, crm_dir):
    (crm_dir / "online_orders.csv").write_text(ORDERS, encoding="utf-8")
    (crm_dir / "order_lines.csv").write_text(LINES, encoding="utf-8")
    proc = cem("validate", crm_dir, "--out", tmp_path / "v")
    assert proc.returncode == 2, proc.stdout
    assert "Traceback" not in proc.stderr
    assert "order_lines" in proc.stderr and "'quantity'" in proc.stderr
    assert "wrong type" in proc.stderr and "'price'" not in proc.stderr
    assert not (tmp_path / "v" / "clean").exists()


def test_the_wrong_type_comes_before_what_follows_from_it(tmp_path, crm_dir):
    """Trial 6, L1: the order dates of one export cannot be read at all; the line naming that
    cause comes before the freshness check that observes no date because of it."""
    orders = "order_id,ordered_at,email\nO1,20250601 1000,ivan.ivanov@mail.ru\n"
    (crm_dir / "online_orders.csv").write_text(orders, encoding="utf-8")
    (crm_dir / "order_lines.csv").write_text(LINES.replace("много", "1"), encoding="utf-8")
    proc = cem("validate", crm_dir, "--as-of", "2025-06-30", "--out", tmp_path / "v")
    assert proc.returncode == 2, proc.stdout
    # one line per critical failure, each naming the file it read (ops18)
    lines = [x.strip() for x in proc.stderr.splitlines() if x.strip().startswith(str(crm_dir))]
    orders_file = crm_dir / "online_orders.csv"
    assert lines[0].startswith(f"{orders_file}: column 'ordered_at': none of its 1 values")
    assert any("stale data" in x and "observed NaT" in x for x in lines[1:]), lines


def test_scorecard_percentage_is_separated_from_the_count(tmp_path, crm_dir):
    from cemlib.quality.scorecard import format_scorecard

    (crm_dir / "online_orders.csv").write_text(ORDERS, encoding="utf-8")
    lines = (
        "order_id,sku,quantity,price\n"
        + "".join(f"O1,S{i},x,10\n" for i in range(3))
        + ("O2,S9,1,10\n" * 8108)
    )
    (crm_dir / "order_lines.csv").write_text(lines, encoding="utf-8")
    proc = cem("validate", crm_dir, "--out", tmp_path / "v")
    assert proc.returncode == 0, proc.stderr
    row = next(line for line in proc.stdout.splitlines() if line.startswith("order_lines"))
    assert row.split()[1:5] == ["8,111", "8,108", "3", "0.04%"], row
    assert callable(format_scorecard)


def test_churn_counts_duplicates_and_negative_amounts(tmp_path):
    from tests.offers.conftest import make_transactions

    tx = make_transactions(120, seed=1)
    tx["ts"] = tx["ts"].dt.strftime("%Y-%m-%d")
    bad = pd.concat([tx, tx.iloc[:7]], ignore_index=True)
    bad.loc[len(bad)] = ["C0001", "2025-05-01", "I00", 1, -50.0]
    path = tmp_path / "tx.csv"
    bad.to_csv(path, index=False)
    proc = cem("churn", path, "--as-of", "2025-06-30", "--out", tmp_path / "s.csv")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"{len(bad)} rows in, {len(bad) - 7} used" in proc.stderr  # the return is netted
    assert "7 exact duplicate rows" in proc.stderr and "1 with a negative amount" in proc.stderr
    assert pd.read_csv(tmp_path / "s.csv")["customer_id"].nunique() == 120
