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
        self.U, self.prm = U.astype(np.float32).tocsr(), prm
        active = np.flatnonzero(np.diff(U.indptr) > 0)
        if len(active) > prm.pool:
            active = np.sort(np.random.default_rng(seed).choice(active, prm.pool, replace=False))
        self.pool = active
        self.k_nb = int(min(prm.neighbours, max(len(active) - 1, 0)))
        # unit rows of the pool, transposed (items x pool) for the similarity products
        self.poolT = normalize(self.U[active]).T.tocsr()
        # rows per chunk: the dense blocks (rows x pool, rows x items) stay near 20M floats
        self.chunk = int(max(50, min(2000, 20_000_000 // max(U.shape[1], len(active), 1))))

    def neighbours(self, customers: np.ndarray) -> np.ndarray:
        """The ``k`` most cosine-similar pool customers of each customer (itself excluded)."""
        sim = (normalize(self.U[customers]) @ self.poolT).toarray()
        at = np.searchsorted(self.pool, customers)
        mine = (at < len(self.pool)) & (self.pool[np.minimum(at, len(self.pool) - 1)] == customers)
        sim[np.flatnonzero(mine), at[mine]] = -np.inf
        idx = np.argpartition(-sim, self.k_nb - 1, axis=1)[:, : self.k_nb]
        return self.pool[idx]

    def neighbour_matrix(self, customers: np.ndarray) -> np.ndarray:
        """Dense rows: the mean vector of each customer's neighbours."""
        n_q = len(customers)
        if self.k_nb == 0 or n_q == 0:
            return np.zeros((n_q, self.U.shape[1]), dtype=np.float32)
        nb = self.neighbours(customers)
        A = sp.csr_matrix(
            (np.full(nb.size, 1.0 / self.k_nb, dtype=np.float32), nb.ravel(),
             np.arange(0, nb.size + 1, self.k_nb)),
            shape=(n_q, self.U.shape[0]),
        )  # fmt: skip
        return (A @ self.U).toarray()

    def scores(self, customers: np.ndarray, top: int) -> pd.DataFrame:
        """``c, i, tifu_own, tifu_nb, tifu, tifu_rank``: each customer's own items and the
        ``top`` best items of the blend (``tifu_rank`` 1.. by the blend, ``top + 1`` for own
        items beyond the top)."""
        customers = np.asarray(customers, dtype=np.int64)
        n = self.chunk
        parts = [self._scores(customers[s : s + n], top) for s in range(0, len(customers), n)]
        if not parts:
            parts = [self._scores(customers, top)]
        return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]

    def _scores(self, customers: np.ndarray, top: int) -> pd.DataFrame:
        own = self.U[customers].toarray()
        nb = self.neighbour_matrix(customers)
        a = self.prm.alpha
        blend = a * own + (1 - a) * nb
        top = int(min(top, blend.shape[1]))
        cand = np.argpartition(-blend, top - 1, axis=1)[:, :top] if top else blend[:, :0]
        rows = np.repeat(np.arange(len(customers)), cand.shape[1])
        cols = cand.ravel()
        keep = blend[rows, cols] > 0
        rows, cols = rows[keep], cols[keep]
        order = np.lexsort((cols, -blend[rows, cols], rows))
        rows, cols = rows[order], cols[order]
        start = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]]) if len(rows) else rows
        rank = np.arange(len(rows)) - np.repeat(start, np.diff(np.r_[start, len(rows)])) + 1
        in_top = np.zeros(own.shape, dtype=bool)
        in_top[rows, cols] = True
        o_r, o_c = np.nonzero((own > 0) & ~in_top)
        r = np.r_[rows, o_r]
        i = np.r_[cols, o_c]
        return pd.DataFrame(
            {
                "c": customers[r],
                "i": i.astype(np.int64),
                "tifu_own": own[r, i],
                "tifu_nb": nb[r, i],
                "tifu": blend[r, i],
                "tifu_rank": np.r_[rank, np.full(len(o_r), top + 1)].astype(np.int64),
            }
        )
