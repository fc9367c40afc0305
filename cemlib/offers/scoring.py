"""The scoring phases of :class:`~cemlib.offers.model.NextOfferModel`: the top ``k`` per
customer, popular items filling short lists, ids decoded, names for the reasons, and the
candidate recall counted chunk by chunk."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cemlib.offers.candidates import CandidateConfig, build_candidates
from cemlib.offers.snapshot import Encoded, Snapshot, day_number

#: what decides between equal scores, in order (a shallow early-stopped forest scores many
#: candidates alike): the share of the customer's baskets holding the item, then the number of
#: buyers — GP-TopFreq's order — then the item code
TIE_BREAK: tuple[str, ...] = ("ci_share", "it_n_cust")


def top_k(frame: pd.DataFrame, k: int) -> pd.DataFrame:
    """The ``k`` best-scored rows of each customer (ties: :data:`TIE_BREAK`), with ``rank``."""
    c = frame["c"].to_numpy()
    ties = [-np.nan_to_num(frame[n].to_numpy(np.float64)) for n in TIE_BREAK if n in frame]
    order = np.lexsort((frame["i"].to_numpy(), *ties[::-1], -frame["score"].to_numpy(), c))
    cs = c[order]
    start = np.flatnonzero(np.r_[True, cs[1:] != cs[:-1]])
    rank = np.arange(len(cs)) - np.repeat(start, np.diff(np.r_[start, len(cs)])) + 1
    keep = rank <= k
    top = frame.iloc[order[keep]].reset_index(drop=True)
    top["rank"] = rank[keep]
    return top


def fill(
    top: pd.DataFrame,
    customers: np.ndarray,
    pop: np.ndarray,
    k: int,
    names: list[str],
    item_category: np.ndarray,
    taken: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Pad customers with fewer than k candidates with popular items (score = -inf rank): each
    short list takes the first items of ``pop`` it does not hold (nor ``taken``: ``c, i``
    pairs never to pad with, e.g. the items bought before), up to ``k`` (in arrays: the
    python loop over the short customers was a fifth of scoring on trial 9's catalogue, whose
    lists were ranked 161 deep)."""
    counts = top.groupby("c").size().reindex(customers, fill_value=0)
    short = counts[counts < k]
    if short.empty:
        return top
    pop = np.asarray(pop, dtype=np.int64)
    sc, sn = short.index.to_numpy(np.int64), short.to_numpy(np.int64)
    width = int(max(pop.max(initial=0), top["i"].max() if len(top) else 0)) + 1
    if taken is not None and len(taken):
        width = max(width, int(taken["i"].max()) + 1)
    c = np.repeat(sc, len(pop))
    i = np.tile(pop, len(sc))
    held = top["c"].to_numpy(np.int64) * width + top["i"].to_numpy(np.int64)
    if taken is not None and len(taken):
        held = np.r_[held, taken["c"].to_numpy(np.int64) * width + taken["i"].to_numpy(np.int64)]
    free = ~np.isin(c * width + i, held)
    # the j-th popular item a short list does not hold: j = free items before it in its block
    j = (np.cumsum(free.reshape(len(sc), len(pop)), axis=1) - 1).reshape(-1)
    n = np.repeat(sn, len(pop))
    keep = free & (j < k - n)
    if not keep.any():
        return top
    rows = {"c": c[keep], "i": i[keep], "rank": n[keep] + j[keep] + 1}
    pad = pd.DataFrame(rows)
    pad["score"] = top["score"].min() - 1 if len(top) else 0.0
    for col in names:
        pad[col] = np.float32(np.nan)
    for col in ("cat", "cooc_anchor", "after_anchor", "seg"):
        pad[col] = -1
    pad["cat"] = item_category[pad["i"].to_numpy()]
    return (
        pd.concat([top, pad], ignore_index=True).sort_values(["c", "rank"]).reset_index(drop=True)
    )


def decoded(top: pd.DataFrame, enc: Encoded, pool: dict[str, str]) -> pd.DataFrame:
    """Offers of one chunk with the original ids, equal reason texts sharing one string."""
    reasons = top["reasons"].to_numpy() if "reasons" in top else np.array([], dtype=object)
    return pd.DataFrame(
        {
            "customer_id": enc.customers.to_numpy()[top["c"].to_numpy(np.int64)],
            "rank": top["rank"].to_numpy(np.int64),
            "item_id": enc.items.to_numpy()[top["i"].to_numpy(np.int64)],
            "score": top["score"].to_numpy(np.float64).round(6),
            "reasons": np.array([pool.setdefault(r, r) for r in reasons], dtype=object),
        }
    )


def item_names(model, codes: pd.Series) -> pd.Series:
    """Item names (catalogue name, else id) of item codes for the reasons.

    Named once per item of the code book (the last entry for code -1, "your items"), then
    looked up: the offers of a chunk repeat the same few thousand items."""
    codes = codes.to_numpy(np.int64)
    ids = pd.Series(np.append(model.enc_.items.to_numpy(dtype=object), ""), dtype=object)
    names = ids
    if model.items_ is not None and "name" in model.items_.columns:
        mapped = ids.map(model.items_.set_index("item_id")["name"])
        names = mapped.fillna(ids).astype(object)
    if model.granularity == "category":
        book = names.replace("", "your items")
    else:
        book = names.where(names != "", "your items").map(
            lambda s: s if s == "your items" else f"{s}"
        )
    pos = np.where(codes >= 0, codes, len(ids) - 1)
    return pd.Series(book.to_numpy(dtype=object)[pos], dtype=object)


def category_names(model, codes: pd.Series) -> pd.Series:
    """Category names of category codes for the reasons."""
    codes = codes.to_numpy(np.int64)
    cats = model.enc_.categories.to_numpy()
    vals = np.where(codes >= 0, cats[np.maximum(codes, 0)] if len(cats) else "", "this category")
    return pd.Series(vals, dtype=object)


def segment_names(model, codes: pd.Series) -> pd.Series:
    """Segment names (the given segments, else categories) of segment codes for the reasons."""
    codes = codes.to_numpy(np.int64)
    enc = model.enc_
    book = enc.segments if enc.segments is not None else enc.categories
    vals = book.to_numpy() if len(book) else np.array([""])
    return pd.Series(
        np.where(codes >= 0, vals[np.maximum(codes, 0)], "the same things"), dtype=object
    )


class RecallCounter:
    """The bought (customer, item) pairs of ``truth`` found among candidates, counted chunk by
    chunk on integer codes (:meth:`add` each chunk's candidate pairs; :attr:`value` the share).

    Scoring counts them on the candidates it builds anyway (``recommend(recall_of=...)``), so
    the stage needs no second snapshot and candidate pass for its candidate recall."""

    def __init__(self, model, truth: pd.DataFrame, customers=None):
        truth = truth[["customer_id", "item_id"]].drop_duplicates()
        if customers is not None:
            truth = truth[truth["customer_id"].isin(pd.Index(customers))]
        self.n_truth = len(truth)
        self.width = len(model.enc_.items) + 1
        tc = model.enc_.customers.get_indexer(pd.Index(truth["customer_id"]))
        ti = model.enc_.items.get_indexer(pd.Index(truth["item_id"]))
        known = (tc >= 0) & (ti >= 0)
        self.tc = tc[known]
        self.key = self.tc.astype(np.int64) * self.width + ti[known]
        self.found = 0

    def add(self, part: np.ndarray, c: np.ndarray, i: np.ndarray) -> None:
        """Count the truth pairs of the customers ``part`` among candidate pairs ``(c, i)``."""
        mine = np.isin(self.tc, part)
        if mine.any():
            pairs = c.astype(np.int64) * self.width + i.astype(np.int64)
            self.found += int(np.isin(self.key[mine], pairs).sum())

    @property
    def value(self) -> float:
        """Share of the truth pairs found (NaN without truth)."""
        return self.found / self.n_truth if self.n_truth else float("nan")


def candidate_recall_of(model, truth: pd.DataFrame, customers=None, as_of=None):
    """:func:`~cemlib.offers.metrics.candidate_recall` of ``model.candidate_frame()`` without
    building it: the candidate pairs come chunk by chunk as integer codes, without features
    (the frame of every customer's candidates with their features was the stage's peak)."""
    model._check_fitted()
    counter = RecallCounter(model, truth, customers)
    if not counter.n_truth:
        return float("nan")
    T = day_number(as_of if as_of is not None else model.as_of_)
    snap = Snapshot(model.store_, T, horizon=model.horizon_days, windows=model.windows)
    cfg = model.candidates or CandidateConfig()
    try:
        for part in model._chunks(snap.customers_with_history(), "candidate recall"):
            if not np.isin(counter.tc, part).any():
                continue
            q = model._query_table(snap, part)
            cand = model.store_.sql(f"SELECT c, i FROM {build_candidates(snap, q, cfg)}")
            counter.add(part, cand["c"].to_numpy(), cand["i"].to_numpy())
    finally:
        snap.drop()
    return counter.value
