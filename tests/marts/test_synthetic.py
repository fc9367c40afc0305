import pandas as pd
import pytest

from cemlib.marts import profile_covariates, profile_transactions
from cemlib.warehouse import Warehouse

AS_OF = "2025-06-30"


@pytest.fixture(scope="module")
def wh(tmp_path_factory):
    from tests.warehouses import checked_world

    path = checked_world(tmp_path_factory.mktemp("marts") / "w.duckdb", n_people=400, seed=2)
    with Warehouse(path) as w:
        yield w


def test_lines_are_conserved_and_keyed_by_the_true_person(wh):
    tx = profile_transactions(wh, AS_OF, key="person")
    n_lines = wh.sql(
        """SELECT (SELECT count(*) FROM clean.order_lines l JOIN clean.online_orders o
                   USING (order_id) WHERE o.ordered_at < TIMESTAMP '2025-07-01')
                + (SELECT count(*) FROM clean.receipt_lines l JOIN clean.pos_receipts r
                   USING (receipt_id) WHERE r.purchased_at < TIMESTAMP '2025-07-01') AS n"""
    )["n"].iloc[0]
    assert len(tx) + tx.attrs["unmapped_lines"] == n_lines
    assert tx["ts"].max() < pd.Timestamp("2025-07-01")
    people = set(wh.read_table("truth", "people")["person_id"].astype(str))
    assert set(tx["customer_id"]) <= people
    assert tx["category"].notna().mean() > 0.95 and (tx["amount"] > 0).mean() > 0.95
    assert set(tx["channel"]) == {"online", "store"}
    margin_share = tx["margin"].sum() / tx["amount"].sum()
    assert 0.02 < margin_share < 0.6


def test_covariates_follow_the_truth(wh):
    cov = profile_covariates(wh, AS_OF, key="person").set_index("customer_id")
    people = wh.read_table("truth", "people").set_index("person_id")
    both = cov.join(people[["loyalty_member", "n_tickets"]], rsuffix="_true", how="inner")
    assert len(both) > 300
    # tickets observed up to as_of never exceed the person's tickets in the truth
    assert (both["n_tickets"] <= both["n_tickets_true"]).all()
    assert both["n_tickets"].sum() > 0.5 * both["n_tickets_true"].sum()
    agree = (both["loyalty_member"] == both["loyalty_member_true"].astype(int)).mean()
    assert agree > 0.8
    assert both["online_share"].dropna().between(0, 1).all()
    # the generator writes "г. " before 12% of CRM cities: one region per city all the same
    assert not cov["region"].str.startswith("г.").any()
    known = set(people["city"]) | {"unknown"}
    assert set(cov["region"]) <= known
