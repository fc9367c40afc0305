"""Header-only source files: refused when their table may not be empty.

A table's suite in ``expectations/`` decides: a critical row-count check (CRM, orders,
receipts, their lines, products) would stop ``01_quality`` on an empty table, so a header-only
file of it is refused before anything is written, by ``cem collect`` and by stage 00 of
``cem run`` alike (one line naming the file, exit 2). A table the suite lets be empty
(``support_tickets``, ``web_events``: "no tickets this month") is loaded as 0 rows."""

from __future__ import annotations

#: the expectation that a table has rows (its severity in the suite decides whether a
#: header-only file of the table is refused or loaded as 0 rows)
ROW_COUNT = "expect_table_row_count_to_be_between"


def empty_table_refusals() -> dict[str, str]:
    """Table -> the reason of its suite's critical row-count check (``min_value`` 1 or more):
    the tables 01_quality stops on when empty. The suite files are read as YAML, not through
    :mod:`cemlib.quality` (importing Great Expectations: 3.1 -> 19.9 s for a collect)."""
    import json

    import yaml

    from cemlib.config import default_suites_dir, suite_files

    out = {}
    for f in suite_files(default_suites_dir()):
        try:
            text = f.read_text(encoding="utf-8")
            doc = json.loads(text) if f.suffix == ".json" else yaml.safe_load(text)
        except (OSError, ValueError, yaml.YAMLError):
            continue  # 01_quality names a broken suite; collect loads the file
        if not isinstance(doc, dict):
            continue
        for e in doc.get("expectations") or []:
            if (
                isinstance(e, dict)
                and e.get("type") == ROW_COUNT
                and e.get("severity") == "critical"
                and ((e.get("kwargs") or {}).get("min_value") or 0) >= 1
            ):
                out[str(doc.get("table"))] = str(e.get("reason") or "the table is empty")
    return out


def refuse_empty_tables(source: str, mapping: str | None, encoding: str | None) -> None:
    """InputError naming the first file of ``source`` that holds only its header when its table
    may not be empty: the table's suite (``expectations/<table>.yaml``) has a critical row-count
    check, which would stop 01_quality on it (CRM, orders, receipts, their lines, products).
    Raised before anything is written. A header-only file of a table the suite lets be empty
    (``support_tickets``, ``web_events``: "no tickets this month" is a legitimate export) is
    loaded as 0 rows and noted, as before."""
    from cemlib.collect.loaders import plan_folder
    from cemlib.errors import InputError
    from cemlib.io import header_only

    plan = plan_folder(source, mapping=mapping)
    empty = [(t, p) for t, p in plan.paths.items() if header_only(p, encoding=encoding)]
    if not empty:
        return
    refused = empty_table_refusals()
    for table, path in empty:
        if table in refused:
            raise InputError(
                f"no data rows (only a header): table {table} may not be empty (its suite's "
                f"critical check {refused[table]!r} would stop 01_quality); nothing was written",
                source=str(path),
            )
