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

import contextlib
import hashlib
import json
import time
from dataclasses import asdict

import numpy as np
import pandas as pd

from cemlib.errors import InputError
from cemlib.frames import fetch_frame
from cemlib.identity.golden import golden_records
from cemlib.identity.graph import CONSTRAINTS
from cemlib.identity.incremental_direct import direct_candidates, joined_parts
from cemlib.identity.model import MODEL_COLUMNS
from cemlib.identity.resolve import RULE_SCORES, IdentityResolver
from cemlib.identity.roles import PREPARED_COLUMNS, as_string
from cemlib.identity.rules import HubGuard
from cemlib.identity.sources import row_hash_kind
from cemlib.identity.store import (  # noqa: F401
    read_model,
    read_prepared,
    removed_records,
    stack,
    write_state,
)
from cemlib.identity.touched import (  # noqa: F401 (NAME_KEYS: the API)
    NAME_KEYS,
    TOUCHED_PROFILES,
    refused_elsewhere,
    touched_and_gone,
)

MODES: tuple[str, ...] = ("auto", "incremental", "full")
#: bump when a change of the matching code makes earlier prepared records or profiles stale
#: (3: identity.links of earlier runs may say accepted for a link whose record was held back;
#: an incremental run keeps the links it does not resolve again, so one full run rewrites them)
STATE_VERSION = 3
#: the tables an incremental run starts from (all written by one earlier run of the stage)
STATE_TABLES: tuple[str, ...] = (
    "state", "prepared", "map", "profiles", "links", "guarded", "source_hashes"
)  # fmt: skip
#: an incremental run writes in place: it deletes the rows of the records and profiles it
#: resolved again and inserts the new ones (:func:`write_increment`), in one transaction;
#: False: it rewrites every table from the kept rows and the new ones (the reference the
#: in-place writes are tested against)
IN_PLACE = True
#: a new record whose identifiers reach one kept profile and that can change none of the last
#: run's decisions joins it without the profile being resolved again
#: (:mod:`cemlib.identity.incremental_direct`); False: every touched profile is resolved again
JOIN_DIRECTLY = True


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
    kind = (
        "row_hash_kind"
        if "row_hash_kind" in set(wh.sql("DESCRIBE identity.state")["column_name"])
        else "NULL"
    )
    row = wh.con.execute(
        f"SELECT fingerprint, threshold, constraints, _run_id, _as_of, {kind} FROM identity.state"
    ).fetchall()[0]
    if row is None:
        return None
    run = row[3]
    if any(_last_writer(wh, t) != run for t in ("map", "profiles", "prepared")):
        return None
    return {
        "fingerprint": row[0],
        "threshold": row[1],
        "constraints": tuple(c for c in (row[2] or "").split(",") if c),
        "run_id": run,
        "as_of": pd.Timestamp(row[4]),
        "row_hash_kind": row[5],
    }


def _last_writer(wh, table: str) -> str | None:
    """The run that last wrote ``identity.<table>``: its last ``meta.table_log`` row (every
    write of the stage, whole or in place, logs one), else the table's ``_run_id`` stamp. An
    in-place write leaves earlier runs' stamps on the rows it kept, so the log is the stamp a
    state is checked against, read without a pass over the table."""
    row = None
    if wh.has_table("meta", "table_log"):
        row = wh.con.execute(
            "SELECT arg_max(run_id, written_at) FROM meta.table_log "
            "WHERE schema_name = 'identity' AND table_name = ?",
            [table],
        ).fetchall()[0]
    if row is None or row[0] is None:
        row = wh.stamp("identity", table) or (None,)
    return row[0]


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
    if state["row_hash_kind"] != row_hash_kind(wh.con):
        # its source row hashes can't be compared: a changed record could be missed
        return "full", "the last run hashed the source rows otherwise (another version)", None
    why = f"last run {state['run_id']} (as_of {state['as_of'].date()}) had the same settings"
    state["model"] = read_model(wh, fingerprint)
    return "incremental", why, state


class IncrementalResolver(IdentityResolver):
    """An :class:`IdentityResolver` whose cluster constraints are the last run's as they were
    (``constraints`` with a ``constraint_tolerance`` of 1: no rate can give one up), so the
    silver pairs that would measure the rates are not drawn: on the records resolved again
    they could not change the outcome (a tenth of an incremental fit)."""

    def _active_constraints(self, prepared: pd.DataFrame) -> tuple[str, ...]:
        if self.constraint_tolerance < 1.0:
            return super()._active_constraints(prepared)
        self.silver_disagreement_ = {}
        self.disagreement_rates_ = (
            self.model_.disagreement_rates() if self.model_ is not None else {}
        )
        return tuple(self.constraints)


def resolver_for(state: dict, *, guard, seed, household_signals, match_threshold):
    """A resolver that decides like the last run: its threshold and cluster constraints, and
    the model the last full run trained (``state["model"]``, when saved) instead of one
    trained again on the records resolved."""
    threshold = state["threshold"]
    return IncrementalResolver(
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
    records no longer in the sources. Returns the ``map`` rows, ``links``, golden records
    (``profiles``) and ``guarded`` identifiers of the records resolved again (written in place
    by :func:`write_increment`), the keys they replace (``drop``) and the ids of the profiles
    they replace (``gone_ids``), and the counts of the increment. With :data:`IN_PLACE` False
    the tables are the whole ones instead, the kept rows read from the last run (the reference
    an in-place run is tested against).
    """
    con, clock = wh.con, PhaseClock()
    threshold = resolver.match_threshold
    fixed = threshold is not None and threshold != "auto"
    model = (resolver.saved_model, float(threshold)) if resolver.saved_model and fixed else None
    direct = None
    if model is not None and JOIN_DIRECTLY:
        # new records that join one profile without resolving it again (incremental_direct)
        direct = direct_candidates(
            wh, new_in, hub_records=(resolver.guard or HubGuard()).hub_records,
            household_statuses=tuple(resolver.household_statuses),
        )  # fmt: skip
    touched, known, *rest = touched_and_gone(wh, new_in, removed, model=model, direct=direct)
    joins = rest[0] if rest else direct_candidates(wh, new_in.iloc[:0], hub_records=0)
    joined = np.zeros(len(new_in), dtype=bool)
    joined[joins["i"].to_numpy(dtype=np.int64)] = True
    clock("touched")
    old = read_prepared(wh, touched)
    subset = stack(old, new_in[~joined].reset_index(drop=True))
    # the identifiers no new record carries keep the last run's status, and the records
    # resolved again keep the household evidence of links refused to records not read again
    resolver.known_identifiers = known
    resolver.refused_elsewhere = refused_elsewhere(wh, subset)
    clock("read_touched")
    resolver.fit(subset)
    clock("fit")
    keys = pd.DataFrame({"source": as_string(subset["source"]),
                         "record_id": as_string(subset["record_id"])})  # fmt: skip
    jmap, jgolden, jlinks = joined_parts(wh, new_in[joined].reset_index(drop=True),
                                         joins["profile_id"].astype(str).to_numpy())  # fmt: skip
    drop = pd.concat(
        [keys, removed[["source", "record_id"]].astype("string"),
         late[["source", "record_id"]].astype("string"),
         jmap[["source_table", "record_id"]].rename(columns={"source_table": "source"})],
        ignore_index=True,
    ).drop_duplicates(ignore_index=True)  # fmt: skip
    counts = _counts(new_in, late, removed, old, 0, subset, resolver)
    counts |= {"records_joined_directly": int(joined.sum()),
               "profiles_joined_directly": int(joins["profile_id"].nunique()),
               "not_joined_directly": int((~joined).sum())}  # fmt: skip
    if not IN_PLACE or not all(wh.has_table("identity", t) for t in ("registry", "record_ids")):
        # a warehouse of a version before the registry: its tables are rewritten once
        con.execute(f"DROP TABLE IF EXISTS {TOUCHED_PROFILES}")
        return _whole_increment(wh, new_in, subset, keys, drop, late, removed, resolver, old,
                                clock, (jmap, jgolden, jlinks), counts)  # fmt: skip
    gone_ids, n_kept, kept_unattached = _replaced_profiles(con, drop)
    clock("kept_map_and_links")
    pid = _fresh_ids(resolver, _kept_among(con, resolver, gone_ids))
    rmap = pd.DataFrame(
        {"source_table": keys["source"], "record_id": keys["record_id"], "profile_id": pid.array}
    )
    if len(late):  # records dated after as_of keep a row, with no profile
        late_rows = pd.DataFrame(
            {
                "source_table": late["source"].astype("string").array,
                "record_id": late["record_id"].astype("string").array,
                "profile_id": pd.array([pd.NA] * len(late), dtype="string"),
            }
        )
        rmap = pd.concat([rmap, late_rows], ignore_index=True)
    if len(jmap):  # the records joining a kept profile directly, with its id
        rmap = pd.concat([rmap, jmap], ignore_index=True)
    fresh = golden_records(subset, profile_id=pid)
    if len(jgolden):
        fresh = pd.concat([fresh, jgolden], ignore_index=True)
    clock("golden_records")
    links = resolver.link_table()
    if len(jlinks):
        links = pd.concat([links, jlinks], ignore_index=True)
    guarded = resolver.guarded_.assign(value=resolver.guarded_["value"].astype(str))
    clock("links_and_guarded")
    return {
        "in_place": True,
        "map": rmap,
        "links": links,
        "profiles": fresh,
        "guarded": guarded,
        "subset": subset,
        "drop": drop,
        "gone_ids": gone_ids,
        "joined_ids": sorted(set(joins["profile_id"].astype(str))),
        "counts": counts | {"profiles_kept_as_they_were": int(n_kept)},
        "phases": clock.seconds,
        "scope": {
            "rows": slice(0, len(keys)),
            "gone": removed,
            "links": slice(0, None),
            "gone_ids": gone_ids,
        },  # fmt: skip
        "kept_unattached": kept_unattached,
        "late": late,
    }


def _counts(new_in, late, removed, old, n_kept: int, subset, resolver) -> dict:
    return {
        "new_records": len(new_in) + len(late),
        "new_after_as_of": len(late),
        "removed_records": len(removed),
        "earlier_records_resolved_again": len(old),
        "profiles_kept_as_they_were": int(n_kept),
        "records_resolved": len(subset),
        "model": "saved by run " + str(resolver.saved_model["run_id"])
        if resolver.saved_model
        else "trained on the records resolved",
    }


def _replaced_profiles(con, drop: pd.DataFrame) -> tuple[list[str], int, int]:
    """The ids of the last run's profiles holding a ``drop`` record (resolved again or losing
    a record: every record of them is in ``drop``, :func:`touched_and_gone`), how many other
    profiles are kept as they were, and how many kept records are attached to none. Joins on
    the ``drop`` keys and the profiles table, no pass over the whole map into Python."""
    con.register("_inc_drop", drop)
    try:
        if _has_temp(con, TOUCHED_PROFILES):
            # found by touched_and_gone: the profiles of the touched set and of the deleted
            # records, those of the ``drop`` records (the others are new: no map row)
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _inc_gone_ids AS SELECT DISTINCT "
                f"CAST(profile_id AS VARCHAR) AS profile_id FROM {TOUCHED_PROFILES}"
            )
        else:
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _inc_gone_ids AS SELECT DISTINCT "
                "CAST(m.profile_id AS VARCHAR) AS profile_id FROM identity.map m SEMI JOIN "
                "_inc_drop d ON m.source_table = d.source AND m.record_id = d.record_id "
                "WHERE m.profile_id IS NOT NULL"
            )
        gone = sorted(r[0] for r in con.execute("SELECT profile_id FROM _inc_gone_ids").fetchall())
        n_kept = con.execute(
            "SELECT count(*) FROM identity.profiles p ANTI JOIN _inc_gone_ids g "
            "ON CAST(p.profile_id AS VARCHAR) = g.profile_id"
        ).fetchall()[0][0]
        unattached = con.execute(
            "SELECT count(*) FROM (SELECT source_table, record_id FROM identity.map "
            "WHERE profile_id IS NULL) m ANTI JOIN _inc_drop d "
            "ON m.source_table = d.source AND m.record_id = d.record_id"
        ).fetchall()[0][0]
    finally:
        con.unregister("_inc_drop")
        con.execute("DROP TABLE IF EXISTS _inc_gone_ids")
        con.execute(f"DROP TABLE IF EXISTS {TOUCHED_PROFILES}")
    return gone, int(n_kept), int(unattached)


def _has_temp(con, name: str) -> bool:
    return bool(con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = ?", [name]
    ).fetchall()[0][0])  # fmt: skip


def _kept_among(con, resolver, gone_ids: list[str]) -> set:
    """The ids of kept profiles (in ``identity.profiles``, not replaced) among the re-resolved
    clusters' provisional ids: those would clash (:func:`_fresh_ids`)."""
    cand = pd.Series(resolver.profile_id_, dtype="string").where(resolver.attached_).dropna()
    con.register("_inc_cand", pd.DataFrame({"profile_id": cand.unique().astype(object)}))
    con.register("_inc_gone", pd.DataFrame({"profile_id": pd.Series(gone_ids, dtype=object)}))
    try:
        return {r[0] for r in con.execute(
            "SELECT CAST(p.profile_id AS VARCHAR) FROM identity.profiles p SEMI JOIN _inc_cand c "
            "ON CAST(p.profile_id AS VARCHAR) = c.profile_id "
            "WHERE CAST(p.profile_id AS VARCHAR) NOT IN (SELECT profile_id FROM _inc_gone)"
        ).fetchall()}  # fmt: skip
    finally:
        con.unregister("_inc_cand")
        con.unregister("_inc_gone")


def _whole_increment(wh, new_in, subset, keys, drop, late, removed, resolver, old, clock,
                     joined, counts) -> dict:  # fmt: skip
    """:func:`resolve_increment`'s tables as whole ones (the kept rows of the last run with the
    re-resolved ones), for a run that rewrites every table (:data:`IN_PLACE` False)."""
    con = wh.con
    jmap, jgolden, jlinks = joined
    kept_map, kept_links = _kept_map_and_links(con, drop)
    if len(jmap):  # the records joining a kept profile directly: kept ids, kept links
        kept_map = pd.concat([kept_map, jmap], ignore_index=True)
        kept_links = pd.concat([kept_links, jlinks], ignore_index=True)
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
    old_profiles = old_profiles[old_profiles["profile_id"].isin(kept_ids).to_numpy()
                                & ~old_profiles["profile_id"].isin(jgolden["profile_id"])
                                .to_numpy()]  # fmt: skip
    if len(jgolden):
        old_profiles = pd.concat([old_profiles, jgolden], ignore_index=True)
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
        "in_place": False,
        "map": rmap,
        "links": links,
        "profiles": profiles,
        "guarded": guarded,
        "subset": subset,
        "counts": counts | {"profiles_kept_as_they_were": len(kept_ids)},
        "phases": clock.seconds,
        "scope": {
            "rows": slice(len(kept_map), len(kept_map) + len(keys)),
            "gone": removed,
            "links": slice(len(kept_links), None),
            "kept_ids": kept_ids,
        },  # fmt: skip
        "kept_unattached": int(kept_map["profile_id"].isna().sum()),
    }


def write_increment(wh, result, inc: dict, *, run_id: str, as_of: str, fingerprint: str,
                    mode: str, phases: PhaseClock) -> None:  # fmt: skip
    """Write an in-place increment (:func:`resolve_increment`): carry the ids over the profiles
    resolved again (:func:`~cemlib.identity.carry.carry_in_place`), then, in one transaction
    (a failed run leaves the last run's tables whole), delete the rows of the records and
    profiles resolved again (and of the records gone from the sources) and insert the new
    ones in ``identity.map``, ``profiles``, ``links``, ``guarded``, ``registry``,
    ``record_ids``, ``prepared`` and ``source_hashes``; replace ``changes`` and ``state``.
    The kept rows are not rewritten: a month's increment touches a few percent of them.
    Then ``result`` gets the whole ``profiles``, ``links`` and ``guarded`` back (the report
    draws on them) and the figures of the whole map."""
    from cemlib.identity.carry import carry_in_place, previous_ids_table, record_ids_query
    from cemlib.identity.registry import ACTIVE
    from cemlib.identity.store import (
        drop_run_hashes,
        log_write,
        replace_rows,
        restamp,
        state_frame,
        update_prepared,
        update_source_hashes,
    )

    con = wh.con
    as_of_d = pd.Timestamp(as_of).date()
    registry = carry_in_place(wh, result, run_id=run_id, as_of=as_of, scope=inc["scope"])
    phases("carry_ids")
    drop = inc["drop"].astype(str)
    frames = {
        "_inc_w_drop": drop,
        "_inc_w_gone": pd.DataFrame(
            {"profile_id": pd.Series([*inc["gone_ids"], *inc["joined_ids"]], dtype=object)}
        ),  # the profiles resolved again, and those new records joined directly
        "_inc_w_reg": pd.DataFrame({"profile_id": pd.Series(registry["replaced"], dtype=object)}),
        "_inc_w_scope": pd.DataFrame(
            {"profile_id": pd.Series(registry["in_scope"], dtype=object)}
        ),  # fmt: skip
        "_ids_map": result.map[["source_table", "record_id", "profile_id"]],
    }
    for name, frame in frames.items():
        con.register(name, frame)
    in_drop = (
        "EXISTS (SELECT 1 FROM _inc_w_drop d WHERE d.source = {t}.{s} AND d.record_id = {t}.{r})"
    )
    profiles = result.profiles.copy()
    profiles["sources"] = profiles["sources"].map(lambda v: list(v))
    try:
        with wh.transaction():
            # each record's last id, from the ids before this run's rows replace them
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _inc_w_ids AS "
                + record_ids_query(previous_ids_table(wh)),
                [run_id, as_of_d],
            )  # fmt: skip
            in_map = in_drop.format(t="x", s="source_table", r="record_id")
            replace_rows(
                con, "record_ids", "_inc_w_ids", scope=in_map, run_id=run_id, as_of=as_of_d
            )
            n = con.execute("SELECT count(*) FROM identity.record_ids").fetchall()[0][0]
            log_write(con, "record_ids", run_id, as_of_d, n)
            replace_rows(con, "map", result.map, scope=in_map, run_id=run_id, as_of=as_of_d)
            replace_rows(con, "profiles", profiles, run_id=run_id, as_of=as_of_d,
                         scope="CAST(x.profile_id AS VARCHAR) IN (SELECT profile_id FROM _inc_w_gone)")  # fmt: skip
            ends = (in_drop.format(t="x", s="left_source", r="left_record_id") + " OR "
                    + in_drop.format(t="x", s="right_source", r="right_record_id"))  # fmt: skip
            replace_rows(con, "links", result.links, scope=ends, run_id=run_id, as_of=as_of_d)
            con.register("_inc_w_guarded", result.guarded[["kind", "value"]])
            replace_rows(con, "guarded", result.guarded, run_id=run_id, as_of=as_of_d,
                         scope="EXISTS (SELECT 1 FROM _inc_w_guarded g WHERE g.kind = x.kind "
                         "AND g.value = CAST(x.value AS VARCHAR))")  # fmt: skip
            con.execute(
                "UPDATE identity.registry SET last_run_id = ?, last_seen = ? WHERE status = ? "
                "AND CAST(profile_id AS VARCHAR) NOT IN (SELECT profile_id FROM _inc_w_scope)",
                [run_id, as_of_d, ACTIVE],
            )
            replace_rows(con, "registry", result.registry, run_id=run_id, as_of=as_of_d,
                         scope="CAST(x.profile_id AS VARCHAR) IN (SELECT profile_id FROM _inc_w_reg)")  # fmt: skip
            for table in ("map", "profiles", "links", "guarded", "registry"):
                restamp(con, table, run_id=run_id, as_of=as_of_d)
            changes = result.changes.assign(
                run_id=pd.Series(run_id, index=result.changes.index, dtype="string"))  # fmt: skip
            wh.write_table("identity", "changes", changes, run_id=run_id, as_of=as_of)
            n = update_prepared(con, inc["new_in"], inc["removed"], run_id=run_id, as_of=as_of_d)
            update_source_hashes(wh, run_id=run_id, as_of=as_of, keys=_increment_keys(inc))
            state = state_frame(fingerprint=fingerprint, mode=mode, resolver=result.resolver,
                                records=n, phases=phases.seconds,
                                hash_kind=row_hash_kind(con))  # fmt: skip
            wh.write_table("identity", "state", state, run_id=run_id, as_of=as_of)
        phases("write_tables")  # committed (DuckDB checkpoints the changed tables here)
    finally:
        for name in [*frames, "_inc_w_guarded"]:
            with contextlib.suppress(Exception):
                con.unregister(name)
        con.execute("DROP TABLE IF EXISTS _inc_w_ids")
        drop_run_hashes(con)
    # the whole tables for the report, as Arrow-backed frames (a quarter of .df()'s CPU)
    for name in ("profiles", "links", "guarded"):
        setattr(
            result,
            name,
            fetch_frame(con, f"SELECT * EXCLUDE (_run_id, _as_of) FROM identity.{name}"),
        )
    result.figures.update(
        warehouse_figures(
            con,
            result.resolver,
            more_unattached={
                "unchanged_since_last_run": inc["kept_unattached"],
                "after_as_of": inc["counts"]["new_after_as_of"],
            },
        )  # fmt: skip
    )
    phases("read_back")


def _increment_keys(inc: dict) -> pd.DataFrame:
    """``source, record_id`` of the increment's records: new (up to ``as_of`` or after it),
    changed at the source and removed (the changed ones are among ``removed``)."""
    parts = [inc["new_in"], inc["late"], inc["removed"]]
    return pd.concat(
        [pd.DataFrame({"source": as_string(p["source"]), "record_id": as_string(p["record_id"])})
         for p in parts], ignore_index=True
    )  # fmt: skip


def warehouse_figures(con, resolver, *, more_unattached: dict[str, int]) -> dict:
    """The stage's headline figures (:func:`cemlib.identity.stage._figures`) counted in the
    warehouse's ``identity.map``, ``links`` and ``guarded`` once an increment is written in
    place: the unattached records by reason are the resolver's (the records resolved again)
    and ``more_unattached``."""
    from cemlib.identity.resolve import HELD_BACK_REASONS

    by_source = fetch_frame(
        con,
        "SELECT CAST(source_table AS VARCHAR) AS source_table, count(*) AS records, "
        "count(profile_id) AS attached FROM identity.map GROUP BY 1 ORDER BY 1",
    )
    by_source["records"] = by_source["records"].astype("int64")
    by_source["attached"] = by_source["attached"].astype("int64")
    by_source["unattached"] = by_source["records"] - by_source["attached"]
    n_profiles = con.execute("SELECT count(DISTINCT profile_id) FROM identity.map").fetchall()[0][0]
    held = ", ".join("'" + r + "'" for r in HELD_BACK_REASONS) or "NULL"
    lk = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE accepted), "
        "count(*) FILTER (WHERE refused_by = 'guard'), "
        "count(*) FILTER (WHERE refused_by IN ('constraint', 'bridge')), "
        f"count(*) FILTER (WHERE refused_by IN ({held})) FROM identity.links"
    ).fetchall()[0]
    g = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE status = 'hub') FROM identity.guarded"
    ).fetchall()[0]
    reasons = pd.Series(resolver.unattached_reason_, dtype=object).value_counts()
    by_reason = {str(k): int(v) for k, v in reasons.items()}
    by_reason |= {k: int(n) for k, n in more_unattached.items() if n}
    records = int(by_source["records"].sum())
    attached = int(by_source["attached"].sum())
    corroborated = getattr(resolver, "corroborated_", None)
    return {
        "records": records,
        "attached_records": attached,
        "unattached_records": records - attached,
        "unattached_by_reason": by_reason,
        "corroborated_records": 0 if corroborated is None else int(corroborated.sum()),
        "profiles": int(n_profiles),
        "links": int(lk[0]),
        "links_accepted": int(lk[1]),
        "links_refused_by_chain_guard": int(lk[2]),
        "links_refused_by_constraint": int(lk[3]),
        "links_refused_by_household_guard": int(lk[4]),
        "match_threshold": resolver.threshold_,
        "constraints": list(resolver.constraints_),
        "guarded_identifiers": int(g[0]),
        "hub_identifiers": int(g[1]),
        "by_source": by_source,
    }
