"""Product groups: the sizes of one model are one offer, the size offered is the one kept."""

import numpy as np
import pandas as pd

from cemlib.cli import main
from cemlib.offers.groups import never_kept_groups, offered_items, resolved_granularity

AS_OF = pd.Timestamp("2025-06-30")
DRESS_SIZES = ("44", "46", "48", "50")
SHOE_SIZES = ("37", "38", "39", "40")


def sized_catalogue() -> pd.DataFrame:
    """30 dress models in four clothing sizes and 15 boot models in four shoe sizes."""
    rows = [
        (f"D{m:02d}-{s}", f"D{m:02d}", s, "Платье", f"Платье арт. D{m:02d} р. {s}")
        for m in range(30)
        for s in DRESS_SIZES
    ] + [
        (f"B{m:02d}-{s}", f"B{m:02d}", s, "Сапоги", f"Сапоги арт. B{m:02d} р. {s}")
        for m in range(15)
        for s in SHOE_SIZES
    ]
    return pd.DataFrame(rows, columns=["sku", "group", "size", "category", "name"])


def sized_world(n_customers: int = 300, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Purchases of customers who each wear one dress and one shoe size and buy a few favourite
    models again; a quarter of the dress lines are bracketed: the next size is bought too and
    returned five days later (a negative line). Returns ``(transactions, sizes)``."""
    rng = np.random.default_rng(seed)
    pop_d = 1 / np.arange(1, 31)
    pop_b = 1 / np.arange(1, 16)
    rows, sizes = [], []
    for c in range(n_customers):
        cid = f"C{c:04d}"
        ds, bs = int(rng.integers(0, 3)), int(rng.integers(4))
        sizes.append((cid, DRESS_SIZES[ds], SHOE_SIZES[bs]))
        fav_d = rng.choice(30, 4, replace=False, p=pop_d / pop_d.sum())
        fav_b = rng.choice(15, 2, replace=False, p=pop_b / pop_b.sum())
        for d in np.sort(rng.choice(230, int(rng.integers(4, 12)), replace=False)):
            ts = AS_OF - pd.Timedelta(days=int(d))
            if rng.random() < 0.7:
                m = int(rng.choice(fav_d))
                rows.append((cid, ts, f"D{m:02d}-{DRESS_SIZES[ds]}", 1, 100.0))
                if rng.random() < 0.25:  # bracketed: the next size too, sent back
                    other = f"D{m:02d}-{DRESS_SIZES[ds + 1]}"
                    rows.append((cid, ts, other, 1, 100.0))
                    rows.append((cid, ts + pd.Timedelta(days=5), other, -1, -100.0))
            else:
                m = int(rng.choice(fav_b))
                rows.append((cid, ts, f"B{m:02d}-{SHOE_SIZES[bs]}", 1, 200.0))
    tx = pd.DataFrame(rows, columns=["customer_id", "ts", "item_id", "quantity", "amount"])
    tx = tx[tx["ts"] <= AS_OF].sort_values("ts", kind="stable").reset_index(drop=True)
    return tx, pd.DataFrame(sizes, columns=["customer_id", "dress", "shoe"])


def test_the_item_offered_from_a_group_is_the_size_the_customer_keeps():
    cat = sized_catalogue()
    kept = pd.DataFrame(
        {
            "customer_id": ["A", "A", "A", "B", "B", "B"],
            "item_id": ["D01-46", "D05-46", "B01-38", "D03-50", "D03-50", "D03-44"],
        }
    )
    # A sent back D02-48 (the wrong size) and never kept it
    never = pd.DataFrame({"customer_id": ["A"], "item_id": ["D02-48"]})
    offers = pd.DataFrame(
        {
            "customer_id": ["A", "A", "A", "A", "C", "C"],
            "rank": [1, 2, 3, 4, 1, 2],
            "item_id": ["D03", "B02", "D01", "D02", "D03", "X9"],
            "score": [4.0, 3.0, 2.0, 1.0, 2.0, 1.0],
        }
    )
    out = offered_items(offers, kept, cat, never)
    # A: her dress size in a new dress, her shoe size in new boots (not a dress size), the very
    # item she kept of a model she bought, and her size of the model she sent a size of back
    assert out["item_id"].tolist()[:4] == ["D03-46", "B02-38", "D01-46", "D02-46"]
    # C bought nothing: the group's most popular item by distinct buyers (D03-50 and D03-44:
    # one buyer each, B's two purchases count once), ties by the item id
    assert out["item_id"].tolist()[4] == "D03-44"
    assert out["item_id"].tolist()[5] == "X9"  # not in the catalogue: left as it is
    assert out[["customer_id", "rank", "score"]].equals(offers[["customer_id", "rank", "score"]])


def test_the_most_popular_size_is_offered_to_a_customer_without_one():
    cat = sized_catalogue()
    kept = pd.DataFrame(
        {"customer_id": ["P", "Q", "R", "R"], "item_id": ["D07-48", "D07-48", "D07-44", "B00-39"]}
    )
    offers = pd.DataFrame({"customer_id": ["Z"], "rank": [1], "item_id": ["D07"]})
    assert offered_items(offers, kept, cat)["item_id"].tolist() == ["D07-48"]
    # without a size column: her own item of the group, else the most popular
    no_size = cat.drop(columns="size")
    offers = pd.DataFrame({"customer_id": ["R", "R"], "rank": [1, 2], "item_id": ["D07", "D09"]})
    assert offered_items(offers, kept, no_size)["item_id"].tolist() == ["D07-44", "D09-44"]


def test_a_group_is_held_back_only_when_no_item_of_it_was_kept():
    cat = sized_catalogue()
    never = pd.DataFrame(
        {"customer_id": ["A", "A", "B"], "item_id": ["D01-48", "D02-48", "D01-48"]}
    )
    kept = pd.DataFrame({"customer_id": ["A", "B"], "item_id": ["D01-46", "D09-46"]})
    held = never_kept_groups(never, kept, cat)
    assert sorted(map(tuple, held[["customer_id", "item_id"]].to_numpy())) == [
        ("A", "D02"),
        ("B", "D01"),
    ]


def test_a_catalogue_naming_groups_ranks_them_and_sku_ranks_the_items():
    cat = sized_catalogue()
    assert resolved_granularity("item", cat) == "group"
    assert resolved_granularity("sku", cat) == "item"
    assert resolved_granularity("item", cat.drop(columns="group")) == "item"
    assert resolved_granularity("item", cat.assign(group="")) == "item"
    assert resolved_granularity("category", cat) == "category"


def _offers(tmp_path, name, tx, *extra):
    src, items, out = tmp_path / f"{name}.csv", tmp_path / "items.csv", tmp_path / f"{name}_o.csv"
    tx.to_csv(src, index=False)
    sized_catalogue().to_csv(items, index=False)
    args = ["offers", str(src), "--as-of", "2025-06-30", "--k", "6", "--items", str(items)]
    assert main([*args, "--horizon-days", "30", *extra, "--out", str(out)]) == 0
    return pd.read_csv(out, dtype={"customer_id": str, "item_id": str})


def test_cem_offers_names_each_model_once_in_the_size_the_customer_keeps(tmp_path, capsys):
    tx, sizes = sized_world()
    by_sku = _offers(tmp_path, "sku", tx, "--granularity", "sku")
    grouped = _offers(tmp_path, "group", tx)  # the catalogue's group column: ranked by group
    for offers in (by_sku, grouped):
        offers["model"] = offers["item_id"].str.split("-").str[0]
        offers["size"] = offers["item_id"].str.split("-").str[1]
    per_list = by_sku.groupby("customer_id")["model"].agg(["size", "nunique"])
    twice = int((per_list["nunique"] < per_list["size"]).sum())
    assert twice > 30  # ranked by SKU, many lists hold two sizes of one model
    per_list = grouped.groupby("customer_id")["model"].agg(["size", "nunique"])
    assert (per_list["nunique"] == per_list["size"]).all() and (per_list["size"] == 6).all()
    # every offer of a kind the customer kept before is in the size they wear (dresses in
    # their dress size, boots in their shoe size), never the bracketed size they sent back;
    # boots to a customer who never kept any are the model's best-selling size
    own = grouped.merge(sizes, on="customer_id")
    kind = tx.assign(kind=tx["item_id"].str[0])[tx["quantity"] > 0]
    knows = pd.MultiIndex.from_frame(kind[["customer_id", "kind"]]).unique()
    own["knows"] = pd.MultiIndex.from_arrays([own["customer_id"], own["model"].str[0]]).isin(knows)
    wears = np.where(own["model"].str.startswith("D"), own["dress"], own["shoe"])
    right = own["size"].to_numpy() == wears
    assert right[own["knows"].to_numpy()].mean() == 1.0
    assert own["knows"].mean() > 0.9
    worn = by_sku.merge(sizes, on="customer_id")
    wears = np.where(worn["model"].str.startswith("D"), worn["dress"], worn["shoe"])
    assert (worn["size"] == wears).mean() < 0.9  # by SKU other sizes were offered


def test_cem_offers_by_group_without_a_group_column_exits_2(tmp_path, capsys):
    tx, _ = sized_world(40)
    src, items = tmp_path / "tx.csv", tmp_path / "items.csv"
    tx.to_csv(src, index=False)
    sized_catalogue().drop(columns="group").to_csv(items, index=False)
    args = ["offers", str(src), "--as-of", "2025-06-30", "--items", str(items)]
    assert main([*args, "--granularity", "group", "--out", str(tmp_path / "o.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "group" in err[0] and "items.csv" in err[0]
    assert "Traceback" not in err[0]


def test_stage_04_ranks_the_groups_of_products_and_offers_one_size_each(tmp_path):
    """``products.group`` in the warehouse: stage 04 ranks the groups (two SKUs of a category
    per group here), names each group once per list and offers an item of it; ``sku`` ranks
    the items as before, and some of those lists hold two items of one group."""
    import shutil

    from cemlib.offers.report import headlines
    from cemlib.offers.stage import run_stage
    from cemlib.warehouse import Warehouse
    from tests.warehouses import checked_world

    base = checked_world(tmp_path / "w.duckdb", n_people=400, seed=4)
    path = tmp_path / "g.duckdb"
    shutil.copy(base, path)
    with Warehouse(path) as wh:
        wh.con.execute(
            """CREATE OR REPLACE TABLE clean.products AS
               SELECT *, category || '/' || CAST((row_number() OVER (PARTITION BY category
                      ORDER BY sku) - 1) // 2 AS VARCHAR) AS "group"
               FROM clean.products"""
        )
        book = wh.sql('SELECT CAST(sku AS VARCHAR) AS sku, "group" FROM clean.products')
        group_of = book.set_index("sku")["group"]
        runs = {
            g: run_stage(
                wh,
                "2025-06-30",
                run_id="t",
                k=6,
                horizon_days=30,
                key="person",
                seed=2,
                write=False,
                granularity=g,
            )  # fmt: skip
            for g in ("item", "sku")
        }
    grouped, by_sku = runs["item"], runs["sku"]
    assert grouped.extras["granularity"] == "group" and by_sku.extras["granularity"] == "item"
    said = "product groups ranked (the sizes of one model are one offer)"
    n_groups, n_items = len(grouped.model.enc_.items), len(by_sku.model.enc_.items)
    assert headlines(grouped, k=6)[said] == n_groups and 0.45 < n_groups / n_items < 0.6
    assert said not in headlines(by_sku, k=6)
    for res in (grouped, by_sku):
        assert res.all_offers["item_id"].isin(group_of.index).all()  # SKUs are offered
        res.all_offers["group"] = res.all_offers["item_id"].map(group_of)
    lists = grouped.all_offers.groupby("customer_id")["group"].agg(["size", "nunique"])
    assert (lists["size"] == lists["nunique"]).all() and lists["size"].min() == 6
    lists = by_sku.all_offers.groupby("customer_id")["group"].agg(["size", "nunique"])
    assert int((lists["nunique"] < lists["size"]).sum()) > 10
    # graded at group level against the truth mapped to groups
    assert grouped.metrics.loc["model", "customers"] > 40
    assert 0 < grouped.metrics.loc["model", "ndcg@6"] < 1
    names = grouped.offers["item_name"]
    assert not names.isin(group_of.to_numpy()).any()  # the SKU's name, not the group's id
