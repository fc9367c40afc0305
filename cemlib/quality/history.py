"""When a table's history begins, read from its own dates: the ``{start}`` of the suites.

A timestamp before the business began is a defect (a placeholder such as 1900-01-01, a typed
year 0205, a date shifted by decades), but the day the business began is the user's knowledge,
not cemlib's: a telecom's subscriber base is older than its online shop. With ``start: auto``
(the default) each table's history starts at the first month of its activity, found in the
monthly counts of the column its suite checks against ``{start}``:

* a month is **active** when it holds at least :data:`ACTIVE_SHARE` of a typical busy month
  (the median of the :data:`BUSY_MONTHS` busiest months): in a small table every month with a
  row is;
* walking back from the latest active month (not after ``as_of``), the history goes on while
  the next earlier active month is at most :data:`QUIET_MONTHS` months away;
* the table's start is the first day of the earliest month reached, moved back over the
  opening weeks right before it (consecutive months with rows, each no busier than the month
  after it: a business that opened late in a month). Scattered rows long before
  it (a few a month at most, decades back; a 1970-01-01 placeholder in a small table, more than
  a year before its other rows) are the defects the check holds back; a table without dated rows
  gets no lower bound.

A date given as ``start`` (``2022-01-01``) is used for every table instead.
"""

from __future__ import annotations

import pandas as pd

from cemlib.errors import InputError

ACTIVE_SHARE = 0.01
"""A month with at least this share of a typical busy month's rows is part of the history."""
BUSY_MONTHS = 12
"""How many of the busiest months make the typical busy month (their median)."""
QUIET_MONTHS = 12
"""The longest run of inactive months inside a history (a seasonal business's off season)."""


def is_auto(start) -> bool:
    """Whether ``start`` asks for each table's own history start (``auto``, any case)."""
    return str(start).strip().lower() == "auto"


def history_start(monthly: pd.Series) -> pd.Timestamp | None:
    """The first day of the history of a column whose rows per month are ``monthly`` (indexed
    by the first day of each month that has rows); None when no month is active."""
    counts = monthly[monthly > 0].sort_index()
    if counts.empty:
        return None
    typical = float(counts.nlargest(BUSY_MONTHS).median())
    active = counts.index[(counts >= ACTIVE_SHARE * typical).to_numpy()]
    if len(active) == 0:
        return None
    months = (active.year * 12 + active.month).to_numpy()
    start = len(months) - 1
    while start > 0 and months[start] - months[start - 1] <= QUIET_MONTHS + 1:
        start -= 1
    return _ramp_up(counts, pd.Timestamp(active[start]))


def _ramp_up(counts: pd.Series, first: pd.Timestamp) -> pd.Timestamp:
    """``first`` moved back over the business's opening weeks: the months right before it,
    each with rows and no more than the month after it (a shop opened late in a month, a
    base migrated over a few weeks: 17 payments, then 4,000 a month; trial 11 L3). A month
    with no row ends the walk, so placeholders and typos years back are never reached."""
    by_month = {(m.year * 12 + m.month): int(n) for m, n in counts.items()}
    month = first.year * 12 + first.month
    while by_month.get(month - 1, 0) > 0 and by_month[month - 1] <= by_month[month]:
        month -= 1
    year, index = divmod(month - 1, 12)
    return pd.Timestamp(year=year, month=index + 1, day=1)


def start_columns(suite) -> list[str]:
    """The columns ``suite`` checks against ``{start}`` (``min_value: "{start}"``)."""
    return [
        c.kwargs["column"]
        for c in suite.checks
        if c.kwargs.get("min_value") == "{start}" and "column" in c.kwargs
    ]


def history_starts(con, suites: dict, tables: list[str], as_of) -> dict[str, pd.Timestamp]:
    """``{table: start}`` for ``start: auto``, from the monthly counts of ``staging.<table>``
    read through DuckDB connection ``con`` (the warehouse's, or the lake's views); a table whose
    column has no active month is left out (no lower bound)."""
    end = pd.Timestamp(as_of).normalize() + pd.Timedelta(days=1)
    out: dict[str, pd.Timestamp] = {}
    for table in tables:
        described = con.execute(f'DESCRIBE staging."{table}"').fetchall()
        types = {row[0]: str(row[1]) for row in described}
        for column in start_columns(suites[table]):
            if not types.get(column, "").startswith(("TIMESTAMP", "DATE")):
                continue  # missing or untyped: the suite's own checks say so
            monthly = con.execute(
                f"SELECT date_trunc('month', \"{column}\") AS m, count(*) AS n "
                f'FROM staging."{table}" WHERE "{column}" < ? GROUP BY 1',
                [end.to_pydatetime()],
            ).df()
            start = history_start(
                pd.Series(monthly["n"].to_numpy(), index=pd.to_datetime(monthly["m"]))
            )
            if start is not None:
                out[table] = min(start, out.get(table, start))
    return out


def auto_starts(start, con, suites: dict, tables: list[str], as_of) -> dict[str, pd.Timestamp]:
    """:func:`history_starts` when ``start`` is ``auto``, else ``{}`` (the given day serves
    every table); a ``start`` that is neither is one :class:`InputError` line."""
    if is_auto(start):
        return history_starts(con, suites, tables, as_of)
    try:
        pd.Timestamp(str(start))
    except ValueError:
        raise InputError(
            f"start must be 'auto' or a date YYYY-MM-DD, got {start!r}",
            source="01_quality",
            column="start",
        ) from None
    return {}
