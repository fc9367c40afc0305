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
    off = ChainGuardClusterer(guard=False).fit(p, links)
    assert off.labels_.tolist() == [0, 0, 0, 0]


def test_strong_unguarded_link_merges_and_swap_is_not_a_conflict():
    p = prep([("ivan", "petrov", "1980-03-07"), ("petrov", "ivan", "1980-07-03")])
    links = pd.DataFrame({"rid_l": [0], "rid_r": [1], "score": [0.5]})
    assert ChainGuardClusterer().fit(p, links).labels_.tolist() == [0, 0]
