"""TIFU-KNN: time-decayed personal item frequency blended with that of the nearest customers.

Hu et al., "Modeling Personalized Item Frequency Information for Next-basket Recommendation"
(SIGIR 2020), among the strongest methods of the "Next Basket Recommendation Reality Check"
(Li et al., 2023). A customer's baskets, oldest first, are split into at most ``groups`` groups
of consecutive baskets; inside a group a basket ``t`` places from the group's end weighs
``within_decay ** t``, the group vector is the mean of its weighted basket vectors, and the
customer vector the mean of the group vectors, the group ``g`` places from the last weighing
``group_decay ** g``. The ``neighbours`` most cosine-similar customers (among at most
``pool`` reference customers) give the neighbour vector, their mean; the prediction is
``alpha * own + (1 - alpha) * neighbours``.

Used twice: as a baseline (:func:`cemlib.offers.baselines.tifu_knn`) and, per snapshot, as
candidates (``knn``) and features (``tifu_own``, ``tifu_nb``) of the ranker.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import normalize


@dataclass(frozen=True)
class TifuParams:
    """The method's settings; the defaults are the paper's for Ta-Feng."""

    groups: int = 7
    within_decay: float = 0.9
    group_decay: float = 0.7
    neighbours: int = 300
    alpha: float = 0.7
    pool: int = 20_000  # reference customers searched for neighbours (a seeded sample beyond)


def user_vectors(
    c: np.ndarray, b: np.ndarray, i: np.ndarray, d: np.ndarray, n_c: int, n_i: int, prm: TifuParams
) -> sp.csr_matrix:
    """Customer x item matrix of the decayed frequencies from distinct (c, basket, item, day)."""
    lines = pd.DataFrame({"c": c, "b": b, "i": i, "d": d})
    bk = lines.groupby(["c", "b"], sort=False)["d"].min().reset_index()
    bk = bk.sort_values(["c", "d", "b"], kind="stable").reset_index(drop=True)
    cc = bk["c"].to_numpy()
    start = np.flatnonzero(np.r_[True, cc[1:] != cc[:-1]])
    size = np.diff(np.r_[start, len(cc)])
    n = np.repeat(size, size)
    t = np.arange(len(cc)) - np.repeat(start, size)  # 0 = oldest basket of the customer
    m = np.minimum(n, prm.groups)
    g = (t * m) // n  # balanced groups of consecutive baskets, 0 = oldest
    # position from the end of the group and the size of the group
    g_lo = -((-g * n) // m)  # first basket of group g: ceil(g * n / m)
    g_hi = -((-(g + 1) * n) // m)
    g_size = g_hi - g_lo
    w = (
        prm.within_decay ** (g_hi - 1 - t).astype(float)
        / g_size
        * prm.group_decay ** (m - 1 - g).astype(float)
        / m
    )
    bk["w"] = w
    lines = lines.merge(bk[["c", "b", "w"]], on=["c", "b"])
    return sp.csr_matrix(
        (lines["w"].to_numpy(), (lines["c"].to_numpy(), lines["i"].to_numpy())), shape=(n_c, n_i)
    ).tocsr()


class Tifu:
    """Customer vectors of one history and the neighbour search over a reference pool."""

    def __init__(self, U: sp.csr_matrix, prm: TifuParams, seed: int = 0):
        self.U, self.prm = U, prm
        active = np.flatnonzero(np.diff(U.indptr) > 0)
        if len(active) > prm.pool:
            active = np.sort(np.random.default_rng(seed).choice(active, prm.pool, replace=False))
        self.pool = active
        self.k_nb = int(min(prm.neighbours, max(len(active) - 1, 0)))
        self.nn = None
        if self.k_nb > 0:
            self.nn = NearestNeighbors(metric="cosine", algorithm="brute", n_jobs=1)
            self.nn.fit(normalize(U[active]))

    def neighbour_matrix(self, customers: np.ndarray) -> sp.csr_matrix:
        """Rows: the mean vector of each customer's neighbours (the customer excluded)."""
        n_q = len(customers)
        if self.nn is None or n_q == 0:
            return sp.csr_matrix((n_q, self.U.shape[1]))
        q = normalize(self.U[customers])
        _, idx = self.nn.kneighbors(q, n_neighbors=min(self.k_nb + 1, len(self.pool)))
        nb = self.pool[idx]
        keep = nb != customers[:, None]
        # drop the customer itself (or the farthest one when it is not in the pool)
        keep &= np.cumsum(keep, axis=1) <= self.k_nb
        rows = np.repeat(np.arange(n_q), keep.sum(axis=1))
        A = sp.csr_matrix(
            (np.full(len(rows), 1.0 / self.k_nb), (rows, nb[keep])),
            shape=(n_q, self.U.shape[0]),
        )
        return (A @ self.U).tocsr()

    def scores(self, customers: np.ndarray, top: int) -> pd.DataFrame:
        """``c, i, tifu_own, tifu_nb, tifu, tifu_rank``: each customer's own items and the
        ``top`` best items of the blend (``tifu_rank`` 1.. by the blend; own items beyond the
        top keep their rank)."""
        customers = np.asarray(customers, dtype=np.int64)
        chunk = 1000  # the neighbour rows of a chunk are dense-ish: bounded memory
        parts = [
            self._scores(customers[s : s + chunk], top) for s in range(0, len(customers), chunk)
        ]
        if not parts:
            parts = [self._scores(customers, top)]
        return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]

    def _scores(self, customers: np.ndarray, top: int) -> pd.DataFrame:
        own = self.U[customers].tocoo()
        nb = self.neighbour_matrix(customers).tocoo()
        a = self.prm.alpha
        both = pd.DataFrame(
            {
                "r": np.r_[own.row, nb.row],
                "i": np.r_[own.col, nb.col],
                "tifu_own": np.r_[own.data, np.zeros(len(nb.data))],
                "tifu_nb": np.r_[np.zeros(len(own.data)), nb.data],
            }
        )
        g = both.groupby(["r", "i"], sort=False).sum().reset_index()
        g["tifu"] = a * g["tifu_own"] + (1 - a) * g["tifu_nb"]
        g = g.sort_values(["r", "tifu", "i"], ascending=[True, False, True], kind="stable")
        g["tifu_rank"] = g.groupby("r").cumcount() + 1
        g = g[(g["tifu_rank"] <= top) | (g["tifu_own"] > 0)]
        g.insert(0, "c", customers[g["r"].to_numpy()])
        return g.drop(columns="r").reset_index(drop=True)
