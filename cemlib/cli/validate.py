"""``cem validate SOURCE_DIR``: collection and quality checks alone on a folder of source files."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from cemlib import DEFAULT_AS_OF


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``cem validate`` to the subcommands."""
    p = subparsers.add_parser(
        "validate",
        help="check a folder of source files against the expectation suites",
        description=(
            "Load SOURCE_DIR (CSV/Parquet files named after the canonical tables), run the "
            "Great Expectations suites, print a scorecard and write DIR/quarantine/<table>.csv "
            "(quarantined rows as received + expectation, reason) and DIR/clean/<table>.parquet. "
            "Exits 2 on a critical table-level failure (missing column, empty table, stale data), "
            "and, after writing its output, when one check quarantines more than half of a "
            "table's rows up to --as-of."
        ),
    )
    p.add_argument("source_dir", metavar="SOURCE_DIR", help="folder of source files")
    p.add_argument("--as-of", default=DEFAULT_AS_OF, help="last day of known history (inclusive)")
    p.add_argument("--out", default="validation", help="output folder (default ./validation)")
    p.add_argument(
        "--start",
        default="auto",
        help="the day the business began (earlier timestamps are defects); auto: each table's "
        "own history start, read from its monthly counts (default)",
    )
    p.add_argument("--mapping", default=None, help="YAML/JSON column mapping for your files")
    p.add_argument("--freshness-days", type=int, default=30, help="max age of the newest row")
    p.add_argument(
        "--min-age",
        type=int,
        default=14,
        help="youngest plausible customer in years at as_of (default 14; 0 where children are "
        "customers)",
    )
    p.add_argument("--suites", default=None, help="folder of suites (default expectations/)")
    p.add_argument("--warehouse", default=None, help="DuckDB file to keep (default: temporary)")
    p.add_argument("--data-docs", action="store_true", help="also write GE Data Docs in DIR")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """``cem validate``: run the expectation suites on files or a warehouse."""
    from cemlib.cli.checks import (
        as_of_date,
        non_negative,
        output_dir,
        positive,
        warehouse_file,
    )
    from cemlib.collect import collect
    from cemlib.errors import InputError, StageFailure
    from cemlib.lock import warehouse_lock
    from cemlib.quality import QualityStage
    from cemlib.quality.quarantine import export_outcome
    from cemlib.quality.report import mostly_quarantined
    from cemlib.quality.scorecard import format_scorecard
    from cemlib.warehouse import Warehouse

    src = Path(args.source_dir)
    if not src.is_dir():
        raise InputError("not a folder of source files", source=str(src))
    out = output_dir(args.out)
    positive(args.freshness_days, "--freshness-days")
    non_negative(args.min_age, "--min-age")
    args.as_of = as_of_date(args.as_of)
    warehouse_file(args.warehouse)
    with tempfile.TemporaryDirectory(prefix="cem_validate_") as tmp:
        path = Path(args.warehouse) if args.warehouse else Path(tmp) / "validate.duckdb"
        with (
            warehouse_lock(path, run_id="validate", command="cem validate"),
            Warehouse(path) as wh,
        ):
            collect(
                str(src),
                warehouse=wh,
                run_id="validate",
                as_of=args.as_of,
                mapping=args.mapping,
                progress=False,
            )
            try:
                report = QualityStage(
                    args.suites,
                    start=args.start,
                    freshness_days=args.freshness_days,
                    min_age=args.min_age,
                    progress=False,
                ).run(wh, run_id="validate", as_of=args.as_of)
            except StageFailure as exc:
                raise critical_failure(str(exc), src) from None
            # written into a fresh folder first, then swapped in: no file of an earlier run
            # survives in a reused --out, and a failure leaves the old output untouched
            out.mkdir(parents=True, exist_ok=True)
            fresh = Path(tempfile.mkdtemp(prefix=".cem_validate_", dir=out))
            index = None
            try:
                export_outcome(wh, list(report.outcomes), fresh)
                if args.data_docs:
                    index = report.write_data_docs(fresh / "data_docs").relative_to(fresh)
                for sub in ("quarantine", "clean", "data_docs"):
                    if (out / sub).exists():
                        shutil.rmtree(out / sub)
                    if (fresh / sub).exists():
                        (fresh / sub).replace(out / sub)
            finally:
                shutil.rmtree(fresh, ignore_errors=True)
            if index is not None:
                print(f"Data Docs: {out / index}")
    print(format_scorecard(report))
    print(f"\nwritten: {args.out}/quarantine/<table>.csv, {args.out}/clean/<table>.parquet")
    if heavy := mostly_quarantined(report):
        # the rows are written with their reasons; the exit says the table is not usable
        print(
            f"cem validate: error: {'; '.join(heavy)} (rows and reasons in "
            f"{args.out}/quarantine/<table>.csv)",
            file=sys.stderr,
        )
        return 2
    return 0


def critical_failure(message: str, src: Path):
    """The quality stage's critical table-level failures (``table crm_contacts: <check>
    failed ...``, one a line) as the error of ``cem validate``, each naming the file it read:
    one line for one failure, as for every other bad input."""
    from cemlib.errors import InputError

    found = []
    for line in message.splitlines()[1:]:
        text = line.strip()
        table, _, what = text.partition(": ")
        name = table.removeprefix("table ").strip()
        files = sorted(p for p in src.iterdir() if p.name.split(".")[0] == name)
        found.append(f"{files[0] if files else name}: {what}" if what else text)
    if len(found) == 1:
        return InputError(f"critical table-level check failed, nothing was written: {found[0]}")
    return InputError(
        f"{len(found)} critical table-level checks failed, nothing was written:\n  "
        + "\n  ".join(found)
    )
