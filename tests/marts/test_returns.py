"""Returns end to end on a small shop exporting them in the three ways retailers do: a negative
line in the sale's web order, a 1C return receipt (``Тип операции = Возврат``, lines with positive
quantities) and a marketplace line whose status says it came back. Collected with a mapping,
checked by 01, keyed by a hand-written identity map, then read as the churn and offers stages
read them."""

from __future__ import annotations

import pandas as pd
import pytest

from cemlib.churn.features import customer_features, purchase_occasions, validate_transactions
from cemlib.collect import collect
from cemlib.marts import profile_transactions, returned_items, sales_headers_sql
from cemlib.offers.stage import fitting_offers
from cemlib.quality import QualityStage
from cemlib.warehouse import Warehouse

AS_OF = "2025-06-30"
MAPPING = {
    "pos_receipts": {"Тип операции": {"is_return": ["Возврат"]}},
    "order_lines": {"Статус": {"returned": ["возврат"]}},
}


def _sources(folder):
    folder.mkdir()
    pd.DataFrame(
        {
            "sku": ["A", "B", "C", "D"],
            "category": ["dress", "dress", "socks", "coat"],
            "price": [1000, 500, 100, 700],
        }
    ).to_csv(folder / "products.csv", index=False)
    pd.DataFrame(
        {
            "order_id": ["w1", "w2", "m1", "w3", "w4"],
            "ordered_at": ["2025-03-01", "2025-04-01", "2025-05-01", "2025-05-10", "2025-06-10"],
        }
    ).to_csv(folder / "online_orders.csv", index=False)
    pd.DataFrame(  # (row: what it is)
        {
            "line_id": ["l1", "l2", "l3", "l4", "l5", "l6", "l7", "l8", "l9"],
            "order_id": ["w1", "w1", "w1", "w2", "m1", "m1", "w3", "w4", "w4"],
            "sku": ["A", "B", "A", "C", "B", "C", "C", "C", "B"],
            # l3 cancels l1 (site return); l7 is negative with nothing to cancel in w3; l8 is
            # zero; l9 is negative but flagged a sale below
            "quantity": [1, 1, -1, 2, 1, 1, -1, 0, -1],
            "price": [1000, 500, 1000, 100, 500, 100, 100, 100, 500],
            "Статус": ["", "", "", "", "возврат", "выкуп", "", "", ""],  # l5: marketplace return
            "is_return": ["", "", "", "", "", "", "", "", "нет"],
        }
    ).to_csv(folder / "order_lines.csv", index=False)
    pd.DataFrame(
        {
            "receipt_id": ["r1", "r2", "r3"],
            "purchased_at": ["2025-02-01", "2025-02-10", "2025-06-20"],
            "Тип операции": ["Продажа", "Продажа", "Возврат"],  # r3 returns r2's coat
        }
    ).to_csv(folder / "pos_receipts.csv", index=False)
    pd.DataFrame(
        {
            "line_id": ["s1", "s2", "s3"],
            "receipt_id": ["r1", "r2", "r3"],
            "sku": ["C", "D", "D"],
            "quantity": [1, 1, 1],
            "price": [100, 700, 700],
        }
    ).to_csv(folder / "receipt_lines.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def wh(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("returns")
    src = _sources(tmp / "src")
    w = Warehouse(tmp / "cem.duckdb")
    collect(str(src), warehouse=w, run_id="r", as_of=AS_OF, mapping=MAPPING, progress=False)
    report = QualityStage(progress=False).run(w, run_id="r", as_of=AS_OF)
    w.report = report
    # one customer owns every order and receipt (the identity stage's map, written by hand)
    records = [("online_orders", o) for o in ("w1", "w2", "m1", "w3", "w4")]
    records += [("pos_receipts", r) for r in ("r1", "r2", "r3")]
    w.write_table(
        "identity",
        "map",
        pd.DataFrame(
            {
                "source_table": [t for t, _ in records],
                "record_id": [r for _, r in records],
                "profile_id": ["P1"] * len(records),
            }
        ),
        run_id="r",
        as_of=AS_OF,
    )
    yield w
    w.close()


def test_each_form_of_return_is_a_clean_line_and_a_contradiction_is_quarantined(wh):
    lines = wh.read_table("clean", "order_lines").set_index("line_id")
    assert sorted(lines.index) == ["l1", "l2", "l3", "l4", "l5", "l6"]
    assert lines["is_return"].to_dict() == {
        "l1": False, "l2": False, "l3": True, "l4": False, "l5": False, "l6": False,
    }  # fmt: skip
    assert lines.loc["l3", "quantity"] == 1.0  # a return's quantity is its magnitude
    assert lines["returned"].fillna(False).tolist() == [False, False, False, False, True, False]
    q = wh.read_table("quarantine", "order_lines").set_index("line_id")["reason"]
    not_return = (
        "quantity is zero, or negative on a line that is not a return (no return flag, no sale "
        "of the item in its order)"
    )
    assert q.to_dict() == {"l7": not_return, "l8": not_return, "l9": not_return}
    receipts = wh.read_table("clean", "pos_receipts").set_index("receipt_id")
    assert receipts["is_return"].tolist() == [False, False, True]
    assert "Тип операции" in receipts.columns  # their column is kept as it was
    rl = wh.read_table("clean", "receipt_lines").set_index("line_id")["is_return"]
    assert rl.to_dict() == {"s1": False, "s2": False, "s3": True}  # the header's flag
    cons = wh.report.conservation.set_index("table")
    assert cons.loc["order_lines", ["rows_in", "clean", "quarantined"]].tolist() == [9, 6, 3]
    assert cons["conserved"].all()


def test_revenue_is_net_of_returns_and_a_return_is_no_purchase(wh):
    tx = profile_transactions(wh, AS_OF)
    sales = tx[tx["quantity"] > 0]
    # gross: 1000 + 500 + 200 + 500 + 100 (web, marketplace) + 100 + 700 (stores) = 3100
    assert sales["amount"].sum() == 3100.0
    assert tx["amount"].sum() == 3100.0 - 1000 - 500 - 700  # three returns: net 900
    occ = purchase_occasions(validate_transactions(tx), AS_OF)
    # five purchase days (the return receipt of 20 June is none; w3 and w4 have no clean line),
    # net 900: each return taken off the day its item was bought (r3's coat: 10 February)
    assert len(occ) == 5 and occ["amount"].sum() == 900.0
    assert occ.set_index("day")["amount"].to_dict() == {
        pd.Timestamp(d): v
        for d, v in (("2025-02-01", 100.0), ("2025-02-10", 0.0), ("2025-03-01", 500.0),
                     ("2025-04-01", 200.0), ("2025-05-01", 100.0))
    }  # fmt: skip
    assert occ["day"].max() == pd.Timestamp("2025-05-01")
    f = customer_features(occ, AS_OF)
    assert f.loc["P1", "recency_days"] == (pd.Timestamp(AS_OF) - pd.Timestamp("2025-05-01")).days
    sql, params = sales_headers_sql(wh, AS_OF)
    heads = wh.con.execute(f"SELECT order_id FROM ({sql})", params).fetchall()
    assert sorted(h[0] for h in heads) == [
        "online_orders:m1", "online_orders:w1", "online_orders:w2", "online_orders:w3",
        "online_orders:w4", "pos_receipts:r1", "pos_receipts:r2",
    ]  # fmt: skip


def test_the_cli_rows_and_the_warehouse_agree_on_net_value():
    rows = pd.DataFrame(
        {
            "customer_id": ["c", "c", "c", "c"],
            "ts": pd.to_datetime(["2025-01-01", "2025-01-05", "2025-02-01", "2025-06-29"]),
            "amount": [300.0, -100.0, 50.0, -20.0],
        }
    )
    occ = purchase_occasions(validate_transactions(rows), "2025-06-30")
    assert occ["amount"].tolist() == [200.0, 30.0]  # each return off the purchase before it
    before = purchase_occasions(validate_transactions(rows), "2025-01-31")
    assert before["amount"].tolist() == [200.0]  # a return after the cut is not known at it


def test_an_item_returned_and_never_kept_is_not_offered(wh):
    kept, never = returned_items(profile_transactions(wh, AS_OF))
    # A (the web return) and D (the store's return receipt) never kept; B was sent back once
    # (the marketplace line) and kept once (w1): its purchases stay
    assert sorted(never["item_id"]) == ["A", "D"]
    assert sorted(kept["item_id"]) == ["B", "B", "C", "C", "C"] and (kept["quantity"] > 0).all()
    ranked = pd.DataFrame(
        {"customer_id": ["P1"] * 3, "rank": [1, 2, 3], "item_id": ["D", "C", "A"]}
    )
    depths = []

    def ranked_at(depth):
        depths.append(depth)
        return ranked.head(depth)

    attributes = pd.DataFrame(columns=["customer_id", "gender", "age_min", "age_max"])
    out, _, _ = fitting_offers(ranked_at, kept, attributes, 1, never_kept=never)
    assert depths == [3]  # ranked as much deeper as the customer's returned items (2 = 2k)
    assert out[["rank", "item_id"]].values.tolist() == [[1, "C"]]
