"""Birth dates as identity compares them: folded so a day/month swap is one date, and equal up
to a typo (one digit, two adjacent digits swapped, a day a few days off)."""

from __future__ import annotations

import pandas as pd


def fold_dob(series: pd.Series) -> pd.Series:
    """Birth date folded so a day/month swap gives the same key: ``YYYY|lo|hi``."""
    s = series.astype("string")
    y, m, d = s.str[:4], s.str[5:7], s.str[8:10]
    lo = m.where(m <= d, d)
    hi = d.where(m <= d, m)
    return (y + "|" + lo + "|" + hi).astype("string")


DAYS_CLOSE = 3  # a day of the month off by this much is a slip (a date picker, a time zone)


def _days_close(a: str, b: str) -> bool:
    """Folded ``YYYY|lo|hi`` dates of one year and one month whose day differs by a few."""
    pa, pb = a.split("|"), b.split("|")
    if len(pa) != 3 or len(pb) != 3 or pa[0] != pb[0]:
        return False
    try:
        (la, ha), (lb, hb) = map(int, pa[1:]), map(int, pb[1:])
    except ValueError:
        return False
    return (la == lb and abs(ha - hb) <= DAYS_CLOSE) or (ha == hb and abs(la - lb) <= DAYS_CLOSE)


def _flip(a: str) -> str:
    """A folded ``YYYY|lo|hi`` date with its two parts the other way round (``YYYY|hi|lo``)."""
    p = a.split("|")
    return f"{p[0]}|{p[2]}|{p[1]}" if len(p) == 3 else a


def dates_close(a: str, b: str) -> bool:
    """Equal up to one digit, one transposition of adjacent digits or a day a few days off
    (on folded dates, so a day/month swap is equal already). A typo can move a day across
    the month in the fold (1989-12-19 is ``1989|12|19``, 1989-12-10 ``1989|10|12``), so the
    other date is compared both ways round."""
    return _close(a, b) or _close(a, _flip(b))


def _close(a: str, b: str) -> bool:
    if a == b:
        return True
    if len(a) != len(b):
        return False
    diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
    if len(diff) <= 1:
        return True
    i, j = diff[0], diff[-1]
    if len(diff) == 2 and j == i + 1 and a[i] == b[j] and a[j] == b[i]:
        return True
    return _days_close(a, b)


def greedy_groups(values: list, same) -> list[int]:
    """Greedy grouping of ``values``: each joins the first group whose first value it is
    ``same`` as (equal up to a typo), else starts a group; the group index per value."""
    reps: list = []
    out = []
    for v in values:
        for i, r in enumerate(reps):
            if same(v, r):
                out.append(i)
                break
        else:
            reps.append(v)
            out.append(len(reps) - 1)
    return out


def date_groups(dates: list[str]) -> list[int]:
    """Greedy grouping of folded birth dates equal up to a typo (:func:`dates_close`); group
    index per date."""
    return greedy_groups(dates, dates_close)
