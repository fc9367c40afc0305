"""Incremental matching: a run prepares and compares only the records new since the last run.

A full run keeps its prepared (normalized) records in ``identity.prepared`` and its settings
in ``identity.state``. An incremental run then reads from ``clean.*`` only the rows that
table lacks, prepares them, and finds the earlier records they *touch*: records sharing a
phone, e-mail, loyalty card, device or national id with a new record (hub identifiers left
out: they link nothing), or the same first and last name, or last name and birth date (the
model's blocking keys). The touched records' profiles are resolved again together with the
new records, with the previous run's match threshold and cluster constraints (the model's
``m``/``u`` are trained again on that part); every other profile, its golden record and its
links are kept as they were. The ids are then carried by the registry as in a full run.

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

import numpy as np
import pandas as pd

from cemlib.errors import InputError
from cemlib.frames import fetch_frame
from cemlib.identity.golden import golden_records
from cemlib.identity.graph import CONSTRAINTS
from cemlib.identity.model import MODEL_COLUMNS
from cemlib.identity.repeats import repeated_records
from cemlib.identity.resolve import RULE_SCORES, IdentityResolver
from cemlib.identity.roles import PREPARED_COLUMNS, as_string, concat_categoricals
from cemlib.identity.rules import HubGuard
from cemlib.identity.touched import NAME_KEYS, touched_records  # noqa: F401 (NAME_KEYS: the API)

MODES: tuple[str, ...] = ("auto", "incremental", "full")
#: bump when a change of the matching code makes earlier prepared records or profiles stale
STATE_VERSION = 1
#: the tables an incremental run starts from (all written by one earlier run of the stage)
STATE_TABLES: tuple[str, ...] = ("state", "prepared", "map", "profiles", "links", "guarded")
#: prepared columns kept as they are (the others are text held as categoricals)
_KEYS = ("record_id", "source")


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
    return "incremental", why, state


def write_state(wh, prepared: pd.DataFrame | None, *, fingerprint, resolver, run_id, as_of,
                mode: str, new_rows: pd.DataFrame | None = None, removed=None,
                phases: dict | None = None) -> None:  # fmt: skip
    """``identity.state`` and ``identity.prepared``: replaced by a full run (``prepared``),
    appended to by an incremental one (``new_rows``, less the ``removed`` records).
    ``phases``: the stage's ``[wall, CPU]`` seconds per phase so far (JSON in the state)."""
    con = wh.con
    as_of_d = pd.Timestamp(as_of).date()
    with wh.transaction():
        if prepared is not None:
            _write_prepared(con, prepared, "CREATE OR REPLACE TABLE identity.prepared AS", run_id,
                            as_of_d)  # fmt: skip
        else:
            if removed is not None and len(removed):
                con.register("_inc_removed_w", removed)
                con.execute(
                    "DELETE FROM identity.prepared p WHERE EXISTS (SELECT 1 FROM _inc_removed_w r "
                    "WHERE r.source = p.source AND r.record_id = p.record_id)"
                )
                con.unregister("_inc_removed_w")
            if new_rows is not None and len(new_rows):
                _write_prepared(con, new_rows, "INSERT INTO identity.prepared", run_id, as_of_d)
            # the table is this run's as a whole: its stamp says so
            con.execute("UPDATE identity.prepared SET _run_id = ?, _as_of = ?", [run_id, as_of_d])
        n = con.execute("SELECT count(*) FROM identity.prepared").fetchone()[0]
        con.execute(
            "INSERT INTO meta.table_log VALUES ('identity', 'prepared', ?, ?, ?, ?)",
            [run_id, as_of_d, n, pd.Timestamp.now().to_pydatetime()],
        )
    state = pd.DataFrame(
        {
            "fingerprint": [fingerprint],
            "mode": [mode],
            "threshold": pd.array([resolver.threshold_], dtype="Float64"),
            "constraints": [",".join(resolver.constraints_)],
            "records": [int(n)],
            "phases": [json.dumps(phases or {})],
        }
    )
    wh.write_tables("identity", {"state": state}, run_id=run_id, as_of=as_of)


def _write_prepared(con, frame: pd.DataFrame, verb: str, run_id: str, as_of) -> None:
    """``frame``'s prepared columns into ``identity.prepared`` (``verb``: create or insert),
    scanned by DuckDB as an Arrow table (the Arrow strings and categories of the frame
    without copies; scanning the pandas frame cost +0.7 GiB at 200,000 people)."""
    import pyarrow as pa

    cols = []
    for c in PREPARED_COLUMNS:
        if c == "updated_at":
            cols.append(f'CAST("{c}" AS TIMESTAMP) AS "{c}"')
        else:
            cols.append(f'CAST("{c}" AS VARCHAR) AS "{c}"')
    table = pa.Table.from_pandas(
        pd.DataFrame({c: frame[c] for c in PREPARED_COLUMNS}, copy=False), preserve_index=False
    )
    con.register("_inc_prepared", table)
    try:
        con.execute(
            f"{verb} SELECT {', '.join(cols)}, CAST(? AS VARCHAR) AS _run_id, "
            "CAST(? AS DATE) AS _as_of FROM _inc_prepared",
            [run_id, as_of],
        )
    finally:
        con.unregister("_inc_prepared")
        del table


def removed_records(wh, tables_of: dict[str, tuple[str, str]]) -> pd.DataFrame:
    """Prepared records whose row is no longer in its source table (deleted at the source)."""
    parts = []
    for name, (schema, id_col) in tables_of.items():
        parts.append(
            f"SELECT p.source, p.record_id FROM identity.prepared p WHERE p.source = '{name}' "
            f'AND NOT EXISTS (SELECT 1 FROM {schema}."{name}" t '
            f'WHERE CAST(t."{id_col}" AS VARCHAR) = p.record_id)'
        )
    gone_sources = ", ".join(f"'{n}'" for n in tables_of) or "''"
    parts.append(
        f"SELECT source, record_id FROM identity.prepared WHERE source NOT IN ({gone_sources})"
    )
    return fetch_frame(wh.con, " UNION ALL ".join(parts))


def read_prepared(wh, keys: pd.DataFrame) -> pd.DataFrame:
    """The stored prepared records of ``keys`` (``source, record_id``), text as categoricals
    like freshly prepared records."""
    con = wh.con
    con.register("_inc_want", keys[["source", "record_id"]])
    try:
        cols = ", ".join(f'p."{c}"' for c in PREPARED_COLUMNS)
        frame = fetch_frame(
            con,
            f"SELECT {cols} FROM identity.prepared p SEMI JOIN _inc_want k "
            "ON p.source = k.source AND p.record_id = k.record_id "
            "ORDER BY p.source, p.record_id",
        )
    finally:
        con.unregister("_inc_want")
    for c in PREPARED_COLUMNS:
        if c not in _KEYS and c != "updated_at":
            frame[c] = frame[c].astype("category")
    return frame


def _object_categories(v: pd.Series) -> pd.Categorical:
    """A categorical whose categories are Python strings (prepared and stored records differ)."""
    if not isinstance(v.dtype, pd.CategoricalDtype):
        return pd.Categorical(v.to_numpy(dtype=object, na_value=None))
    cats = v.cat.categories
    return pd.Categorical.from_codes(
        v.cat.codes.to_numpy(), categories=pd.Index(np.asarray(cats, dtype=object), dtype=object)
    )


def stack(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Prepared frames one under the other (categoricals united, not turned into objects)."""
    out = {}
    for c in PREPARED_COLUMNS:
        x, y = a[c], b[c]
        if isinstance(x.dtype, pd.CategoricalDtype) or isinstance(y.dtype, pd.CategoricalDtype):
            out[c] = pd.Series(concat_categoricals([_object_categories(x), _object_categories(y)]))
        elif c == "updated_at":
            out[c] = pd.concat([pd.to_datetime(x), pd.to_datetime(y)], ignore_index=True).astype(
                "datetime64[ns]"
            )
        else:
            out[c] = pd.concat([as_string(x), as_string(y)], ignore_index=True)
    return pd.DataFrame(out)


def resolver_for(state: dict, *, guard, seed, household_signals, match_threshold):
    """A resolver that decides like the last run: its threshold and cluster constraints."""
    threshold = state["threshold"]
    return IdentityResolver(
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


def _touched_and_gone(wh, new_in: pd.DataFrame, removed: pd.DataFrame) -> pd.DataFrame:
    """Keys of the earlier records to resolve again: those ``new_in`` touches and the other
    records of profiles that lost a record (``removed``), the removed records left out."""
    con = wh.con
    touched = touched_records(wh, new_in)
    gone = set(zip(removed["source"], removed["record_id"], strict=True))
    if gone:  # the profiles of deleted records are resolved again too
        con.register("_inc_gone", removed)
        extra = fetch_frame(
            con,
            "SELECT m.source_table AS source, m.record_id FROM identity.map m WHERE m.profile_id "
            "IN (SELECT m2.profile_id FROM identity.map m2 JOIN _inc_gone g "
            "ON m2.source_table = g.source AND m2.record_id = g.record_id)",
        )
        con.unregister("_inc_gone")
        touched = pd.concat([touched, extra], ignore_index=True).drop_duplicates()
        key = touched["source"].astype(str) + "|" + touched["record_id"].astype(str)
        gone_keys = {f"{s}|{r}" for s, r in gone}
        touched = touched[~key.isin(gone_keys).to_numpy()]
    return touched


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


def _split_repeats(wh, new_in, removed, hub_records):
    """``(repeats, to resolve, earlier records to resolve again)``: the new records that repeat
    an earlier record whose profile is kept (:mod:`cemlib.identity.repeats`; with their rows
    of ``new_in`` in ``rows``), the new records to resolve (the others: novel, or repeating a
    record resolved again) and the earlier records they touch."""
    reps = repeated_records(wh, new_in, removed, hub_records=hub_records)
    is_rep = np.zeros(len(new_in), dtype=bool)
    is_rep[reps["pos"].to_numpy()] = True
    touched = _touched_and_gone(wh, new_in[~is_rep], removed)
    if not len(touched) and is_rep.all():  # nothing to resolve: resolve the repeats as new
        reps, is_rep = reps.iloc[:0], np.zeros(len(new_in), dtype=bool)
        touched = _touched_and_gone(wh, new_in, removed)
    twin = reps["twin_source"] + "|" + reps["twin_record_id"]
    again = twin.isin(set(touched["source"] + "|" + touched["record_id"])).to_numpy()
    is_rep[reps["pos"].to_numpy()[again]] = False  # a repeat goes with its twin
    reps = reps[~again].reset_index(drop=True)
    return reps, new_in[~is_rep].reset_index(drop=True), touched


def _profiles_with_repeats(wh, old_profiles, kept_map, reps, rows) -> pd.DataFrame:
    """``old_profiles`` with the golden records of the profiles that got repeats (``rows``: the
    repeating prepared records) made again from all their records."""
    pid = reps["twin_profile_id"]
    got = set(pid.dropna())
    if not got:
        return old_profiles
    theirs = kept_map[kept_map["profile_id"].isin(got).to_numpy()]
    earlier = read_prepared(
        wh, pd.DataFrame({"source": theirs["source_table"], "record_id": theirs["record_id"]})
    )
    by_key = dict(zip(theirs["source_table"] + "|" + theirs["record_id"], theirs["profile_id"],
                      strict=True))  # fmt: skip
    earlier_pid = (as_string(earlier["source"]) + "|" + as_string(earlier["record_id"])).map(by_key)
    records = stack(earlier, rows)
    ids = pd.concat([earlier_pid, pid], ignore_index=True).astype("string")
    fresh = golden_records(records, profile_id=ids)
    rest = old_profiles[~old_profiles["profile_id"].isin(got).to_numpy()]
    return pd.concat([rest, fresh], ignore_index=True)


def resolve_increment(wh, new_in: pd.DataFrame, late: pd.DataFrame, removed: pd.DataFrame,
                      resolver: IdentityResolver) -> dict:  # fmt: skip
    """Resolve ``new_in`` (prepared records new since the last run, up to ``as_of``) with the
    earlier records they touch; keep everything else of the last run. New records repeating
    an earlier record of a kept profile join it (:mod:`cemlib.identity.repeats`).

    ``late`` holds the keys of new records dated after ``as_of`` (no profile), ``removed`` the
    records no longer in the sources. Returns the full ``map``, ``links``, ``profiles`` and
    ``guarded`` of this run and the counts of the increment.
    """
    con, clock = wh.con, PhaseClock()
    guard = resolver.guard or HubGuard()
    reps, to_resolve, touched = _split_repeats(wh, new_in, removed, guard.hub_records)
    rep_rows = new_in.iloc[reps["pos"].to_numpy()].reset_index(drop=True)
    clock("repeats_and_touched")
    old = read_prepared(wh, touched)
    subset = stack(old, to_resolve)
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
                 as_string(rep_rows["source"]), as_string(late["source"])], ignore_index=True),
            "record_id": pd.concat(
                [as_string(kept_map["record_id"]), keys["record_id"],
                 as_string(rep_rows["record_id"]), as_string(late["record_id"])],
                ignore_index=True),
            "profile_id": pd.concat(
                [as_string(kept_map["profile_id"]), pid, reps["twin_profile_id"].astype("string"),
                 pd.Series(pd.NA, index=range(len(late)), dtype="string")], ignore_index=True),
        }
    )  # fmt: skip
    old_profiles = wh.read_table("identity", "profiles")
    old_profiles = old_profiles[old_profiles["profile_id"].isin(kept_ids).to_numpy()]
    old_profiles = _profiles_with_repeats(wh, old_profiles, kept_map, reps, rep_rows)
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
            "new_records_repeating_a_kept_profile": len(reps),
            "earlier_records_resolved_again": len(old),
            "profiles_kept_as_they_were": len(kept_ids),
            "records_resolved": len(subset),
        },
        "phases": clock.seconds,
        "kept_unattached": int(kept_map["profile_id"].isna().sum()),
        "repeats_unattached": int(reps["twin_profile_id"].isna().sum()),
    }
