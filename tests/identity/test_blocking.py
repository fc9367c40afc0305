import pandas as pd

from cemlib.identity.comparisons import block_pairs, build_blocking

COLS = ["first_lat", "last_lat", "middle_lat", "birth_date", "city"]


def _frame(n_same_name: int) -> pd.DataFrame:
    """``n_same_name`` records of one common name (different birth dates and cities) plus a
    few others."""
    rows = [
        {
            "first_lat": "ivan",
            "last_lat": "ivanov",
            "middle_lat": "petrovich",
            "birth_date": f"19{50 + i % 40}-01-{1 + i % 28:02d}",
            "city": ["moskva", "tver", "omsk"][i % 3],
        }
        for i in range(n_same_name)
    ]
    rows += [
        {
            "first_lat": "anna",
            "last_lat": "orlova",
            "middle_lat": None,
            "birth_date": "1990-05-05",
            "city": "perm",
        }
    ] * 2
    return pd.DataFrame(rows)


def _sql(rules) -> list[str]:
    return [
        r if isinstance(r, str) else r.get_blocking_rule("duckdb").blocking_rule_sql for r in rules
    ]


def test_block_pairs_counts_exact_equality_pairs():
    f = _frame(10)
    # 10 Ivans: 45 pairs, 2 Annas: 1 pair
    assert block_pairs(f, ("first_lat", "last_lat")) == 46
    # by name and city: Ivans split 4/3/3 -> 6 + 3 + 3, Annas 1
    assert block_pairs(f, ("first_lat", "last_lat", "city")) == 13


def test_name_rules_tighten_only_past_the_budget():
    f = _frame(60)  # 1,770 Ivan Ivanov pairs
    loose = _sql(build_blocking(COLS, f, budget=10_000))
    tight = _sql(build_blocking(COLS, f, budget=100))
    plain_names = '(l."first_lat" = r."first_lat") AND (l."last_lat" = r."last_lat")'
    assert plain_names in loose
    assert plain_names not in tight
    # the tight set anchors the name pair on birth year and on city instead
    assert any("substr(l.birth_date, 1, 4)" in r for r in tight)
    assert (
        '(l."first_lat" = r."first_lat") AND (l."last_lat" = r."last_lat") AND '
        '(l."city" = r."city")' in tight
    )
    # identifier-free columns: no phone rule; the swapped-name rule is always there
    swapped = "l.first_lat = r.last_lat AND l.last_lat = r.first_lat"
    assert swapped in loose and swapped in tight
    # without a frame to count on, the plain rules are used
    assert plain_names in _sql(build_blocking(COLS))
