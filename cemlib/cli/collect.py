"""``cem collect``: load the synthetic world or a folder of exports into raw/staging tables."""

from __future__ import annotations

import argparse
import sys

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
    from cemlib.collect.empty import refuse_empty_tables
    from cemlib.collect.stage import unread_date_columns
    from cemlib.config import warehouse_path
    from cemlib.lock import warehouse_lock

    warehouse_file(warehouse_path(args.warehouse) if args.warehouse else None)
    if args.source == "synthetic":
        positive(args.people, "--people")
    args.as_of = as_of_date(args.as_of)
    if args.source != "synthetic":
        refuse_empty_tables(args.source, args.mapping, args.encoding)  # before the lock
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
