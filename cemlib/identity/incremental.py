"""Incremental matching: a run prepares and compares only the records new since the last run.

A full run keeps its prepared (normalized) records in ``identity.prepared`` and its settings
in ``identity.state``. An incremental run then reads from ``clean.*`` only the rows that
table lacks, prepares them, and finds the earlier records they *touch*: records sharing a
phone, e-mail, loyalty card, device or national id with a new record (hub identifiers left
out: they link nothing), or the same first and last name, or last name and birth date (the
model's blocking keys). The touched records' profiles are resolved again together with the
new records, with the previous run's match threshold and cluster constraints, and scored
with the Splink model the last full run saved (``identity.model``, ``identity.model_tf``:
:func:`~cemlib.identity.store.read_model`; trained again on that part only when none was
saved with the same settings); every other profile, its golden record and its links are
kept as they were. The ids are then carried by the registry as in a full run.

``identity_mode`` (the 02 stage's parameter): ``full`` resolves everything; ``auto`` (the
default) resolves incrementally when it can (a last run that kept ``identity.prepared``, the
same settings fingerprint, an ``as_of`` not before the last one, some new records) and else
resolves everything, saying why; ``incremental`` is ``auto`` that refuses (exit 2) to run when
the settings changed, rather than silently resolving everything.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict

import pandas as pd

from cemlib.errors import InputError
from cemlib.frames import fetch_frame
from cemlib.identity.golden import golden_records
from cemlib.identity.graph import CONSTRAINTS
from cemlib.identity.model import MODEL_COLUMNS
from cemlib.identity.resolve import RULE_SCORES, IdentityResolver
from cemlib.identity.roles import PREPARED_COLUMNS, as_string
from cemlib.identity.rules import HubGuard
from cemlib.identity.store import (  # noqa: F401
    read_model,
    read_prepared,
    removed_records,
    stack,
    write_state,
)
from cemlib.identity.touched import NAME_KEYS, touched_and_gone  # noqa: F401 (NAME_KEYS: the API)

MODES: tuple[str, ...] = ("auto", "incremental", "full")
#: bump when a change of the matching code makes earlier prepared records or profiles stale
#: (3: identity.links of earlier runs may say accepted for a link whose record was held back;
#: an incremental run keeps the links it does not resolve again, so one full run rewrites them)
STATE_VERSION = 3
#: the tables an incremental run starts from (all written by one earlier run of the stage)
STATE_TABLES: tuple[str, ...] = (
    "state", "prepared", "map", "profiles", "links", "guarded", "source_hashes"
)  # fmt: skip


class PhaseClock:
    """Wall and CPU seconds (``[wall, cpu]``, the process's threads included) per phase."""

    def __init__(self, wall: float | None = None, cpu: float | None = None) -> None:
        self.wall = time.perf_counter() if wall is None else wall
        self.cpu = time.process_time() if cpu is None else cpu
        self.seconds: dict[str, list[float]] = {}

    def __call__(self, phase: str) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        self.seconds[phase] = [round(wall - self.wall, 2), round(cpu - self.cpu, 2)]
        self.wall, self.cpu = wall, cpu


def settings_fingerprint(
    *,
    seed: int,
    guard: HubGuard | None,
    match_threshold,
    household_signals: tuple[str, ...],
    sources: dict,
) -> str:
    """A short hash of everything that decides how records are matched: two runs with the same
    fingerprint may share prepared records and profiles."""
    fixed = None if match_threshold in (None, "auto") else float(match_threshold)
    payload = {
        "version": STATE_VERSION,
        "seed": int(seed),
        "guard": asdict(guard or HubGuard()),
        "match_threshold": fixed,
        "household_signals": sorted(household_signals),
        "model_columns": list(MODEL_COLUMNS),
        "rule_scores": RULE_SCORES,
        "constraints": list(CONSTRAINTS),
        "prepared_columns": list(PREPARED_COLUMNS),
        "sources": {k: [v[0], sorted(map(str, v[1].items()))] for k, v in sources.items()},
    }
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def previous_state(wh) -> dict | None:
    """The last run's ``identity.state`` row when every table an incremental run needs was
    written by that run, else None."""
    if not all(wh.has_table("identity", t) for t in STATE_TABLES):
        return None
    row = wh.con.execute(
        "SELECT fingerprint, threshold, constraints, _run_id, _as_of FROM identity.state"
    ).fetchone()
    if row is None:
        return None
    run = row[3]
    if any((wh.stamp("identity", t) or (None,))[0] != run for t in ("map", "profiles")):
        return None
    return {
        "fingerprint": row[0],
        "threshold": row[1],
        "constraints": tuple(c for c in (row[2] or "").split(",") if c),
        "run_id": run,
        "as_of": pd.Timestamp(row[4]),
    }


def choose_mode(wh, mode: str, fingerprint: str, as_of: str) -> tuple[str, str, dict | None]:
    """``(mode used, why, previous state)`` for the asked ``identity_mode``."""
    if mode not in MODES:
        raise InputError(
            f"identity_mode must be one of {', '.join(MODES)}; got {mode!r}",
            source="02_profiles",
            column="identity_mode",
        )
    if mode == "full":
        return "full", "full resolution asked for", None
    state = previous_state(wh)
    if state is None:
        return "full", "no earlier run of this version of the stage in the warehouse", None
    if pd.Timestamp(as_of) < state["as_of"]:
        return "full", f"as_of is before the last run's ({state['as_of'].date()})", None
    if state["fingerprint"] != fingerprint:
        if mode == "incremental":
            raise InputError(
                "identity_mode incremental, but the matching settings changed since the last "
                f"run ({state['run_id']}): its profiles were made with other settings; run "
                "with identity_mode full (or auto, which then resolves everything)",
                source="02_profiles",
                column="identity_mode",
            )
        return "full", "the matching settings changed since the last run", None
    why = f"last run {state['run_id']} (as_of {state['as_of'].date()}) had the same settings"
    state["model"] = read_model(wh, fingerprint)
    return "incremental", why, state


def resolver_for(state: dict, *, guard, seed, household_signals, match_threshold):
    """A resolver that decides like the last run: its threshold and cluster constraints, and
    the model the last full run trained (``state["model"]``, when saved) instead of one
    trained again on the records resolved."""
    threshold = state["threshold"]
    return IdentityResolver(
        saved_model=state.get("model"),
        guard=guard,
        match_threshold=match_threshold if threshold is None or pd.isna(threshold) else threshold,
        constraints=state["constraints"],
        constraint_tolerance=1.0,
        seed=seed,
        household_guard=bool(household_signals),
        household_signals=tuple(household_signals),
    )


def _fresh_ids(resolver, taken: set) -> pd.Series:
    """The re-resolved records' provisional profile ids, none equal to a kept profile's."""
    pid = pd.Series(resolver.profile_id_, dtype="string").where(resolver.attached_)
    clash = set(pid.dropna().unique()) & taken
    if clash:
        pid = pid.map(lambda v: v if v not in clash else "P" + hashlib.blake2b(
            f"{v}|increment".encode(), digest_size=6).hexdigest()).astype("string")  # fmt: skip
    return pid


def _kept_map_and_links(con, drop: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The last run's map rows and links that touch none of the ``drop`` records."""
    con.register("_inc_drop", drop)
    try:
        kept_map = fetch_frame(
            con,
            "SELECT m.source_table, m.record_id, m.profile_id FROM identity.map m "
            "ANTI JOIN _inc_drop d ON m.source_table = d.source AND m.record_id = d.record_id",
        )
        anti = "ANTI JOIN _inc_drop d ON l.{s}_source = d.source AND l.{s}_record_id = d.record_id"
        kept_links = fetch_frame(
            con,
            "SELECT l.* EXCLUDE (_run_id, _as_of) FROM (SELECT * FROM identity.links l "
            + anti.format(s="left")
            + ") l "
            + anti.format(s="right"),
        )
    finally:
        con.unregister("_inc_drop")
    return kept_map, kept_links


def resolve_increment(wh, new_in: pd.DataFrame, late: pd.DataFrame, removed: pd.DataFrame,
                      resolver: IdentityResolver) -> dict:  # fmt: skip
    """Resolve ``new_in`` (prepared records new since the last run, up to ``as_of``) with the
    earlier records they touch; keep everything else of the last run.

    ``late`` holds the keys of new records dated after ``as_of`` (no profile), ``removed`` the
    records no longer in the sources. Returns the full ``map``, ``links``, ``profiles`` and
    ``guarded`` of this run and the counts of the increment.
    """
    con, clock = wh.con, PhaseClock()
    touched = touched_and_gone(wh, new_in, removed)
    clock("touched")
    old = read_prepared(wh, touched)
    subset = stack(old, new_in)
    clock("read_touched")
    resolver.fit(subset)
    clock("fit")
    keys = pd.DataFrame({"source": as_string(subset["source"]),
                         "record_id": as_string(subset["record_id"])})  # fmt: skip
    drop = pd.concat(
        [keys, removed[["source", "record_id"]].astype("string"),
         late[["source", "record_id"]].astype("string")], ignore_index=True
    )  # fmt: skip
    kept_map, kept_links = _kept_map_and_links(con, drop)
    clock("kept_map_and_links")
    kept_ids = set(kept_map["profile_id"].dropna().unique())
    pid = _fresh_ids(resolver, kept_ids)
    rmap = pd.DataFrame(
        {
            "source_table": pd.concat(
                [as_string(kept_map["source_table"]), keys["source"],
                 as_string(late["source"])], ignore_index=True),
            "record_id": pd.concat(
                [as_string(kept_map["record_id"]), keys["record_id"],
                 as_string(late["record_id"])], ignore_index=True),
            "profile_id": pd.concat(
                [as_string(kept_map["profile_id"]), pid,
                 pd.Series(pd.NA, index=range(len(late)), dtype="string")], ignore_index=True),
        }
    )  # fmt: skip
    old_profiles = wh.read_table("identity", "profiles")
    old_profiles = old_profiles[old_profiles["profile_id"].isin(kept_ids).to_numpy()]
    fresh = golden_records(subset, profile_id=pid)
    profiles = pd.concat([old_profiles, fresh], ignore_index=True)
    clock("golden_records")
    links = pd.concat([kept_links, resolver.link_table()], ignore_index=True)
    guarded_old = wh.read_table("identity", "guarded")
    g_new = resolver.guarded_.assign(value=resolver.guarded_["value"].astype(str))
    both = pd.concat([g_new, guarded_old], ignore_index=True)
    guarded = both.drop_duplicates(["kind", "value"], keep="first").reset_index(drop=True)
    clock("links_and_guarded")
    return {
        "map": rmap,
        "links": links,
        "profiles": profiles,
        "guarded": guarded,
        "subset": subset,
        "counts": {
            "new_records": len(new_in) + len(late),
            "new_after_as_of": len(late),
            "removed_records": len(removed),
            "earlier_records_resolved_again": len(old),
            "profiles_kept_as_they_were": len(kept_ids),
            "records_resolved": len(subset),
            "model": "saved by run " + str(resolver.saved_model["run_id"])
            if resolver.saved_model
            else "trained on the records resolved",
        },
        "phases": clock.seconds,
        "scope": {
            "rows": slice(len(kept_map), len(kept_map) + len(keys)),
            "gone": removed,
            "links": slice(len(kept_links), None),
            "kept_ids": kept_ids,
        },  # fmt: skip
        "kept_unattached": int(kept_map["profile_id"].isna().sum()),
    }
