"""``cem identity``: profiles for any CSV or Parquet file of person records, given a role map
(:func:`cemlib.identity.files.run_identity`), and ``cem identity resolve ID...``: today's
profile id for ids a downstream system holds (:func:`cemlib.identity.resolve_ids`)."""

from __future__ import annotations

import argparse

from cemlib import DEFAULT_SEED
from cemlib.errors import InputError


def threshold_arg(value: str) -> float | str:
    """``--match-threshold``: ``auto`` or a probability strictly between 0 and 1."""
    from cemlib.identity.files import check_threshold

    try:
        return check_threshold(value)
    except InputError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not 'auto' nor a probability between 0 and 1 (exclusive)"
        ) from None


def _positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of at least 1")
    return n


def _resolve(args: argparse.Namespace) -> int:
    """``cem identity resolve ID... [--warehouse W]``: one line per id (today's id, the
    statuses, and the ids of parts split off it since); exit 1 if one of them was never issued
    by this warehouse."""
    import pandas as pd

    from cemlib.config import warehouse_path
    from cemlib.identity.registry import resolve_ids, split_parts
    from cemlib.io import duckdb_file
    from cemlib.warehouse import Warehouse

    if not args.ids:
        raise InputError("name at least one profile id: cem identity resolve ID [ID ...]")
    path = duckdb_file(warehouse_path(args.warehouse))
    if not path.is_file():
        raise InputError("no warehouse here (run cem run first, or pass --warehouse)",
                         source=str(path))  # fmt: skip
    with Warehouse(path, read_only=True) as wh:
        if not wh.has_table("identity", "registry"):
            raise InputError("no identity.registry: run the profiles stage (cem run) first",
                             source=str(path))  # fmt: skip
        registry = wh.read_table("identity", "registry")
    now = resolve_ids(registry, args.ids)
    parts = split_parts(registry, [i for i, c in now.items() if not pd.isna(c)])
    status = dict(zip(registry["profile_id"].astype(str), registry["status"], strict=True))
    unknown = 0
    for old, current in now.items():
        if pd.isna(current):
            print(f"{old}: never issued by this warehouse")
            unknown += 1
            continue
        line = f"{old} -> {current} ({status[old]})"
        if current != old:
            line = f"{old} -> {current} ({old} {status[old]}; {current} {status[current]})"
        if parts[old]:  # records of this id's profile that now live under other ids
            line += f"; split off: {', '.join(parts[old])}"
        print(line)
    return 1 if unknown else 0


def _main(args: argparse.Namespace) -> int:
    from cemlib.identity.files import run_identity

    if args.input == "resolve":
        return _resolve(args)
    missing = [f for f, v in (("--id-column", args.id_column), ("--roles", args.roles),
                              ("--out", args.out)) if not v]  # fmt: skip
    if missing or args.ids:
        what = f"required: {', '.join(missing)}" if missing else f"unexpected: {args.ids[0]}"
        raise InputError(f"{what} (cem identity RECORDS --id-column C --roles R --out F)")

    result = run_identity(
        args.input,
        id_column=args.id_column,
        roles_path=args.roles,
        out_path=args.out,
        match_threshold=args.match_threshold,
        source_column=args.source_column,
        rules_only=args.rules_only,
        seed=args.seed,
        profiles_path=args.profiles,
        links_path=args.links,
        max_profile_size=args.max_profile_size,
    )
    print(result.summary(args.max_profile_size))
    written = [args.out, args.profiles, args.links]
    print("written: " + ", ".join(str(w) for w in written if w))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``cem identity`` (and ``cem identity resolve``) to the subcommands."""
    p = subparsers.add_parser(
        "identity",
        help="deduplicate person records into profiles (rules + Splink)",
        description=(
            "Collapse a CSV or Parquet file of person records into profiles. "
            "Output: record_id,profile_id. `cem identity resolve ID... [--warehouse W]` "
            "prints today's profile id for ids an earlier run issued."
        ),
    )
    p.add_argument(
        "input",
        help="CSV (UTF-8, cp1251, KOI8-R or cp866; any delimiter) or Parquet of person records; or 'resolve' "
        "followed by profile ids: today's id of each, from the warehouse's identity.registry",
    )
    p.add_argument("ids", nargs="*", help=argparse.SUPPRESS)
    p.add_argument("--id-column", help="column holding the record id (required)")
    p.add_argument("--roles", help="YAML mapping columns to roles (required)")
    p.add_argument("--out", help="output CSV (record_id,profile_id) (required)")
    p.add_argument(
        "--warehouse", default=None, help="with resolve: the DuckDB warehouse (data/cem.duckdb)"
    )
    p.add_argument(
        "--profiles", default=None, help="also write one golden record per profile to this CSV"
    )
    p.add_argument(
        "--links",
        default=None,
        help="also write every candidate link (rule or model, probability, fields that agreed "
        "and disagreed, accepted or refused and why) to this CSV",
    )
    p.add_argument(
        "--match-threshold",
        type=threshold_arg,
        default="auto",
        help="lowest Splink match probability that may link; 'auto' (default) chooses it from "
        "the data: the lowest keeping the expected precision of the model links at 99%%",
    )
    p.add_argument(
        "--max-profile-size",
        type=_positive_int,
        default=50,
        help="flag profiles joining more distinct identities (records with different identifying "
        "values) than this, in the summary and the links file",
    )
    p.add_argument("--source-column", default=None, help="column naming each record's source file")
    p.add_argument("--rules-only", action="store_true", help="deterministic rules, no Splink")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.set_defaults(func=_main)
