"""``cem collect``: load the synthetic world or a folder of exports into raw/staging tables."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from cemlib import DEFAULT_AS_OF, DEFAULT_PEOPLE, DEFAULT_SEED


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``cem collect`` to the subcommands."""
    p = subparsers.add_parser(
        "collect",
        help="load source tables into the warehouse (raw + normalized staging)",
        description=(
            "Load the canonical source tables from a folder of CSV/Parquet files named after the "
            "tables, or generate the synthetic world, into raw.* (text as received) and "
            "staging.* (typed, normalized identifiers) of the DuckDB warehouse."
        ),
    )
    p.add_argument(
        "--source",
        default="synthetic",
        help="'synthetic' (default) or a folder holding crm_contacts.csv, online_orders.parquet, ...",
    )
    p.add_argument(
        "--people",
        type=int,
        default=DEFAULT_PEOPLE,
        help="synthetic world size (default %(default)s)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help="seed of the synthetic world (default %(default)s)",
    )
    p.add_argument("--as-of", default=DEFAULT_AS_OF, help="last day of known history (YYYY-MM-DD)")
    p.add_argument("--warehouse", default=None, help="DuckDB file (default data/cem.duckdb)")
    p.add_argument("--mapping", default=None, help="YAML {table: {their_column: canonical_column}}")
    p.add_argument(
        "--encoding",
        default=None,
        help="CSV encoding (default: UTF-8, else cp1251, KOI8-R or cp866 by the text)",
    )
    p.add_argument(
        "--run-id", default=None, help="run identifier stamped on every table (default dev)"
    )
    p.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bar (none either when stderr is not a terminal)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """``cem collect``: load a source into the warehouse and print what was loaded."""
    from cemlib.cli.checks import as_of_date, positive, warehouse_file
    from cemlib.collect import collect
    from cemlib.collect.stage import unread_date_columns
    from cemlib.config import warehouse_path
    from cemlib.lock import warehouse_lock

    warehouse_file(warehouse_path(args.warehouse) if args.warehouse else None)
    if args.source == "synthetic":
        positive(args.people, "--people")
    args.as_of = as_of_date(args.as_of)
    if args.source != "synthetic":
        refuse_empty_tables(args.source, args.mapping, args.encoding)
    run_id = args.run_id or "dev"
    with warehouse_lock(warehouse_path(args.warehouse), run_id=run_id, command="cem collect"):
        result = collect(
            source=args.source,
            warehouse=args.warehouse,
            run_id=run_id,
            as_of=args.as_of,
            n_people=args.people,
            seed=args.seed,
            mapping=args.mapping,
            encoding=args.encoding,
            # a bar only where someone watches: not into a redirected stderr (a log file, a
            # pipe), where it would only precede the one error line (trial 8 L5)
            progress=not args.quiet and sys.stderr.isatty(),
        )
    print(f"collected {result.source} into {result.warehouse} (run {run_id}, as_of {result.as_of})")
    cols = ["table", "n_raw", "n_staging", "p01_date", "p99_date", "n_after_as_of", "status"]
    table = result.tables[cols].rename(columns={"p01_date": "dates_from", "p99_date": "dates_to"})
    for c in ("dates_from", "dates_to"):
        table[c] = pd.to_datetime(table[c]).dt.strftime("%Y-%m-%d").fillna("")
    norm = result.normalization
    unparsed = norm.groupby("table")["n_unparsed"].sum() if len(norm) else pd.Series(dtype=int)
    table.insert(6, "n_unparsed", table["table"].map(unparsed).fillna(0).astype(int))
    unread = unread_date_columns(norm)["table"]  # "ok" would hide a wrong date format
    table.loc[table["table"].isin(unread), "status"] = "dates unread (note)"
    aside = result.tables.get("n_set_aside", pd.Series(0, index=result.tables.index)).fillna(0)
    table.loc[aside.to_numpy() > 0, "status"] = [
        f"{int(n):,} line(s) set aside (note)" for n in aside[aside > 0]
    ]
    print(table.to_string(index=False))
    print(
        "(dates_from/dates_to: 1st-99th percentile of the table's dates; n_unparsed: values NA in staging)"
    )
    if result.truth:
        print("truth: " + ", ".join(f"{k} {v:,}" for k, v in result.truth.items()))
    for warning in result.warnings:
        print(f"note: {warning}")
    return 0


#: the expectation that a table has rows (its severity in the suite decides whether a
#: header-only file of the table is refused or loaded as 0 rows)
ROW_COUNT = "expect_table_row_count_to_be_between"


def _suite_files() -> list[Path]:
    """The suite files ``01_quality`` reads by default (``expectations/`` of the project, else of
    the checkout: :func:`cemlib.quality.suites.default_suites_dir`)."""
    from cemlib.config import project_root

    here = project_root() / "expectations"
    d = here if here.is_dir() else Path(__file__).resolve().parents[2] / "expectations"
    return sorted([*d.glob("*.yaml"), *d.glob("*.yml"), *d.glob("*.json")])


def empty_table_refusals() -> dict[str, str]:
    """Table -> the reason of its suite's critical row-count check (``min_value`` 1 or more):
    the tables 01_quality stops on when empty. The suite files are read as YAML, not through
    :mod:`cemlib.quality` (importing Great Expectations: 3.1 -> 19.9 s for a collect)."""
    import json

    import yaml

    out = {}
    for f in _suite_files():
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
