"""``cem identity``: profiles for any CSV or Parquet file of person records, given a role map.
The command parses its arguments and calls :func:`cemlib.identity.files.run_identity`."""

from __future__ import annotations

import argparse

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


def _main(args: argparse.Namespace) -> int:
    from cemlib.identity.files import run_identity

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
    p = subparsers.add_parser(
        "identity",
        help="deduplicate person records into profiles (rules + Splink)",
        description=(
            "Collapse a CSV or Parquet file of person records into profiles. "
            "Output: record_id,profile_id."
        ),
    )
    p.add_argument(
        "input", help="CSV (UTF-8 or cp1251, any delimiter) or Parquet of person records"
    )
    p.add_argument("--id-column", required=True, help="column holding the record id")
    p.add_argument("--roles", required=True, help="YAML mapping columns to roles")
    p.add_argument("--out", required=True, help="output CSV (record_id,profile_id)")
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
        help="flag profiles of more records than this in the summary and the links file",
    )
    p.add_argument("--source-column", default=None, help="column naming each record's source file")
    p.add_argument("--rules-only", action="store_true", help="deterministic rules, no Splink")
    p.add_argument("--seed", type=int, default=42)
    p.set_defaults(func=_main)
