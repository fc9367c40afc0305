"""What people do: a Pareto/NBD-style purchase process with covariates, baskets, browsing, tickets.

Time is measured in days since ``start`` (float). Each person joins at ``joined_at``, buys at a
latent rate ``purchase_rate`` (baskets per year, gamma-heterogeneous, scaled by covariates) and
stays alive for an exponential lifetime whose hazard ``dropout_rate`` is scaled by covariate
hazard ratios; a badly rated support ticket multiplies the hazard from that moment on. Baskets
follow monthly category seasonality and the person's category preferences; a basket can trigger
a cross-sell follow-up (smartphone -> case) and consumables are bought again after their usual
interval. Browsing (views, carts) precedes buying, and background sessions add noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cemlib.synth.catalog import CATEGORIES, N_CAT, cross_sell_matrix, seasonality_matrix
from cemlib.synth.config import SynthConfig

DAY = 86400.0
YEAR = 365.25


@dataclass
class Timeline:
    """The time axis of a world: days since ``start``, history up to ``as_of`` (inclusive) and
    ``horizon_days`` of future after it."""

    start: pd.Timestamp
    as_of: pd.Timestamp
    horizon_days: int

    @property
    def as_of_end(self) -> float:
        """End of the history in days since start (``as_of`` inclusive)."""
        return float((self.as_of + pd.Timedelta(days=1) - self.start).days)

    @property
    def end(self) -> float:
        """End of the future in days since start (``as_of`` + ``horizon_days``)."""
        return self.as_of_end + self.horizon_days

    def to_datetime(self, t: np.ndarray) -> np.ndarray:
        """Days since start as ``datetime64[s]`` timestamps."""
        secs = np.floor(np.asarray(t) * DAY).astype(np.int64)
        return self.start.to_datetime64().astype("datetime64[s]") + secs.astype("timedelta64[s]")

    def months(self, t: np.ndarray) -> np.ndarray:
        """Calendar month 0..11 of each time."""
        d = self.to_datetime(t).astype("datetime64[M]").astype(np.int64)
        return (d % 12).astype(np.int8)


def _draw(rng: np.random.Generator, n: int, weights, chunk: int = 250_000) -> np.ndarray:
    """One index per row drawn from ``weights(start, stop)`` (unnormalised rows), in chunks.

    ``weights`` is a callable building the weight rows of a slice, so the full
    ``(n, n_categories)`` matrix never exists at once.
    """
    out = np.empty(n, dtype=np.int16)
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        c = np.cumsum(weights(s, e), axis=1)
        u = rng.random(e - s) * c[:, -1]
        out[s:e] = np.minimum((c < u[:, None]).sum(axis=1), c.shape[1] - 1)
    return out


def _poisson_times(rng, rate_per_day, t_from, t_to):
    """Homogeneous Poisson event times per person on ``[t_from, t_to)``; returns (person, t)."""
    dur = np.clip(t_to - t_from, 0, None)
    k = rng.poisson(rate_per_day * dur)
    person = np.repeat(np.arange(len(k)), k)
    t = t_from[person] + rng.random(len(person)) * dur[person]
    return person, t


def time_of_day(rng: np.random.Generator, t: np.ndarray, online: np.ndarray) -> np.ndarray:
    """Move each time to a realistic hour of its day: stores 9-22 h, online with an evening peak."""
    day = np.floor(t)
    store_h = rng.uniform(9.0, 22.0, len(t))
    online_h = np.mod(rng.normal(20.0, 4.0, len(t)), 24.0)
    h = np.where(online, online_h, store_h)
    return day + h / 24.0 + rng.random(len(t)) / (24 * 60)


def latent(people: pd.DataFrame, rng: np.random.Generator, cfg: SynthConfig) -> pd.DataFrame:
    """Latent purchase rate (per year) and dropout hazard (per year) from covariates."""
    b = cfg.behaviour
    loyal = people["loyalty_member"].to_numpy()
    online = people["online_share"].to_numpy()
    metro = people["metro"].to_numpy()
    n = len(people)
    lam = rng.gamma(b.purchase_rate_shape, b.purchase_rate_mean / b.purchase_rate_shape, n)
    lam *= np.where(loyal, b.rr_loyalty, 1.0) * b.rr_online_share**online
    lam *= np.where(people["segment"].to_numpy() == "pet_coffee", 1.3, 1.0)
    mu = rng.gamma(b.dropout_shape, 1.0 / (b.lifetime_mean_years * b.dropout_shape), n)
    mu *= np.where(loyal, b.hr_loyalty, 1.0) * b.hr_online_share**online
    mu *= np.where(metro, b.hr_moscow_spb, 1.0)
    return pd.DataFrame({"purchase_rate": lam, "dropout_rate": mu})


def lifetimes_and_tickets(people, lat, rng, cfg: SynthConfig, tl: Timeline):
    """Dropout times (days) after the support-experience shock, and the support tickets."""
    b = cfg.behaviour
    t0 = people["_t0"].to_numpy()
    mu = lat["dropout_rate"].to_numpy()
    drop0 = t0 + rng.exponential(1.0 / mu) * YEAR
    rate = b.ticket_rate * (0.5 + people["online_share"].to_numpy()) / YEAR
    tp, tt = _poisson_times(rng, rate, t0, np.minimum(drop0, tl.end))
    tt = np.maximum(
        time_of_day(rng, tt, rng.random(len(tt)) < 0.35), t0[tp]
    )  # office hours or chat
    bad = rng.random(len(tp)) < b.bad_ticket_share
    # first bad ticket per person
    first_bad = np.full(len(people), np.inf)
    np.minimum.at(first_bad, tp[bad], tt[bad])
    shocked = np.isfinite(first_bad)
    drop = drop0.copy()
    resid = rng.exponential(1.0 / (mu * b.hr_bad_ticket)) * YEAR
    drop[shocked] = first_bad[shocked] + resid[shocked]
    keep = tt < drop[tp]
    tickets = pd.DataFrame({"person": tp[keep], "t": tt[keep], "bad": bad[keep]})
    tickets = tickets.sort_values(["t", "person"], kind="stable").reset_index(drop=True)
    return drop, first_bad, tickets


def baskets(people, pref, lat, drop, rng, cfg: SynthConfig, tl: Timeline) -> pd.DataFrame:
    """All baskets of history and horizon: first purchase, seasonal repeat buying, follow-ups."""
    first, stop = _seasonal_baskets(people, pref, lat, drop, rng, tl)
    frames, offset = _follow_ups(first, stop, rng, cfg.behaviour)
    return _timed(frames, offset, people, rng, tl)


def _seasonal_baskets(people, pref, lat, drop, rng, tl: Timeline):
    """The first purchase at registration and the purchases of a seasonal Poisson process
    until the person drops out, each with a category; and each person's stop time."""
    n = len(people)
    t0 = people["_t0"].to_numpy()
    lam = lat["purchase_rate"].to_numpy() / YEAR
    season = seasonality_matrix()  # (12, K)
    pers_season = pref.astype(np.float64) @ season.T  # (n, 12)
    smax = pers_season.max(axis=1)
    stop = np.minimum(drop, tl.end)
    p, t = _poisson_times(rng, lam * smax, t0, stop)
    m = tl.months(t)
    accept = rng.random(len(p)) < pers_season[p, m] / smax[p]
    p, t = p[accept], t[accept]
    # the first purchase at registration
    p = np.concatenate([np.arange(n), p])
    t = np.concatenate([t0 + 0.001, t])
    kind = np.concatenate([np.zeros(n, np.int8), np.ones(len(t) - n, np.int8)])
    m = tl.months(t)
    season32 = season.astype(np.float32)
    cat = _draw(rng, len(p), lambda a, z: pref[p[a:z]] * season32[m[a:z]])
    parent = np.full(len(p), -1, dtype=np.int64)
    first = pd.DataFrame({"person": p, "t": t, "category": cat, "kind": kind, "parent": parent})
    return first, stop


def _follow_ups(first: pd.DataFrame, stop, rng, b):
    """Cross-sell and repeat baskets that follow earlier ones, up to 12 generations: every
    generation's frame, and the number of baskets in all."""
    frames = [first]
    cs = cross_sell_matrix()
    has_cs = cs.sum(axis=1) > 0
    repeat_days = np.array([c.repeat_days or 0 for c in CATEGORIES], dtype=float)
    offset = len(first)
    current = first.assign(_id=np.arange(len(first)))
    for _round in range(12):
        cp = current["category"].to_numpy()
        ct = current["t"].to_numpy()
        cper = current["person"].to_numpy()
        ids = current["_id"].to_numpy()
        u = rng.random(len(cp))
        xs = has_cs[cp] & (u < b.cross_sell_prob) & (current["kind"].to_numpy() != 3)
        rp = (repeat_days[cp] > 0) & (rng.random(len(cp)) < b.repeat_prob)
        new = []
        if xs.any():
            idx = np.flatnonzero(xs)
            nt = ct[idx] + np.clip(rng.exponential(12.0, len(idx)), 1.0, 60.0)
            rows_cs = cs[cp[idx]]
            nc = _draw(rng, len(idx), lambda a, z, w=rows_cs: w[a:z])
            new.append(
                pd.DataFrame(
                    {"person": cper[idx], "t": nt, "category": nc, "kind": 2, "parent": ids[idx]}
                )
            )
        if rp.any():
            idx = np.flatnonzero(rp)
            nt = ct[idx] + repeat_days[cp[idx]] * rng.lognormal(0.0, 0.25, len(idx))
            new.append(
                pd.DataFrame(
                    {
                        "person": cper[idx],
                        "t": nt,
                        "category": cp[idx],
                        "kind": 3,
                        "parent": ids[idx],
                    }
                )
            )
        if not new:
            break
        nxt = pd.concat(new, ignore_index=True)
        nxt = nxt[nxt["t"].to_numpy() < stop[nxt["person"].to_numpy()]]
        if nxt.empty:
            break
        nxt = nxt.assign(_id=np.arange(offset, offset + len(nxt)))
        offset += len(nxt)
        frames.append(nxt.drop(columns="_id"))
        current = nxt
    return frames, offset


def _timed(frames: list[pd.DataFrame], offset: int, people, rng, tl: Timeline) -> pd.DataFrame:
    """The baskets with channel and time of day, before the horizon's end, in time order,
    ``parent`` pointing at the new positions."""
    out = pd.concat(frames, ignore_index=True)
    out["category"] = out["category"].astype(np.int16)
    out["kind"] = out["kind"].astype(np.int8)
    online = rng.random(len(out)) < people["online_share"].to_numpy()[out["person"].to_numpy()]
    big = np.isin(out["category"].to_numpy(), [0, 3, 5, 6])
    online |= big & (rng.random(len(out)) < 0.15)
    out["online"] = online
    out["t"] = np.where(
        out["kind"].to_numpy() == 0,
        out["t"].to_numpy(),
        time_of_day(rng, out["t"].to_numpy(), online),
    )
    out["_id"] = np.arange(len(out))
    out = out[out["t"].to_numpy() < tl.end]
    out = out.sort_values(["t", "person"], kind="stable").reset_index(drop=True)
    newpos = np.full(int(offset) + 1, -1, dtype=np.int64)
    newpos[out["_id"].to_numpy()] = np.arange(len(out))
    par = out["parent"].to_numpy()
    out["parent"] = np.where(par >= 0, newpos[np.maximum(par, 0)], -1)
    return out.drop(columns="_id")


def lines(bk: pd.DataFrame, pref, products: pd.DataFrame, rng, cfg: SynthConfig) -> pd.DataFrame:
    """Basket lines: the basket's main product plus extra lines (same category, cross-sell, taste).

    Repeat baskets of consumables buy again the SKU of the basket that triggered them.
    """
    b = cfg.behaviour
    nb = len(bk)
    extra = rng.poisson(b.extra_lines_mean, nb)
    n_lines = 1 + extra
    basket = np.repeat(np.arange(nb), n_lines)
    line_no = np.arange(len(basket)) - np.repeat(np.cumsum(n_lines) - n_lines, n_lines)
    person = bk["person"].to_numpy()[basket]
    main_cat = bk["category"].to_numpy()[basket]
    cs = cross_sell_matrix()
    u = rng.random(len(basket))
    has_cs = cs.sum(axis=1)[main_cat] > 0
    cs_cat = _draw(rng, len(basket), lambda a, z: cs[main_cat[a:z]] + 1e-12)
    taste_cat = _draw(rng, len(basket), lambda a, z: pref[person[a:z]])
    category = np.where(
        line_no == 0,
        main_cat,
        np.where(u < 0.45, main_cat, np.where((u < 0.7) & has_cs, cs_cat, taste_cat)),
    ).astype(np.int16)
    sku = _sample_skus(rng, category, products)
    # repeat purchases: same SKU as the parent basket's main line
    parent = bk["parent"].to_numpy()
    kind = bk["kind"].to_numpy()
    first_line = np.cumsum(n_lines) - n_lines
    main_sku = sku[first_line]
    for _ in range(13):  # follow the repeat chain (parents come before children)
        rep = (kind == 3) & (parent >= 0)
        new_main = main_sku.copy()
        new_main[rep] = main_sku[parent[rep]]
        if np.array_equal(new_main, main_sku):
            break
        main_sku = new_main
    sku[first_line] = main_sku
    category[first_line] = products["_ci"].to_numpy()[main_sku]
    consumable = np.array([c.repeat_days is not None for c in CATEGORIES])[category]
    qty = np.where(
        consumable,
        rng.choice([1, 1, 2, 2, 3, 4], len(sku)),
        np.where(rng.random(len(sku)) < 0.06, 2, 1),
    )
    base = products["price"].to_numpy()[sku]
    disc = np.where(
        rng.random(len(sku)) < 0.22, rng.choice([0.05, 0.1, 0.15, 0.2, 0.3], len(sku)), 0.0
    )
    price = np.round(base * (1 - disc), 2)
    return pd.DataFrame(
        {
            "basket": basket,
            "line_no": line_no.astype(np.int16),
            "person": person,
            "sku_idx": sku.astype(np.int32),
            "category": category,
            "quantity": qty.astype(np.int32),
            "price": price,
        }
    )


def _sample_skus(rng, category: np.ndarray, products: pd.DataFrame) -> np.ndarray:
    ci = products["_ci"].to_numpy()
    pop = products["_popularity"].to_numpy()
    out = np.empty(len(category), dtype=np.int64)
    for c in range(N_CAT):
        m = category == c
        if not m.any():
            continue
        idx = np.flatnonzero(ci == c)
        out[m] = rng.choice(idx, size=int(m.sum()), p=pop[idx] / pop[idx].sum())
    return out


def web_events(
    people, pref, bk, ln, drop, products, rng, cfg: SynthConfig, tl: Timeline
) -> pd.DataFrame:
    """Views and carts before purchases, plus background browsing sessions (searches, clicks)."""
    b = cfg.behaviour
    bonline = bk["online"].to_numpy()
    bt = bk["t"].to_numpy()
    lb = ln["basket"].to_numpy()
    # views of what is bought, days before buying (online baskets, some store baskets)
    researched = bonline[lb] | (
        (rng.random(len(lb)) < b.pos_researched) & (ln["line_no"].to_numpy() == 0)
    )
    researched &= rng.random(len(lb)) < np.where(ln["line_no"].to_numpy() == 0, 0.85, 0.3)
    idx = np.flatnonzero(researched)
    k = 1 + rng.poisson(0.3, len(idx))
    rows = np.repeat(idx, k)
    v_t = bt[lb[rows]] - rng.uniform(0.02, 12.0, len(rows))
    views = pd.DataFrame(
        {
            "person": ln["person"].to_numpy()[rows],
            "t": v_t,
            "etype": 0,
            "sku_idx": ln["sku_idx"].to_numpy()[rows],
            "category": ln["category"].to_numpy()[rows],
        }
    )
    # carts minutes before an online order
    cidx = np.flatnonzero(bonline[lb] & (rng.random(len(lb)) < 0.5))
    carts = pd.DataFrame(
        {
            "person": ln["person"].to_numpy()[cidx],
            "t": bt[lb[cidx]] - rng.uniform(0.001, 0.03, len(cidx)),
            "etype": 1,
            "sku_idx": ln["sku_idx"].to_numpy()[cidx],
            "category": ln["category"].to_numpy()[cidx],
        }
    )
    # background sessions while alive
    online = people["online_share"].to_numpy()
    t0 = people["_t0"].to_numpy()
    rate = b.web_sessions_per_year * (0.2 + online) / YEAR
    sp, st = _poisson_times(rng, rate, t0 - 10, np.minimum(drop + 20, tl.end))
    st = time_of_day(rng, st, np.ones(len(st), dtype=bool))  # sessions peak in the evening
    size = 1 + rng.poisson(1.0, len(sp))
    ep = np.repeat(sp, size)
    et = np.repeat(st, size) + rng.uniform(0, 0.02, len(ep))
    etype = rng.choice([0, 1, 2, 3], size=len(ep), p=[0.55, 0.05, 0.25, 0.15])
    ecat = _draw(rng, len(ep), lambda a, z: pref[ep[a:z]])
    esku = _sample_skus(rng, ecat, products).astype(np.int32)
    esku = np.where(etype == 2, -1, esku)  # searches carry a category, not a sku
    bg = pd.DataFrame({"person": ep, "t": et, "etype": etype, "sku_idx": esku, "category": ecat})
    ev = pd.concat([views, carts, bg], ignore_index=True)
    ev = ev[(ev["t"].to_numpy() >= 0) & (ev["t"].to_numpy() < tl.end)]
    ev = ev[ev["t"].to_numpy() >= t0[ev["person"].to_numpy()] - 30]
    ev["person"] = ev["person"].astype(np.int32)
    ev["etype"] = ev["etype"].astype(np.int8)
    ev["category"] = ev["category"].astype(np.int16)
    ev["sku_idx"] = ev["sku_idx"].astype(np.int32)
    return ev.reset_index(drop=True)
