"""The repeat-heavy setting: wholesale-like customers who re-order their staples on cycles.

Off by default (``BehaviourParams.reorder_share = 0``: the default world is generated without
calling this module, draw for draw). With a share ``s > 0``, that share of people (drawn from
their own random stream) also place re-orders: one order every ``cycle`` days (a person's cycle,
log-normal around ``reorder_cycle_days``, with jitter) from joining until they drop out; each
order holds the person's staples (``reorder_staples`` SKUs of their preferred categories), each
staple on its own sub-cycle (every 1st, 2nd, 3rd or 4th order) and sometimes skipped, in a
wholesale quantity typical of that staple; now and then a staple is replaced by another SKU
(the customer's range drifts) and an order adds an item they never bought (exploration).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cemlib.synth import behaviour as bh
from cemlib.synth.config import SynthConfig

KIND = 4  # basket kind of a re-order (0 first, 1 regular, 2 cross-sell, 3 consumable repeat)
SKIP, DRIFT, EXPLORE = 0.1, 0.03, 0.25


def _orders(people, drop, rng, cfg: SynthConfig, tl: bh.Timeline) -> pd.DataFrame:
    """One row per re-order: ``person, k`` (the person's order number) and ``t``."""
    b = cfg.behaviour
    n = len(people)
    who = np.flatnonzero(rng.random(n) < b.reorder_share)
    t0 = people["_t0"].to_numpy()[who]
    cycle = b.reorder_cycle_days * rng.lognormal(0.0, 0.35, len(who))
    stop = np.minimum(drop[who], tl.end)
    n_orders = np.maximum(np.floor((stop - t0) / cycle), 0).astype(np.int64)
    row = np.repeat(np.arange(len(who)), n_orders)
    k = np.arange(len(row)) - np.repeat(np.cumsum(n_orders) - n_orders, n_orders)
    t = t0[row] + cycle[row] * (k + 1) + rng.normal(0.0, 0.08, len(row)) * cycle[row]
    out = pd.DataFrame({"person": who[row], "k": k, "t": t})
    return out[(out["t"] > t0[row]) & (out["t"] < stop[row])].reset_index(drop=True)


def _staple_lines(orders, pref, products, rng, cfg: SynthConfig) -> pd.DataFrame:
    """Lines of the staples in each order (``order`` = row of ``orders``), drift included."""
    n_slot = int(cfg.behaviour.reorder_staples)
    persons = np.unique(orders["person"].to_numpy())
    # per (person, slot): sub-cycle, phase, typical quantity
    every = rng.choice([1, 1, 2, 2, 3, 4], (len(persons), n_slot))
    phase = rng.integers(0, 4, (len(persons), n_slot)) % every
    qty = rng.choice([2, 3, 4, 6, 8, 10, 12], (len(persons), n_slot))
    pidx = np.searchsorted(persons, orders["person"].to_numpy())
    k = orders["k"].to_numpy()
    o = np.repeat(np.arange(len(orders)), n_slot)
    slot = np.tile(np.arange(n_slot), len(orders))
    pp, kk = pidx[o], k[o]
    # drift: the slot's SKU version grows by one at each replacement along the person's orders
    order_grid = pd.DataFrame({"p": pp, "s": slot, "k": kk, "x": rng.random(len(o)) < DRIFT})
    version = order_grid.groupby(["p", "s"], sort=False)["x"].cumsum().to_numpy()
    keys = pd.DataFrame({"p": pp, "s": slot, "v": version})
    uniq = keys.drop_duplicates().reset_index(drop=True)
    cats = bh._draw(rng, len(uniq), lambda a, z: pref[persons[uniq["p"].to_numpy()[a:z]]])
    uniq["sku"] = bh._sample_skus(rng, cats, products)
    sku = keys.merge(uniq, on=["p", "s", "v"], how="left")["sku"].to_numpy()
    take = ((kk + phase[pp, slot]) % every[pp, slot] == 0) & (rng.random(len(o)) >= SKIP)
    q = np.maximum(1, np.round(qty[pp, slot] * rng.lognormal(0.0, 0.2, len(o)))).astype(np.int32)
    return pd.DataFrame({"order": o[take], "sku_idx": sku[take], "quantity": q[take]})


def add_reorders(people, pref, bk, ln, drop, products, rng, cfg: SynthConfig, tl: bh.Timeline):
    """``bk`` and ``ln`` with the re-orders merged in (baskets sorted by time, lines by basket,
    parents and line baskets renumbered)."""
    orders = _orders(people, drop, rng, cfg, tl)
    lines = _staple_lines(orders, pref, products, rng, cfg)
    # exploration: now and then one item the customer never bought
    xo = np.flatnonzero(rng.random(len(orders)) < EXPLORE)
    xcat = bh._draw(rng, len(xo), lambda a, z: pref[orders["person"].to_numpy()[xo[a:z]]])
    explore = pd.DataFrame(
        {"order": xo, "sku_idx": bh._sample_skus(rng, xcat, products), "quantity": 1}
    )
    lines = pd.concat([lines, explore], ignore_index=True)
    lines = lines.drop_duplicates(["order", "sku_idx"]).sort_values("order", kind="stable")
    orders = orders.iloc[np.unique(lines["order"].to_numpy())]  # orders with at least a line
    online = rng.random(len(orders)) < np.maximum(
        people["online_share"].to_numpy()[orders["person"].to_numpy()], 0.5
    )
    ci = products["_ci"].to_numpy()
    first = lines.drop_duplicates("order").set_index("order")["sku_idx"]
    new_bk = pd.DataFrame(
        {
            "person": orders["person"].to_numpy(),
            "t": bh.time_of_day(rng, orders["t"].to_numpy(), online),
            "category": ci[first.reindex(orders.index).to_numpy()].astype(np.int16),
            "kind": np.int8(KIND),
            "parent": np.int64(-1),
            "online": online,
        }
    )
    new_bk = new_bk[new_bk["t"].to_numpy() < tl.end]
    return _merge(bk, ln, new_bk, orders.index, lines, products)


def _merge(bk, ln, new_bk, order_ids, lines, products):
    n_old = len(bk)
    both = pd.concat([bk, new_bk.reset_index(drop=True)], ignore_index=True)
    order = np.lexsort((both["person"].to_numpy(), both["t"].to_numpy()))
    newpos = np.empty(len(both), dtype=np.int64)
    newpos[order] = np.arange(len(both))
    both = both.iloc[order].reset_index(drop=True)
    par = both["parent"].to_numpy()
    both["parent"] = np.where(par >= 0, newpos[np.maximum(par, 0)], -1)
    # lines of the kept re-orders, numbered like the old lines
    kept = pd.Series(n_old + np.arange(len(new_bk)), index=order_ids[new_bk.index.to_numpy()])
    lines = lines[lines["order"].isin(kept.index)]
    basket = kept.reindex(lines["order"].to_numpy()).to_numpy()
    line_no = lines.groupby("order", sort=False).cumcount().to_numpy().astype(np.int16)
    sku = lines["sku_idx"].to_numpy()
    new_ln = pd.DataFrame(
        {
            "basket": basket,
            "line_no": line_no,
            "person": new_bk["person"].to_numpy()[basket - n_old],
            "sku_idx": sku.astype(np.int32),
            "category": products["_ci"].to_numpy()[sku].astype(np.int16),
            "quantity": lines["quantity"].to_numpy().astype(np.int32),
            "price": products["price"].to_numpy()[sku],
        }
    )
    all_ln = pd.concat([ln, new_ln], ignore_index=True)
    all_ln["basket"] = newpos[all_ln["basket"].to_numpy()]
    all_ln = all_ln.sort_values(["basket", "line_no"], kind="stable").reset_index(drop=True)
    return both, all_ln
