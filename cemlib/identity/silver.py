"""Silver labels: what record pairs that share a personal identifier say, without any truth.

Records carrying the same phone, e-mail or national id and the same names up to a typo are
almost always one person. Their pairs measure how often one person's birth date or
patronymic differs (:func:`silver_disagreement`, which decides the cluster constraints) and
whether the model's probabilities are right (:func:`silver_calibration`). How often one
person's first name differs is measured on the pairs that share an identifier, a surname and
a birth date instead (the name cannot select the pairs that measure it).
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
    left, right, fam_left, fam_right = [], [], [], []
    # a first name's first three letters: two records of one person agree on it despite most
    # typos, while a family's members do not
    first3 = (
        as_string(prepared["first_lat"]).str.slice(0, 3)
        if "first_lat" in prepared
        else pd.Series(pd.NA, index=prepared.index, dtype="string")
    )
    dob = (
        fold_dob(prepared["birth_date"]).astype("string")
        if "birth_date" in prepared
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
        # and one that records of several birth dates carry is a family's too (a parent's phone
        # on the children's cards): twins on it are two people of one birth date and surname,
        # so it gives no pair measuring how often one person's first name differs
        dates = pd.Series(dob.iloc[has].to_numpy()).groupby(codes).nunique()
        one_date = dates.reindex(range(len(size)), fill_value=0).to_numpy() <= 1
        sized = (size[codes] >= 2) & (size[codes] <= SILVER_MAX_GROUP)
        for keep, lo, hi in (
            (sized & one_name[codes], left, right),
            (sized & one_date[codes], fam_left, fam_right),
        ):
            g = pd.DataFrame({"code": codes[keep], "rid": has[keep]})
            # every pair within a group (at most SILVER_MAX_GROUP records): which record comes
            # first must not decide which pairs are seen
            both = g.merge(g, on="code", suffixes=("_l", "_r"))
            both = both[both["rid_l"] < both["rid_r"]]
            lo.append(both["rid_l"].to_numpy())
            hi.append(both["rid_r"].to_numpy())
    out: dict[str, tuple[float, int]] = {}
    if not left:
        return out

    def values(col: str) -> np.ndarray:
        return as_string(prepared[col]).to_numpy(dtype=object, na_value=None)

    first_name = _first_name_disagreement(prepared, fam_left, fam_right, values, seed)
    if first_name is not None:
        out["first_name"] = first_name
    a, b = np.concatenate(left), np.concatenate(right)
    if len(a) > SILVER_MAX_PAIRS:
        pick = np.random.default_rng(seed).choice(len(a), SILVER_MAX_PAIRS, replace=False)
        a, b = a[pick], b[pick]

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


def one_edit(a: str | None, b: str | None) -> bool:
    """``a`` and ``b`` differ by at most one letter replaced, added, dropped, or two adjacent
    letters swapped."""
    if not (a and b):
        return False
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [k for k in range(len(a)) if a[k] != b[k]]
        if len(diff) == 1:
            return True
        k = diff[0]
        return len(diff) == 2 and diff[1] == k + 1 and a[k] == b[k + 1] and a[k + 1] == b[k]
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    k = next((k for k in range(len(short)) if short[k] != long_[k]), len(short))
    return short[k:] == long_[k + 1 :]


def first_names_clash(a: tuple, b: tuple) -> bool:
    """Two records' ``(first name key, last name key, first name as typed)`` (keys in Latin,
    diminutives folded; the typed one cleaned) whose first names cannot be one person's: they
    differ beyond a typo (on the key, or one letter as typed: Дарья/Даяья, whose keys a
    transliterated я stretches apart), are not the same name in two scripts or a known
    diminutive (one key), an initial of the other, or a first/last name swap."""
    fa, la = a[0], a[1]
    fb, lb = b[0], b[1]
    if not (fa and fb) or names_similar(fa, fb):
        return False
    if min(len(fa), len(fb)) == 1 and fa[0] == fb[0]:  # an initial: А. and Александр
        return False
    if len(a) > 2 and len(b) > 2 and one_edit(a[2], b[2]):
        return False
    return not ((la and fa == lb) or (lb and fb == la))


def _first_name_disagreement(prepared, left, right, values, seed) -> tuple[float, int] | None:
    """(share of pairs whose first names clash, pairs) among the record pairs that share a
    phone, e-mail or national id that records of one birth date only carry (a family's, which
    several birth dates carry, left out: the name cannot pick the pairs that measure it), a
    surname up to a typo and a full birth date up to a typo, and whose patronymics (where both
    are known) do not conflict. Those are one person's records but for twins with an identifier
    of their own, which count against the constraint. (No gender filter: the gender of a record
    without a typed one is read from its first name, the value measured.)"""
    if not left or "first_lat" not in prepared or "birth_date" not in prepared:
        return None
    a, b = np.concatenate(left), np.concatenate(right)
    if len(a) == 0:
        return None
    if len(a) > SILVER_MAX_PAIRS:
        pick = np.random.default_rng(seed).choice(len(a), SILVER_MAX_PAIRS, replace=False)
        a, b = a[pick], b[pick]
    first, last = values("first_lat"), values("last_lat")
    typed = values("first_name") if "first_name" in prepared else np.full(len(prepared), None)
    dob = fold_dob(prepared["birth_date"]).to_numpy(dtype=object, na_value=None)
    middle = values("middle_lat") if "middle_lat" in prepared else np.full(len(prepared), None)
    n = clash = 0
    for i, j in zip(a.tolist(), b.tolist(), strict=True):
        if not (first[i] and first[j] and last[i] and last[j] and dob[i] and dob[j]):
            continue
        if not names_similar(last[i], last[j]) or not dates_close(dob[i], dob[j]):
            continue
        if middle[i] and middle[j] and not names_similar(middle[i], middle[j]):
            continue
        n += 1
        clash += first_names_clash((first[i], last[i], typed[i]), (first[j], last[j], typed[j]))
    return (clash / n, n) if n else None


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
