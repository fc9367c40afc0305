"""Profiles for a user's file of person records (what ``cem identity`` does): read the file
through the one reader (:func:`cemlib.io.read_file`), resolve it, write ``record_id,profile_id``
and, when asked, the golden records and the links with their evidence."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cemlib import DEFAULT_SEED
from cemlib.errors import InputError
from cemlib.io import atomic_file, output_file, read_file


def read_records(path: str | Path, id_column: str) -> pd.DataFrame:
    """A CSV or Parquet file of person records as text (:func:`cemlib.io.read_file`), with
    ``id_column`` checked; errors name the file."""
    df = read_file(path, what="a CSV or Parquet file of records", text=True)
    if id_column not in df.columns:
        raise InputError("id column not found", source=str(path), column=id_column)
    return df


def check_typed_roles(df: pd.DataFrame, roles: dict, source: str) -> None:
    """InputError for a birth-date or phone column of which not one non-empty value can be
    read: the whole column is of the wrong type (a shifted or mislabelled column), which the
    matching would otherwise ignore in silence."""
    from cemlib import normalize as nz

    readers = {"birth_date": (nz.parse_dates, "a date"), "phone": (nz.normalize_phone, "a phone")}
    for role, (read, what) in readers.items():
        for column in roles.get(role, []):
            if column not in df.columns:
                continue
            text = df[column].dropna().astype(str).str.strip()
            text = text[text != ""]
            if text.empty:
                continue
            sample = pd.Series(text.drop_duplicates().head(2000).to_numpy())
            if read(sample).notna().sum() == 0:
                raise InputError(
                    f"none of its {len(text):,} values can be read as {what} (e.g. "
                    f"{text.iloc[0]!r}): the whole column is of the wrong type",
                    source=source,
                    column=column,
                )


#: the typed roles whose values the matching reads (a value it cannot read counts as missing)
READ_AS: dict[str, str] = {"birth_date": "a date", "phone": "a phone", "email": "an e-mail"}


def unread_values(df: pd.DataFrame, roles: dict) -> list[tuple[str, int, int, str]]:
    """``(column, values not read, non-empty values, what was expected)`` of each birth-date,
    phone and e-mail column of ``df``: such a value counts as missing for the matching (the
    record stays and matches on its other fields), and the summary says how many there were.
    A masked phone (``+7 *** ***-45-67``) is not counted: it has its own line and use."""
    from cemlib.identity import normalize as nz

    readers = {"birth_date": nz.parse_dates, "phone": nz.normalize_phone, "email": nz.email_key}
    out = []
    for role, read in readers.items():
        for column in roles.get(role, []):
            if column not in df.columns:
                continue
            text = df[column].dropna().astype(str).str.strip()
            counts = text[text != ""].value_counts()
            if counts.empty:
                continue
            values = pd.Series(counts.index.to_numpy(), dtype=object)
            read_ok = read(values).notna().to_numpy()
            if role == "phone":
                read_ok |= nz.masked_phone_tail(values).notna().to_numpy()
            bad = int(counts.to_numpy()[~read_ok].sum())
            out.append((column, bad, int(counts.sum()), READ_AS[role]))
    return out


def check_threshold(value: float | str) -> float | str:
    """``match_threshold``: ``"auto"`` or a probability strictly between 0 and 1."""
    if value == "auto":
        return value
    try:
        t = float(value)
    except (TypeError, ValueError):
        t = float("nan")
    if not 0.0 < t < 1.0:
        raise InputError(
            f"match threshold {value!r} is not 'auto' nor a probability between 0 and 1 (exclusive)"
        )
    return t


@dataclass
class IdentityRun:
    """What ``cem identity`` produced: the clusters and the figures of its summary."""

    clusters: pd.DataFrame
    profiles: pd.DataFrame
    links: pd.DataFrame
    threshold: float | None
    constraints: tuple[str, ...]
    oversized: list[str]
    #: records whose only contact is a masked phone (:func:`~cemlib.identity.masked.attach_masked`)
    masked: dict | None = None
    #: ``(column, values not read, non-empty values, expected)`` (:func:`unread_values`)
    unread: list = field(default_factory=list)

    def summary(self, max_profile_size: int) -> str:
        """The lines ``cem identity`` prints: records to profiles, the threshold, the constraints,
        the five largest profiles and a warning naming those above ``max_profile_size``."""
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
        unread = [u for u in self.unread if u[1]]
        if unread:
            lines.append(
                "not read, kept as missing (the record stays and matches on its other values): "
                + "; ".join(
                    f"{n:,} of {total:,} values of {col!r} (not {what})"
                    for col, n, total, what in unread
                )
            )
        if self.masked and self.masked.get("masked_only"):
            mk = self.masked
            lines.append(
                f"masked phones: {mk['masked_only']:,} records carry only a masked phone; "
                f"{mk['attached']:,} attached to the one profile their visible digits, first "
                f"name and place, birth date or last name name ({mk['ambiguous']:,} ambiguous, "
                f"{mk['no_candidate']:,} naming no profile, {mk['key_too_weak']:,} with too few "
                "digits shown): the others keep a profile of their own"
            )
        if self.oversized:
            lines.append(
                f"WARNING: {len(self.oversized)} profile(s) joining more than "
                f"--max-profile-size {max_profile_size} distinct identities (records with "
                f"different identifying values): {', '.join(self.oversized[:5])}"
                + (" ..." if len(self.oversized) > 5 else "")
                + " (flagged in the links file); check them before use"
            )
        return "\n".join(lines)


def _profile_table(resolver, clusters: pd.DataFrame) -> pd.DataFrame:
    from cemlib.identity.masked import attached_records, golden_weak_fills

    recs = resolver.prepared_
    # attached orders fill a profile's gaps, never replace its values
    weak = attached_records(recs, getattr(resolver, "masked_links_", None))
    prof = golden_weak_fills(recs, clusters["profile_id"].to_numpy(), weak)
    if "profile_id" not in prof.columns:
        prof = prof.reset_index()
    for col in ("phones", "emails", "sources"):
        prof[col] = prof[col].map(lambda v: ";".join(map(str, v)))
    return prof


def identities(resolver, clusters: pd.DataFrame) -> pd.Series:
    """Per profile, the number of distinct identities it joins: its records' distinct sets of
    identifying values (the resolver's signatures). A card holder's 150 till receipts that
    carry only the card are one identity; 21 namesakes with their own phones are 21."""
    pid = clusters["profile_id"].to_numpy()
    nodes = pd.Series(resolver.node_of_record_, index=pd.Index(pid, name="profile_id"))
    return nodes[pd.notna(pid)].groupby(level=0).nunique().rename("n_identities")


def _links_table(resolver, clusters: pd.DataFrame, big: set) -> pd.DataFrame:
    lk = resolver.link_table()
    masked = getattr(resolver, "masked_links_", None)
    nodes = resolver.links_
    left, right = nodes["rid_l"].to_numpy(), nodes["rid_r"].to_numpy()
    # links join signature nodes; a node's profile is that of the record it stands for (its
    # first), the record the link names
    first = (
        pd.Series(range(len(resolver.node_of_record_))).groupby(resolver.node_of_record_).first()
    )
    pid = clusters["profile_id"].to_numpy()[first.to_numpy()]
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
    # ``accepted`` says whether the link joined its two records (a record held back from its
    # profile by the household guard refuses it: IdentityResolver.applied_links), the same
    # mechanism as the warehouse's identity.links
    if masked is not None and len(masked):  # records attached by a masked phone's partial key
        of = dict(zip(clusters["record_id"].astype(str), clusters["profile_id"], strict=True))
        frames = [out] if len(out) else []
        out = pd.concat(
            [
                *frames,
                pd.DataFrame(
                    {
                        "left_record_id": masked["left_record_id"],
                        "right_record_id": masked["right_record_id"],
                        "rule": masked["rule"],
                        "match_probability": masked["match_probability"],
                        "match_weight": masked["match_weight"],
                        "agreed": masked["agreeing"],
                        "disagreed": masked["disagreeing"],
                        "accepted": masked["accepted"],
                        "refused_by": masked["refused_by"],
                        "left_profile_id": masked["left_record_id"].astype(str).map(of),
                        "right_profile_id": masked["right_record_id"].astype(str).map(of),
                    }
                ),
            ],
            ignore_index=True,
        )
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
    seed: int = DEFAULT_SEED,
    profiles_path: str | Path | None = None,
    links_path: str | Path | None = None,
    max_profile_size: int = 50,
) -> IdentityRun:
    """What ``cem identity`` does: read, resolve, write ``record_id,profile_id`` and, when
    asked, the golden records and the links with their evidence. Nothing is written unless
    everything was computed."""
    from cemlib.identity import load_roles, resolve

    match_threshold = check_threshold(match_threshold)
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
    check_typed_roles(df, roles, str(input_path))
    unread = unread_values(df, roles)
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
    # a profile is flagged by the distinct identities it joins, not by its records: a
    # grocery card's receipts are many records of one identity
    n_ids = identities(resolver, clusters)
    big = n_ids[n_ids > max_profile_size].sort_values(ascending=False, kind="stable")
    oversized = [str(p) for p in big.index]
    profiles = _profile_table(resolver, clusters) if prof_out else None
    if profiles is not None:
        profiles["n_identities"] = profiles["profile_id"].map(n_ids).fillna(0).astype(int)
    links = _links_table(resolver, clusters, set(big.index)) if links_out else None
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
        masked=getattr(resolver, "masked_", None),
        unread=unread,
    )


@dataclass
class Keyed:
    """What :func:`key_by_profiles` did: rows in, rows keyed, their records and profiles, and
    the rows whose record is not in the map."""

    rows: int
    keyed: int
    records: int
    profiles: int

    def line(self, command: str, column: str, map_path: str | Path) -> str:
        """The one line ``cem churn`` / ``cem offers`` print on stderr."""
        return (
            f"{command}: {self.keyed:,} of {self.rows:,} rows keyed by {map_path} through "
            f"{column!r} ({self.records:,} records -> {self.profiles:,} profiles); "
            f"{self.rows - self.keyed:,} rows whose record is not in the map left out"
        )


def read_profiles_map(path: str | Path) -> pd.Series:
    """``profile_id`` by ``record_id`` from the ``record_id,profile_id`` file ``cem identity``
    writes (CSV or Parquet); errors name the file and the column."""
    df = read_file(path, what="a record_id,profile_id file (cem identity --out)", text=True)
    source = df.attrs["source"]
    for column in ("record_id", "profile_id"):
        if column not in df.columns:
            raise InputError(
                "column not found (the map is the record_id,profile_id file cem identity writes)",
                source=source,
                column=column,
            )
    rid = df["record_id"].astype("string").str.strip()
    dup = rid[rid.duplicated() & rid.notna()]
    if len(dup):
        raise InputError(
            f"{len(dup):,} record ids appear twice (e.g. {dup.iloc[0]!r}): one profile per record",
            source=source,
            column="record_id",
        )
    pid = df["profile_id"].astype("string").str.strip().replace("", pd.NA)
    return pd.Series(pid.to_numpy(), index=pd.Index(rid.to_numpy(), dtype="string"))


def key_by_profiles(
    frame: pd.DataFrame,
    profiles_map: pd.Series,
    record_column: str,
    *,
    source: str,
    map_source: str,
    keep_unmatched: bool = False,
) -> tuple[pd.DataFrame, Keyed]:
    """``frame`` with ``customer_id`` = the profile of each row's record: the value of
    ``record_column`` looked up in ``profiles_map`` (:func:`read_profiles_map`). A row whose
    record is not in the map (an anonymous receipt) is left out, or with ``keep_unmatched``
    keeps its record id as ``customer_id`` (a consent row whose refusal must still reach the
    phone or e-mail it names). An existing ``customer_id`` column is replaced. InputError
    naming the file and column when ``record_column`` is missing or none of its values is a
    record of the map (the wrong column, or another file's map)."""
    if record_column not in frame.columns:
        raise InputError(
            "record column not found (--record-column names the column holding the record id "
            "of cem identity's input)",
            source=source,
            column=record_column,
        )
    rid = frame[record_column].astype("string").str.strip()
    pid = pd.Series(profiles_map.reindex(rid.to_numpy()).to_numpy(), index=frame.index)
    hit = pid.notna().to_numpy()
    if not hit.any():
        example = rid.dropna().iloc[0] if rid.notna().any() else ""
        raise InputError(
            f"none of its {int(rid.notna().sum()):,} values is a record_id of {map_source} "
            f"(e.g. {example!r})",
            source=source,
            column=record_column,
        )
    out = frame.drop(columns=["customer_id"], errors="ignore")
    if keep_unmatched:
        out.insert(0, "customer_id", pid.fillna(rid).astype("string").to_numpy())
    else:
        out = out[hit]
        out.insert(0, "customer_id", pid[hit].astype("string").to_numpy())
        out = out.reset_index(drop=True)
    out.attrs = dict(frame.attrs)
    keyed = Keyed(
        rows=len(frame),
        keyed=int(hit.sum()),
        records=int(rid[hit].nunique()),
        profiles=int(pid[hit].nunique()),
    )
    return out, keyed
