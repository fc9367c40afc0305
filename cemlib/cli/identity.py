"""``cem identity``: profiles for any CSV of person records, given a role map."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from cemlib.errors import InputError


def read_records(path: str | Path, id_column: str) -> pd.DataFrame:
    """Read a CSV as text, with errors that name the file."""
    p = Path(path)
    if not p.is_file():
        raise InputError("file not found", source=str(p))
    try:
        df = pd.read_csv(p, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text ({exc.reason})", source=str(p)) from exc
    except pd.errors.EmptyDataError as exc:
        raise InputError("empty file", source=str(p)) from exc
    except pd.errors.ParserError as exc:
        raise InputError(f"not a readable CSV ({exc})", source=str(p)) from exc
    if df.empty:
        raise InputError("no records in the file", source=str(p))
    if id_column not in df.columns:
        raise InputError("id column not found", source=str(p), column=id_column)
    return df


def run_identity(
    input_path: str | Path,
    *,
    id_column: str,
    roles_path: str | Path,
    out_path: str | Path,
    match_threshold: float = 0.9,
    source_column: str | None = None,
    rules_only: bool = False,
    seed: int = 42,
) -> pd.DataFrame:
    """What ``cem identity`` does: read, resolve, write ``record_id,profile_id``."""
    from cemlib.identity import load_roles, resolve

    df = read_records(input_path, id_column)
    roles = load_roles(roles_path)
    if source_column:
        if source_column not in df.columns:
            raise InputError(
                "source column not found", source=str(input_path), column=source_column
            )
        roles["source"] = [source_column]
    clusters = resolve(
        df,
        roles,
        id_column=id_column,
        source=str(input_path),
        match_threshold=match_threshold,
        use_model=not rules_only,
        seed=seed,
    )
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    clusters.to_csv(out, index=False)
    return clusters


def _main(args: argparse.Namespace) -> int:
    clusters = run_identity(
        args.input,
        id_column=args.id_column,
        roles_path=args.roles,
        out_path=args.out,
        match_threshold=args.match_threshold,
        source_column=args.source_column,
        rules_only=args.rules_only,
        seed=args.seed,
    )
    n_prof = clusters["profile_id"].nunique()
    print(f"{len(clusters)} records -> {n_prof} profiles; written to {args.out}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "identity",
        help="deduplicate person records into profiles (rules + Splink)",
        description="Collapse a CSV of person records into profiles. Output: record_id,profile_id.",
    )
    p.add_argument("input", help="CSV of person records (UTF-8)")
    p.add_argument("--id-column", required=True, help="column holding the record id")
    p.add_argument("--roles", required=True, help="YAML mapping columns to roles")
    p.add_argument("--out", required=True, help="output CSV (record_id,profile_id)")
    p.add_argument("--match-threshold", type=float, default=0.9, help="Splink match probability")
    p.add_argument("--source-column", default=None, help="column naming each record's source file")
    p.add_argument("--rules-only", action="store_true", help="deterministic rules, no Splink")
    p.add_argument("--seed", type=int, default=42)
    p.set_defaults(func=_main)
