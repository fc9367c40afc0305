"""``cem churn``: purchase probability, expected purchases and CLV per customer from a
transactions file, or cancellation risk per active contract from a subscriptions file. The
command parses and checks its arguments and calls :mod:`cemlib.churn.scoring`."""

from __future__ import annotations

import argparse
import sys
import time

import pandas as pd

from cemlib import DEFAULT_SEED
from cemlib.errors import InputError


def _mapping(pairs: list[str] | None) -> dict[str, str]:
    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise InputError(f"--map expects THEIRS=CANONICAL, got {pair!r}")
        theirs, canon = pair.split("=", 1)
        out[theirs.strip()] = canon.strip()
    return out


def _as_of(text: str) -> pd.Timestamp:
    from cemlib.cli.checks import as_of_date

    return pd.Timestamp(as_of_date(text))


def _keyed(args: argparse.Namespace, mapping: dict[str, str]) -> pd.DataFrame:
    """The transactions file keyed by the profiles of ``--profiles-map``."""
    from cemlib.cli.profiles_map import keyed
    from cemlib.io import read_file

    renamed = [theirs for theirs, canon in mapping.items() if canon == "customer_id"]
    if renamed:
        raise InputError(
            f"--map {renamed[0]}=customer_id and --profiles-map both give customer_id; use one"
        )
    tx = read_file(args.transactions, what="the transactions file")
    return keyed(tx, args, "cem churn", source=tx.attrs["source"])


def run(args: argparse.Namespace) -> int:
    """``cem churn``: score the transactions or subscriptions file into ``--out``."""
    from cemlib.churn.scoring import score_subscriptions, score_transactions
    from cemlib.cli.checks import non_negative
    from cemlib.io import atomic_file, output_file

    as_of = _as_of(args.as_of)
    if args.horizon_days <= 0:
        raise InputError("--horizon-days must be a positive number of days")
    non_negative(args.discount, "--discount")
    out = output_file(args.out)
    t0 = time.perf_counter()
    mapping = _mapping(args.map)
    if args.subscriptions:
        if args.profiles_map:
            raise InputError("--profiles-map keys a TRANSACTIONS file, not --subscriptions")
        scores = score_subscriptions(
            args.subscriptions, as_of, args.horizon_days, mapping, args.seed
        )
        what = "active subscriptions"
    else:
        if not args.transactions:
            raise InputError("give a TRANSACTIONS file or --subscriptions SUBS.csv")
        transactions = args.transactions
        if args.profiles_map:
            transactions = _keyed(args, mapping)
        scores = score_transactions(
            transactions,
            as_of,
            args.horizon_days,
            args.covariates,
            mapping,
            args.discount,
            args.seed,
        )
        what = "customers"
    screened = scores.attrs.get("screened")
    if screened and (screened["duplicates"] or screened["negative_amount"]):
        print(
            f"cem churn: {screened['rows_in']} rows in, {screened['rows_used']} used; left out: "
            f"{screened['duplicates']} exact duplicate rows; {screened['negative_amount']} with a "
            "negative amount (returns: taken off the purchase before them, no purchase)",
            file=sys.stderr,
        )
    if args.profiles_map and not args.subscriptions:
        from cemlib.cli.profiles_map import crm_less_line

        line = crm_less_line(scores["customer_id"], args, "cem churn", "scored profiles")
        if line:
            print(line, file=sys.stderr)
    with atomic_file(out) as tmp:
        scores.to_csv(tmp, index=False)
    seg = scores["risk_segment"].value_counts().to_dict()
    print(
        f"cem churn: {len(scores)} {what} scored as of {as_of.date()} over {args.horizon_days} "
        f"days in {time.perf_counter() - t0:.1f} s -> {out} (risk: {seg})"
    )
    return 0


def register(subparsers) -> None:
    """Add ``cem churn`` to the subcommands."""
    from cemlib.cli import profiles_map

    p = subparsers.add_parser(
        "churn",
        help="purchase probability, expected purchases and CLV (or subscription churn risk)",
        description=(
            "Score customers from TRANSACTIONS (customer_id, ts, amount; optional margin, "
            "channel, quantity) as of --as-of, or active contracts from --subscriptions "
            "(customer_id, start, end + covariates). Only rows dated on or before --as-of are used."
        ),
    )
    p.add_argument("transactions", nargs="?", help="CSV or Parquet of transactions")
    p.add_argument(
        "--subscriptions", help="CSV or Parquet of subscriptions (customer_id, start, end)"
    )
    p.add_argument("--as-of", required=True, help="last day of known history (inclusive)")
    p.add_argument("--horizon-days", type=int, default=365, help="prediction horizon (days)")
    p.add_argument("--covariates", help="CSV or Parquet with customer_id + covariate columns")
    p.add_argument("--out", required=True, help="output CSV of scores")
    profiles_map.add_arguments(p)
    p.add_argument("--discount", type=float, default=0.1, help="annual discount rate for CLV")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument(
        "--map",
        action="append",
        metavar="THEIRS=CANONICAL",
        help="rename an input column, e.g. --map 'Дата=ts' (repeatable)",
    )
    p.set_defaults(func=run)
