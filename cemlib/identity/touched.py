"""The earlier records a run's new records touch: sharing an identifier (hubs left out) or a
name key, and the profiles one shared identifier further (SQL on ``identity.prepared``)."""

from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd

from cemlib.frames import fetch_frame
from cemlib.identity.roles import PREPARED_COLUMNS, as_string
from cemlib.identity.rules import CONTACT_SOURCE, IDENTIFIER_COLUMNS

#: name keys an earlier record is touched by (the model's blocking keys)
NAME_KEYS: tuple[tuple[str, ...], ...] = (("first_lat", "last_lat"), ("last_lat", "birth_date"))
_HUBS = "SELECT kind, CAST(value AS VARCHAR) AS value FROM identity.guarded WHERE status = 'hub'"


#: how many identifiers away from a new record an incremental run reads earlier records: one
#: (their own identifiers and name keys, and their profiles). The status of an identifier no
#: new record carries is the last run's (:func:`last_statuses`), not counted again on its
#: holders, so they are not read (a second hop was a fifth of the records resolved)
INCREMENT_HOPS = 1


def identifier_keys(records: pd.DataFrame) -> pd.DataFrame:
    """``kind, value`` of every strong identifier ``records`` (prepared) carry, once."""
    keys = []
    for kind, cols in IDENTIFIER_COLUMNS.items():
        for c in cols:
            if c in records:
                v = as_string(records[c]).dropna().unique()
                keys.append(pd.DataFrame({"kind": kind, "value": np.asarray(v, dtype=object)}))
    if not keys:
        return pd.DataFrame({"kind": pd.Series(dtype=object), "value": pd.Series(dtype=object)})
    return pd.concat(keys, ignore_index=True).drop_duplicates(ignore_index=True)


def last_statuses(wh, carried: pd.DataFrame) -> pd.DataFrame:
    """The last run's guarded identifiers (``identity.guarded``: hub, shared, contested, with
    their counts) that no record of ``carried`` (``kind, value``: the new and removed records'
    identifiers) holds: their holders are those of the last run, so their status is too. An
    identifier absent from it was unique (or on one record)."""
    con = wh.con
    con.register("_inc_carried", carried)
    try:
        return fetch_frame(
            con,
            "SELECT kind, CAST(value AS VARCHAR) AS value, status, n_records, n_names, "
            "n_birth_dates FROM identity.guarded g ANTI JOIN _inc_carried c "
            "ON g.kind = c.kind AND CAST(g.value AS VARCHAR) = CAST(c.value AS VARCHAR)",
        )
    finally:
        con.unregister("_inc_carried")


def refused_elsewhere(wh, keys: pd.DataFrame) -> np.ndarray:
    """Per record of ``keys`` (``source, record_id``, the records resolved again): whether the
    last run's clusterer refused a link of it (by a constraint, the chain guard or a contact
    pin; not a bridge) to a record outside ``keys``. Such a link is household evidence
    (:meth:`~cemlib.identity.resolve.IdentityResolver._household_nodes`) that the records
    resolved again no longer show when the other record is not read."""
    con = wh.con
    frame = pd.DataFrame(
        {"source": as_string(keys["source"]).array, "record_id": as_string(keys["record_id"]).array,
         "i": np.arange(len(keys), dtype=np.int64)}
    )  # fmt: skip
    con.register("_inc_rk", frame)
    try:
        rows = []
        for a, b in (("left", "right"), ("right", "left")):
            rows.append(
                f"SELECT k.i FROM identity.links l JOIN _inc_rk k ON l.{a}_source = k.source "
                f"AND l.{a}_record_id = k.record_id ANTI JOIN _inc_rk o "
                f"ON l.{b}_source = o.source AND l.{b}_record_id = o.record_id "
                "WHERE l.refused_by IN ('constraint', 'guard', 'contact')"
            )
        hit = con.execute(" UNION ".join(rows)).fetchnumpy()["i"]
    finally:
        con.unregister("_inc_rk")
    out = np.zeros(len(keys), dtype=bool)
    out[np.asarray(hit, dtype=np.int64)] = True
    return out


#: comparisons of the model on identifiers: the resolver masks an identifier it guards (hub,
#: shared, contested) before scoring, so a pair's disagreement on one can turn into no
#: evidence, never into agreement (``email_year`` is read from the e-mail)
IDENTIFIER_COMPARISONS: frozenset[str] = frozenset(
    {"phone", "email", "loyalty_card", "device_id", "national_id", "email_year"}
)


@contextlib.contextmanager
def _frame(con, name: str, frame: pd.DataFrame):
    con.register(name, frame)
    try:
        yield
    finally:
        con.unregister(name)


def reachable_partners(
    wh, new: pd.DataFrame, partners: pd.DataFrame, saved: dict, threshold: float
) -> pd.DataFrame:
    """``source, record_id`` of the ``partners`` (earlier records sharing a name key with a
    ``new`` record) whose pair with a new named record can reach ``threshold`` under the
    ``saved`` Splink model: each pair (blocked on :data:`NAME_KEYS`) is scored with the saved
    comparisons, ``m``/``u`` and term frequencies, and its match weight taken as an upper
    bound: a negative weight of an identifier comparison (:data:`IDENTIFIER_COMPARISONS`) is
    counted as 0, since the resolver may mask that identifier. A partner below it in every
    pair cannot be linked by the model to a new record, so its profile is kept as it is."""
    from cemlib.identity.store import read_prepared

    if not len(partners) or not len(new):
        return partners.iloc[:0]
    if not [k for k in NAME_KEYS if set(k) <= set(saved["compared"])]:
        return partners[["source", "record_id"]]  # a model without the name keys: every one
    old = read_prepared(wh, partners).reset_index(drop=True)
    left, _ = reachable_pairs(old, new, saved, threshold)
    ids = np.unique(left)
    return pd.DataFrame(
        {"source": as_string(old["source"]).array.take(ids),
         "record_id": as_string(old["record_id"]).array.take(ids)}
    )  # fmt: skip


def reachable_pairs(
    left: pd.DataFrame, new: pd.DataFrame, saved: dict, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """The pairs (row of ``left``, row of ``new``; prepared records) blocked on
    :data:`NAME_KEYS` whose upper bound of the ``saved`` model's match weight
    (:func:`reachable_partners`) reaches ``threshold``. Only ``new``'s named records are
    scored. ``left`` may hold new records too (a pair of a record with itself is dropped by
    the caller)."""
    from splink import block_on

    from cemlib.identity.model import SplinkModel

    none = np.zeros(0, dtype=np.int64)
    cols = list(saved["compared"])
    rules = [block_on(*k) for k in NAME_KEYS if set(k) <= set(cols)]
    named_rows = np.flatnonzero((new["first_lat"].notna() | new["last_lat"].notna())
                                .to_numpy(dtype=bool))  # fmt: skip
    if not rules or not len(left) or not len(named_rows):
        return none, none
    left = left.reset_index(drop=True)
    fresh = new.iloc[named_rows].reset_index(drop=True)
    model = SplinkModel().fit(left, saved=saved)  # the left records are the linker's
    frame = pd.DataFrame(
        {c: fresh[c] if c in fresh else pd.Series(None, index=fresh.index, dtype=object)
         for c in model.columns_}
    )  # fmt: skip
    if "email_year" in cols:
        from cemlib.identity.comparisons import email_year

        frame["email_year"] = email_year(fresh["email"])
    frame = frame[cols].copy()
    n_left = len(left)
    frame.insert(0, "unique_id", np.arange(n_left, n_left + len(fresh), dtype="int64"))
    for c in cols:
        frame[c] = frame[c].astype(object).where(frame[c].notna(), None)
    api = model.db_api_
    lt = api.table_to_splink_dataframe("cem_records", model.records_table_)
    rt = api.register(frame, table_name="cem_new_records")
    scored = model.linker_.inference.predict_between(
        lt, rt, blocking_rules_to_generate_predictions=rules, warning_mode="never"
    )
    pairs = scored.as_pandas_dataframe()
    bound = pairs["match_weight"].to_numpy(dtype=float).copy()
    for c in IDENTIFIER_COMPARISONS:
        if f"mw_{c}" in pairs:
            w = np.nan_to_num(pairs[f"mw_{c}"].to_numpy(dtype=float))
            if f"mw_tf_adj_{c}" in pairs:
                w = w + np.nan_to_num(pairs[f"mw_tf_adj_{c}"].to_numpy(dtype=float))
            bound -= np.minimum(w, 0.0)
    ok = bound >= np.log2(threshold / (1.0 - threshold))
    a = pairs["unique_id_l"].to_numpy(dtype=np.int64)[ok]
    b = pairs["unique_id_r"].to_numpy(dtype=np.int64)[ok]
    # predict_between may give a pair either way round: left ids are below n_left
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    keep = (lo < n_left) & (hi >= n_left)
    return lo[keep], named_rows[hi[keep] - n_left]


def _holders(values: str) -> str:
    """SQL: ``source, record_id`` of the earlier records holding one of the identifier
    ``values`` (an SQL relation of ``kind, value``), hubs left out."""
    useful = f"SELECT kind, value FROM ({values}) ANTI JOIN ({_HUBS}) h USING (kind, value)"
    return " UNION ".join(
        f"SELECT p.source, p.record_id FROM identity.prepared p SEMI JOIN "
        f"(SELECT value FROM ({useful}) WHERE kind = '{kind}') k ON p.\"{c}\" = k.value"
        for kind, cols in IDENTIFIER_COLUMNS.items()
        for c in cols
    )


def _values_of(records: str) -> str:
    """SQL: the identifier values (``kind, value``) of the earlier records in ``records``."""
    return " UNION ".join(
        f"SELECT '{kind}' AS kind, p.\"{c}\" AS value FROM identity.prepared p SEMI JOIN "
        f"{records} r ON p.source = r.source AND p.record_id = r.record_id "
        f'WHERE p."{c}" IS NOT NULL'
        for kind, cols in IDENTIFIER_COLUMNS.items()
        for c in cols
    )


def _hop_values(records: str, unattached: str) -> str:
    """SQL: the identifier values (``kind, value``) of the earlier records in ``unattached``
    (a subset of ``records``), and those of ``records`` contested in the last run: what
    ``_values_of(unattached) UNION`` (the contested ones of ``_values_of(records)``) gives,
    with one pass over ``identity.prepared`` instead of fourteen."""
    cols = [(kind, c) for kind, kcols in IDENTIFIER_COLUMNS.items() for c in kcols]
    picked = ", ".join(f'p."{c}"' for _, c in cols)
    flat = " UNION ALL ".join(
        f'SELECT \'{kind}\' AS kind, "{c}" AS value, unatt FROM _hv WHERE "{c}" IS NOT NULL'
        for kind, c in cols
    )
    return (
        f"WITH _hv AS MATERIALIZED (SELECT {picked}, (u.source IS NOT NULL) AS unatt "
        f"FROM identity.prepared p SEMI JOIN {records} r "
        "ON p.source = r.source AND p.record_id = r.record_id "
        f"LEFT JOIN {unattached} u ON p.source = u.source AND p.record_id = u.record_id), "
        f"_hvals AS MATERIALIZED ({flat}) "
        "SELECT kind, value FROM _hvals WHERE unatt UNION SELECT kind, value FROM _hvals "
        "SEMI JOIN (SELECT kind, CAST(value AS VARCHAR) AS value FROM identity.guarded "
        "WHERE status = 'contested') g USING (kind, value)"
    )


#: the temporary table of the last run's profiles holding a record of the touched set
TOUCHED_PROFILES = "_inc_touched_profiles"
#: SQL: the last run's profiles holding a record of ``_inc_t0``; and ``_inc_t0`` with every
#: record of the profiles of ``_inc_touched_profiles`` (the profiles kept for :func:`_not_touched`)
_PROFILES_OF = (
    "SELECT DISTINCT m.profile_id FROM identity.map m JOIN _inc_t0 t "
    "ON m.source_table = t.source AND m.record_id = t.record_id WHERE m.profile_id IS NOT NULL"
)
_RECORDS_OF_PROFILES = (
    "SELECT source, record_id FROM _inc_t0 UNION SELECT m.source_table AS source, m.record_id "
    "FROM identity.map m JOIN _inc_touched_profiles USING (profile_id)"
)


def _records_only(records: str) -> str:
    """SQL: ``records`` as they are (no profile added)."""
    return f"SELECT source, record_id FROM {records}"


def touched_records(
    wh,
    new: pd.DataFrame,
    hops: int = 2,
    *,
    name_keys: tuple[tuple[str, ...], ...] | None = None,
    whole_profiles: bool = True,
    more_keys: pd.DataFrame | None = None,
    unattached_hop: bool = True,
    model: tuple[dict, float] | None = None,
) -> pd.DataFrame:
    """``source, record_id`` of the earlier records to resolve again with ``new``: those that
    share an identifier (not a hub) or a name key with a new record, and every record of their
    profiles; then, ``hops - 1`` times, the records sharing an identifier with those and their
    profiles (what decides whether an identifier is shared by a family, so whether a nameless
    record may be attached, lies one identifier further).

    ``name_keys`` (default :data:`NAME_KEYS`) and ``whole_profiles`` (False: the records
    reached, not their profiles) are there to measure which part of the set pulls how many
    records (``benchmarks/identity_phases.py --touched-parts``); a run uses the defaults.
    ``more_keys`` (``kind, value``): identifiers whose holders are touched as those of a new
    record's are (the identifiers of the records removed since the last run). ``model``
    (the last run's saved Splink model, :func:`~cemlib.identity.store.read_model`, and match
    threshold): a name-key partner not reached otherwise is touched only when its pair with a
    new record can reach the threshold (:func:`reachable_partners`); without it, every one."""
    return _touched(wh, new, hops, name_keys=name_keys, whole_profiles=whole_profiles,
                    more_keys=more_keys, unattached_hop=unattached_hop, model=model)[0]  # fmt: skip


def _touched(
    wh,
    new: pd.DataFrame,
    hops: int,
    *,
    name_keys,
    whole_profiles: bool,
    more_keys: pd.DataFrame | None,
    unattached_hop: bool,
    model: tuple[dict, float] | None,
    direct: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """:func:`touched_records`, and with ``direct`` (``i, profile_id``: the new records that may
    join one profile directly, :func:`~cemlib.identity.incremental_direct.direct_candidates`;
    needs ``model``) the records that do: those with no namesake outside their profile, earlier
    or new, that the model can link (scored in the same pass as the namesakes) and whose
    profile no other new record touches. Their identifiers and namesakes inside their profile
    touch nothing."""
    name_keys = NAME_KEYS if name_keys is None else name_keys

    def expand() -> None:
        """``_inc_t1``: the records of ``_inc_t0`` with their profiles (``_inc_touched_profiles``, kept
        for :func:`_not_touched`), or as they are."""
        if not whole_profiles:
            con.execute("CREATE OR REPLACE TEMP TABLE _inc_t1 AS " + _records_only("_inc_t0"))
            return
        con.execute(f"CREATE OR REPLACE TEMP TABLE _inc_touched_profiles AS {_PROFILES_OF}")
        con.execute(f"CREATE OR REPLACE TEMP TABLE _inc_t1 AS {_RECORDS_OF_PROFILES}")

    con = wh.con
    pid = np.full(len(new), None, dtype=object)
    if direct is not None and len(direct) and model is not None:
        pid[direct["i"].to_numpy(dtype=np.int64)] = direct["profile_id"].astype(str).to_numpy()
    cand_mask = pd.notna(pid)
    rest = new[~cand_mask]
    keyframe = identifier_keys(rest) if more_keys is None else pd.concat(
        [identifier_keys(rest), more_keys], ignore_index=True)  # fmt: skip
    con.register("_inc_keys", keyframe.drop_duplicates())
    names = []
    for i, cols in enumerate(name_keys):
        frame = pd.DataFrame({c: as_string(new[c]) for c in cols})
        frame["pid"] = pd.array(pid, dtype="string")
        frame = frame.dropna(subset=list(cols)).drop_duplicates()
        names.append(f"_inc_name{i}")
        con.register(names[-1], frame)
    # an event naming a CRM record (``contact_id``) and that record touch each other both ways
    refs = pd.DataFrame(
        {
            "ref": as_string(new["contact_id"]).str.strip()
            if "contact_id" in new
            else pd.Series([], dtype="string"),
        }
    ).dropna()
    crm_new = pd.DataFrame(
        {"rid": as_string(new["record_id"])[as_string(new["source"]).eq(CONTACT_SOURCE)
                                            .fillna(False).to_numpy(dtype=bool)].str.strip()}
    ).dropna()  # fmt: skip
    con.register("_inc_refs", refs.drop_duplicates())
    con.register("_inc_crm", crm_new.drop_duplicates())
    final = None
    try:
        if direct is not None and _has_new_holders(con):
            # the holders of the new records' values, found once by the direct candidates'
            # pass (incremental_direct.NEW_HOLDERS); a removed record's values as before
            selects = [
                "SELECT h.source, h.record_id FROM _inc_new_holders h SEMI JOIN _inc_keys k "
                "ON h.kind = k.kind AND h.value = CAST(k.value AS VARCHAR) "
                f"ANTI JOIN ({_HUBS}) g ON g.kind = h.kind AND g.value = h.value"
            ]
            if more_keys is not None and len(more_keys):
                con.register("_inc_more", more_keys.drop_duplicates())
                selects.append(
                    _holders("SELECT kind, CAST(value AS VARCHAR) AS value FROM _inc_more")
                )
        else:
            selects = [_holders("SELECT kind, CAST(value AS VARCHAR) AS value FROM _inc_keys")]
        selects.append(
            "SELECT p.source, p.record_id FROM identity.prepared p SEMI JOIN _inc_refs k "
            f"ON p.source = '{CONTACT_SOURCE}' AND trim(p.record_id) = k.ref"
        )
        if "contact_id" in PREPARED_COLUMNS:
            selects.append(
                "SELECT p.source, p.record_id FROM identity.prepared p SEMI JOIN _inc_crm k "
                "ON trim(p.contact_id) = k.rid"
            )
        partners = []
        for name, cols in zip(names, name_keys, strict=True):
            on = " AND ".join(f'p."{c}" = k."{c}"' for c in cols)
            if cand_mask.any():  # a candidate's namesakes inside its own profile touch nothing
                partners.append(
                    f"SELECT p.source, p.record_id FROM identity.prepared p JOIN {name} k ON {on} "
                    "LEFT JOIN identity.map m ON m.source_table = p.source AND m.record_id = "
                    "p.record_id WHERE k.pid IS NULL OR m.profile_id IS NULL OR "
                    "CAST(m.profile_id AS VARCHAR) <> k.pid"
                )
            else:
                partners.append(
                    f"SELECT p.source, p.record_id FROM identity.prepared p SEMI JOIN {name} k "
                    f"ON {on}"
                )
        if model is None:
            selects.extend(partners)
        con.execute("CREATE OR REPLACE TEMP TABLE _inc_t0 AS " + " UNION ".join(selects))
        if model is not None and partners:
            # namesakes not already reached by an identifier: only those whose pair with a new
            # record can reach the match threshold (an upper bound of the saved model's score)
            cand = fetch_frame(
                con,
                "SELECT c.source, c.record_id, CAST(m.profile_id AS VARCHAR) AS profile_id FROM "
                "(SELECT * FROM (" + " UNION ".join(partners) + ") ANTI JOIN _inc_t0 "
                "USING (source, record_id)) c LEFT JOIN identity.map m "
                "ON m.source_table = c.source AND m.record_id = c.record_id",
            )
            kept, rejected = _score_namesakes(wh, new, cand, pid, *model)
            if len(rejected):  # resolved after all: their identifiers touch as others' do
                back = identifier_keys(new.iloc[rejected])
                with _frame(con, "_inc_back", back):
                    con.execute(
                        "INSERT INTO _inc_t0 " + _holders(
                            "SELECT kind, CAST(value AS VARCHAR) AS value FROM _inc_back")
                    )  # fmt: skip
                pid[rejected] = None
            with _frame(con, "_inc_reach", kept):
                con.execute("INSERT INTO _inc_t0 SELECT source, record_id FROM _inc_reach")
            con.execute("CREATE OR REPLACE TEMP TABLE _inc_t0 AS SELECT DISTINCT * FROM _inc_t0")
        expand()
        if hops == 1 and unattached_hop:
            # a record the last run left unattached is in a cluster that is no profile: the
            # records of that cluster, one identifier further, decide its links again
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _inc_t0 AS SELECT t.source, t.record_id FROM "
                "_inc_t1 t ANTI JOIN (SELECT source_table, record_id FROM identity.map WHERE "
                "profile_id IS NOT NULL) m ON m.source_table = t.source AND m.record_id = t.record_id"
            )
            # and a contested identifier links by its dominant e-mail, device or phone: all
            # its records decide that
            # (the values once in a table: _holders reads its relation once per column)
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _inc_hv AS " + _hop_values("_inc_t1", "_inc_t0")
            )
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _inc_t0 AS "
                + _holders("SELECT kind, value FROM _inc_hv")
                + " UNION SELECT * FROM _inc_t1"
            )
            expand()
        for _ in range(hops - 1):
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _inc_t0 AS " + _holders(_values_of("_inc_t1"))
            )
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _inc_t0 AS SELECT * FROM _inc_t0 UNION "
                "SELECT * FROM _inc_t1"
            )
            expand()
        if direct is not None:
            final = _not_touched(con, pid, whole_profiles)
        return fetch_frame(con, "SELECT source, record_id FROM _inc_t1"), final
    finally:
        con.unregister("_inc_keys")
        for name in [*names, "_inc_refs", "_inc_crm"]:
            con.unregister(name)
        with contextlib.suppress(Exception):
            con.unregister("_inc_more")
        # with ``direct`` (a run) the touched profiles are kept for touched_and_gone and
        # resolve_increment (the profiles it replaces), which drops them
        kept = () if direct is None else (TOUCHED_PROFILES,)
        for name in ("_inc_t0", "_inc_t1", "_inc_hv", TOUCHED_PROFILES, "_inc_new_holders"):
            if name not in kept:
                con.execute(f"DROP TABLE IF EXISTS {name}")


def _has_new_holders(con) -> bool:
    return bool(con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = '_inc_new_holders'"
    ).fetchall()[0][0])  # fmt: skip


def _score_namesakes(wh, new, cand: pd.DataFrame, pid: np.ndarray, saved: dict,
                     threshold: float) -> tuple[pd.DataFrame, np.ndarray]:  # fmt: skip
    """The namesakes ``cand`` (``source, record_id, profile_id``) to touch (their pair with a
    new record not joining directly can reach ``threshold``), and the rows of ``new`` among
    the direct candidates (``pid`` not None: the profile each would join) that cannot join
    directly: a pair with an earlier namesake of another profile, or with a new record not
    joining the same profile, can reach the threshold. One scoring pass: the candidates are
    scored as earlier records are (:func:`reachable_pairs`)."""
    from cemlib.identity.store import read_prepared, stack

    none = np.zeros(0, dtype=np.int64)
    is_cand = pd.notna(pid)
    rows = np.flatnonzero(is_cand)
    if not [k for k in NAME_KEYS if set(k) <= set(saved["compared"])]:
        # a model without the name keys: every namesake may link, no candidate joins directly
        return cand[["source", "record_id"]], rows
    old = read_prepared(wh, cand).reset_index(drop=True) if len(cand) else None
    if old is not None:  # read_prepared sorts by key: the profiles follow
        prof = cand.set_index(["source", "record_id"])["profile_id"]
        old_prof = prof.reindex(pd.MultiIndex.from_arrays(
            [as_string(old["source"]).astype(object), as_string(old["record_id"]).astype(object)]
        )).to_numpy(dtype=object)  # fmt: skip
    else:
        old_prof = np.zeros(0, dtype=object)
    mine = new.iloc[rows].reset_index(drop=True)
    if old is None:
        left = mine
    elif len(rows):
        left = stack(old, mine)
    else:
        left = old
    if not len(left):
        return cand.iloc[:0][["source", "record_id"]], none
    li, ri = reachable_pairs(left, new, saved, threshold)
    n_old = 0 if old is None else len(old)
    of_old = li < n_old
    # the profile of each pair's left record: an earlier one's, or the one a candidate joins
    left_pid = np.empty(len(li), dtype=object)
    left_pid[of_old] = old_prof[li[of_old]]
    left_new = np.full(len(li), -1, dtype=np.int64)
    left_new[~of_old] = rows[li[~of_old] - n_old]
    left_pid[~of_old] = pid[left_new[~of_old]]
    right_pid = pid[ri]
    differ = np.array([not (isinstance(a, str) and a == b) for a, b in
                       zip(left_pid, right_pid, strict=True)], dtype=bool)  # fmt: skip
    differ &= left_new != ri  # a candidate paired with itself
    bad = set(ri[differ & is_cand[ri]].tolist()) | set(left_new[differ & ~of_old].tolist())
    rejected = np.array(sorted(bad), dtype=np.int64)
    joins = is_cand.copy()
    joins[rejected] = False
    # earlier namesakes reachable from a record resolved (not joining directly)
    touch = np.unique(li[of_old & ~joins[ri]])
    kept = pd.DataFrame(
        {"source": as_string(old["source"]).array.take(touch) if old is not None else [],
         "record_id": as_string(old["record_id"]).array.take(touch) if old is not None else []}
    )  # fmt: skip
    return kept, rejected


def _not_touched(con, pid: np.ndarray, whole_profiles: bool = False) -> pd.DataFrame:
    """``i, profile_id`` of the candidates left (``pid`` not None) whose profile holds no
    record of the touched set (``_inc_t1``). With ``whole_profiles`` the touched set is whole
    profiles, those of ``_inc_touched_profiles`` (the profiles of its records), read from there."""
    rows = np.flatnonzero(pd.notna(pid))
    frame = pd.DataFrame({"i": rows.astype(np.int64), "profile_id": pid[rows].astype(object)})
    if not len(frame):
        return frame
    query = (
        "SELECT DISTINCT CAST(profile_id AS VARCHAR) FROM _inc_touched_profiles"
        if whole_profiles
        else "SELECT DISTINCT CAST(m.profile_id AS VARCHAR) FROM identity.map m SEMI JOIN "
        "_inc_t1 t ON m.source_table = t.source AND m.record_id = t.record_id "
        "WHERE m.profile_id IS NOT NULL"
    )
    hit = {r[0] for r in con.execute(query).fetchall()}
    return frame[~frame["profile_id"].isin(hit).to_numpy()].reset_index(drop=True)


def touched_and_gone(
    wh,
    new_in: pd.DataFrame,
    removed: pd.DataFrame,
    model: tuple[dict, float] | None = None,
    direct: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame] | tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Keys of the earlier records to resolve again: those ``new_in`` touches (and those
    sharing an identifier with a ``removed`` record) and the other records of profiles that
    lost a record (``removed``), the removed records left out; with the last run's status of
    the identifiers none of those carry (:func:`last_statuses`). ``model``: see
    :func:`touched_records`. With ``direct`` (candidates to join a profile directly, see
    :func:`_touched`) a third frame: ``i, profile_id`` of the new records that do."""
    con = wh.con
    removed_ids = _removed_values(con, removed)
    carried = pd.concat([identifier_keys(new_in), removed_ids], ignore_index=True)
    touched, joins = _touched(wh, new_in, INCREMENT_HOPS, name_keys=None, whole_profiles=True,
                              more_keys=removed_ids, unattached_hop=True, model=model,
                              direct=direct)  # fmt: skip
    known = last_statuses(wh, carried)
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
        if direct is not None:  # the profiles resolved again: those of the deleted records too
            con.register("_inc_gone", removed)
            con.execute(
                f"INSERT INTO {TOUCHED_PROFILES} SELECT DISTINCT m.profile_id FROM identity.map m "
                "JOIN _inc_gone g ON m.source_table = g.source AND m.record_id = g.record_id "
                "WHERE m.profile_id IS NOT NULL"
            )
            con.unregister("_inc_gone")
        if joins is not None and len(joins):  # a profile losing a record is resolved again
            con.register("_inc_gone", removed)
            lost = {r[0] for r in con.execute(
                "SELECT DISTINCT CAST(m.profile_id AS VARCHAR) FROM identity.map m JOIN _inc_gone g "
                "ON m.source_table = g.source AND m.record_id = g.record_id "
                "WHERE m.profile_id IS NOT NULL").fetchall()}  # fmt: skip
            con.unregister("_inc_gone")
            joins = joins[~joins["profile_id"].isin(lost).to_numpy()].reset_index(drop=True)
    if direct is None:
        return touched, known
    return touched, known, joins


def _removed_values(con, removed: pd.DataFrame) -> pd.DataFrame:
    """``kind, value`` of the identifiers the ``removed`` records held (``identity.prepared``
    still holds them): their holders changed, so their status is counted again."""
    if not len(removed):
        return identifier_keys(pd.DataFrame())
    con.register("_inc_removed", removed[["source", "record_id"]].astype(str))
    try:
        return fetch_frame(con, _values_of("_inc_removed")).astype({"value": str})
    finally:
        con.unregister("_inc_removed")
