"""The warehouse stage: profile transactions, web events, products and consent in,
``marts.next_offers`` out, with the model scored against the baselines.

Evaluation: on a synthetic world (``truth.future_lines`` present) the offers are scored against
the purchases each profile's person really makes in the ``horizon_days`` after ``as_of``;
otherwise a backtest refits the same model at ``as_of - horizon_days`` and scores it on the last
``horizon_days`` of history. Either way the baselines get the same history and the same truth.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import partial

import pandas as pd

from cemlib import DEFAULT_SEED
from cemlib.errors import InputError
from cemlib.frames import fetch_objects
from cemlib.marts.closed import crm_closure, open_addresses
from cemlib.marts.transactions import (
    key_relation,
    profile_transactions,
    returned_items,
    source_schema,
)
from cemlib.offers import baselines, eligibility, groups
from cemlib.offers.baselines import all_baselines
from cemlib.offers.consent import (
    MIN_CONTACT_AGE,
    ConsentSummary,
    assign_channels,
    minor_profiles,
    profile_addresses,
    shared_refusal_flags,
)
from cemlib.offers.exclude import allowed_ranking, read_exclusions, resolve_exclusion
from cemlib.offers.metrics import evaluate
from cemlib.offers.model import NextOfferModel
from cemlib.offers.parallel import Beside
from cemlib.offers.parallel import workers as offer_workers
from cemlib.warehouse import Warehouse

OFFER_COLUMNS: tuple[str, ...] = (
    "profile_id",
    "rank",
    "item_id",
    "item_name",
    "score",
    "reasons",
    "channel",
)


@dataclass
class OfferStageResult:
    """What the offers stage produced: the consented offers, every customer's top k, the
    fitted model and the figures of the report."""

    offers: pd.DataFrame  # marts.next_offers (consented channels only)
    all_offers: pd.DataFrame  # every customer's top k before consent
    model: NextOfferModel
    metrics: pd.DataFrame  # rows: model and baselines; columns: metrics@k overall/repeat/new
    consent: ConsentSummary
    key: str
    evaluation: str
    candidate_recall: float
    extras: dict = field(default_factory=dict)
    published: str = "model"
    """The ranking written to ``marts.next_offers``: ``model``, or the name of the baseline that
    beat it on the backtest (``publish="auto"``) or was asked for (``publish="baseline"``)."""


def profile_events(wh: Warehouse, as_of, *, key: str = "profile") -> pd.DataFrame | None:
    """Web events of identified customers (logged-in e-mail or known device) up to ``as_of``.

    Anonymous events (no profile in the map) cannot be tied to anyone and are left out; their
    number is in ``df.attrs["anonymous_events"]``."""
    schema = source_schema(wh, "web_events")
    if schema is None:
        return None
    bound = pd.Timestamp(as_of).normalize() + pd.Timedelta(days=1)
    # the optional columns of web_events (docs/own-data.md) are read as NULL when absent
    cols = set(_columns_of(wh, schema, "web_events"))
    sku, category = (
        f"CAST(e.{c} AS VARCHAR)" if c in cols else "CAST(NULL AS VARCHAR)"
        for c in ("sku", "category")
    )
    # text shared per distinct value (items, categories, event types repeat on every event)
    out = fetch_objects(
        wh.con,
        f"""SELECT m.customer_id, CAST(e.ts AS TIMESTAMP) AS ts, {sku} AS item_id,
                   {category} AS category, CAST(e.event_type AS VARCHAR) AS event_type
            FROM {schema}.web_events e JOIN {key_relation(key)} m
              ON m.source_table = 'web_events' AND m.record_id = CAST(e.event_id AS VARCHAR)
            WHERE m.customer_id IS NOT NULL AND e.ts IS NOT NULL AND CAST(e.ts AS TIMESTAMP) < ?""",
        [bound.to_pydatetime()],
    )
    out.attrs["anonymous_events"] = int(
        wh.sql(
            f"""SELECT count(*) AS n FROM {schema}.web_events e LEFT JOIN {key_relation(key)} m
                ON m.source_table = 'web_events' AND m.record_id = CAST(e.event_id AS VARCHAR)
                WHERE m.customer_id IS NULL AND e.ts IS NOT NULL AND CAST(e.ts AS TIMESTAMP) < ?""",
            [bound.to_pydatetime()],
        )["n"].iloc[0]
    )
    return out


def _columns_of(wh: Warehouse, schema: str, table: str) -> list[str]:
    return wh.sql(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = ? "
        "AND table_name = ?",
        [schema, table],
    )["column_name"].tolist()


def _identifier_index(wh: Warehouse, mapping: str) -> str | None:
    """SQL relation ``(customer_id, ident)`` of the normalized e-mails (``e:...``) and phones
    (``p:...``) of every mapped record of every staged source table, or None."""
    from cemlib.schema import TABLES

    parts = []
    for name, spec in TABLES.items():
        if not wh.has_table("staging", name):
            continue
        cols = _columns_of(wh, "staging", name)
        if spec.id_column not in cols:
            continue
        for col, tag in (("email_norm", "e"), ("phone_e164", "p")):
            if col in cols:
                parts.append(
                    f"""SELECT m.customer_id, '{tag}:' || s.{col} AS ident
                        FROM staging.{name} s JOIN {mapping} m
                          ON m.source_table = '{name}'
                         AND m.record_id = CAST(s.{spec.id_column} AS VARCHAR)
                        WHERE s.{col} IS NOT NULL AND m.customer_id IS NOT NULL"""
                )
    return "(" + " UNION ".join(parts) + ")" if parts else None


def consent_refusals(wh: Warehouse, *, key: str = "profile") -> pd.DataFrame:
    """``customer_id, consent_email, consent_sms`` rows (False = refused, NA = no refusal) from
    every CRM record as collected (``staging.crm_contacts``, quarantined rows included).

    A record reaches its profile through the map (``identity.map`` or the truth); a record the
    map does not hold (quarantined by the quality stage) is matched by its normalized e-mail or
    phone to the profiles whose records carry it, so its refusal still reaches the person (and
    every profile sharing that e-mail or phone). A consent value that could not be read (text in
    ``raw``, NA in staging) counts as a refusal. Besides, whether the record is clean or
    quarantined, a refusal of e-mail (SMS) on a record holding an e-mail (a phone) reaches every
    profile whose records hold that address: consent to an address is its holder's. ``via`` says
    ``record`` (the record's own profile) or ``shared`` (through an e-mail or phone it shares).
    ``df.attrs["unmatched_refusals"]`` counts the refusing records that reach no profile."""
    empty = pd.DataFrame(columns=["customer_id", "consent_email", "consent_sms", "via"])
    empty.attrs["unmatched_refusals"] = 0
    if not wh.has_table("staging", "crm_contacts"):
        return empty
    cols = _columns_of(wh, "staging", "crm_contacts")
    raw_cols = _columns_of(wh, "raw", "crm_contacts") if wh.has_table("raw", "crm_contacts") else []
    if "contact_id" not in cols:
        return empty
    join_raw = "_source_row" in cols and "_source_row" in raw_cols
    flags = []
    for c in ("consent_email", "consent_sms"):
        if c not in cols:
            flags.append(f"CAST(NULL AS BOOLEAN) AS {c}")
            continue
        unreadable = (
            f" OR (s.{c} IS NULL AND nullif(trim(r.{c}), '') IS NOT NULL)"
            if join_raw and c in raw_cols
            else ""
        )
        flags.append(f"CASE WHEN s.{c} = false{unreadable} THEN false END AS {c}")
    idents = [
        f"'{tag}:' || s.{col}" if col in cols else "CAST(NULL AS VARCHAR)"
        for col, tag in (("email_norm", "e"), ("phone_e164", "p"))
    ]
    raw_join = "LEFT JOIN raw.crm_contacts r ON r._source_row = s._source_row" if join_raw else ""
    mapping = key_relation(key)
    ref = f"""SELECT CAST(s.contact_id AS VARCHAR) AS contact_id, s._source_row AS row_,
                     {idents[0]} AS e_ident, {idents[1]} AS p_ident, {", ".join(flags)}
              FROM staging.crm_contacts s {raw_join}"""
    ref = f"SELECT * FROM ({ref}) WHERE consent_email = false OR consent_sms = false"
    index = _identifier_index(wh, mapping)
    # one equi-join per identifier (a join on ``e = x OR p = x`` is a nested loop in DuckDB:
    # refusals x identifiers). The address rule, every record: a refusal of e-mail (SMS) on a
    # record with an e-mail (a phone) is the address holder's and blocks that channel for every
    # profile holding the address. A record the map does not hold (quarantined) stands besides
    # for the profiles sharing its e-mail or phone, every refusal of it. Duplicates dropped below.
    addr = {"e_ident": "consent_email", "p_ident": "consent_sms"}
    by_ident = (
        "".join(
            f"""UNION ALL
            SELECT i.customer_id, f.row_,
                   {"f.consent_email" if flag == "consent_email" else "NULL"} AS consent_email,
                   {"f.consent_sms" if flag == "consent_sms" else "NULL"} AS consent_sms,
                   'shared' AS via
            FROM f JOIN idx i ON i.ident = f.{col}
            WHERE f.{flag} = false
            """
            for col, flag in addr.items()
        )
        + "".join(
            f"""UNION ALL
            SELECT i.customer_id, f.row_, f.consent_email, f.consent_sms, 'shared' AS via
            FROM f JOIN idx i ON i.ident = f.{col}
            WHERE f.row_ NOT IN (SELECT row_ FROM direct)
            """
            for col in addr
        )
        if index
        else ""
    )
    with_index = f"idx AS {index}," if index else ""
    out = wh.sql(
        f"""WITH f AS ({ref}), {with_index}
                 direct AS (
                   SELECT m.customer_id, f.row_, f.consent_email, f.consent_sms,
                          'record' AS via
                   FROM f JOIN {mapping} m
                     ON m.source_table = 'crm_contacts' AND m.record_id = f.contact_id
                   WHERE m.customer_id IS NOT NULL),
                 hits AS (SELECT * FROM direct {by_ident})
            SELECT customer_id, consent_email, consent_sms, via, row_ FROM hits"""
    )
    n_ref = int(wh.sql(f"SELECT count(*) AS n FROM ({ref})")["n"].iloc[0])
    unmatched = n_ref - int(out["row_"].nunique()) if len(out) else n_ref
    out = out.drop(columns="row_").drop_duplicates().reset_index(drop=True)
    out.attrs["unmatched_refusals"] = unmatched
    return out


def profile_consent_table(
    wh: Warehouse,
    *,
    key: str = "profile",
    as_of=None,
    min_contact_age: int | None = MIN_CONTACT_AGE,
) -> pd.DataFrame:
    """Per-customer consent (email, SMS) combined over the customer's CRM records.

    A yes counts from the records the offers read (``clean.crm_contacts``, else staging); a
    refusal counts from every record collected, quarantined ones included, and is never
    overridden (see :func:`consent_refusals`). With ``as_of`` given, ``minor`` marks the
    customers one of whose records has a birth date under ``min_contact_age`` years at
    ``as_of`` (:func:`cemlib.offers.consent.minor_profiles`; 0 or None: no rule)."""
    schema = source_schema(wh, "crm_contacts")
    if schema is None:
        return pd.DataFrame(columns=["customer_id", "consent_email", "consent_sms"])
    cols = _columns_of(wh, schema, "crm_contacts")
    sel = ", ".join(
        f"c.{c}" if c in cols else f"NULL AS {c}" for c in ("consent_email", "consent_sms")
    )
    rows = wh.sql(
        f"""SELECT m.customer_id, {sel} FROM {schema}.crm_contacts c JOIN {key_relation(key)} m
            ON m.source_table = 'crm_contacts' AND m.record_id = CAST(c.contact_id AS VARCHAR)
            WHERE m.customer_id IS NOT NULL"""
    )
    minors = pd.Index([], dtype=object)
    if as_of is not None and min_contact_age and "birth_date" in cols:
        birth = wh.sql(
            f"""SELECT m.customer_id, c.birth_date FROM {schema}.crm_contacts c
                JOIN {key_relation(key)} m ON m.source_table = 'crm_contacts'
                 AND m.record_id = CAST(c.contact_id AS VARCHAR)
                WHERE m.customer_id IS NOT NULL AND c.birth_date IS NOT NULL"""
        )
        minors = minor_profiles(birth, as_of, min_contact_age)
    refusals = consent_refusals(wh, key=key)
    out = shared_refusal_flags(rows, refusals, source=f"{schema}.crm_contacts")
    if key == "profile" and {"emails", "phones"} <= set(_columns_of(wh, "identity", "profiles")):
        # where an offer can go: a consent given on a record without an e-mail reaches nobody
        # by e-mail unless another of the profile's records holds one; an address judged as
        # cem offers --consent judges it (profile_addresses)
        held = wh.sql(
            """SELECT CAST(profile_id AS VARCHAR) AS customer_id, e.email, NULL AS phone
               FROM identity.profiles, unnest(emails) AS e(email)
               UNION ALL
               SELECT CAST(profile_id AS VARCHAR), NULL, p.phone
               FROM identity.profiles, unnest(phones) AS p(phone)"""
        )
        out = out.merge(profile_addresses(held), on="customer_id", how="left")
    if as_of is not None:
        out = without_closed_addresses(wh, out, as_of, key)
    out["minor"] = out["customer_id"].astype(str).isin(minors)
    out.attrs["unmatched_refusals"] = refusals.attrs.get("unmatched_refusals", 0)
    return out


def without_closed_addresses(wh: Warehouse, consent: pd.DataFrame, as_of, key: str = "profile"):
    """``consent`` with ``closed`` (every CRM record of the profile closed by ``as_of``) and the
    ``address_<channel>`` flags cleared where the only addresses are on closed records (a
    recycled number can reach a stranger) and for closed profiles; unchanged when
    ``crm_contacts`` has no ``closed_at`` (:mod:`cemlib.marts.closed`)."""
    closure = crm_closure(wh, as_of, key)
    if not len(closure):
        return consent
    out = consent.assign(customer_id=consent["customer_id"].astype(str))
    gone = set(closure.loc[closure["closed"], "customer_id"])
    out["closed"] = out["customer_id"].isin(gone)
    fresh = open_addresses(wh, as_of, key)
    for flag in ("address_email", "address_sms"):
        has = out[flag].astype("boolean") if flag in out else pd.Series(True, index=out.index)
        if fresh is not None and flag in fresh:
            live = out["customer_id"].map(fresh.set_index("customer_id")[flag])
            has = has & live.astype("boolean").fillna(True)
        out[flag] = has.fillna(False).astype(bool) & ~out["closed"]
    return out


def without_closed_profiles(recs: pd.DataFrame, consent: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The offers of ``recs`` whose profile has not left (``consent``'s ``closed``, from
    :func:`without_closed_addresses`) and how many profiles left: theirs go nowhere."""
    if "closed" not in consent.columns:
        return recs, 0
    gone = set(consent.loc[consent["closed"].astype(bool), "customer_id"].astype(str))
    left = recs["customer_id"].astype(str).isin(gone)
    return recs[~left], int(recs.loc[left, "customer_id"].nunique())


def profile_records(wh: Warehouse, *, key: str = "profile") -> pd.DataFrame:
    """``customer_id, gender, birth_date`` of every mapped CRM record (the columns the table
    has; an absent one is NULL): what :mod:`cemlib.offers.eligibility` judges a profile by."""
    schema = source_schema(wh, "crm_contacts")
    if schema is None:
        return pd.DataFrame(columns=["customer_id", "gender", "birth_date"])
    cols = _columns_of(wh, schema, "crm_contacts")
    sel = ", ".join(
        f"CAST(c.{c} AS VARCHAR) AS {c}" if c in cols else f"CAST(NULL AS VARCHAR) AS {c}"
        for c in ("gender", "birth_date")
    )
    return wh.sql(
        f"""SELECT m.customer_id, {sel} FROM {schema}.crm_contacts c JOIN {key_relation(key)} m
            ON m.source_table = 'crm_contacts' AND m.record_id = CAST(c.contact_id AS VARCHAR)
            WHERE m.customer_id IS NOT NULL"""
    )


#: how much deeper than ``k`` the lists are ranked at most for the eligibility rules (× ``k``)
DEEPER = 2


def fitting_offers(
    ranked_at,
    tx: pd.DataFrame,
    attributes: pd.DataFrame,
    k: int,
    *,
    items: pd.DataFrame | None = None,
    granularity: str = "item",
    in_ranking: bool = False,
    never_kept: pd.DataFrame | None = None,
    new_items: bool = False,
):
    """Rank with the eligibility rules of ``tx`` (:mod:`cemlib.offers.eligibility`), the
    catalogue's declared audiences (``items.audience``) in place of the learned gender rules:
    ``ranked_at(depth)`` returns the lists ranked ``depth`` items per customer; the result is
    the ``k`` best fitting items of each, the offers held back from the first ``k`` and the
    rules. ``in_ranking``: with rules, ``ranked_at(depth, held)`` is given the held-back test
    and returns those ``k`` best fitting offers and the number held back itself
    (:meth:`NextOfferModel.recommend` ``(depth=, held=)``: chunk by chunk, before the reasons,
    so that only the ``k`` offers kept are explained; the same offers).

    The lists are ranked deeper by the most rule items one customer is held back from, at most
    ``DEEPER × k``: a catalogue declaring a thousand men's items would otherwise rank a
    thousand items for every woman. A customer left with fewer than ``k`` fitting items then
    gets the most popular items of ``tx`` that fit them (:func:`eligibility.fill_fitting`), as
    a short candidate list is filled with popular items.

    ``never_kept`` (``customer_id, item_id``: items the customer returned and never kept,
    :func:`cemlib.marts.returned_items`) are held back from that customer the same way (a size
    that did not fit is not offered back), and counted among the offers held back.

    ``new_items``: ``ranked_at`` ranks only items new to each customer (the model's
    ``recommend(new_items=True)``); the popular items filling a short list are new to the
    customer too (none of their pairs in ``tx``)."""
    rules = eligibility.learn_rules(tx, attributes)
    rules = eligibility.declared_rules(rules, items, attributes, granularity=granularity)
    rules = eligibility.with_returned(rules, never_kept)
    extra = eligibility.extra_depth(rules, attributes)
    depth = k + min(extra, DEEPER * k)
    if rules and in_ranking:
        held_test = partial(eligibility.held_back, rules=rules, attributes=attributes)
        out, held = ranked_at(depth, held_test)
        customers = pd.unique(pd.concat([out["customer_id"], attributes["customer_id"]]))
    else:
        ranked = ranked_at(depth)
        if not rules:
            return ranked, 0, rules
        out, held = eligibility.eligible_top_k(ranked, rules, attributes, k)
        customers = ranked["customer_id"]
    if extra > DEEPER * k:
        bought = tx[["customer_id", "item_id"]].drop_duplicates() if new_items else None
        out = eligibility.fill_fitting(out, tx, rules, attributes, k, customers, bought)
    return out, held, rules


def _granularity(granularity: str, items: pd.DataFrame | None, engine) -> str:
    """The granularity the stage ranks at (:func:`cemlib.offers.groups.resolved_granularity`:
    ``item`` ranks the catalogue's product groups when it names them). The Spark path ranks
    items: ``group`` there is an input error, ``item`` stays the items."""
    if engine is None:
        return groups.resolved_granularity(granularity, items)
    if granularity == "group":
        raise InputError(
            "granularity 'group' runs on engine duckdb only (engine spark ranks items)"
        )
    return "item" if granularity == "sku" else granularity


def _items(wh: Warehouse) -> pd.DataFrame | None:
    schema = source_schema(wh, "products")
    if schema is None:
        return None
    return wh.sql(f"SELECT * FROM {schema}.products")


def _churn_features(wh: Warehouse) -> pd.DataFrame | None:
    if not wh.has_table("marts", "churn_scores"):
        return None
    cols = _columns_of(wh, "marts", "churn_scores")
    keep = [c for c in ("p_purchase", "expected_revenue", "clv") if c in cols]
    if "customer_id" not in cols or not keep:
        return None
    cs = fetch_objects(
        wh.con, f"SELECT customer_id, {', '.join(keep)} FROM marts.churn_scores"
    )  # only the columns used
    return cs.assign(customer_id=cs["customer_id"].astype(str))


def _future_truth(wh: Warehouse, as_of, horizon_days: int, key: str, granularity: str):
    if not wh.has_table("truth", "future_lines"):
        return None
    lo = pd.Timestamp(as_of).normalize() + pd.Timedelta(days=1)
    hi = lo + pd.Timedelta(days=int(horizon_days))
    item = "category" if granularity == "category" else "sku"
    fut = fetch_objects(
        wh.con,
        f"SELECT CAST(person_id AS VARCHAR) AS person_id, CAST({item} AS VARCHAR) AS item_id "
        "FROM truth.future_lines WHERE ts >= ? AND ts < ?",
        [lo.to_pydatetime(), hi.to_pydatetime()],
    )
    if key == "person":
        return fut.rename(columns={"person_id": "customer_id"})
    # each profile stands for the person most of its records belong to
    best = fetch_objects(
        wh.con,
        """WITH n AS (
             SELECT CAST(m.profile_id AS VARCHAR) AS customer_id,
                    CAST(t.person_id AS VARCHAR) AS person_id, count(*) AS n
             FROM identity.map m JOIN truth.record_person t
               ON t.source_table = m.source_table
              AND CAST(t.record_id AS VARCHAR) = CAST(m.record_id AS VARCHAR)
             GROUP BY 1, 2)
           SELECT customer_id, person_id FROM n
           QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY n DESC, person_id) = 1""",
    )
    return best.merge(fut, on="person_id")[["customer_id", "item_id"]]


def without_items(frame: pd.DataFrame | None, excluded: set[str]) -> pd.DataFrame | None:
    """``frame`` (a truth or purchase window with ``item_id``) without the ``excluded`` items:
    an item never offered is no target of any ranking (trial 7 M2: a monthly top-up kept out
    of the offers but left in the truth gave every ranking hit rate 1.000)."""
    if frame is None or not excluded:
        return frame
    return frame[~frame["item_id"].astype(str).isin(excluded)]


def excluded_items(exclude, model: NextOfferModel) -> set[str]:
    """The item ids ``exclude`` keeps out on ``model``'s items (:mod:`cemlib.offers.exclude`)."""
    entries = read_exclusions(exclude)
    if not entries:
        return set()
    codes = resolve_exclusion(entries, model.enc_).codes
    return set(pd.Index(model.enc_.items)[codes].astype(str))


def new_only(frame: pd.DataFrame | None, history: pd.DataFrame) -> pd.DataFrame | None:
    """``frame`` (``customer_id, item_id`` rows: a truth window or ranked lists) without the
    pairs ``history`` holds: with ``new_items`` the offers are items new to the customer, so
    the figures grade them, and the baselines, on the purchases of items new to them."""
    if frame is None:
        return None
    seen = pd.MultiIndex.from_frame(history[["customer_id", "item_id"]].astype(str))
    pairs = pd.MultiIndex.from_frame(frame[["customer_id", "item_id"]].astype(str))
    return frame[~pairs.isin(seen)]


def most_bought(history: pd.DataFrame, customers) -> int:
    """The most distinct items one of ``customers`` bought in ``history``: how much deeper a
    ranking of items old and new is asked for so that ``k`` new ones remain."""
    mine = history[history["customer_id"].isin(pd.Index(customers))]
    if mine.empty:
        return 0
    return int(mine.groupby("customer_id")["item_id"].nunique().max())


def new_item_ranking(ranked: pd.DataFrame, history: pd.DataFrame, k: int) -> pd.DataFrame:
    """A ranked list (asked for ``k +`` :func:`most_bought` items per customer) without the
    items each customer bought in ``history``, re-ranked, the first ``k`` each."""
    keep = new_only(ranked, history).sort_values(["customer_id", "rank"], kind="stable")
    rank = keep.groupby("customer_id", sort=False).cumcount().to_numpy() + 1
    return keep.assign(rank=rank)[rank <= k].reset_index(drop=True)


def baseline_metrics(
    truth, history, customers, k: int, exclude=None, new_items: bool = False
) -> dict[str, pd.Series]:
    """Every baseline's row of the metric table (:func:`metric_table`), by name.

    The baselines rank only the customers the metrics read (those of ``customers`` with a
    purchase in ``truth``): each customer's list depends on the history alone, so the figures
    are the same as with every customer ranked, at a fraction of the cost (TIFU-KNN's neighbour
    search is per customer). They do not read the model: the stage computes them beside
    ``recommend``. ``exclude``: item ids never offered, kept out of the lists (ranked deeper,
    as :func:`baseline_offers` does) and of the truth. ``new_items``: the lists without the
    items each customer bought in ``history`` (ranked deeper by :func:`most_bought`), graded on
    the purchases of items new to the customer (:func:`new_only`)."""
    exclude = set(exclude or ())
    truth = without_items(truth, exclude)
    if new_items:
        truth = new_only(truth, history)
    graded = pd.Index(pd.unique(pd.Index(customers)))
    graded = graded[graded.isin(pd.unique(truth["customer_id"]))]
    deeper = most_bought(history, graded) if new_items else 0
    out = {}
    for name, base in all_baselines(history, k + len(exclude) + deeper, graded).items():
        if new_items:
            base = new_item_ranking(base, history, k + len(exclude))
        ranking = allowed_ranking(base, exclude, k)
        out[name] = evaluate(ranking, truth, k=k, history=history, customers=customers)
    return out


def metric_table(
    recs, truth, history, customers, k: int, baselines=None, exclude=None, new_items: bool = False
) -> pd.DataFrame:
    """Model and baselines scored on the same truth, history and customers; ``baselines``:
    :func:`baseline_metrics` of the same arguments, computed already (default: here).
    ``exclude``: item ids never offered, left out of the truth (and of the lists).
    ``new_items``: graded on the purchases of items new to the customer (:func:`new_only`)."""
    exclude = set(exclude or ())
    truth = without_items(truth, exclude)
    if new_items:
        truth = new_only(truth, history)
    recs = allowed_ranking(recs, exclude, k) if exclude else recs
    rows = {"model": evaluate(recs, truth, k=k, history=history, customers=customers)}
    if baselines is None:
        baselines = baseline_metrics(truth, history, customers, k, exclude, new_items)
    rows.update(baselines)
    return pd.DataFrame(rows).T


PUBLISH: tuple[str, ...] = ("auto", "model", "baseline")

#: the reason written with each offer of a baseline's list
BASELINE_REASONS = {
    "global_popularity": "one of the best sellers",
    "own_most_frequent": "one of the items you buy most often",
    "personal_then_popular": "bought before, or one of the best sellers",
    "tifu_knn": "bought before by you or by customers who buy like you",
    "repurchase_cycle": "due again by your usual rhythm, or a best seller",
}


def baseline_offers(
    name: str,
    history: pd.DataFrame,
    k: int,
    customers,
    exclude: set[str] | None = None,
    new_items: bool = False,
) -> pd.DataFrame:
    """The baseline ``name``'s top ``k`` for ``customers`` from ``history`` (cut at ``as_of``),
    shaped like the model's offers: ``customer_id, rank, item_id, score, reasons`` (the score
    falls from 1 with the rank). ``exclude``: item ids kept out (the list is ranked
    ``len(exclude)`` deeper, so ``k`` allowed items remain where they exist). ``new_items``:
    without the items each customer bought in ``history`` (:func:`new_item_ranking`)."""
    exclude = set(exclude or ())
    deeper = most_bought(history, customers) if new_items else 0
    out = getattr(baselines, name)(history, k + len(exclude) + deeper, customers)
    if new_items:  # the items each customer bought left out, as the model's lists
        out = new_item_ranking(out, history, k + len(exclude))
    out = allowed_ranking(out, exclude, k)
    out = out.sort_values(["customer_id", "rank"], kind="stable").reset_index(drop=True)
    out["score"] = (k + 1 - out["rank"].astype(float)) / k
    out["reasons"] = BASELINE_REASONS.get(name, name.replace("_", " "))
    return out


def _reworded(reasons: pd.Series, vocabulary: dict[str, str] | None) -> pd.Series:
    """The offer reasons in the run's vocabulary (each distinct text reworded once)."""
    if not vocabulary:
        return reasons
    from cemlib.reports.vocabulary import check_vocabulary, reword

    words = check_vocabulary(vocabulary)
    codes, texts = pd.factorize(reasons)
    return (
        pd.Series([reword(t, words) for t in texts], dtype=object)
        .take(codes)
        .set_axis(reasons.index)
    )


def choose_published(metrics: pd.DataFrame, k: int, publish: str, backtest: bool) -> str:
    """Which ranking ``marts.next_offers`` gets: ``model`` or a baseline's name.

    ``auto`` publishes the best baseline when it beat the model's NDCG@k on the backtest (the
    model refitted ``horizon_days`` before ``as_of`` and scored on the days up to it: nothing
    after ``as_of`` decides). Graded on a synthetic truth, which lies after ``as_of``, the model
    is published: the future cannot choose. ``baseline`` always publishes the best baseline of
    the evaluation; ``model`` the model."""
    if publish not in PUBLISH:
        raise InputError(f"publish must be one of {', '.join(PUBLISH)}, got {publish!r}")
    best = metrics.drop(index="model")[f"ndcg@{k}"]
    if publish == "baseline":
        return str(best.idxmax())
    if (
        publish == "auto"
        and backtest
        and float(best.max()) > float(metrics.loc["model", f"ndcg@{k}"])
    ):
        return str(best.idxmax())
    return "model"


def run_stage(
    wh: Warehouse,
    as_of: str | dt.date,
    *,
    run_id: str,
    k: int = 10,
    granularity: str = "item",
    horizon_days: int = 60,
    key: str = "profile",
    seed: int = DEFAULT_SEED,
    write: bool = True,
    progress: bool = False,
    publish: str = "auto",
    min_contact_age: int | None = MIN_CONTACT_AGE,
    vocabulary: dict[str, str] | None = None,
    exclude=None,
    engine=None,
    new_items: bool = False,
) -> OfferStageResult:
    """Fit, recommend, evaluate against the baselines and (``write=True``) replace
    ``marts.next_offers`` with the ranking :func:`choose_published` picks (``publish``).
    Profiles younger than ``min_contact_age`` at ``as_of`` get no outbound offer (0 or None:
    no age rule). ``vocabulary`` rewords the reasons in the business's words
    (:mod:`cemlib.reports.vocabulary`: ``{basket: visit, bought: had}``).

    With more than one worker (:func:`cemlib.offers.parallel.workers`) the truth and the
    consent are read beside the fit, and the baselines ranked beside ``recommend``: the same
    results as one after the other. ``exclude``: items and/or categories kept out of the
    published offers (a list, a comma-separated text or a file; :mod:`cemlib.offers.exclude`).
    ``engine``: where the history comes from and the offers are scored, None for ``wh``'s DuckDB
    and the model itself, or a :class:`~cemlib.offers.sparkstage.SparkOffers` over a
    :class:`~cemlib.engine.Lake` (its ``transactions()``, ``events()`` and ``recommend(model,
    ...)``: Spark SQL and ``mapInPandas``). ``new_items``: the lists hold only items (groups)
    the profile did not buy on or before ``as_of``, ranked by the same model and filled with
    popular items new to the profile; the model and the baselines (without the items each
    profile bought) graded on the purchases of items new to the profile."""
    from cemlib.budget import configure_warehouse

    if new_items and engine is not None:
        raise InputError("new_items: not with the Spark engine (run the stage on DuckDB)")
    configure_warehouse(wh)  # DuckDB spills past its share of the stage's memory budget
    if engine is None:
        # a return is no purchase, and an item sent back and never kept is offered to nobody
        # who sent it back (a size that did not fit): the history is the purchases kept
        tx, never_kept = returned_items(profile_transactions(wh, as_of, key=key))
        events = profile_events(wh, as_of, key=key)

        def recommend(m, held=None, **kw):
            # with a held-back test: the k fitting offers and their count (fitting_offers)
            if held is None:
                return m.recommend(**kw)
            return m.recommend(**{**kw, "k": k, "depth": kw["k"], "held": held}), m.held_back_
    else:  # engine spark: the history from Spark SQL, the scoring on its executors
        tx, events = engine.transactions(), engine.events()
        never_kept = engine.never_kept()  # the purchases kept are tx (Spark SQL)

        def recommend(m, held=None, new_items=False, **kw):  # no held-back test here:
            return engine.recommend(m, **kw)  # fitting_offers filters (new_items: refused)

    items = _items(wh)
    # a catalogue naming product groups: the sizes of one model are one offer (offers.groups)
    granularity = _granularity(granularity, items, engine)
    sent_back = never_kept if granularity != "category" else None  # items, not categories
    if granularity == "group":  # a group every item of which was sent back and never kept
        sent_back = groups.never_kept_groups(never_kept, tx, items)
    churn = _churn_features(wh)
    params = dict(
        k=k, horizon_days=horizon_days, granularity=granularity, seed=seed, progress=progress
    )
    workers = offer_workers(len(tx) + (len(events) if events is not None else 0))
    with Beside(workers) as beside:
        # the warehouse's connection is the side thread's alone while the model fits on its own
        read = beside.submit(
            lambda: (
                _future_truth(wh, as_of, horizon_days, key, granularity),
                profile_consent_table(wh, key=key, as_of=as_of, min_contact_age=min_contact_age),
                profile_records(wh, key=key),
            )
        )
        model = NextOfferModel(**params).fit(
            tx, as_of, events=events, items=items, customer_features=churn
        )
        customers = model.tx_["customer_id"].unique()  # the graded customers (the fit's)
        offered = customers  # the customers offered
        if engine is not None:  # Spark, a fit sample: every customer; graded: its uniform part
            offered, customers = engine.customers(customers), engine.graded(customers)
        truth, consent, records = read.result()
        if granularity == "group":
            truth = groups.grouped(truth, items)
        # items bought by one gender / age band only are not offered outside it (ranked deeper)
        attributes = eligibility.profile_attributes(records, as_of)
        attributes = attributes[attributes["customer_id"].isin(offered)]
        # items never offered are no target of any ranking (the lists are without them)
        kept_out = excluded_items(exclude, model)
        truth = without_items(truth, kept_out)
        # reasons only for the offers written: those of profiles with a usable channel
        reach = assign_channels(pd.DataFrame({"customer_id": offered}), consent)[0]["customer_id"]
        if truth is not None:  # the baselines are ranked beside the model's lists
            ranked = beside.submit(
                baseline_metrics, truth, model.tx_, customers, k, kept_out, new_items
            )
        # the candidate recall is counted on the candidates scoring builds (no second pass)
        recs, held, rules = fitting_offers(
            lambda depth, held=None: recommend(
                model,
                held,
                k=depth,
                recall_of=truth,
                recall_customers=customers,
                explain_customers=reach,
                exclude=exclude,
                new_items=new_items,
            ),
            model.tx_, attributes, k, items=items, granularity=granularity,
            in_ranking=engine is None, never_kept=sent_back, new_items=new_items,
        )  # fmt: skip
        if truth is not None:
            evaluation = f"synthetic truth: purchases in the {horizon_days} days after {as_of}"
            metrics = metric_table(
                recs, truth, model.tx_, customers, k, ranked.result(), kept_out, new_items
            )
            recall = model.scored_recall_
        else:
            back = pd.Timestamp(as_of) - pd.Timedelta(days=int(horizon_days))
            bt = NextOfferModel(**params).fit(tx, back, events=events, items=items)
            window = model.tx_[model.tx_["ts"] >= back + pd.Timedelta(days=1)]
            window = without_items(window, kept_out)
            bt_customers = bt.tx_["customer_id"].unique()
            if engine is not None:
                bt_customers = engine.graded(bt_customers)
            ranked = beside.submit(
                baseline_metrics, window, bt.tx_, bt_customers, k, kept_out, new_items
            )
            # the backtest ranks as the published lists do: without the excluded items
            bt_attributes = eligibility.profile_attributes(records, back)
            bt_recs = fitting_offers(
                lambda depth, held=None: recommend(
                    bt,
                    held,
                    k=depth,
                    explain=False,
                    recall_of=window,
                    recall_customers=bt_customers,
                    exclude=sorted(kept_out) or None,
                    new_items=new_items,
                ),
                bt.tx_, bt_attributes[bt_attributes["customer_id"].isin(bt_customers)], k,
                items=items, granularity=granularity, in_ranking=engine is None,
                never_kept=sent_back, new_items=new_items,
            )[0]  # fmt: skip
            evaluation = (
                f"backtest: model refitted at {back.date()}, scored on the last {horizon_days} days"
            )
            metrics = metric_table(
                bt_recs, window, bt.tx_, bt_customers, k, ranked.result(), kept_out, new_items
            )
            recall = bt.scored_recall_
    if new_items:  # the figures grade purchases of items new to the profile (new_only)
        evaluation += ", items new to the profile only (model and baselines)"
    published = choose_published(metrics, k, publish, backtest=truth is None)
    if published != "model":  # the baseline that ranks better: its list for every customer
        recs, held, rules = fitting_offers(
            lambda depth: baseline_offers(
                published, model.tx_, depth, offered, kept_out, new_items
            ),
            model.tx_, attributes, k, items=items, granularity=granularity,
            never_kept=sent_back, new_items=new_items,
        )  # fmt: skip
    if granularity == "group":  # the item of each group: the size the customer keeps
        recs = groups.offered_items(recs, tx, items, never_kept)
    # customers who left (every CRM record closed by as_of) get no outbound offer
    open_recs, closed_left = without_closed_profiles(recs, consent)
    sent, summary = assign_channels(open_recs, consent)
    names = (
        items.assign(sku=items["sku"].astype(str)).set_index("sku")["name"]
        if items is not None and "name" in items.columns and granularity != "category"
        else None
    )
    offers = pd.DataFrame(
        {
            "profile_id": sent["customer_id"].astype(str),
            "rank": sent["rank"].astype("int64"),
            "item_id": sent["item_id"].astype(str),
            "item_name": sent["item_id"].map(names) if names is not None else sent["item_id"],
            "score": sent["score"].astype(float),
            "reasons": _reworded(sent["reasons"].astype(str), vocabulary),
            "channel": sent["channel"].astype(str),
        }
    )[list(OFFER_COLUMNS)]
    if write:
        wh.write_table("marts", "next_offers", offers, run_id=run_id, as_of=as_of)
    return OfferStageResult(
        offers=offers,
        all_offers=recs,
        model=model,
        metrics=metrics,
        consent=summary,
        key=key,
        evaluation=evaluation,
        candidate_recall=recall,
        extras={
            "churn_features": churn is not None,
            "events": events is not None,
            "exclusion": model.exclusion_,
            "engine": "duckdb" if engine is None else "spark",
            "granularity": granularity,
            "new_items": new_items,
            **({} if engine is None else {"spark_scoring": engine.figures}),
            "eligibility": {"rules": rules, "held_back": held},
            "closed_not_offered": closed_left,
        },
        published=published,
    )
