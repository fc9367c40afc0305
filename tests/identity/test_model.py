"""The model's calibration helpers: the per-run threshold, bounded levels, silver labels."""

import numpy as np
import pandas as pd
import splink.comparison_library as cl
from splink import SettingsCreator

from cemlib.identity.model import bound_levels, choose_threshold
from cemlib.identity.silver import silver_calibration


def test_threshold_is_the_lowest_that_keeps_the_expected_precision():
    # 90 near-certain pairs and 20 doubtful ones from 0.95 down to 0.905
    p = np.r_[np.full(90, 0.9999), np.linspace(0.95, 0.905, 20)]
    t = choose_threshold(p, precision=0.99, floor=0.9)
    kept = p[p >= t]
    assert kept.mean() >= 0.99 and p[p >= t - 1e-9].size == kept.size
    # one more pair would break 99%: the next lower pair is left out
    lower = np.sort(p[p < t])[::-1]
    assert len(lower) > 0 and np.r_[kept, lower[0]].mean() < 0.99
    assert choose_threshold(np.full(50, 0.9999), floor=0.9) == 0.9999  # all kept
    assert choose_threshold(np.array([0.91, 0.92]), floor=0.9) == 1.0  # none reaches 99%
    assert choose_threshold(np.array([0.2, 0.4]), floor=0.9) == 0.9  # nothing above the floor


def test_bound_levels_keeps_every_weight_within_25():
    settings = SettingsCreator(
        link_type="dedupe_only", comparisons=[cl.ExactMatch("phone"), cl.ExactMatch("email")]
    ).get_settings("duckdb")
    levels = [lvl for c in settings.comparisons for lvl in c.comparison_levels]
    levels = [lvl for lvl in levels if not lvl.is_null_level]
    # what EM leaves behind: an m at the edge of float64, a u of a unique value
    levels[0].m_probability, levels[0].u_probability = 0.99, 1e-12
    levels[1].m_probability, levels[1].u_probability = 1e-21, 0.999
    levels[2].m_probability, levels[2].u_probability = 0.8, 0.01
    levels[3].m_probability, levels[3].u_probability = 0.2, 0.99
    assert bound_levels(settings) == 2
    w = [np.log2(lvl.m_probability / lvl.u_probability) for lvl in levels]
    assert max(abs(x) for x in w) <= 25 + 1e-9
    assert abs(w[1] - np.log2(1e-3 / 0.999)) < 1e-9  # the m floor: -10, not -70
    assert abs(w[2] - np.log2(80)) < 1e-9  # sensible levels untouched


def test_silver_calibration_counts_pairs_sharing_an_identifier():
    records = pd.DataFrame(
        {
            "email": ["a@x.ru", "a@x.ru", "b@x.ru", "c@x.ru", None],
            "phone": [None, None, "9161", "9162", "9163"],
        }
    ).astype("string")
    pairs = pd.DataFrame(
        {
            "rid_l": [0, 2, 3, 0],
            "rid_r": [1, 3, 4, 4],
            "match_probability": [0.9995, 0.995, 0.6, 0.92],
        }
    )
    cal = silver_calibration(pairs, records).set_index("match probability")
    assert cal.loc["0.999–1", ["pairs", "with_evidence", "same_identifier"]].tolist() == [1, 1, 1]
    assert cal.loc["0.99–0.999", "silver_share"] == 0.0  # other e-mail and other phone
    assert cal.loc["0.5–0.8", "with_evidence"] == 1  # both carry a phone
    assert cal.loc["0.9–0.95", "with_evidence"] == 0 and np.isnan(
        cal.loc["0.9–0.95", "silver_share"]
    )
    assert int(cal["pairs"].sum()) == len(pairs)


def test_silver_pairs_measure_how_often_a_persons_birth_date_changes():
    from cemlib.identity.silver import silver_disagreement

    rows = []
    for k in range(40):  # 40 people, each with two records sharing a phone
        dob = f"19{50 + k:02d}-03-1{k % 10}"
        other = dob if k >= 4 else f"19{50 + k:02d}-11-2{k % 10}"  # four replaced dates
        rows += [
            (f"ivan{k}", "petrov", "sergeevich", dob, f"9{k:09d}"),
            (f"ivan{k}", "petrov", "sergeevic" if k % 2 else None, other, f"9{k:09d}"),
        ]
    cols = ["first_lat", "last_lat", "middle_lat", "birth_date", "phone"]
    p = pd.DataFrame(rows, columns=cols).astype("string")
    got = silver_disagreement(p)
    assert got["birth_date"] == (4 / 40, 40)
    # a typo is no disagreement; the two pairs with replaced dates do not count (relatives?)
    assert got["patronymic"] == (0.0, 18)
    # Olga on ivan0's phone makes it a family's: its pair (one of the replaced dates) goes
    p = pd.concat(
        [p, pd.DataFrame([("olga", "petrova", None, "1990-01-01", "9000000000")], columns=cols)]
    ).astype("string")
    assert silver_disagreement(p)["birth_date"] == (3 / 39, 39)


def test_siblings_named_alike_on_a_family_phone_leave_the_birth_date_constraint_on():
    """A clinic's families: mother, father and two children of one first and last name on the
    family phone; 5% of such families had made the birth date look replaced for everyone."""
    from cemlib.identity import IdentityResolver
    from cemlib.identity.resolve import wilson_lower
    from cemlib.identity.silver import silver_disagreement

    rows = []
    for k in range(300):  # people with two records on their own phone, one date a typo apart
        rows += [(f"anna{k}", f"ivanova{k}", "petrovna", "1980-05-12", f"8{k:09d}"),
                 (f"anna{k}", f"ivanova{k}", "petrovna", "1980-05-21", f"8{k:09d}")]  # fmt: skip
    for k in range(40):  # families: two Natalia Volkova born years apart, and the parents
        phone = f"7{k:09d}"
        rows += [(f"natalia{k}", f"volkova{k}", "sergeevna", "2008-07-02", phone),
                 (f"natalia{k}", f"volkova{k}", "sergeevna", "2018-11-20", phone),
                 ("svetlana", f"volkova{k}", "ivanovna", "1982-01-01", phone),
                 ("sergei", f"volkov{k}", "petrovich", "1980-02-02", phone)]  # fmt: skip
    cols = ["first_lat", "last_lat", "middle_lat", "birth_date", "phone"]
    p = pd.DataFrame(rows, columns=cols).astype("string")
    rate, n = silver_disagreement(p)["birth_date"]
    assert (rate, n) == (0.0, 300)  # the family phones give no silver pair
    # the tolerance is passed only when the interval's lower end is past it
    assert wilson_lower(10 / 325, 325) < 0.03 < wilson_lower(70 / 646, 646)
    assert IdentityResolver().constraint_tolerance == 0.03


def test_records_with_nothing_but_a_name_are_not_collapsed_into_one():
    from cemlib.identity import resolve

    df = pd.DataFrame(
        {
            "id": [f"t{i}" for i in range(6)],
            "name": ["Ольга"] * 4 + ["Иван", "Иван"],
            "tel": [None] * 4 + ["+7 916 123-45-67", "+7 916 123-45-67"],
        }
    )
    out = resolve(df, {"name": "first_name", "tel": "phone"}, id_column="id", use_model=False)
    # four receipts signed "Ольга" are four profiles; a shared phone still links
    assert out["profile_id"].iloc[:4].nunique() == 4
    assert out["profile_id"].nunique() == 5


def test_the_birth_year_hint_is_the_one_plausible_year_of_an_emails_local_part():
    from cemlib.identity.comparisons import email_year

    emails = pd.Series(
        [
            "ivanova1953@mail.ru",
            "x_1988_y@z.ru",
            "petrov19848431@yandex.ru",  # a year inside a longer number is no year
            "olga2015x1990@a.ru",  # two years: which is the birth year cannot be told
            "ivan.ivanov@2001.ru",  # the domain is not the person's
            "olga1850@mail.ru",
            None,
        ]
    )
    assert email_year(emails).tolist() == ["1953", "1988", pd.NA, pd.NA, pd.NA, pd.NA, pd.NA]


def test_two_digits_closing_an_emails_local_part_are_a_weaker_year_hint():
    from cemlib.identity.comparisons import email_year

    emails = pd.Series(
        [
            "n.popova58@bk.ru",
            "olga25@mail.ru",  # a hint all the same: the model learns how often it is the year
            "sergeikot431@inbox.ru",  # three digits: no year
            "ivanov1978x58@mail.ru",  # a four-digit year wins
            "a58b@x.ru",  # not closing the local part
            "olga.sokolova@mail.ru",
        ]
    )
    assert email_year(emails).tolist() == ["58", "25", pd.NA, "1978", pd.NA, pd.NA]


def test_silver_pairs_of_one_birth_date_measure_how_often_a_persons_first_name_changes():
    """Pairs on an identifier that records of one birth date carry, under one surname and
    birth date: a diminutive, a Latin spelling or a typo is no change, another first name is;
    twins on their mother's phone (a family's: several birth dates) give no pair."""
    from cemlib.identity.silver import silver_disagreement

    cols = ["first_name", "first_lat", "last_lat", "middle_lat", "birth_date", "phone"]
    rows = []
    for k in range(40):  # people with two records on their own phone
        phone, dob = f"9{k:09d}", f"19{50 + k:02d}-03-1{k % 10}"
        second = [("саша", "aleksandr"), ("alexander", "aleksandr"), ("алксандр", "alksandr")][
            k % 3
        ]
        if k < 2:  # two whose second record carries another first name
            second = ("пётр", "petr")
        rows += [("александр", "aleksandr", f"panov{k}", "dmitrievich", dob, phone),
                 (*second, f"panov{k}", "dmitrievich", dob, phone)]  # fmt: skip
    for k in range(20):  # twins on their mother's phone
        phone = f"8{k:09d}"
        rows += [("андрей", "andrei", f"sidorov{k}", "ivanovich", "2020-07-22", phone),
                 ("тимур", "timur", f"sidorov{k}", "ivanovich", "2020-07-22", phone),
                 ("анна", "anna", f"sidorova{k}", "petrovna", "1990-01-01", phone)]  # fmt: skip
    p = pd.DataFrame(rows, columns=cols).astype("string")
    assert silver_disagreement(p)["first_name"] == (2 / 40, 40)
    # the same twins on a phone of their own (no one else's birth date on it) are counted
    alone = p[p["first_lat"] != "anna"]
    assert silver_disagreement(alone)["first_name"] == (22 / 60, 60)
