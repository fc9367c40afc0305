"""Returns on the Spark engine (issue 19): the small shop of ``tests/marts/test_returns.py``
(a negative line in the sale's web order, a 1C return receipt, a marketplace line whose status
says it came back), collected and checked by the DuckDB engine, copied to a lake, and read by
the Spark marts of stages 03 and 04. Every figure is the DuckDB engine's: the lines (returns as
negative rows), net revenue, the purchase occasions with each return taken off its sale, the
orders no customer holds, the purchases kept and the items never kept."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cemlib.churn.features import customer_features, purchase_occasions, validate_transactions
from cemlib.collect import collect
from cemlib.collect.sparklake import copy_to_lake
from cemlib.engine import Lake
from cemlib.marts import profile_transactions, returned_items, unattributed_orders
from cemlib.quality import QualityStage
from cemlib.warehouse import Warehouse
from tests.marts.test_returns import _sources as _shop

from .conftest import AS_OF, NEEDS_SPARK

pytest.importorskip("pyspark")
pytestmark = [*NEEDS_SPARK, pytest.mark.timeout(300)]

MAPPING = {
    "pos_receipts": {"Тип операции": {"is_return": ["Возврат"]}},
    "order_lines": {"Статус": {"returned": ["возврат"]}},
}
#: record -> customer: P1's coat return (r3) has no sale of the coat of theirs (r2 is an
#: anonymous receipt), so it comes off P1's latest occasion before it
OWNERS = {
    ("online_orders", "w1"): "P1", ("online_orders", "w2"): "P1",
    ("online_orders", "m1"): "P1", ("pos_receipts", "r3"): "P1",
    ("online_orders", "w3"): "P2", ("online_orders", "w4"): "P2",
    ("pos_receipts", "r1"): "P2",
}  # fmt: skip
KEY = ["customer_id", "ts", "order_id", "item_id", "quantity", "amount"]


def _sources(folder):
    """The returns shop of ``tests/marts/test_returns.py``, its products with a margin."""
    folder = _shop(folder)
    products = pd.read_csv(folder / "products.csv")
    products.assign(margin=[0.5, 0.4, 0.3, 0.2]).to_csv(folder / "products.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def shop(spark, tmp_path_factory):
    """``(warehouse path, lake)``: the shop collected and checked by DuckDB, its hand-written
    identity map, ``clean.*`` and ``identity.*`` copied to the lake."""
    tmp = tmp_path_factory.mktemp("spark_returns")
    src = _sources(tmp / "src")
    lake = Lake(tmp / "lake", spark_master="local[2]")
    with Warehouse(tmp / "cem.duckdb") as wh:
        collect(str(src), warehouse=wh, run_id="r", as_of=AS_OF, mapping=MAPPING, progress=False)
        QualityStage(progress=False).run(wh, run_id="r", as_of=AS_OF)
        pairs = list(OWNERS)
        wh.write_table(
            "identity", "map",
            pd.DataFrame({"source_table": [t for t, _ in pairs],
                          "record_id": [r for _, r in pairs],
                          "profile_id": [OWNERS[p] for p in pairs]}),
            run_id="r", as_of=AS_OF,
        )  # fmt: skip
        copy_to_lake(wh, lake, run_id="r", schemas=("clean", "identity"))
    return tmp / "cem.duckdb", lake


def _sorted(df: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    return df.sort_values(key, ignore_index=True)[list(df.columns)]


def test_churn_marts_net_returns_as_duckdb(shop, spark):
    from cemlib.marts.sparkmarts import SparkMarts, collect_frame

    wh_path, lake = shop
    with Warehouse(wh_path, read_only=True) as wh:
        tx = profile_transactions(wh, AS_OF)
        anonymous = unattributed_orders(wh, "2025-01-01", AS_OF)
    marts = SparkMarts(spark, lake)
    lines = collect_frame(marts.transactions(AS_OF))
    # rows: 6 sales of the two customers (r2 is anonymous) and 3 returns as negative rows
    assert len(tx) == len(lines) == 9 and (lines["quantity"] < 0).sum() == 3
    a, b = _sorted(tx, KEY), _sorted(lines[list(tx.columns)], KEY)
    pd.testing.assert_frame_equal(a.astype(str), b.astype(str))
    # revenue: P1 gross 1000 + 500 + 200 + 500 + 100, less 1000 (A) + 500 (B) + 700 (D);
    # P2 100; the anonymous coat (r2) is nobody's
    assert lines.groupby("customer_id")["amount"].sum().to_dict() == {"P1": 100.0, "P2": 100.0}
    assert lines["amount"].sum() == tx["amount"].sum() == 200.0
    # occasions: a return is none, each taken off its sale's day (P1's coat, bought by nobody
    # of P1's, off P1's occasion before it: 1 May, floored at 0)
    occ = collect_frame(marts.occasions(marts.transactions(AS_OF)))
    want = purchase_occasions(validate_transactions(tx), AS_OF)
    occ = occ.sort_values(["customer_id", "day"], ignore_index=True)
    assert len(occ) == len(want) == 4
    assert occ["day"].astype("datetime64[ns]").tolist() == want["day"].tolist()
    for c in ("amount", "margin", "online", "n_items"):
        np.testing.assert_allclose(occ[c], want[c], rtol=1e-9, err_msg=c)
    assert occ["amount"].tolist() == [500.0, 200.0, 0.0, 100.0]
    # purchase counts: P1 three purchase days, P2 one
    got = customer_features(occ.astype({"day": "datetime64[ns]"}), AS_OF)["n_purchases"]
    assert got.to_dict() == customer_features(want, AS_OF)["n_purchases"].to_dict()
    assert got.to_dict() == {"P1": 3.0, "P2": 1.0}
    # orders nobody holds: the anonymous receipt r2 (a return receipt would be no purchase)
    assert marts.unattributed_orders("2025-01-01", AS_OF) == anonymous == 1


def test_offers_history_is_the_purchases_kept_as_duckdb(shop, spark):
    from cemlib.offers.sparkstage import SparkOffers

    wh_path, lake = shop
    with Warehouse(wh_path, read_only=True) as wh:
        kept, never = returned_items(profile_transactions(wh, AS_OF))
    engine = SparkOffers(spark, lake, AS_OF)
    got = engine.transactions()
    # A (P1's web return) and D (P1's return receipt) never kept; B sent back once and kept
    # once: its purchases stay
    assert engine.never_kept().values.tolist() == [["P1", "A"], ["P1", "D"]]
    assert never.sort_values(["customer_id", "item_id"]).values.tolist() == [
        ["P1", "A"], ["P1", "D"],
    ]  # fmt: skip
    assert len(got) == len(kept) == 5 and (got["quantity"] > 0).all()
    a, b = _sorted(kept, KEY), _sorted(got[list(kept.columns)], KEY)
    pd.testing.assert_frame_equal(a.astype(str), b.astype(str))
    assert got["amount"].sum() == kept["amount"].sum() == 1400.0
