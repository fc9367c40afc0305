"""Scoring predicted profiles against true persons: pairwise, B-cubed and false merges."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cemlib.errors import InputError


def _pairs(counts: np.ndarray) -> float:
    c = counts.astype(np.float64)
    return float((c * (c - 1) / 2).sum())


def evaluate(
    clusters: pd.DataFrame,
    truth: pd.DataFrame,
    *,
    profile_column: str = "profile_id",
    person_column: str = "person_id",
) -> dict[str, float]:
    """Pairwise precision/recall/F1, B-cubed precision/recall/F1 and the false-merge rate.

    Both frames carry ``record_id`` (and ``source_table`` when records come from several
    tables). Records without a profile count as singletons. The false-merge rate is the share
    of predicted profiles that mix two or more true people; ``false_merge_rate_multi`` is the
    same share among profiles of two or more records only (singletons cannot mix, so this one
    does not fall when a method leaves records alone).
    """
    keys = (
        ["source_table", "record_id"]
        if {"source_table"} <= (set(clusters.columns) & set(truth.columns))
        else ["record_id"]
    )
    for name, df, col in (("clusters", clusters, profile_column), ("truth", truth, person_column)):
        missing = [c for c in [*keys, col] if c not in df.columns]
        if missing:
            raise InputError("missing column", source=name, column=missing[0])
    left = clusters[[*keys, profile_column]].copy()
    right = truth[[*keys, person_column]].copy()
    for k in keys:
        left[k] = left[k].astype(str)
        right[k] = right[k].astype(str)
    df = left.merge(right, on=keys, how="inner")
    if df.empty:
        raise InputError("no record of the clusters is in the truth", source="truth")
    pred = df[profile_column].astype("string")
    singles = pred.isna()
    pred = pred.where(
        ~singles, "_single_" + pd.Series(np.arange(len(df)), index=df.index).astype(str)
    )
    p_codes = pd.factorize(pred)[0]
    t_codes = pd.factorize(df[person_column].astype(str))[0]
    cell = pd.DataFrame({"p": p_codes, "t": t_codes}).value_counts()
    cells = cell.reset_index(name="n")
    return scores_from_cells(cells["p"].to_numpy(), cells["t"].to_numpy(), cells["n"].to_numpy())


def scores_from_cells(p: np.ndarray, t: np.ndarray, n: np.ndarray) -> dict[str, float]:
    """:func:`evaluate`'s figures from the contingency cells: ``n`` records of predicted
    profile code ``p`` and true person code ``t`` (codes 0..k-1, one row per pair present).

    The cells are all the scoring needs, so they can be counted where the records are (a
    GROUP BY in the warehouse, :func:`evaluate_warehouse`) instead of in memory.
    """
    p = np.asarray(p, dtype=np.int64)
    t = np.asarray(t, dtype=np.int64)
    nb = np.asarray(n, dtype=float)
    p_sizes = np.bincount(p, weights=nb).astype(np.int64)
    t_sizes = np.bincount(t, weights=nb).astype(np.int64)
    n_records = int(nb.sum())
    tp = _pairs(nb)
    pred_pairs, true_pairs = _pairs(p_sizes), _pairs(t_sizes)
    precision = tp / pred_pairs if pred_pairs else 1.0
    recall = tp / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    # B-cubed: per record, overlap of its predicted and true cluster
    b_prec = float((nb * nb / p_sizes[p]).sum() / n_records)
    b_rec = float((nb * nb / t_sizes[t]).sum() / n_records)
    b_f1 = 2 * b_prec * b_rec / (b_prec + b_rec) if b_prec + b_rec else 0.0
    persons_per_profile = np.bincount(p, minlength=len(p_sizes))
    n_profiles = len(p_sizes)
    mixed = int((persons_per_profile >= 2).sum())
    n_multi = int((p_sizes >= 2).sum())
    return {
        "records": n_records,
        "profiles": n_profiles,
        "persons": len(t_sizes),
        "true_pairs": true_pairs,
        "predicted_pairs": pred_pairs,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "bcubed_precision": b_prec,
        "bcubed_recall": b_rec,
        "bcubed_f1": b_f1,
        "false_merge_rate": mixed / n_profiles if n_profiles else 0.0,
        "false_merged_profiles": mixed,
        "multi_record_profiles": n_multi,
        "false_merge_rate_multi": mixed / n_multi if n_multi else 0.0,
    }


def record_persons(records: pd.DataFrame, record_person: pd.DataFrame) -> np.ndarray:
    """The true person of each of ``records`` (prepared: ``source``, ``record_id``), in their
    order, from a truth table ``record_person`` (``source_table``, ``record_id``,
    ``person_id``); NaN for a record the truth does not name."""
    key = records["source"].astype(str) + "|" + records["record_id"].astype(str)
    tkey = record_person["source_table"].astype(str) + "|" + record_person["record_id"].astype(str)
    return pd.Series(record_person["person_id"].to_numpy(), index=tkey).reindex(key).to_numpy()


def evaluate_warehouse(
    wh, *, map_table: str = "identity.map", truth_table: str = "truth.record_person"
) -> dict[str, float] | None:
    """:func:`evaluate` of the attached records of ``map_table`` against ``truth_table``,
    counted in DuckDB (which spills past its memory limit): the records never come into
    memory, only one row per (profile, person) pair. None without the truth table."""
    schema, name = truth_table.split(".", 1)
    if not wh.has_table(schema, name):
        return None
    cells = wh.con.execute(
        f"""
        SELECT dense_rank() OVER (ORDER BY profile_id) - 1 AS p,
               dense_rank() OVER (ORDER BY person_id) - 1 AS t, n
        FROM (SELECT m.profile_id, CAST(t.person_id AS VARCHAR) AS person_id, count(*) AS n
              FROM {map_table} m JOIN {truth_table} t
                ON CAST(t.source_table AS VARCHAR) = CAST(m.source_table AS VARCHAR)
               AND CAST(t.record_id AS VARCHAR) = CAST(m.record_id AS VARCHAR)
              WHERE m.profile_id IS NOT NULL
              GROUP BY ALL)
        """
    ).fetchnumpy()
    if len(cells["n"]) == 0:
        raise InputError("no record of the clusters is in the truth", source="truth")
    return scores_from_cells(cells["p"], cells["t"], cells["n"])
