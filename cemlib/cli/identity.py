"""``cem identity``: profiles for any CSV of person records, given a role map."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from cemlib.cli.checks import atomic_file, output_file
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


def threshold_arg(value: str) -> float | str:
    """``--match-threshold``: ``auto`` or a probability strictly between 0 and 1."""
    if value == "auto":
        return value
    try:
        t = float(value)
    except ValueError:
        t = float("nan")
    if not 0.0 < t < 1.0:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not 'auto' nor a probability between 0 and 1 (exclusive)"
        )
    return t


def _positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of at least 1")
    return n


@dataclass
class IdentityRun:
    """What ``cem identity`` produced: the clusters and the figures of its summary."""

    clusters: pd.DataFrame
    profiles: pd.DataFrame
    links: pd.DataFrame
    threshold: float | None
    constraints: tuple[str, ...]
    oversized: list[str]

    def summary(self, max_profile_size: int) -> str:
        sizes = self.clusters["profile_id"].value_counts()
        top = ", ".join(str(int(n)) for n in sizes.head(5))
        lines = [
            f"{len(self.clusters):,} records -> {len(sizes):,} profiles, "
            f"{int((sizes >= 2).sum()):,} of 2+ records",
            "match threshold: "
            + (f"{self.threshold:.4f} (model links kept)" if self.threshold else "rules only"),
            "constraints: " + (", ".join(self.constraints) or "none"),
            f"largest profiles: {top}",
        ]
        if self.oversized:
            lines.append(
                f"WARNING: {len(self.oversized)} profile(s) above --max-profile-size "
                f"{max_profile_size}: {', '.join(self.oversized[:5])}"
                + (" ..." if len(self.oversized) > 5 else "")
                + " (flagged in the links file); check them before use"
            )
        return "\n".join(lines)


def _profile_table(resolver, clusters: pd.DataFrame) -> pd.DataFrame:
    from cemlib.identity import golden_records

    prof = golden_records(resolver.prepared_, profile_id=clusters["profile_id"].to_numpy())
    if "profile_id" not in prof.columns:
        prof = prof.reset_index()
    for col in ("phones", "emails", "sources"):
        prof[col] = prof[col].map(lambda v: ";".join(map(str, v)))
    return prof


def _links_table(resolver, clusters: pd.DataFrame, max_profile_size: int) -> pd.DataFrame:
    lk = resolver.link_table()
    nodes = resolver.links_
    left, right = nodes["rid_l"].to_numpy(), nodes["rid_r"].to_numpy()
    # links join signature nodes; the profile of a node is that of any of its records
    first = (
        pd.Series(range(len(resolver.node_of_record_))).groupby(resolver.node_of_record_).first()
    )
    pid = clusters["profile_id"].to_numpy()[first.to_numpy()]
    sizes = clusters["profile_id"].value_counts()
    out = pd.DataFrame(
        {
            "left_record_id": lk["left_record_id"],
            "right_record_id": lk["right_record_id"],
            "rule": lk["rule"],
            "match_probability": lk["match_probability"],
            "match_weight": lk["match_weight"],
            "agreed": lk["agreeing"],
            "disagreed": lk["disagreeing"],
            "accepted": lk["accepted"],
            "refused_by": lk["refused_by"],
            "left_profile_id": pid[left],
            "right_profile_id": pid[right],
        }
    )
    big = set(sizes.index[sizes.to_numpy() > max_profile_size])
    out["oversized_profile"] = out["left_profile_id"].isin(big) | out["right_profile_id"].isin(big)
    return out


def run_identity(
    input_path: str | Path,
    *,
    id_column: str,
    roles_path: str | Path,
    out_path: str | Path,
    match_threshold: float | str = "auto",
    source_column: str | None = None,
    rules_only: bool = False,
    seed: int = 42,
    profiles_path: str | Path | None = None,
    links_path: str | Path | None = None,
    max_profile_size: int = 50,
) -> IdentityRun:
    """What ``cem identity`` does: read, resolve, write ``record_id,profile_id`` and, when
    asked, the golden records and the links with their evidence. Nothing is written unless
    everything was computed."""
    from cemlib.identity import load_roles, resolve

    if isinstance(match_threshold, str):
        match_threshold = threshold_arg(match_threshold) if match_threshold != "auto" else "auto"
    out = output_file(out_path, "--out")
    prof_out = output_file(profiles_path, "--profiles") if profiles_path else None
    links_out = output_file(links_path, "--links") if links_path else None
    df = read_records(input_path, id_column)
    roles = load_roles(roles_path)
    if source_column:
        if source_column not in df.columns:
            raise InputError(
                "source column not found", source=str(input_path), column=source_column
            )
        roles["source"] = [source_column]
    clusters, resolver = resolve(
        df,
        roles,
        id_column=id_column,
        source=str(input_path),
        match_threshold=match_threshold,
        use_model=not rules_only,
        seed=seed,
        return_resolver=True,
    )
    sizes = clusters["profile_id"].value_counts()
    oversized = [str(p) for p in sizes.index[sizes.to_numpy() > max_profile_size]]
    profiles = _profile_table(resolver, clusters) if prof_out else None
    links = _links_table(resolver, clusters, max_profile_size) if links_out else None
    for frame, path in ((clusters, out), (profiles, prof_out), (links, links_out)):
        if path is not None:
            with atomic_file(path) as tmp:
                frame.to_csv(tmp, index=False)
    return IdentityRun(
        clusters=clusters,
        profiles=profiles,
        links=links,
        threshold=resolver.threshold_,
        constraints=tuple(resolver.constraints_),
        oversized=oversized,
    )


def _main(args: argparse.Namespace) -> int:
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
        description="Collapse a CSV of person records into profiles. Output: record_id,profile_id.",
    )
    p.add_argument("input", help="CSV of person records (UTF-8)")
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
