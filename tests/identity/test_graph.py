import pandas as pd

from cemlib.identity import ChainGuardClusterer


def prep(rows):
    return pd.DataFrame(rows, columns=["first_lat", "last_lat", "birth_date"]).astype("string")


def test_weak_link_cannot_chain_two_people():
    p = prep(
        [
            ("ivan", "petrov", "1980-01-01"),
            (None, None, None),  # a receipt with a shared card
            ("olga", "petrova", "1982-06-15"),
            ("ivan", "petrov", "1980-01-10"),  # one digit off: the same Ivan
        ]
    )
    links = pd.DataFrame(
        {"rid_l": [0, 1, 0], "rid_r": [1, 2, 3], "score": [1.0, 0.95, 0.97], "guarded": True}
    )
    c = ChainGuardClusterer().fit(p, links)
    assert c.labels_.tolist() == [0, 0, 2, 0]
    assert c.n_refused_ == 1 and c.accepted_.tolist() == [True, False, True]
    # without the guard the birth-date constraint still refuses the chain
    no_guard = ChainGuardClusterer(guard=False).fit(p, links)
    assert no_guard.labels_.tolist() == [0, 0, 2, 0]
    assert no_guard.refused_by_.tolist() == [None, "constraint", None]
    off = ChainGuardClusterer(guard=False, constraints=()).fit(p, links)
    assert off.labels_.tolist() == [0, 0, 0, 0]


def test_strong_unguarded_link_merges_and_swap_is_not_a_conflict():
    p = prep([("ivan", "petrov", "1980-03-07"), ("petrov", "ivan", "1980-07-03")])
    links = pd.DataFrame({"rid_l": [0], "rid_r": [1], "score": [0.5]})
    assert ChainGuardClusterer().fit(p, links).labels_.tolist() == [0, 0]


def prep5(rows):
    cols = ["first_lat", "last_lat", "middle_lat", "birth_date", "phone"]
    return pd.DataFrame(rows, columns=cols).astype("string")


def test_namesakes_with_other_birth_dates_never_share_a_profile_however_strong_the_links():
    # three women named Popova Olga Vladimirovna, each with her own birth date and phone, and
    # a web record of one of them without a birth date: every link is "strong" (unguarded)
    p = prep5(
        [
            ("olga", "popova", "vladimirovna", "1980-01-01", "9161111111"),
            ("olga", "popova", "vladimirovna", "1975-05-20", "9162222222"),
            ("olga", "popova", "vladimirovna", "1991-11-03", "9163333333"),
            ("olga", "popova", None, None, "9161111111"),
            ("olga", "popova", "vladimirovna", "1980-10-01", None),  # day/month swapped: same
        ]
    )
    links = pd.DataFrame(
        {
            "rid_l": [3, 3, 3, 0, 1],
            "rid_r": [0, 1, 2, 4, 4],
            "score": [0.999, 0.998, 0.997, 0.996, 0.995],
            "guarded": False,
        }
    )
    c = ChainGuardClusterer().fit(p, links)
    assert c.labels_.tolist() == [0, 1, 2, 0, 0]
    assert c.refused_by_.tolist() == [None, "constraint", "constraint", None, "constraint"]
    assert c.n_refused_ == 3
    # a one-digit typo and an adjacent transposition are the same date
    q = prep5(
        [("olga", "popova", None, "1980-01-01", None), ("olga", "popova", None, "1908-01-01", None)]
    )
    one = pd.DataFrame({"rid_l": [0], "rid_r": [1], "score": [0.9], "guarded": False})
    assert ChainGuardClusterer().fit(q, one).labels_.tolist() == [0, 0]


def test_a_day_typo_that_crosses_the_month_in_the_fold_is_still_one_date():
    # 1989-12-19 folds to 1989|12|19, its typo 1989-12-10 to 1989|10|12: one digit apart all
    # the same (issue 12: Лаврентьева Елена Александровна of the independent world, seed 7)
    q = prep5(
        [
            ("elena", "lavrenteva", "aleksandrovna", "1989-12-19", "9699756629"),
            ("elena", "lavrenteva", "aleksandrovna", "1989-12-10", "9315861502"),
            ("elena", "lavrenteva", "aleksandrovna", "1975-03-02", None),  # another woman
        ]
    )
    links = pd.DataFrame(
        {"rid_l": [0, 0], "rid_r": [1, 2], "score": [0.999, 0.998], "guarded": False}
    )
    c = ChainGuardClusterer().fit(q, links)
    assert c.labels_.tolist() == [0, 0, 2]
    assert c.refused_by_.tolist() == [None, "constraint"]


def test_other_patronymic_is_another_person_and_a_name_only_record_bridges_nothing():
    p = prep5(
        [
            ("ivan", "ivanov", "sergeevich", None, "9161111111"),
            ("ivan", "ivanov", "petrovich", None, "9162222222"),
            ("ivan", "ivanov", "sergeevic", None, None),  # a typo of the first patronymic
        ]
    )
    links = pd.DataFrame({"rid_l": [0, 0], "rid_r": [1, 2], "score": [0.99, 0.96]})
    c = ChainGuardClusterer(guard=False).fit(p, links)
    assert c.labels_.tolist() == [0, 1, 0]
    assert c.refused_by_.tolist() == ["constraint", None]
    # two Ivans who may be one (nothing conflicts) and a record with a name and nothing else
    q = prep5(
        [
            ("ivan", "ivanov", None, None, "9161111111"),
            ("ivan", "ivanov", None, None, "9162222222"),
            ("ivan", "ivanov", None, None, None),
        ]
    )
    links = pd.DataFrame({"rid_l": [2, 2], "rid_r": [0, 1], "score": [0.98, 0.97]})
    c = ChainGuardClusterer(guard=False).fit(q, links)
    assert c.labels_.tolist() == [0, 1, 0]
    assert c.refused_by_.tolist() == [None, "bridge"]
    # without the bridge constraint the name-only record joins the two Ivans
    loose = ChainGuardClusterer(guard=False, constraints=("birth_date",)).fit(q, links)
    assert loose.labels_.tolist() == [0, 0, 0]


def prep_names(rows):
    cols = ["first_name", "first_lat", "last_lat", "middle_lat", "birth_date", "phone"]
    return pd.DataFrame(rows, columns=cols).astype("string")


def test_twins_of_one_birth_date_and_phone_stay_two_people_whatever_links_them():
    # Панов Андрей and Панов Тимур Дмитриевичи, born 22.07.2020, on their mother's phone; a
    # second card of Андрей with a typo (Андрнй), and a receipt with only the phone
    p = prep_names(
        [
            ("андрей", "andrei", "panov", "dmitrievich", "2020-07-22", "9161111111"),
            ("тимур", "timur", "panov", "dmitrievich", "2020-07-22", "9161111111"),
            ("андрнй", "andrni", "panov", "dmitrievich", "2020-07-22", "9161111111"),
            (None, None, None, None, None, "9161111111"),
        ]
    )
    # the model's 0.9954 twin link first, then the phone links, strongest first
    links = pd.DataFrame(
        {
            "rid_l": [0, 0, 1, 3, 3],
            "rid_r": [1, 2, 2, 0, 1],
            "score": [0.9954, 0.995, 0.99, 0.98, 0.98],
            "guarded": False,
        }
    )
    c = ChainGuardClusterer().fit(p, links)
    assert c.labels_.tolist() == [0, 1, 0, 0]  # the typo is Андрей; the receipt joins one twin
    assert c.refused_by_.tolist() == ["constraint", None, "constraint", None, "constraint"]
    # without the first-name constraint the twins were one profile
    off = ChainGuardClusterer(constraints=("birth_date", "patronymic", "bridge")).fit(p, links)
    assert off.labels_.tolist() == [0, 0, 0, 0]


def test_one_persons_diminutive_latin_spelling_and_swapped_names_are_no_conflict():
    # first_lat is the key of roles.prepare_records: Саша and Alexander fold to aleksandr
    p = prep_names(
        [
            ("александр", "aleksandr", "panov", None, "2020-07-22", "9161111111"),
            ("саша", "aleksandr", "panov", None, "2020-07-22", "9161111111"),
            ("alexander", "aleksandr", "panov", None, None, "9161111111"),
            ("панов", "panov", "aleksandr", None, "2020-07-22", None),  # first/last swapped
            ("дарья", "daria", "panova", None, "1950-05-09", "9162222222"),
            ("даяья", "daiaia", "panova", None, "1950-05-09", "9162222222"),  # я for р
            ("д", "d", "panova", None, "1950-05-09", None),  # an initial
        ]
    )
    links = pd.DataFrame(
        {
            "rid_l": [0, 0, 0, 4, 4],
            "rid_r": [1, 2, 3, 5, 6],
            "score": [0.999, 0.998, 0.997, 0.996, 0.995],
        }
    )
    c = ChainGuardClusterer().fit(p, links)
    assert c.labels_.tolist() == [0, 0, 0, 0, 4, 4, 4]
    assert c.n_refused_ == 0


def test_two_typos_of_one_first_name_join_through_the_name_between_them():
    # trial 11 M5: Радим, Родим and Рааим Феликсович Дементьев, one birth date and phone: Родим
    # and Рааим are two letters apart, each one letter from Радим; a twin's name is not
    p = prep_names(
        [
            ("радим", "radim", "dementev", "feliksovich", "1959-07-17", "9572638533"),
            ("родим", "rodim", "dementev", "feliksovich", "1959-07-17", "9572638533"),
            ("рааим", "raaim", "dementev", "feliksovich", "1959-07-17", "9572638533"),
            ("тимур", "timur", "dementev", "feliksovich", "1959-07-17", "9572638533"),
        ]
    )
    # the link of the two typos comes first: refused on its own, then Радим joins both
    links = pd.DataFrame(
        {"rid_l": [1, 0, 0, 3], "rid_r": [2, 1, 2, 1], "score": [0.999, 0.998, 0.997, 0.996]}
    )
    c = ChainGuardClusterer().fit(p, links)
    assert c.labels_.tolist() == [0, 0, 0, 3]
    assert c.refused_by_.tolist() == ["constraint", None, None, "constraint"]
    # without Радим the two typos stay apart
    alone = ChainGuardClusterer().fit(p.iloc[[1, 2]].reset_index(drop=True),
                                      pd.DataFrame({"rid_l": [0], "rid_r": [1], "score": [0.99]}))  # fmt: skip
    assert alone.labels_.tolist() == [0, 1]


def test_two_slips_of_one_birth_date_join_through_the_date_between_them():
    # issue 12, independent world seed 2026: one man's CRM cards hold his birth date and two
    # different slips of it (the year's digit, the day's digit): the slips are two digits
    # apart, each one from the true date; all three cards share his phone and full name
    q = prep5(
        [
            ("andrei", "mikhailov", "mikhailovich", "2000-12-18", "9069428882"),
            ("andrei", "mikhailov", "mikhailovich", "2002-12-18", "9069428882"),
            ("andrei", "mikhailov", "mikhailovich", "2002-12-12", "9069428882"),
        ]
    )
    links = pd.DataFrame(
        {"rid_l": [0, 0, 1], "rid_r": [1, 2, 2], "score": [0.9985, 0.9985, 0.9985]}
    )
    c = ChainGuardClusterer().fit(q, links)
    assert c.labels_.tolist() == [0, 0, 0]
    assert c.refused_by_.tolist() == [None, None, None]
    # without the card holding the date between them, the two slips are two people
    two = q.iloc[[0, 2]].reset_index(drop=True)
    one = pd.DataFrame({"rid_l": [0], "rid_r": [1], "score": [0.9985]})
    apart = ChainGuardClusterer().fit(two, one)
    assert apart.labels_.tolist() == [0, 1] and apart.refused_by_.tolist() == ["constraint"]
    # nor does a third date that is not one slip from both (another year altogether)
    other = prep5(
        [
            ("andrei", "mikhailov", "mikhailovich", "2000-12-18", "9069428882"),
            ("andrei", "mikhailov", "mikhailovich", "2000-12-19", "9069428882"),
            ("andrei", "mikhailov", "mikhailovich", "2002-12-12", "9069428882"),
        ]
    )
    c = ChainGuardClusterer().fit(other, links)
    assert c.labels_.tolist() == [0, 0, 2]
    assert c.refused_by_.tolist() == [None, "constraint", "constraint"]


def test_two_national_ids_beyond_a_typo_are_two_people_even_through_a_third_record():
    # issue 12, FEBRL4: Lachlan Nguyen rec-760 and rec-3951 share a name and a postcode, not
    # their national ids (4360586, 8311385). One person's ids typed with a typo are one or two
    # edits apart; another person's are further
    cols = ["first_lat", "last_lat", "birth_date", "national_id"]
    p = pd.DataFrame(
        [
            ("lachlan", "nguyen", None, "4360586"),
            ("lachlan", "nguyen", None, "4360856"),  # the same id, two digits swapped
            ("lachlan", "nguyen", None, "4306586"),  # and another typo of it: 2 from the swap
            ("lachlan", "nguyen", "1966-09-26", None),  # no id: the model links it to both
            ("lachlan", "nguyen", None, "8311385"),  # the other Lachlan
        ],
        columns=cols,
    ).astype("string")
    links = pd.DataFrame(
        {"rid_l": [0, 0, 1, 3], "rid_r": [1, 2, 3, 4], "score": [0.97, 0.96, 0.95, 0.94]}
    )
    c = ChainGuardClusterer().fit(p, links)
    assert c.labels_.tolist() == [0, 0, 0, 0, 4]
    # the direct link is refused, and so is the chain through the record without an id
    assert c.refused_by_.tolist() == [None, None, None, "constraint"]
    direct = pd.DataFrame({"rid_l": [0], "rid_r": [4], "score": [0.906]})
    assert ChainGuardClusterer().fit(p, direct).refused_by_.tolist() == ["constraint"]
    # without the constraint the two Lachlans are one profile
    off = ChainGuardClusterer(constraints=("birth_date", "patronymic", "first_name", "bridge"))
    assert off.fit(p, links).labels_.tolist() == [0, 0, 0, 0, 0]


def test_ids_differ_counts_typos_not_digits():
    from cemlib.identity.graph import ids_differ

    assert not ids_differ("4360586", "4360586")
    assert not ids_differ("4360586", "4360856")  # adjacent swap: 1
    assert not ids_differ("4360586", "436058")  # dropped digit: 1
    assert not ids_differ("4360586", "4306856")  # two swaps: 2
    assert ids_differ("4360586", "4036856")  # three edits
    assert ids_differ("4360586", "8311385")
