"""Pseudonymous, stable profile ids: a hash of the smallest record key of each cluster."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from cemlib.identity.roles import as_string


def profile_ids(keys: pd.Series, labels: np.ndarray) -> np.ndarray:
    """Pseudonymous, stable profile ids: a hash of the smallest record key of each cluster."""
    keys = pd.Series(keys.to_numpy(dtype=object))
    order = keys.sort_values(kind="stable").index.to_numpy()
    lab = pd.Series(labels[order])
    first = ~lab.duplicated().to_numpy()
    smallest = dict(zip(lab[first], keys.to_numpy()[order][first], strict=True))
    ids = {
        label: "P" + hashlib.blake2b(k.encode(), digest_size=6).hexdigest()
        for label, k in smallest.items()
    }
    return pd.Series(labels).map(ids).to_numpy(dtype=object)


def record_profile_ids(source: pd.Series, record_id: pd.Series, labels: np.ndarray) -> np.ndarray:
    """:func:`profile_ids` of the keys ``source|record_id`` without building a key per record:
    the smallest key of a cluster is its smallest record id among its records of the smallest
    source (exact when no source contains ``|``: ``s|`` is then never a prefix of ``t|``)."""
    src = as_string(source)
    bad = src.isna().any() or record_id.isna().any() or src.str.contains("|", regex=False).any()
    if len(src) == 0 or bad:
        return profile_ids(source.astype(str) + "|" + record_id.astype(str), labels)
    rank_src, names = pd.factorize(src, sort=False)
    order = np.argsort(np.array([n + "|" for n in names], dtype=object), kind="stable")
    rank = np.argsort(order)[rank_src]
    min_rank = pd.Series(rank).groupby(labels).transform("min").to_numpy()
    top = np.flatnonzero(rank == min_rank)
    # the smallest record id per cluster on sorted integer codes (a string min per group runs
    # in Python, one call per cluster)
    rid_codes, rid_values = pd.factorize(record_id.iloc[top], sort=True)
    best = pd.Series(rid_codes).groupby(labels[top], sort=False).min()
    src_obj = np.asarray(names, dtype=object)
    best_src = pd.Series(src_obj[rank_src[top]]).groupby(labels[top], sort=False).first()
    smallest = np.asarray(rid_values, dtype=object)[best.to_numpy()]
    ids = {
        label: "P" + hashlib.blake2b((s + "|" + k).encode(), digest_size=6).hexdigest()
        for label, s, k in zip(best.index, best_src.reindex(best.index), smallest, strict=True)
    }
    return pd.Series(labels).map(ids).to_numpy(dtype=object)
