"""Silver labels: what record pairs that share a personal identifier say, without any truth.

Records carrying the same phone, e-mail or national id and the same names up to a typo are
almost always one person. Their pairs measure how often one person's birth date or
patronymic differs (:func:`silver_disagreement`, which decides the cluster constraints) and
whether the model's probabilities are right (:func:`silver_calibration`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cemlib import DEFAULT_SEED
from cemlib.identity.dates import dates_close, fold_dob
from cemlib.identity.roles import as_string
from cemlib.identity.rules import names_similar

CALIBRATION_BINS: tuple[float, ...] = (0.5, 0.8, 0.9, 0.95, 0.99, 0.999, 1.0)

SILVER_MIN_PAIRS = 30  # fewer silver pairs with both values: the model's estimate is used
SILVER_MAX_PAIRS = 50_000  # a seeded sample of the silver pairs beyond this
SILVER_MAX_GROUP = 20  # identifiers on more records than this (hubs) give no silver pairs


def silver_disagreement(
    prepared: pd.DataFrame, *, seed: int = DEFAULT_SEED
) -> dict[str, tuple[float, int]]:
    """How often one person's records disagree entirely on a birth date or a patronymic,
    measured on *silver pairs*: records that carry the same phone, e-mail or national id and
    first and last names equal up to a typo, which are almost always one person.

    ``{field: (share of silver pairs with both values that conflict, such pairs)}``. It does not
    depend on the model: EM, trained on pairs blocked on the name, counts namesakes as matches
    where a market has many and overstates how often a person's birth date changes.
    """
    left, right = [], []
    # a first name's first three letters: two records of one person agree on it despite most
    # typos, while a family's members do not
    first3 = (
        as_string(prepared["first_lat"]).str.slice(0, 3)
        if "first_lat" in prepared
        else pd.Series(pd.NA, index=prepared.index, dtype="string")
    )
    for col in ("email", "email_2", "phone", "phone_2", "national_id"):
        if col not in prepared:
            continue
        v = as_string(prepared[col])
        has = np.flatnonzero(v.notna().to_numpy())
        if len(has) == 0:
            continue
        codes = pd.factorize(v.iloc[has])[0]
        size = np.bincount(codes)
        # an identifier several first names use is a family's (a household phone): two of its
        # records with one name may still be two relatives (siblings named alike), so it gives
        # no silver pair; a few such families must not switch a constraint off for everyone
        names = pd.Series(first3.iloc[has].to_numpy()).groupby(codes).nunique()
        one_name = names.reindex(range(len(size)), fill_value=0).to_numpy() <= 1
        keep = (size[codes] >= 2) & (size[codes] <= SILVER_MAX_GROUP) & one_name[codes]
        g = pd.DataFrame({"code": codes[keep], "rid": has[keep]})
        # every pair within a group (at most SILVER_MAX_GROUP records): which record comes
        # first must not decide which pairs are seen
        both = g.merge(g, on="code", suffixes=("_l", "_r"))
        both = both[both["rid_l"] < both["rid_r"]]
        left.append(both["rid_l"].to_numpy())
        right.append(both["rid_r"].to_numpy())
    out: dict[str, tuple[float, int]] = {}
    if not left:
        return out
    a, b = np.concatenate(left), np.concatenate(right)
    if len(a) > SILVER_MAX_PAIRS:
        pick = np.random.default_rng(seed).choice(len(a), SILVER_MAX_PAIRS, replace=False)
        a, b = a[pick], b[pick]

    def values(col: str) -> np.ndarray:
        return as_string(prepared[col]).to_numpy(dtype=object, na_value=None)

    first, last = values("first_lat"), values("last_lat")
    same_name = np.fromiter(
        (
            bool(first[i] and first[j] and last[i] and last[j])
            and names_similar(first[i], first[j])
            and names_similar(last[i], last[j])
            for i, j in zip(a, b, strict=True)
        ),
        dtype=bool,
        count=len(a),
    )
    a, b = a[same_name], b[same_name]
    # per field: both records carry a value, and the two values cannot be one person's
    fields = {
        "birth_date": ("birth_date", dates_close),
        "patronymic": ("middle_lat", names_similar),
    }
    present, conflict = {}, {}
    for field, (col, close) in fields.items():
        if col not in prepared:
            continue
        v = (
            fold_dob(prepared[col]).to_numpy(dtype=object, na_value=None)
            if field == "birth_date"
            else values(col)
        )
        present[field] = np.array([bool(v[i] and v[j]) for i, j in zip(a, b, strict=True)], bool)
        conflict[field] = np.array(
            [p and not close(v[i], v[j]) for p, i, j in zip(present[field], a, b, strict=True)],
            dtype=bool,
        )
    for field, both in present.items():
        # a pair that conflicts on the other field is two relatives of one name (a mother and
        # her daughter Olga on one family phone), not evidence of how one person's values vary
        for other, clash in conflict.items():
            if other != field:
                both = both & ~clash
        if both.any():
            out[field] = (float(conflict[field][both].mean()), int(both.sum()))
    return out


def silver_calibration(pairs: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
    """Model probability against silver labels, without any truth: per probability band, the
    pairs scored, their mean predicted probability and, among the pairs whose two records both
    carry an e-mail (or both a phone or a national id; shared ones masked), the share that
    carry the same one.

    Same-identifier pairs are near-certain matches, so that share is a floor of the band's
    real precision (a person with two e-mails counts against it): a band whose predicted
    probability sits far above it is overconfident.
    """
    left, right = pairs["rid_l"].to_numpy(), pairs["rid_r"].to_numpy()
    both = np.zeros(len(pairs), dtype=bool)
    same = np.zeros(len(pairs), dtype=bool)
    for c in ("email", "phone", "national_id"):
        if c not in records:
            continue
        v = as_string(records[c]).to_numpy(dtype=object, na_value=None)
        a, b = v[left], v[right]
        has = (a != None) & (b != None)  # noqa: E711
        same |= has & (a == b)
        both |= has
    band = pd.cut(
        pairs["match_probability"].to_numpy(),
        list(CALIBRATION_BINS),
        right=False,
        include_lowest=True,
    )
    p = pairs["match_probability"].to_numpy(dtype=float)
    frame = pd.DataFrame({"band": band, "p": p, "both": both, "same": same & both})
    out = frame.groupby("band", observed=False).agg(
        pairs=("p", "size"),
        mean_probability=("p", "mean"),
        with_evidence=("both", "sum"),
        same_identifier=("same", "sum"),
    )
    out["silver_share"] = out["same_identifier"] / out["with_evidence"].where(
        out["with_evidence"] > 0
    )
    out.index = [f"{iv.left:g}–{iv.right:g}" for iv in out.index]
    out.index.name = "match probability"
    return out.reset_index()
