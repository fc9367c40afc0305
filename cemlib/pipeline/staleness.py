"""Is ``as_of`` behind the data? A scheduled run whose ``as_of`` never moves (a cron line
without ``-p as_of=...``) scores the same day forever on ever newer exports; the only trace
would be the collect stage's count of rows dated after ``as_of``. This turns that count into a
warning on the console, in the run's summary line and on its page.

The rule is read from the data, not a fixed share: an export taken the morning after ``as_of``
holds rows of one calendar day after it (as does a single typo of the year), so rows on **two
or more** calendar days after ``as_of`` in one table mean that ``as_of`` lags the data.
"""

from __future__ import annotations

from typing import Any

from cemlib.collect.stage import AFTER_WINDOW_DAYS as WINDOW_DAYS

#: headline figures of the collect stage (``cemlib.collect.report.headlines``)
ROWS_AFTER, DAYS_AFTER, ROWS = "rows dated after as_of", "days with rows after as_of", "rows loaded"


def late_data_warning(headlines: dict[str, Any], as_of: str) -> str | None:
    """The warning for a collect stage's headline figures, or ``None`` when ``as_of`` is current
    (no rows after it, or rows on one calendar day only)."""
    rows, days = headlines.get(ROWS_AFTER) or 0, headlines.get(DAYS_AFTER) or 0
    if not isinstance(rows, int | float) or not isinstance(days, int | float) or days < 2:
        return None
    total = headlines.get(ROWS) or 0
    share = f" ({100 * rows / total:.2f}% of {int(total):,})" if total else ""
    return (
        f"as_of {as_of} is behind the data: {int(rows):,} rows{share} after it, on {int(days)} of "
        f"the {WINDOW_DAYS} days that follow it, are ignored by every model (pass the day the data ends, e.g. -p as_of=$(date -d "
        "yesterday +%F))"
    )
