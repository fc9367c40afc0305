"""The Splink comparisons and blocking rules of the model, built from the roles present.

First and last name compare on the Latin transliteration key (Cyrillic and Latin spellings
meet) with term-frequency adjustment for common names, and a level for swapped first/last
name; patronymic; birth date with a day/month-swap level; city, address, postcode and the
strong identifiers. Blocking starts from plain name and identifier rules and replaces a name
rule that would generate more than a budget of candidate pairs by tighter ones
(:func:`build_blocking`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import block_on


def _name(col: str, label: str, other: str | None) -> cl.CustomComparison:
    levels = [
        cll.NullLevel(col),
        cll.ExactMatchLevel(col).configure(tf_adjustment_column=col),
    ]
    if other is not None:
        levels.append(
            cll.CustomLevel(
                f'"{col}_l" = "{other}_r" AND "{other}_l" = "{col}_r"',
                label_for_charts="first and last name swapped",
            )
        )
    levels += [
        cll.JaroWinklerLevel(col, 0.92),
        cll.JaroWinklerLevel(col, 0.8),
        cll.ElseLevel(),
    ]
    return cl.CustomComparison(levels, output_column_name=label)


def _birth_date() -> cl.CustomComparison:
    c = "birth_date"
    return cl.CustomComparison(
        [
            cll.NullLevel(c),
            cll.ExactMatchLevel(c),
            cll.CustomLevel(
                f'substr("{c}_l", 1, 4) = substr("{c}_r", 1, 4) AND '
                f'substr("{c}_l", 6, 2) = substr("{c}_r", 9, 2) AND '
                f'substr("{c}_l", 9, 2) = substr("{c}_r", 6, 2)',
                label_for_charts="day and month swapped",
            ),
            cll.LevenshteinLevel(c, 1),
            cll.LevenshteinLevel(c, 2),
            cll.ElseLevel(),
        ],
        output_column_name="birth_date",
    )


#: a four-digit year in an e-mail's local part that can be a birth year (ivanova1953@...)
EMAIL_YEAR_PATTERN = r"(?<!\d)((?:19[3-9]|20[01])\d)(?!\d)"
#: two digits closing an e-mail's local part (n.popova58@...): often the birth year's last two,
#: often not (olga25@...); the model learns how often from the data
EMAIL_YY_PATTERN = r"(?<![\d])(\d{2})$"


def email_year(email: pd.Series) -> pd.Series:
    """The birth-year hint of each e-mail: the one plausible four-digit year of its local part,
    else the two digits that close it (``"58"``); None when there is none or more than one
    four-digit year. Each distinct e-mail is read once."""
    codes, uniques = pd.factorize(email)
    local = pd.Series(uniques, dtype="string").str.split("@").str[0]
    found = local.str.extractall(EMAIL_YEAR_PATTERN)[0]
    one = found.groupby(level=0).agg(["first", "size"])
    years = pd.Series(pd.NA, index=local.index, dtype="string")
    keep = one["size"] == 1
    years.loc[one.index[keep]] = one.loc[keep, "first"].to_numpy()
    yy = local.str.extract(EMAIL_YY_PATTERN)[0].astype("string")
    no_year = ~local.index.isin(one.index)
    years = years.mask(no_year & yy.notna(), yy)
    values = np.append(years.to_numpy(dtype=object), pd.NA)  # code -1 (no e-mail) -> NA
    return pd.Series(values[codes], index=email.index, dtype="string")


def _email_year() -> cl.CustomComparison:
    """A year in one record's e-mail against the other record's birth year, where only the
    other record has a birth date (two birth dates compare in ``birth_date`` already): a
    four-digit year, or the two digits closing the e-mail against the year's last two (weaker
    evidence: the model's ``m`` and ``u`` of its own levels say how much)."""

    def side(a: str, b: str) -> str:
        return f'"email_year_{a}" IS NOT NULL AND "birth_date_{a}" IS NULL AND "birth_date_{b}" IS NOT NULL'

    def either(cond: str) -> str:
        left = cond.format(a="l", b="r")
        right = cond.format(a="r", b="l")
        return f"(({side('l', 'r')}) AND {left}) OR (({side('r', 'l')}) AND {right})"

    four = 'length("email_year_{a}") = 4'
    two = 'length("email_year_{a}") = 2'
    return cl.CustomComparison(
        [
            cll.CustomLevel(
                f"NOT (({side('l', 'r')}) OR ({side('r', 'l')}))", "nothing to compare"
            ).configure(is_null_level=True),
            cll.CustomLevel(
                either(four + ' AND "email_year_{a}" = substr("birth_date_{b}", 1, 4)'),
                "the year in the e-mail is the other's birth year",
            ),
            cll.CustomLevel(
                either(two + ' AND "email_year_{a}" = substr("birth_date_{b}", 3, 2)'),
                "the two digits closing the e-mail end the other's birth year",
            ),
            cll.CustomLevel(either(two), "the two digits closing the e-mail are another year's"),
            cll.ElseLevel(),
        ],
        output_column_name="email_year",
    )


def build_comparisons(columns: list[str]) -> list:
    """Splink comparisons for the prepared columns that carry data."""
    present = set(columns)
    comps = []
    if "first_lat" in present:
        comps.append(
            _name("first_lat", "first_name", "last_lat" if "last_lat" in present else None)
        )
    if "last_lat" in present:
        comps.append(
            _name("last_lat", "last_name", "first_lat" if "first_lat" in present else None)
        )
    if "middle_lat" in present:
        comps.append(
            cl.CustomComparison(
                [
                    cll.NullLevel("middle_lat"),
                    # Владимирович is as common as Иван: agreeing on it is weak evidence
                    cll.ExactMatchLevel("middle_lat").configure(tf_adjustment_column="middle_lat"),
                    cll.JaroWinklerLevel("middle_lat", 0.88),
                    cll.ElseLevel(),
                ],
                output_column_name="patronymic",
            )
        )
    if "birth_date" in present:
        comps.append(_birth_date())
        if "email_year" in present:
            comps.append(_email_year())
    if "city" in present:
        comps.append(cl.ExactMatch("city").configure(term_frequency_adjustments=True))
    if "address" in present:
        comps.append(cl.JaroWinklerAtThresholds("address", [0.95, 0.8]))
    if "street_number" in present:
        comps.append(cl.ExactMatch("street_number"))
    if "postcode" in present:
        comps.append(cl.LevenshteinAtThresholds("postcode", [1]))
    if "region" in present:
        comps.append(cl.ExactMatch("region"))
    for col in ("phone", "email", "loyalty_card", "device_id"):
        if col in present:
            comps.append(cl.ExactMatch(col))
    if "national_id" in present:
        comps.append(cl.LevenshteinAtThresholds("national_id", [1, 2]))
    return comps


def block_pairs(frame: pd.DataFrame, cols: tuple[str, ...]) -> float:
    """Candidate pairs an exact-equality blocking rule on ``cols`` generates in ``frame``."""
    n = frame.groupby(list(cols), dropna=True, sort=False).size().to_numpy(dtype=float)
    return float((n * (n - 1) / 2).sum())


def build_blocking(columns: list[str], frame: pd.DataFrame | None = None, budget: float = 5e6):
    """Blocking rules that generate candidate pairs: names, birth date, identifiers, place.

    The name rules (first + last name, last name + birth date, first name + birth date) are
    used as they are while each generates at most ``budget`` candidate pairs in ``frame``.
    Past that (Иван Иванов in a big market: 76 million pairs at a million people), a rule is
    replaced by tighter ones with a second anchor, whose pairs grow about linearly: same name
    and birth year or city (a birth date missing or mistyped); same surname and birth date
    with the same initial (a first-name typo); same first name and birth date with the same
    patronymic (a married name) or, without patronymics, the same surname initial. Swapped
    first/last names, place, address and identifier rules are always used.
    """
    p = set(columns)
    rules: list = []

    def add(*cols: str) -> None:
        if set(cols) <= p:
            rules.append(block_on(*cols))

    def loose(*cols: str) -> bool:
        """The plain rule fits the budget (or there is no frame to count on)."""
        return frame is None or block_pairs(frame, cols) <= budget

    def with_initial(same: str, initial: str) -> str:
        """``same`` and the birth date equal, and the first letter of ``initial``."""
        return (
            f"l.{same} = r.{same} AND l.birth_date = r.birth_date"
            f" AND substr(l.{initial}, 1, 1) = substr(r.{initial}, 1, 1)"
        )

    if {"first_lat", "last_lat"} <= p:
        if loose("first_lat", "last_lat") or not {"birth_date", "city"} & p:
            add("first_lat", "last_lat")
        else:
            if "birth_date" in p:
                rules.append(
                    "l.first_lat = r.first_lat AND l.last_lat = r.last_lat"
                    " AND substr(l.birth_date, 1, 4) = substr(r.birth_date, 1, 4)"
                )
            add("first_lat", "last_lat", "city")
    if {"last_lat", "birth_date"} <= p:
        if loose("last_lat", "birth_date") or "first_lat" not in p:
            add("last_lat", "birth_date")
        else:
            rules.append(with_initial("last_lat", "first_lat"))
    if {"first_lat", "birth_date"} <= p:
        if loose("first_lat", "birth_date"):
            add("first_lat", "birth_date")
        elif "middle_lat" in p:
            add("first_lat", "birth_date", "middle_lat")
        elif "last_lat" in p:
            rules.append(with_initial("first_lat", "last_lat"))
    if {"first_lat", "last_lat"} <= p:
        rules.append("l.first_lat = r.last_lat AND l.last_lat = r.first_lat")
    add("birth_date", "postcode")
    add("birth_date", "city", "middle_lat")
    add("postcode", "street_number")
    add("address")
    for col in ("phone", "email", "national_id", "loyalty_card", "device_id"):
        add(col)
    if not rules:
        rules = [block_on(c) for c in columns]
    return rules
