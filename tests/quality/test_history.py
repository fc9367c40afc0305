"""``start: auto``: each table's history start read from its own monthly counts (trial 4, H1: a
fixed 2022-01-01 quarantined 22% of a telecom CRM whose subscribers registered in 2020-21)."""

from __future__ import annotations

import pandas as pd
import pytest

from cemlib.errors import InputError
from cemlib.quality.history import auto_starts, history_start
from cemlib.quality.suites import RunParams, load_suites


def _monthly(counts: dict[str, int]) -> pd.Series:
    return pd.Series(counts).rename(index=pd.Timestamp)


def test_history_starts_at_the_first_month_of_steady_activity():
    busy = {str(m.date()): 400 for m in pd.date_range("2022-01-01", "2025-06-01", freq="MS")}
    quiet_start = {str(m.date()): 30 for m in pd.date_range("2020-01-01", "2021-12-01", freq="MS")}
    defects = {"1900-01-01": 5, "1970-01-01": 3, "2012-05-01": 1, "2018-03-01": 1}
    # scattered placeholders and typos decades back are not history; a quieter past is
    assert history_start(_monthly({**busy, **quiet_start, **defects})) == pd.Timestamp("2020-01-01")
    assert history_start(_monthly({**busy, **defects})) == pd.Timestamp("2022-01-01")
    # an off season of up to 12 empty months does not end the history; 13 do
    gap12 = {**busy, "2020-12-01": 400}
    assert history_start(_monthly(gap12)) == pd.Timestamp("2020-12-01")
    gap13 = {**busy, "2020-11-01": 400}
    assert history_start(_monthly(gap13)) == pd.Timestamp("2022-01-01")
    # a small table: every month with a row is active, and the gap alone parts the placeholder
    small = {"1970-01-01": 1, "2024-01-01": 1, "2024-02-01": 2, "2024-03-01": 1}
    assert history_start(_monthly(small)) == pd.Timestamp("2024-01-01")
    assert history_start(pd.Series(dtype="int64")) is None


def test_auto_start_is_per_table_and_a_given_day_serves_every_table(tmp_path):
    import duckdb

    con = duckdb.connect()
    con.execute("CREATE SCHEMA staging")
    con.execute(
        "CREATE TABLE staging.crm_contacts AS SELECT TIMESTAMP '2019-03-01' "
        "+ INTERVAL (i) DAY AS registered_at FROM range(2300) t(i)"
    )  # every day from 2019-03-01 on
    con.execute(
        "INSERT INTO staging.crm_contacts VALUES (TIMESTAMP '1900-01-01'), (TIMESTAMP '2030-01-01')"
    )
    suites = load_suites()
    starts = auto_starts("auto", con, suites, ["crm_contacts"], "2025-06-30")
    assert starts == {"crm_contacts": pd.Timestamp("2019-03-01")}
    params = RunParams(as_of="2025-06-30", starts=starts)
    assert params.resolve("start", "crm_contacts") == pd.Timestamp("2019-03-01")
    check = next(c for c in suites["pos_receipts"].checks if c.kwargs.get("min_value") == "{start}")
    assert check.resolved_kwargs(params, "pos_receipts") is None  # no history read: no bound
    assert auto_starts("2022-01-01", con, suites, ["crm_contacts"], "2025-06-30") == {}
    given = RunParams(as_of="2025-06-30", start="2022-01-01")
    assert given.resolve("start", "pos_receipts") == pd.Timestamp("2022-01-01")
    with pytest.raises(InputError, match="start must be 'auto' or a date"):
        auto_starts("last year", con, suites, ["crm_contacts"], "2025-06-30")


def test_the_opening_weeks_before_a_busy_history_are_part_of_it():
    # trial 11 L3: a telecom's payments began late in January 2021 (17 rows) before ~4,000 a
    # month; the 17 were quarantined as "dated before the business began"
    busy = {str(m.date()): 4000 for m in pd.date_range("2021-02-01", "2025-06-01", freq="MS")}
    opening = {"2021-01-01": 17}
    assert history_start(_monthly({**busy, **opening})) == pd.Timestamp("2021-01-01")
    # a ramp over two months, and a placeholder with a month of no rows between: not reached
    ramp = {**busy, "2020-12-01": 3, **opening, "2020-10-01": 2}
    assert history_start(_monthly(ramp)) == pd.Timestamp("2020-12-01")
    # a month before the history busier than the one after it is not an opening: a typo burst
    burst = {**busy, "2021-01-01": 17, "2020-12-01": 30}
    assert history_start(_monthly(burst)) == pd.Timestamp("2021-01-01")
