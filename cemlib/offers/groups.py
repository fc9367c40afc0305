"""Product groups: the sizes of one model are one product (trial 9 M2: 9,014 of 23,625 offer
lists of a fashion retailer held two sizes of one dress, and 1,198 offers were another size of a
model bought in the last 180 days).

The catalogue may name each item's group (``products.group`` in the warehouse, the ``group``
column of ``cem offers --items``: the model whose sizes the SKUs are) and its ``size``. At
``granularity="group"`` the model ranks the groups: a group is bought when any of its items is
(the repeat, co-purchase and eligibility rules see a model bought in another size as bought),
and a list names each group once. The item offered from a group is then chosen per customer
(:func:`offered_items`):

1. an item of the group the customer kept (bought and did not return) before;
2. else the item whose ``size`` the customer keeps most often in the group's category (a
   clothing size is not a shoe size), then in any category;
3. else the group's most popular item (distinct buyers who kept it);

an item the customer returned and never kept comes last whatever its size. A group every item
of which the customer returned and never kept is held back from that customer, as such an item
is at ``granularity="item"`` (:func:`never_kept_groups`).

Without a ``group`` column nothing changes: :func:`resolved_granularity` keeps ``item``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cemlib.offers.data import item_groups, prepare_items


def has_groups(items: pd.DataFrame | None) -> bool:
    """Whether the catalogue names a product group for at least one item."""
    if items is None or "group" not in items.columns:
        return False
    text = items["group"].astype("string").str.strip()
    return bool((text.fillna("") != "").any())


def resolved_granularity(granularity: str, items: pd.DataFrame | None) -> str:
    """The granularity the offers rank at: ``item`` becomes ``group`` when the catalogue names
    product groups (:func:`has_groups`); ``sku`` ranks the items whatever the catalogue says;
    others as given."""
    if granularity == "item" and has_groups(items):
        return "group"
    if granularity == "sku":
        return "item"
    return granularity


def grouped(frame: pd.DataFrame | None, items: pd.DataFrame) -> pd.DataFrame | None:
    """``frame`` (``customer_id, item_id``: a truth or a purchase window) with each item id
    replaced by its group, one row per ``customer_id, group``."""
    if frame is None:
        return None
    cat = prepare_items(items)
    out = frame.assign(item_id=item_groups(frame["item_id"], cat, source="products"))
    return out.drop_duplicates(["customer_id", "item_id"]).reset_index(drop=True)


def never_kept_groups(
    never_kept: pd.DataFrame | None, purchases: pd.DataFrame, items: pd.DataFrame
) -> pd.DataFrame | None:
    """The ``customer_id, item_id`` (group) pairs of ``never_kept`` (items returned and never
    kept, :func:`cemlib.marts.returned_items`) whose group the customer kept no item of
    (``purchases``: the purchases kept)."""
    if never_kept is None or never_kept.empty:
        return never_kept
    cat = prepare_items(items)
    back = pd.DataFrame(
        {
            "customer_id": never_kept["customer_id"].astype(str).to_numpy(),
            "item_id": item_groups(never_kept["item_id"], cat, source="products").to_numpy(),
        }
    ).drop_duplicates()
    kept = pd.MultiIndex.from_arrays(
        [
            purchases["customer_id"].astype(str).to_numpy(),
            item_groups(purchases["item_id"], cat, source="products").to_numpy(),
        ]
    ).unique()
    key = pd.MultiIndex.from_frame(back[["customer_id", "item_id"]])
    return back[~key.isin(kept)].reset_index(drop=True)


def offered_items(
    offers: pd.DataFrame,
    purchases: pd.DataFrame,
    items: pd.DataFrame,
    never_kept: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """``offers`` (``customer_id, item_id`` the group, ...) with ``item_id`` the item offered
    from each group: the customer's own kept item of the group, else the size they keep most
    in the group's category, then in any, else the group's most popular item; items returned
    and never kept (``never_kept``) last. ``purchases``: the kept purchases (``customer_id,
    item_id``) up to ``as_of``; ``items``: the catalogue (``sku`` or ``item_id``, ``group``,
    optional ``size``, ``category``). A group the catalogue does not hold stays as it is."""
    if offers.empty:
        return offers
    cat = prepare_items(items)
    cat = cat.dropna(subset=["group"])
    if cat.empty:
        return offers
    size = "size" in cat.columns
    members = pd.DataFrame(
        {
            "group": cat["group"].astype(str).to_numpy(),
            "sku": cat["item_id"].astype(str).to_numpy(),
            "size": cat["size"].astype(object).to_numpy() if size else None,
            "category": cat["category"].astype(object).to_numpy()
            if "category" in cat.columns
            else None,
        }
    )
    bought = pd.DataFrame(
        {
            "customer_id": purchases["customer_id"].astype(str).to_numpy(),
            "sku": purchases["item_id"].astype(str).to_numpy(),
        }
    )
    popularity = bought.drop_duplicates().groupby("sku").size().rename("pop")
    rows = pd.DataFrame(
        {
            "row": np.arange(len(offers)),
            "customer_id": offers["customer_id"].astype(str).to_numpy(),
            "group": offers["item_id"].astype(str).to_numpy(),
        }
    )
    pairs = rows.merge(members, on="group", how="inner")
    pairs["pop"] = popularity.reindex(pairs["sku"]).fillna(0).to_numpy()
    own = bought.groupby(["customer_id", "sku"]).size().rename("own")
    pairs["own"] = (
        own.reindex(pd.MultiIndex.from_frame(pairs[["customer_id", "sku"]])).fillna(0).to_numpy()
    )
    keys = ["own"]
    if size:
        # the sizes each customer keeps: per category, and over all categories
        worn = bought.merge(members[["sku", "size", "category"]], on="sku").dropna(subset=["size"])
        in_cat = (
            worn.dropna(subset=["category"]).groupby(["customer_id", "category", "size"]).size()
        )
        anywhere = worn.groupby(["customer_id", "size"]).size()
        has = pairs["size"].notna().to_numpy()
        pairs["in_cat"] = 0.0
        pairs["anywhere"] = 0.0
        if len(in_cat):
            sub = pairs.loc[has & pairs["category"].notna().to_numpy()]
            look = pd.MultiIndex.from_frame(sub[["customer_id", "category", "size"]])
            pairs.loc[sub.index, "in_cat"] = in_cat.reindex(look).fillna(0).to_numpy()
        if len(anywhere):
            sub = pairs.loc[has]
            look = pd.MultiIndex.from_frame(sub[["customer_id", "size"]])
            pairs.loc[sub.index, "anywhere"] = anywhere.reindex(look).fillna(0).to_numpy()
        keys += ["in_cat", "anywhere"]
    pairs["fits"] = 1
    if never_kept is not None and len(never_kept):
        back = pd.MultiIndex.from_arrays(
            [never_kept["customer_id"].astype(str), never_kept["item_id"].astype(str)]
        )
        pairs["fits"] = (
            ~pd.MultiIndex.from_frame(pairs[["customer_id", "sku"]]).isin(back)
        ).astype(int)
    order = ["row", "fits", *keys, "pop", "sku"]
    ascending = [True, False, *([False] * len(keys)), False, True]
    best = pairs.sort_values(order, ascending=ascending, kind="stable").drop_duplicates("row")
    out = offers.copy()
    chosen = out["item_id"].astype(str).to_numpy(dtype=object)
    chosen[best["row"].to_numpy()] = best["sku"].to_numpy(dtype=object)
    out["item_id"] = chosen
    return out
