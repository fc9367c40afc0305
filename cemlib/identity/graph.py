"""Clustering of links into profiles, with a guard against chains.

Links are merged strongest first (union–find). Before two clusters merge, every record of one
is checked against every record of the other: if any two are clearly different people (first
names differ beyond a typo and birth dates beyond one digit or a day/month swap), the merge is
refused. The link's own pair was already weighed by the model; the guard stops the chains, where
one weak link would join two people who never met through a third record.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cemlib.identity.rules import fold_dob, names_similar

#: identifiers a family shares: their links are also refused on different first names/genders
FAMILY_KINDS: tuple[str, ...] = ("phone", "device_id", "loyalty_card")


def _dates_close(a: str, b: str) -> bool:
    return a == b or (len(a) == len(b) and sum(x != y for x, y in zip(a, b, strict=True)) <= 1)


def clearly_different(a: tuple, b: tuple) -> bool:
    """Two (first, last, birth date) records are different people: first names differ beyond
    a typo (and are not a first/last swap) and birth dates differ beyond one digit or a swap."""
    fa, la, da, _ = a
    fb, lb, db, _ = b
    if not (fa and fb and da and db) or _dates_close(da, db):
        return False
    swapped = bool(la and fa == lb) or bool(lb and fb == la)
    return not (swapped or names_similar(fa, fb))


def names_clash(a: tuple, b: tuple) -> bool:
    """First names (or email name hints) that differ beyond a typo, or different genders."""
    fa, la, _, ga = a
    fb, lb, _, gb = b
    if ga and gb and ga != gb:
        return True
    if not (fa and fb) or names_similar(fa, fb):
        return False
    return not (bool(la and fa == lb) or bool(lb and fb == la))


def _conflict(a: set, b: set, strict: bool, cap: int = 2500) -> bool:
    if len(a) * len(b) > cap:
        a, b = set(list(a)[:50]), set(list(b)[:50])
    if strict:
        return any(names_clash(x, y) or clearly_different(x, y) for x in a for y in b)
    return any(clearly_different(x, y) for x in a for y in b)


class ChainGuardClusterer:
    """Union–find over scored links with a name/birth-date conflict guard.

    ``fit(prepared, links)`` where ``links`` has ``rid_l, rid_r, score`` and optionally
    ``guarded`` (links the guard checks; default: score below ``strong_threshold``)
    sets ``labels_`` (cluster label per record: the smallest record index of the cluster),
    ``accepted_`` (boolean per link) and ``n_refused_``.
    """

    def __init__(self, *, strong_threshold: float = 0.99, guard: bool = True):
        self.strong_threshold = strong_threshold
        self.guard = guard

    def fit(self, prepared: pd.DataFrame, links: pd.DataFrame) -> ChainGuardClusterer:
        n = len(prepared)
        parent = list(range(n))
        first_key = prepared["first_lat"].astype("string")
        if "first_hint" in prepared:
            first_key = first_key.fillna(prepared["first_hint"].astype("string"))
        first = first_key.astype(object).where(first_key.notna(), None)
        last = prepared["last_lat"].astype(object).where(prepared["last_lat"].notna(), None)
        dob = fold_dob(prepared["birth_date"]).astype(object)
        dob = dob.where(dob.notna(), None)
        gender = (
            prepared["gender"] if "gender" in prepared else pd.Series(None, index=prepared.index)
        )
        gender = gender.astype(object).where(gender.notna(), None)
        first, last, dob, gender = first.tolist(), last.tolist(), dob.tolist(), gender.tolist()
        state: dict[int, set] = {}

        def get_state(i: int) -> set:
            st = state.get(i)
            if st is None:
                t = (first[i], last[i], dob[i], gender[i])
                st = {t} if first[i] or gender[i] else set()
                state[i] = st
            return st

        def find(i: int) -> int:
            root = i
            while parent[root] != root:
                root = parent[root]
            while parent[i] != root:
                parent[i], i = root, parent[i]
            return root

        order = np.argsort(-links["score"].to_numpy(dtype=float), kind="stable")
        left = links["rid_l"].to_numpy()[order].tolist()
        right = links["rid_r"].to_numpy()[order].tolist()
        strict_col = (
            links["rule"].isin(FAMILY_KINDS).to_numpy()
            if "rule" in links
            else np.zeros(len(links), dtype=bool)
        )
        strict = strict_col[order].tolist()
        if "guarded" in links:
            checked = links["guarded"].to_numpy(dtype=bool)[order].tolist()
        else:
            checked = (links["score"].to_numpy(dtype=float)[order] < self.strong_threshold).tolist()
        accepted = np.zeros(len(links), dtype=bool)
        refused = 0
        for k, (i, j, c, st) in enumerate(zip(left, right, checked, strict, strict=True)):
            a, b = find(i), find(j)
            if a == b:
                accepted[order[k]] = True
                continue
            sa, sb = get_state(a), get_state(b)
            if self.guard and c and sa and sb and _conflict(sa, sb, st):
                refused += 1
                continue
            if a > b:
                a, b, sa, sb = b, a, sb, sa
            parent[b] = a
            sa |= sb
            state.pop(b, None)
            accepted[order[k]] = True
        self.labels_ = np.fromiter((find(i) for i in range(n)), dtype=np.int64, count=n)
        self.accepted_ = accepted
        self.n_refused_ = refused
        return self
