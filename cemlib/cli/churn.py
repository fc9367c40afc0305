"""``cem churn``: purchase probability, expected purchases and CLV per customer from a
transactions file, or cancellation risk per active contract from a subscriptions file."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from cemlib.errors import InputError

MAIN_COLUMNS = (
    "customer_id",
    "p_purchase",
    "expected_purchases",
    "expected_revenue",
    "risk_segment",
)


def _mapping(pairs: list[str] | None) -> dict[str, str]:
    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise InputError(f"--map expects THEIRS=CANONICAL, got {pair!r}")
        theirs, canon = pair.split("=", 1)
        out[theirs.strip()] = canon.strip()
    return out


def _as_of(text: str) -> pd.Timestamp:
    from cemlib.churn.features import _parse_dates

    d = _parse_dates(pd.Series([text]))
    if d.isna().iloc[0]:
        raise InputError(f"--as-of: unparseable date {text!r}")
    return d.iloc[0].normalize()


def score_transactions(
    transactions: str | Path | pd.DataFrame,
    as_of: str | pd.Timestamp,
    horizon_days: int,
    covariates: str | Path | pd.DataFrame | None = None,
    mapping: dict[str, str] | None = None,
    annual_discount: float = 0.1,
    seed: int = 42,
) -> pd.DataFrame:
    """What ``cem churn TRANSACTIONS`` computes, as a DataFrame (the benchmark calls this)."""
    from cemlib.churn.features import screen_transactions
    from cemlib.churn.files import read_frame, with_aliases
    from cemlib.churn.models import ChurnModel

    source = str(transactions) if not isinstance(transactions, pd.DataFrame) else "transactions"
    tx = transactions if isinstance(transactions, pd.DataFrame) else read_frame(transactions)
    tx = with_aliases(tx, mapping)
    tx, screened = screen_transactions(tx, source)
    cov = None
    if covariates is not None:
        cov = covariates if isinstance(covariates, pd.DataFrame) else read_frame(covariates)
        cov = with_aliases(cov, mapping)
        cov = _typed_covariates(cov)
    horizons = sorted({h for h in (90, 180, 365) if h < horizon_days} | {int(horizon_days)})
    model = ChurnModel(horizons=horizons, annual_discount=annual_discount, seed=seed)
    model.fit(tx, as_of=as_of, covariates=cov, source=source)
    scores = model.predict()
    rest = [c for c in scores.columns if c not in MAIN_COLUMNS]
    scores = scores[list(MAIN_COLUMNS) + rest]
    scores.attrs["model"] = model
    scores.attrs["screened"] = screened
    return scores


def _typed_covariates(cov: pd.DataFrame) -> pd.DataFrame:
    """Covariate columns read as text: numbers (decimal commas allowed) become floats."""
    from cemlib.churn.features import _parse_numbers

    out = cov.copy()
    for c in out.columns:
        if c == "customer_id" or pd.api.types.is_numeric_dtype(out[c]):
            continue
        num = _parse_numbers(out[c])
        present = out[c].notna() & (out[c].astype(str).str.strip() != "")
        if present.any() and num[present].notna().mean() > 0.95:
            out[c] = num
    return out


def score_subscriptions(
    subscriptions: str | Path | pd.DataFrame,
    as_of: str | pd.Timestamp,
    horizon_days: int,
    mapping: dict[str, str] | None = None,
    seed: int = 42,
) -> pd.DataFrame:
    """What ``cem churn --subscriptions`` computes, as a DataFrame."""
    from cemlib.churn.files import read_frame, with_aliases
    from cemlib.churn.subscriptions import SubscriptionChurnModel

    source = str(subscriptions) if not isinstance(subscriptions, pd.DataFrame) else "subscriptions"
    subs = subscriptions if isinstance(subscriptions, pd.DataFrame) else read_frame(subscriptions)
    subs = _typed_covariates(with_aliases(subs, mapping))
    for c in ("start", "end"):
        if c in subs:
            subs[c] = subs[c].astype("string")
    model = SubscriptionChurnModel(seed=seed).fit(subs, as_of, source=source)
    out = model.predict(horizon_days)
    out.attrs["model"] = model
    return out


def run(args: argparse.Namespace) -> int:
    from cemlib.cli.checks import atomic_file, non_negative, output_file

    as_of = _as_of(args.as_of)
    if args.horizon_days <= 0:
        raise InputError("--horizon-days must be a positive number of days")
    non_negative(args.discount, "--discount")
    out = output_file(args.out)
    t0 = time.perf_counter()
    mapping = _mapping(args.map)
    if args.subscriptions:
        scores = score_subscriptions(
            args.subscriptions, as_of, args.horizon_days, mapping, args.seed
        )
        what = "active subscriptions"
    else:
        if not args.transactions:
            raise InputError("give a TRANSACTIONS file or --subscriptions SUBS.csv")
        scores = score_transactions(
            args.transactions,
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
            f"{screened['duplicates']} exact duplicate rows, {screened['negative_amount']} with a "
            "negative amount (returns)",
            file=sys.stderr,
        )
    with atomic_file(out) as tmp:
        scores.to_csv(tmp, index=False)
    seg = scores["risk_segment"].value_counts().to_dict()
    print(
        f"cem churn: {len(scores)} {what} scored as of {as_of.date()} over {args.horizon_days} "
        f"days in {time.perf_counter() - t0:.1f} s -> {out} (risk: {seg})"
    )
    return 0


def register(subparsers) -> None:
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
    p.add_argument("--discount", type=float, default=0.1, help="annual discount rate for CLV")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument(
        "--map",
        action="append",
        metavar="THEIRS=CANONICAL",
        help="rename an input column, e.g. --map 'Дата=ts' (repeatable)",
    )
    p.set_defaults(func=run)
