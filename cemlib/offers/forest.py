"""Branch-free scoring of shallow LightGBM trees: the same scores as ``booster.predict``.

Scoring every candidate of a million customers is the largest cost of ``recommend``; LightGBM
walks each tree with data-dependent branches that the processor mispredicts about half the
time. Here every tree is laid out as a complete binary tree of its maximal depth (a leaf above
that depth is repeated below dummy splits) and walked without branches,
``node = 2 * node + 2 - goes_left``, in a numba-compiled loop over blocks of rows, tree by tree
(numba comes with shap): about twice as fast on the next-offer model.
The decision rule is LightGBM's (``value <= threshold``; a missing value goes the split's default
way, or is read as 0.0 when the split has no missing-value handling) and leaf values are added in
LightGBM's order, so the scores are the same numbers. Trees deeper than ``max_depth``,
categorical splits and "zero as missing" splits are not laid out: :func:`compile_forest` then
returns ``None`` and the caller uses ``booster.predict``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import lightgbm as lgb
import numba
import numpy as np
from numba import njit, prange

_BLOCK = 512  # rows walked together through each tree (independent work for the processor)


def cache_folder() -> str | None:
    """Where the compiled loops are kept between processes: ``NUMBA_CACHE_DIR`` when the user
    set it, else ``numba`` in the user's cache folder (``~/.cache/cemlib/numba`` on Linux);
    ``None`` when that folder cannot be written (then every process compiles)."""
    if numba.config.CACHE_DIR:
        return numba.config.CACHE_DIR
    from numba.misc.appdirs import AppDirs

    folder = os.path.join(AppDirs("cemlib", appauthor=False).user_cache_dir, "numba")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return None
    return folder if os.access(folder, os.W_OK | os.X_OK) else None


def jit(**options):
    """``numba.njit`` whose machine code is cached on disk in :func:`cache_folder`, never next
    to the package's source (an installed package may be read-only or shared): a kernel loads
    the loops in well under a second instead of compiling them (12-14 s for the two of
    forest.py and treeshap.py). The cache is keyed by the source file's contents and the
    argument types, so an edited file or another numba compiles afresh."""

    def wrap(fn):
        folder = cache_folder()
        if folder is None:
            return njit(cache=False, **options)(fn)
        before = numba.config.CACHE_DIR
        numba.config.CACHE_DIR = folder  # read once, when the dispatcher picks its cache folder
        try:
            return njit(cache=True, **options)(fn)
        finally:
            numba.config.CACHE_DIR = before

    return wrap


@jit(parallel=True, nogil=True)  # the stage's side thread runs meanwhile
def _predict(X, depth, feat, thr, nan_left, leaf):  # pragma: no cover - compiled
    n = X.shape[0]
    n_trees, n_split = leaf.shape[0], feat.shape[1]
    out = np.zeros(n)
    for b in prange((n + _BLOCK - 1) // _BLOCK):
        lo, hi = b * _BLOCK, min(n, (b + 1) * _BLOCK)
        node = np.zeros(hi - lo, dtype=np.int64)
        for t in range(n_trees):  # tree by tree: each row adds its leaves in LightGBM's order
            node[:] = 0
            # level by level over the block: the rows' walks are independent work, where one
            # row's walk waits on each load before the next (about a fifth less time)
            for _ in range(depth):
                for r in range(hi - lo):
                    nd = node[r]
                    v = np.float64(X[lo + r, feat[t, nd]])
                    left = (v <= thr[t, nd]) | ((v != v) & nan_left[t, nd])
                    node[r] = 2 * nd + 2 - np.int64(left)
            for r in range(hi - lo):
                out[lo + r] += leaf[t, node[r] - n_split]
    return out


@dataclass
class Forest:
    """Complete-tree arrays: split ``feat``/``thr``/``nan_left`` per tree in heap order, ``leaf``."""

    depth: int
    feat: np.ndarray  # (trees, 2**depth - 1) int64
    thr: np.ndarray  # (trees, 2**depth - 1) float64
    nan_left: np.ndarray  # (trees, 2**depth - 1) bool: where a missing value goes
    leaf: np.ndarray  # (trees, 2**depth) float64

    def trees(self, start: int, stop: int) -> Forest:
        """The forest of trees ``start`` to ``stop`` (a slice, in order)."""
        cut = slice(start, stop)
        return Forest(self.depth, self.feat[cut], self.thr[cut], self.nan_left[cut], self.leaf[cut])

    def predict(self, X: np.ndarray, *, num_threads: int = 2) -> np.ndarray:
        """Raw scores of the rows of ``X``, equal to ``booster.predict(X)``."""
        if len(X) == 0:
            return np.zeros(0)
        X = np.ascontiguousarray(X)
        before = numba.get_num_threads()
        numba.set_num_threads(max(1, min(int(num_threads), numba.config.NUMBA_NUM_THREADS)))
        try:
            return _predict(X, self.depth, self.feat, self.thr, self.nan_left, self.leaf)
        finally:
            numba.set_num_threads(before)


def compile_forest(booster: lgb.Booster, *, max_depth: int = 4) -> Forest | None:
    """Lay out ``booster`` (its best iteration) as complete trees; ``None`` when not possible."""
    dump = booster.dump_model()
    trees = [info["tree_structure"] for info in dump["tree_info"]]
    if any(info.get("is_linear") for info in dump["tree_info"]):
        return None

    def height(node: dict) -> int:
        if "split_index" not in node:
            return 0
        return 1 + max(height(node["left_child"]), height(node["right_child"]))

    depth = max([height(t) for t in trees] + [1])
    if depth > max_depth:
        return None
    n_split, n_leaf = (1 << depth) - 1, 1 << depth
    feat = np.zeros((len(trees), n_split), dtype=np.int64)
    thr = np.full((len(trees), n_split), np.inf)  # dummy splits: everything goes left
    nan_left = np.ones((len(trees), n_split), dtype=np.bool_)
    leaf = np.zeros((len(trees), n_leaf))

    def place(t: int, node: dict, pos: int, level: int) -> bool:
        if level == depth or "split_index" not in node:
            # a leaf: fill the leaves of the complete subtree below ``pos`` (all via the left)
            first = pos
            while first < n_split:
                first = 2 * first + 1
            width = 1 << (depth - level)
            leaf[t, first - n_split : first - n_split + width] = float(node.get("leaf_value", 0.0))
            return "split_index" not in node
        if node.get("decision_type", "<=") != "<=":
            return False
        missing = node.get("missing_type", "None")
        if missing == "Zero":
            return False
        threshold = float(node["threshold"])
        feat[t, pos] = int(node["split_feature"])
        thr[t, pos] = threshold
        default_left = bool(node.get("default_left", True))
        nan_left[t, pos] = default_left if missing == "NaN" else (threshold >= 0.0)
        return place(t, node["left_child"], 2 * pos + 1, level + 1) and place(
            t, node["right_child"], 2 * pos + 2, level + 1
        )

    for t, root in enumerate(trees):
        if not place(t, root, 0, 0):
            return None
    return Forest(depth, feat, thr, nan_left, leaf)
