"""Owned items: how often the customers who bought an item buy it again, learned from the history.

A phone or a fridge is bought once and kept; a case, a cable or milk is bought again. Nothing here
names categories: per item the history gives its owners' repeat purchases ``R`` (each owner's
purchases of it after the first) over their days of ownership ``E`` (cutoff minus first purchase),
so a rate of repeat purchases per owner-day. Rare items are not judged on three owners: the rate
is shrunk towards the item's category's pooled rate (gamma-Poisson; how far is the spread of the
items' rates around their category's, estimated by moments on the same history), and a rare
category's rate towards the whole catalogue's. ``p_again = 1 - exp(-rate * horizon)`` is then the
chance an owner buys the item again within the horizon.

The yardstick is what a slot given to something new yields: the chance that a customer who does
not own it buys the ``k``-th best seller in the last ``horizon`` days before the cutoff (the best
sellers' first buyers over the customers already there at its start). A candidate the customer
already owns, whose ``p_again`` is below that, is not offered: the slot goes to a new item.
Consumables stay (their owners buy them again far more often than anyone buys a best seller);
durables go where their owners do not come back for them within the horizon. Only history up to
the cutoff is read, so nothing leaks from the label window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cemlib.offers.snapshot import Snapshot


@dataclass
class OwnedRule:
    """Per item code the chance its owners buy it again within the horizon, and the bar."""

    p_again: np.ndarray  # indexed by item code; nan: nobody owns the item at the cutoff
    bar: float  # the k-th best seller's chance for a customer who does not own it
    dispersion: float  # the items' spread around their category's rate (moment estimate)

    def held_back(self, items: np.ndarray, owned: np.ndarray) -> np.ndarray:
        """True where an owned candidate's item is bought again less often than the bar."""
        items = np.asarray(items, dtype=np.int64)
        p = self.p_again[np.clip(items, 0, len(self.p_again) - 1)]
        low = np.nan_to_num(p, nan=np.inf) < self.bar
        return np.asarray(owned, dtype=bool) & low & (items < len(self.p_again))


def repeat_rates(snap: Snapshot, n_items: int) -> tuple[np.ndarray, float]:
    """Per item code the shrunk rate of repeat purchases per owner-day (nan: no owner), and the
    moment estimate of the items' relative spread around their category's rate."""
    p, T = snap.p, snap.T
    it = snap.store.sql(
        f"""SELECT i, any_value(cat) AS cat, sum(n_b - 1)::DOUBLE AS r,
                   sum({T} - first_d + 1)::DOUBLE AS e
            FROM {p}ci GROUP BY i"""
    )
    rates = np.full(n_items, np.nan)
    if it.empty:
        return rates, 0.0
    r_all, e_all = it["r"].sum(), it["e"].sum()
    r_g = r_all / e_all if e_all > 0 else 0.0
    cat = it.groupby("cat")[["r", "e"]].transform("sum")
    # the category's pooled rate, with one repeat purchase at the catalogue's rate as its prior
    r_c = (cat["r"] + 1.0) / (cat["e"] + 1.0 / r_g) if r_g > 0 else cat["r"] * 0.0
    mu = (r_c * it["e"]).to_numpy()
    r = it["r"].to_numpy()
    # gamma-Poisson: Var(R) = mu + k mu^2, k the items' relative spread around their category
    den = float((mu**2).sum())
    k = float(((r - mu) ** 2 - mu).sum() / den) if den > 0 else 0.0
    k = min(max(k, 1e-3), 1e3)
    shrunk = r_c.to_numpy() * (r + 1.0 / k) / (mu + 1.0 / k)
    rates[it["i"].to_numpy(np.int64)] = shrunk
    return rates, k


def best_seller_bar(snap: Snapshot, k: int) -> float:
    """The chance that a customer already there ``horizon`` days before the cutoff, who did not
    own it then, bought the ``k``-th best seller (by that chance) in those days."""
    p, T, W = snap.p, snap.T, snap.W
    start = T - W
    row = snap.store.sql(
        f"""WITH base AS (SELECT count(*) AS n FROM {p}cu WHERE first_d <= {start}),
            it AS (
              SELECT ci.i, count(*) FILTER (WHERE ci.first_d <= {start}) AS owners,
                     count(*) FILTER (WHERE ci.first_d > {start}) AS new_buyers
              FROM {p}ci ci JOIN {p}cu cu USING (c) WHERE cu.first_d <= {start} GROUP BY ci.i)
            SELECT new_buyers / nullif(base.n - owners, 0) AS p_new
            FROM it, base ORDER BY p_new DESC NULLS LAST LIMIT 1 OFFSET {max(int(k) - 1, 0)}"""
    )
    if row.empty or pd.isna(row["p_new"].iloc[0]):
        return 0.0
    return float(row["p_new"].iloc[0])


def owned_rule(snap: Snapshot, n_items: int, k: int) -> OwnedRule:
    """The rule of ``snap``'s cutoff: who owns what, how often owners buy it again within the
    snapshot's horizon, and the bar a slot for something new sets."""
    rates, disp = repeat_rates(snap, n_items)
    p_again = 1.0 - np.exp(-rates * float(snap.W))
    return OwnedRule(p_again=p_again, bar=best_seller_bar(snap, k), dispersion=disp)
