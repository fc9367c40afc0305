import pandas as pd
import pytest

from cemlib.errors import InputError
from cemlib.marts import TRANSACTION_COLUMNS, profile_covariates, profile_transactions
from cemlib.warehouse import Warehouse


@pytest.fixture
def wh(tmp_path):
    w = Warehouse(tmp_path / "w.duckdb")
    kw = {"run_id": "t", "as_of": "2025-06-30"}
    w.write_table(
        "clean",
        "online_orders",
        pd.DataFrame(
            {
                "order_id": [1, 2, 3],
                "ordered_at": pd.to_datetime(
                    ["2025-01-05", "2025-06-30 23:10", "2025-07-02"], format="ISO8601"
                ),
            }
        ),
        **kw,
    )
    w.write_table(
        "clean",
        "order_lines",
        pd.DataFrame(
            {
                "order_id": [1, 1, 2, 3],
                "sku": ["A", "B", "A", "B"],
                "quantity": [2, 1, 1, 1],
                "price": [100.0, 50.0, None, 50.0],
            }
        ),
        **kw,
    )
    w.write_table(
        "clean",
        "pos_receipts",
        pd.DataFrame(
            {
                "receipt_id": [1, 2],
                "store_id": [7, 7],
                "purchased_at": pd.to_datetime(["2025-03-01", "2025-03-02"]),
                "loyalty_card": ["C1", None],
            }
        ),
        **kw,
    )
    w.write_table(
        "clean",
        "receipt_lines",
        pd.DataFrame(
            {"receipt_id": [1, 2], "sku": ["B", "A"], "quantity": [3, 1], "price": [40.0, 90.0]}
        ),
        **kw,
    )
    w.write_table(
        "clean",
        "products",
        pd.DataFrame(
            {
                "sku": ["A", "B"],
                "category": ["shoes", "bags"],
                "price": [110.0, 50.0],
                "margin": [0.3, 0.5],
            }
        ),
        **kw,
    )
    w.write_table(
        "clean",
        "support_tickets",
        pd.DataFrame(
            {
                "ticket_id": [10, 11, 12],
                "created_at": pd.to_datetime(["2025-02-01", "2025-05-01", "2025-08-01"]),
                "csat": [1, 4, 5],
            }
        ),
        **kw,
    )
    w.write_table(
        "clean",
        "crm_contacts",
        pd.DataFrame(
            {
                "contact_id": [100, 101, 102],
                "loyalty_card": ["", "C9", None],
                "city": ["Москва", "г. Казань", "Казань"],
            }
        ),
        **kw,
    )
    # receipt 2 is anonymous: no map row
    w.write_table(
        "identity",
        "map",
        pd.DataFrame(
            {
                "source_table": ["online_orders"] * 3
                + [
                    "pos_receipts",
                    "support_tickets",
                    "support_tickets",
                    "support_tickets",
                    "crm_contacts",
                    "crm_contacts",
                    "crm_contacts",
                ],
                "record_id": ["1", "2", "3", "1", "10", "11", "12", "100", "101", "102"],
                "profile_id": ["P1", "P1", "P1", "P2", "P1", "P1", "P1", "P1", "P2", "P2"],
            }
        ),
        **kw,
    )
    yield w
    w.close()


def test_profile_transactions_joins_filters_and_prices(wh):
    df = profile_transactions(wh, as_of="2025-06-30")
    assert list(df.columns) == list(TRANSACTION_COLUMNS)
    # order 3 (after as_of) excluded; order 2 at 23:10 on as_of kept; anonymous receipt left out
    assert len(df) == 4
    assert df.attrs["unmapped_lines"] == 1
    assert set(df["order_id"]) == {"online_orders:1", "online_orders:2", "pos_receipts:1"}
    p1 = df[df.customer_id == "P1"]
    assert p1["amount"].sum() == pytest.approx(200 + 50 + 110)  # missing line price -> list price
    assert p1["margin"].sum() == pytest.approx(200 * 0.3 + 50 * 0.5 + 110 * 0.3)
    p2 = df[df.customer_id == "P2"].iloc[0]
    assert (p2.channel, p2.category, p2.amount) == ("store", "bags", 120.0)
    assert len(profile_transactions(wh)) == 5


def test_profile_covariates(wh):
    cov = profile_covariates(wh, as_of="2025-06-30").set_index("customer_id")
    assert cov.loc["P1", "n_tickets"] == 2  # the August ticket is after as_of
    assert cov.loc["P1", "mean_csat"] == pytest.approx(2.5)
    assert cov.loc["P1", "low_csat_tickets"] == 1
    assert cov.loc["P1", "loyalty_member"] == 0 and cov.loc["P2", "loyalty_member"] == 1
    assert cov.loc["P1", "online_share"] == 1.0 and cov.loc["P2", "online_share"] == 0.0
    # "г. Казань" and "Казань" are one city, named without the settlement type
    assert cov.loc["P2", "region"] == "Казань" and cov.loc["P1", "region"] == "Москва"


def test_missing_map_is_clear_error(tmp_path):
    with Warehouse(tmp_path / "e.duckdb") as w, pytest.raises(InputError, match="identity.map"):
        profile_transactions(w)


def test_marts_read_clean_tables_only(tmp_path):
    """Without the quality stage's clean.* tables the marts stop with the stage to run; they
    never read staging.* in their place."""
    orders = pd.DataFrame({"order_id": ["O1"], "ordered_at": [pd.Timestamp("2025-01-05")]})
    lines = pd.DataFrame({"order_id": ["O1"], "sku": ["S1"], "quantity": [1], "price": [9.0]})
    truth = pd.DataFrame({"source_table": ["online_orders"], "record_id": ["O1"],
                          "person_id": ["P1"]})  # fmt: skip
    with Warehouse(tmp_path / "k.duckdb") as wh:
        wh.write_table("staging", "online_orders", orders, run_id="r", as_of="2025-06-30")
        wh.write_table("staging", "order_lines", lines, run_id="r", as_of="2025-06-30")
        wh.write_table("truth", "record_person", truth, run_id="r", as_of="2025-06-30")
        with pytest.raises(InputError, match=r"no clean\.\* tables: run the quality stage"):
            profile_transactions(wh, key="person")
        with pytest.raises(InputError, match=r"no clean\.\* tables"):
            profile_covariates(wh, "2025-06-30", key="person")


def test_profile_region_ties_go_to_the_first_name(wh):
    # the most frequent region; a tie to the first name, never to whichever DuckDB's threads
    # meet first (mode() did: the region, and with it every churn score, moved between runs)
    kw = {"run_id": "t", "as_of": "2025-06-30"}
    cities = ["Омск", "Москва", "г. Омск", "Самара", "Казань", "Самара", "Казань"]
    wh.write_table(
        "clean",
        "crm_contacts",
        pd.DataFrame({"contact_id": range(100, 107), "loyalty_card": [None] * 7, "city": cities}),
        **kw,
    )
    links = wh.sql("SELECT source_table, record_id, profile_id FROM identity.map")
    links = links[links["source_table"] != "crm_contacts"]
    crm = pd.DataFrame(
        {
            "source_table": "crm_contacts",
            "record_id": [str(i) for i in range(100, 107)],
            "profile_id": ["P1", "P1", "P1", "P2", "P2", "P2", "P2"],
        }
    )
    wh.write_table("identity", "map", pd.concat([links, crm], ignore_index=True), **kw)
    for threads in (1, 4):
        wh.con.execute(f"SET threads={threads}")
        cov = profile_covariates(wh, as_of="2025-06-30").set_index("customer_id")
        assert cov.loc["P1", "region"] == "Омск"  # two of three ("г. Омск" is Омск)
        assert cov.loc["P2", "region"] == "Казань"  # two each: Казань before Самара
        assert cov.loc["P1", "loyalty_member"] == 0  # no card among its contacts now
