"""``--profiles-map`` of ``cem churn`` and ``cem offers``: the hand-off from ``cem identity``.

``cem identity`` writes ``record_id,profile_id``; a transactions file names each row's record
(the receipt or order that was one of ``cem identity``'s input records) in a column, and the
two commands key the rows by profile through the map
(:func:`cemlib.identity.files.key_by_profiles`) instead of needing a ``customer_id`` column."""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from cemlib.errors import InputError


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add ``--profiles-map`` and ``--record-column`` to a subcommand's parser."""
    p.add_argument(
        "--profiles-map",
        metavar="CLUSTERS",
        help="the record_id,profile_id file of cem identity: each transaction's customer_id "
        "becomes the profile of its record (--record-column); rows whose record is not in the "
        "map (anonymous receipts) are left out and counted",
    )
    p.add_argument(
        "--record-column",
        default="record_id",
        help="with --profiles-map: the transactions column holding the record id, as named in "
        "the file (default record_id)",
    )


def keyed(
    frame: pd.DataFrame, args: argparse.Namespace, command: str, *, source: str
) -> pd.DataFrame:
    """``frame`` keyed by ``args.profiles_map`` through ``args.record_column`` (unchanged
    without ``--profiles-map``), with one line on stderr saying how many rows were keyed."""
    from cemlib.identity.files import key_by_profiles, read_profiles_map

    if not args.profiles_map:
        return frame
    if args.record_column == "customer_id":
        raise InputError(
            "--record-column customer_id: the map gives customer_id; name the column holding "
            "the record id"
        )
    pmap = read_profiles_map(args.profiles_map)
    out, counts = key_by_profiles(frame, pmap, args.record_column, source=source,
                                  map_source=str(args.profiles_map))  # fmt: skip
    print(counts.line(command, args.record_column, args.profiles_map), file=sys.stderr)
    return out


#: the source of the customer records in a ``cem identity`` records file (docs/own-data.md)
CRM_SOURCE = "crm_contacts"


def crm_less_line(profiles, args: argparse.Namespace, command: str, what: str) -> str | None:
    """One stderr line: how many of the scored ``profiles`` hold no record of the CRM source
    in ``--profiles-map`` (a receipt or order identity kept apart, no customer record: trial 7
    M3), when the map says each record's source (a ``source`` or ``source_table`` column);
    None otherwise."""
    from cemlib.io import read_file

    if not args.profiles_map:
        return None
    head = read_file(args.profiles_map, what="a record_id,profile_id file", text=True)
    col = next((c for c in ("source", "source_table") if c in head.columns), None)
    if col is None:
        return None
    crm = head.loc[head[col].astype("string").str.strip() == CRM_SOURCE, "profile_id"]
    have = set(crm.astype("string").str.strip().dropna())
    scored = pd.Index(pd.unique(pd.Series(profiles, dtype="string").dropna()))
    n = int((~scored.isin(list(have))).sum())
    return (
        f"{command}: {n:,} of {len(scored):,} {what} hold no record of source '{CRM_SOURCE}' "
        f"in {args.profiles_map} (purchases without a customer record); keep only those with "
        "one to score real customers (docs/own-data.md)"
    )
