"""The warehouse stage: ``clean.*`` records in, ``identity.map/links/profiles`` out.

Each source table carrying identifiers is mapped to roles (:data:`SOURCE_ROLES`); every record
gets a row in ``identity.map``: a profile id when it carries a phone, card, email, device or a
name, NA (unattached, counted) when it is anonymous (a till receipt without card or phone).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cemlib import DEFAULT_SEED
from cemlib.budget import duckdb_memory_limit, evict_duckdb_cache, release, rss_gib
from cemlib.identity.carry import carry_ids, previous_ids_table, remember_ids  # noqa: F401
from cemlib.identity.evaluate import evaluate, evaluate_warehouse
from cemlib.identity.golden import golden_records, write_closed_at
from cemlib.identity.incremental import (
    PhaseClock,
    choose_mode,
    removed_records,
    resolve_increment,
    resolver_for,
    settings_fingerprint,
    write_increment,
    write_state,
)
from cemlib.identity.masked import attach_masked_warehouse
from cemlib.identity.resolve import (
    DEFAULT_HOUSEHOLD_SIGNALS,
    HELD_BACK_REASONS,
    IdentityResolver,
)
from cemlib.identity.roles import as_string
from cemlib.identity.rules import HubGuard
from cemlib.identity.sources import (
    SOURCE_ROLES,
    in_total_order,
    read_sources,
    source_records,
    source_schemas,
)
from cemlib.identity.store import (
    changed_records,
    record_former_identifiers,
    write_source_hashes,
)


@dataclass
class IdentityResult:
    """What the stage produced: the three warehouse tables and the figures for the report."""

    map: pd.DataFrame
    links: pd.DataFrame
    profiles: pd.DataFrame
    guarded: pd.DataFrame
    resolver: IdentityResolver
    figures: dict = field(default_factory=dict)
    evaluation: dict | None = None
    #: the lasting ids (:mod:`cemlib.identity.registry`), set by :func:`run_stage`
    registry: pd.DataFrame | None = None
    changes: pd.DataFrame | None = None


def _late_records(records: pd.DataFrame, as_of: str | None) -> np.ndarray:
    """Which records are dated after ``as_of`` (left out of the resolution: no leakage)."""
    late = np.zeros(len(records), dtype=bool)
    if as_of is not None:
        cut = pd.Timestamp(as_of) + pd.Timedelta(days=1)
        late = (records["updated_at"] >= cut).fillna(False).to_numpy(dtype=bool)
    return late


def _by_source(rmap: pd.DataFrame, attached: pd.Series) -> pd.DataFrame:
    """Records, attached and unattached per source table."""
    src_codes, src_names = pd.factorize(rmap["source_table"], sort=True)
    by_source = pd.DataFrame(
        {
            "source_table": np.asarray(src_names, dtype=object),
            "records": np.bincount(src_codes, minlength=len(src_names)),
            "attached": np.bincount(
                src_codes, weights=attached.to_numpy(), minlength=len(src_names)
            ).astype(np.int64),
        }
    )
    by_source["unattached"] = by_source["records"] - by_source["attached"]
    return by_source


def _count(mask: np.ndarray | None) -> int:
    return 0 if mask is None else int(np.count_nonzero(mask))


def _figures(
    rmap: pd.DataFrame,
    links: pd.DataFrame,
    resolver: IdentityResolver,
    *,
    refused_by: pd.Series,
    guarded: pd.DataFrame,
    more_unattached: dict[str, int],
) -> dict:
    """The stage's headline figures (without its seconds and memory), for a full or an
    incremental run: ``refused_by`` of the candidate links, the ``guarded`` identifiers and the
    unattached records the resolver did not see (``{reason: records}``, counted when > 0)."""
    attached = rmap["profile_id"].notna()
    reasons = pd.Series(resolver.unattached_reason_, dtype=object).value_counts()  # None: attached
    unattached_by_reason = {str(k): int(v) for k, v in reasons.items()}
    unattached_by_reason |= {k: int(n) for k, n in more_unattached.items() if n}
    return {
        "records": len(rmap),
        "attached_records": int(attached.sum()),
        "unattached_records": int((~attached).sum()),
        "unattached_by_reason": unattached_by_reason,
        # nameless records of household profiles attached on corroborating evidence (of the
        # records resolved in this run: all in a full run, the increment in an incremental one)
        "corroborated_records": _count(getattr(resolver, "corroborated_", None)),
        "profiles": int(rmap["profile_id"].nunique()),
        "links": len(links),
        "links_accepted": int(links["accepted"].astype(bool).sum()),
        "links_refused_by_chain_guard": int((refused_by == "guard").sum()),
        "links_refused_by_constraint": int(refused_by.isin(["constraint", "bridge"]).sum()),
        # accepted by the clusterer, not applied: a record held back from the profile
        "links_refused_by_household_guard": int(links["refused_by"].isin(HELD_BACK_REASONS).sum()),
        "match_threshold": resolver.threshold_,
        "constraints": list(resolver.constraints_),
        "guarded_identifiers": len(guarded),
        "hub_identifiers": int((guarded["status"] == "hub").sum()),
        "by_source": _by_source(rmap, attached),
    }


class _Laps:
    """Seconds and resident memory (GiB) after each step of the stage."""

    def __init__(self) -> None:
        self.clock = time.perf_counter()
        self.seconds: dict[str, float] = {}
        self.memory: dict[str, float] = {}

    def __call__(self, step: str) -> None:
        now = time.perf_counter()
        self.seconds[step] = round(now - self.clock, 2)
        self.memory[step] = round(rss_gib(), 2)  # resident after the step (GiB)
        self.clock = now


def resolve_sources(
    tables: dict[str, pd.DataFrame],
    *,
    truth: pd.DataFrame | None = None,
    guard: HubGuard | None = None,
    match_threshold: float | str | None = "auto",
    seed: int = DEFAULT_SEED,
    as_of: str | None = None,
    household_signals: tuple[str, ...] = DEFAULT_HOUSEHOLD_SIGNALS,
    consume: bool = False,
) -> IdentityResult:
    """Resolve the source tables into profiles; evaluate against ``truth`` when given.

    With ``as_of``, records dated after it are left out of the resolution (no leakage) and
    get no profile in the map. ``consume=True`` frees each table from ``tables`` once
    prepared (see :func:`source_records`).
    """
    lap = _Laps()
    # the per-record frame passed on unnamed: resolve_records holds the only reference
    result = resolve_records(
        _prepared(tables, consume, lap),
        guard=guard,
        match_threshold=match_threshold,
        seed=seed,
        as_of=as_of,
        household_signals=household_signals,
        lap=lap,
    )
    if truth is not None:
        rmap = result.map
        result.evaluation = evaluate(rmap[rmap["profile_id"].notna()], truth)
    return result


def _prepared(tables: dict[str, pd.DataFrame], consume: bool, lap: _Laps) -> pd.DataFrame:
    records = source_records(tables, consume=consume)
    lap("prepare")
    return records


def resolve_records(
    records: pd.DataFrame,
    *,
    spark=None,
    guard: HubGuard | None = None,
    match_threshold: float | str | None = "auto",
    seed: int = DEFAULT_SEED,
    as_of: str | None = None,
    household_signals: tuple[str, ...] = DEFAULT_HOUSEHOLD_SIGNALS,
    lap: _Laps | None = None,
    former: pd.DataFrame | None = None,
) -> IdentityResult:
    """Profiles of prepared ``records`` (:func:`source_records`), the Splink model on DuckDB
    or, given a ``spark`` session, on Spark: records dated after ``as_of`` keep their place in
    the map without a profile. ``former``: the records' former identifiers
    (:func:`~cemlib.identity.store.record_former_identifiers`)."""
    lap = lap or _Laps()
    # the total order (source, record id) decides every tie of the resolution, whatever order
    # the records came in (a no-op check for source_records' frame)
    records = in_total_order(records)
    n_records = len(records)
    full = pd.DataFrame(
        {
            "source_table": as_string(records["source"]),
            "record_id": as_string(records["record_id"]),
        },
        copy=False,
    )
    records_in = records
    late = _late_records(records, as_of)
    if late.any():
        records_in = records[~late].reset_index(drop=True)
    del records  # the per-record frame is the stage's largest object: hold one, not two
    resolver = IdentityResolver(
        guard=guard,
        match_threshold=match_threshold,
        seed=seed,
        household_guard=bool(household_signals),
        household_signals=tuple(household_signals),
        spark=spark,
    )
    resolver.former_identifiers = former
    resolver.fit(records_in)
    lap("resolve")
    inner = resolver.record_map()
    resolved = inner["profile_id"].array
    del inner
    # records after as_of keep their place in the map with no profile (positions, no join)
    pid = resolved
    if late.any():
        pid = pd.array(np.full(n_records, pd.NA, dtype=object), dtype="string")
        pid[~late] = resolved
    rmap = full.assign(profile_id=pid)
    # ids passed beside the stage's frame: a column added and dropped would copy it
    profiles = golden_records(records_in, profile_id=resolved)
    lap("golden_records")
    links = resolver.link_table()
    lap("links")
    figures = _figures(
        rmap, links, resolver, refused_by=resolver.links_["refused_by"],
        guarded=resolver.guarded_, more_unattached={"after_as_of": len(rmap) - len(records_in)},
    )  # fmt: skip
    figures["seconds"] = lap.seconds
    figures["resident_gib"] = lap.memory
    return IdentityResult(
        map=rmap,
        links=links,
        profiles=profiles,
        guarded=resolver.guarded_,
        resolver=resolver,
        figures=figures,
    )


def run_stage(
    wh,
    *,
    run_id: str,
    as_of: str,
    seed: int = DEFAULT_SEED,
    guard: HubGuard | None = None,
    match_threshold: float | str | None = "auto",
    household_signals: tuple[str, ...] = DEFAULT_HOUSEHOLD_SIGNALS,
    keep_records: bool = True,
    identity_mode: str = "auto",
) -> IdentityResult:
    """Read the warehouse, resolve, write ``identity.map``, ``identity.links``,
    ``identity.profiles`` (and ``identity.guarded``) atomically.

    ``identity_mode`` (``auto``, ``incremental``, ``full``): whether only the records new since
    the last run are prepared and compared (:mod:`cemlib.identity.incremental`); the mode used
    and why are in ``figures["identity_mode"]``. An incremental run writes in place
    (:func:`~cemlib.identity.incremental.write_increment`): its ``map`` holds the rows it
    wrote (the records resolved again and those dated after ``as_of``), its ``profiles``,
    ``links`` and ``guarded`` are the whole tables read back, ``registry`` the rows it wrote.

    The evaluation against ``truth.record_person`` (synthetic worlds) is counted in the
    warehouse once the map is written. ``keep_records=False`` (the notebook) drops the
    per-record objects from the result once written (``map`` emptied, the resolver's
    per-record arrays released): the report needs profiles, links and nodes, not records.
    """
    from cemlib.budget import configure_warehouse

    duckdb_settings = configure_warehouse(
        wh
    )  # DuckDB spills past its share of the stage's memory budget
    t0, c0 = time.perf_counter(), time.process_time()
    fingerprint = settings_fingerprint(seed=seed, guard=guard, match_threshold=match_threshold,
                                       household_signals=household_signals, sources=SOURCE_ROLES)  # fmt: skip
    used, why, state = choose_mode(wh, identity_mode, fingerprint, as_of)
    result = increment = None
    if used == "incremental":
        resolver = resolver_for(state, guard=guard, seed=seed, match_threshold=match_threshold,
                                household_signals=household_signals)  # fmt: skip
        result, increment = _resolve_incremental(wh, resolver, as_of=as_of, run_id=run_id)
        if result is None:
            used, why = "full", "no record up to as_of is new since the last run"
    if result is None:
        tables = read_sources(wh)
        # the blocks DuckDB cached reading them would stay resident under every later phase
        evict_duckdb_cache(wh.con, duckdb_settings["memory_limit"])
        lap = _Laps()
        held = [_prepared(tables, True, lap)]
        del tables
        # identifiers the records held in the last run and no longer hold (both modes)
        former = record_former_identifiers(wh, held[0], run_id=run_id, as_of=as_of)
        # the per-record frame passed on unnamed: resolve_records holds the only reference
        result = resolve_records(
            held.pop(),
            guard=guard,
            match_threshold=match_threshold,
            seed=seed,
            as_of=as_of,
            household_signals=household_signals,
            lap=lap,
            former=former,
        )
    result.figures["identity_mode"] = {
        "asked": identity_mode, "used": used, "why": why,
        "resolve_seconds": round(time.perf_counter() - t0, 2),
        "resolve_cpu_seconds": round(time.process_time() - c0, 2),
        **(increment["counts"] if increment else {}),
    }  # fmt: skip
    phases = PhaseClock(t0, c0)
    phases("resolve")
    release()  # the source tables and prepared copies are freed: return their pages
    if increment:  # the resolution's own phases, the rest (reading, preparing, figures) apart
        inner = increment["phases"]
        rest = [round(phases.seconds["resolve"][i] - sum(v[i] for v in inner.values()), 2)
                for i in (0, 1)]  # fmt: skip
        phases.seconds = {"read_and_prepare_new": rest, **inner}
    if increment and increment["in_place"]:  # the rows resolved again, in one transaction
        write_increment(wh, result, increment, run_id=run_id, as_of=as_of,
                        fingerprint=fingerprint, mode=used, phases=phases)  # fmt: skip
        result.figures["identity_mode"]["phases"] = phases.seconds
    else:
        _write_whole(wh, result, increment, run_id=run_id, as_of=as_of, fingerprint=fingerprint,
                     mode=used, phases=phases, keep_records=keep_records)  # fmt: skip
    # records whose only contact is a masked phone: judged over the whole map as written, so
    # that a full and an incremental run attach the same ones (cemlib.identity.masked)
    _attach_masked(wh, result, run_id=run_id, as_of=as_of)
    # customers who left (every CRM record closed by as_of): identity.profiles.closed_at
    closed = write_closed_at(wh, as_of)
    if closed is not None:
        result.figures["closed_profiles"] = closed
    result.figures["identity_mode"]["stage_seconds"] = round(time.perf_counter() - t0, 2)
    result.figures["identity_mode"]["stage_cpu_seconds"] = round(time.process_time() - c0, 2)
    if not keep_records:
        _drop_records(result)
    release()  # freed per-record memory back to the system before DuckDB's join of the truth
    result.evaluation = evaluate_warehouse(wh)
    return result


def _attach_masked(wh, result: IdentityResult, *, run_id: str, as_of: str) -> None:
    """:func:`~cemlib.identity.masked.attach_masked_warehouse` on the written map; its
    figures in ``figures["masked_phone"]``, the headline counts, ``result.map``, the links
    (rule ``masked_phone_tail``) and the golden records it wrote again updated."""
    done = attach_masked_warehouse(wh, run_id=run_id, as_of=as_of)
    figures, rows = done.figures, done.rows
    if not figures.get("masked_only"):
        return
    f = result.figures
    f["masked_phone"] = figures
    _masked_links_and_profiles(result, done)
    n = int(figures.get("attached") or 0)
    by = f.get("unattached_by_reason")
    if isinstance(by, dict) and by.get("masked_phone_only"):
        by["masked_phone_only"] = max(0, by["masked_phone_only"] - n)
        if not by["masked_phone_only"]:
            del by["masked_phone_only"]
    if "attached_records" in f:
        f["attached_records"] += n
        f["unattached_records"] = max(0, f["unattached_records"] - n)
    if rows is not None and len(result.map) and len(rows):
        key = ["source_table", "record_id"]
        new = result.map[key].merge(rows, on=key, how="left")["profile_id"].array
        hit = result.map[key].merge(rows.assign(_hit=1), on=key, how="left")["_hit"]
        hit = hit.notna().to_numpy(dtype=bool)
        pid = result.map["profile_id"].astype("string").array.copy()
        pid[hit] = new[hit]
        result.map = result.map.assign(profile_id=pid)


def _masked_links_and_profiles(result: IdentityResult, done) -> None:
    """The attaches' links in ``result.links`` (an earlier run's replaced) and the golden
    records written again in ``result.profiles``; ``links``/``links_accepted`` count them."""
    from cemlib.identity.masked import RULE

    links = result.links
    if links is not None and "rule" in getattr(links, "columns", ()):
        links = links[(links["rule"] != RULE).fillna(True).to_numpy(dtype=bool)]
        if done.links is not None and len(done.links):
            add = done.links[links.columns.intersection(done.links.columns)]
            links = pd.concat([links, add], ignore_index=True) if len(links) else add
        result.links = links.reset_index(drop=True)
        f = result.figures
        if "links" in f:
            f["links"] = len(links)
            f["links_accepted"] = int(links["accepted"].astype(bool).sum())
    prof = result.profiles
    if done.profiles is not None and prof is not None and len(prof) and len(done.profiles):
        new = done.profiles.set_index("profile_id")
        at = prof["profile_id"].isin(new.index).to_numpy(dtype=bool)
        ids = prof.loc[at, "profile_id"]
        prof = prof.copy()
        for col in new.columns.intersection(prof.columns):
            values = prof[col].to_numpy(dtype=object).copy()
            values[at] = new[col].reindex(ids).to_numpy(dtype=object)
            try:  # the column keeps its dtype (lists stay objects)
                prof[col] = pd.array(values, dtype=prof[col].dtype)
            except (TypeError, ValueError):
                prof[col] = values
        result.profiles = prof


def _write_whole(wh, result, increment, *, run_id, as_of, fingerprint, mode, phases,
                 keep_records) -> None:  # fmt: skip
    """Carry the ids and write every table of the stage whole (a full run, or an incremental
    one with :data:`~cemlib.identity.incremental.IN_PLACE` False)."""
    carry_ids(wh, result, run_id=run_id, as_of=as_of, scope=increment and increment["scope"])
    phases("carry_ids")
    _write_tables(wh, result, run_id=run_id, as_of=as_of)
    phases("write_tables")
    # the blocks of the tables just written stay in DuckDB's cache under the next writes
    evict_duckdb_cache(wh.con, duckdb_memory_limit())
    remember_ids(wh, result.map, run_id=run_id, as_of=as_of)
    phases("remember_ids")
    evict_duckdb_cache(wh.con, duckdb_memory_limit())
    result.figures["identity_mode"]["phases"] = phases.seconds
    if not keep_records:  # written: the map is not needed for the state and the evaluation
        result.map = result.map.iloc[:0]
    write_state(wh, None if increment else result.resolver.prepared_, fingerprint=fingerprint,
                resolver=result.resolver, run_id=run_id, as_of=as_of, mode=mode,
                new_rows=increment and increment["new_in"],
                removed=increment and increment["removed"], phases=phases.seconds)  # fmt: skip
    write_source_hashes(wh, run_id=run_id, as_of=as_of, reuse=bool(increment))
    phases("write_state")


def _write_tables(wh, result: IdentityResult, *, run_id: str, as_of: str) -> None:
    """``identity.map``, ``links``, ``profiles``, ``guarded``, ``registry`` and ``changes``,
    in one transaction."""
    profiles = result.profiles.copy()
    profiles["sources"] = profiles["sources"].map(lambda v: list(v))
    wh.write_tables(
        "identity",
        {
            "map": result.map,
            "links": result.links,
            "profiles": profiles,
            "guarded": result.guarded.assign(value=result.guarded["value"].astype(str)),
            "registry": result.registry,
            "changes": result.changes.assign(
                run_id=pd.Series(run_id, index=result.changes.index, dtype="string")
            ),
        },
        run_id=run_id,
        as_of=as_of,
    )


def _drop_records(result: IdentityResult) -> None:
    """Release the per-record objects of ``result`` once written (the map emptied, the
    resolver's per-record arrays None): the report needs profiles, links and nodes."""
    result.map = result.map.iloc[:0]
    res = result.resolver
    for attr in ("prepared_", "labels_", "node_of_record_", "ambiguous_", "household_",
                 "corroborated_", "attached_", "profile_id_", "unattached_reason_"):  # fmt: skip
        if hasattr(res, attr):
            setattr(res, attr, None)


def _resolve_incremental(wh, resolver: IdentityResolver, *, as_of: str, run_id: str):
    """An :class:`IdentityResult` resolving only the records new since the last run (None
    when there are none), and the increment's parts; see :mod:`cemlib.identity.incremental`."""
    clock = time.perf_counter()
    # a record whose identifying values changed at the source (a new phone on the same CRM
    # record) is resolved again as a new one, its earlier version taken out like a deleted one
    changed = changed_records(wh)
    tables = {k: v for k, v in read_sources(wh, new_only=True, changed=changed).items() if len(v)}
    removed = removed_records(wh, source_schemas(wh))
    if len(changed):
        removed = pd.concat(
            [removed.astype("string"), changed.astype("string")], ignore_index=True
        ).drop_duplicates(ignore_index=True)
    if not tables and not len(removed):
        return None, None
    new = source_records(tables, consume=True) if tables else None
    if new is None or not len(new):
        return None, None  # only deletions: a full run handles them
    cut = pd.Timestamp(as_of) + pd.Timedelta(days=1)
    late_mask = (new["updated_at"] >= cut).fillna(False).to_numpy(dtype=bool)
    late = pd.DataFrame({"source": as_string(new["source"])[late_mask],
                         "record_id": as_string(new["record_id"])[late_mask]})  # fmt: skip
    new_in = new[~late_mask].reset_index(drop=True)
    del new
    if not len(new_in):
        return None, None  # only records dated after as_of: nothing to resolve
    # a changed record's earlier identifiers stay evidence for the records dated before
    resolver.former_identifiers = record_former_identifiers(wh, new_in, run_id=run_id,
                                                            as_of=as_of)  # fmt: skip
    prepare_s = round(time.perf_counter() - clock, 2)
    inc = resolve_increment(wh, new_in, late, removed, resolver)
    inc["new_in"], inc["removed"] = new_in, removed
    inc["counts"]["changed_records"] = len(changed)
    rmap, links, guarded = inc["map"], inc["links"], inc["guarded"]
    whole = {} if inc["in_place"] else _figures(  # in place: counted once written
        rmap, links, resolver, refused_by=links["refused_by"], guarded=guarded,
        more_unattached={"unchanged_since_last_run": inc["kept_unattached"],
                         "after_as_of": len(late)},
    )  # fmt: skip
    figures = {
        **whole,
        "seconds": {
            "prepare": prepare_s,
            "resolve": round(time.perf_counter() - clock - prepare_s, 2),
        },  # fmt: skip
        "resident_gib": {"resolve": round(rss_gib(), 2)},
    }
    guarded_new = guarded.assign(value=guarded["value"].astype(str))
    result = IdentityResult(map=rmap, links=links, profiles=inc["profiles"], guarded=guarded_new,
                            resolver=resolver, figures=figures)  # fmt: skip
    return result, inc
