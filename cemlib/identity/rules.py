"""Deterministic links on strong identifiers, with a guard against hub identifiers.

A phone, email key, loyalty card, device id or national id shared by records is a merge key,
unless it is a *hub*: seen with too many distinct first names or birth dates (a family phone, a
shop's own number typed at the till, ``test@test.ru``). Identifiers seen with a few names are
*shared*: they still link records whose names and birth dates agree, never on their own.
Identifiers seen with more names, dates or records than the hub thresholds link nothing. A
phone or device seen with several emails (or devices / phones) is *contested*: it links only
the records of its dominant email, device or phone (by record count) and those without one.
"""

from __future__ import annotations

from dataclasses import dataclass
from difflib import SequenceMatcher

import numpy as np
import pandas as pd

IDENTIFIER_COLUMNS: dict[str, tuple[str, ...]] = {
    "phone": ("phone", "phone_2"),
    "email": ("email", "email_2"),
    "loyalty_card": ("loyalty_card",),
    "device_id": ("device_id",),
    "national_id": ("national_id",),
}
PLACEHOLDERS: frozenset[str] = frozenset(
    {
        "test@test.ru",
        "test@test.com",
        "test@mail.ru",
        "noemail@mail.ru",
        "no@email.ru",
        "none@none.ru",
        "a@a.ru",
        "+70000000000",
        "+79999999999",
        "+79000000000",
        "+71111111111",
        "0",
        "000000",
        "none",
        "null",
        "unknown",
    }
)
NAME_SIMILARITY = 0.75
#: identifiers whose records must agree on another identifier (a family member's phone typed
#: on an order placed from the buyer's own account and device)
#: (identifier, context) -> strict. A record's identifier link is kept when the identifier is
#: the dominant one of the record's context value (its email's usual phone); when not strict,
#: also when the context is the identifier's dominant one (a second phone used with the email).
CONTEXTS: dict[tuple[str, str], bool] = {
    ("phone", "device_id"): True,
    ("phone", "email"): False,
    ("device_id", "email"): True,
}


@dataclass(frozen=True)
class HubGuard:
    """Thresholds deciding when an identifier may not merge records on its own.

    ``max_names``/``max_birth_dates``: more distinct first names / birth dates than this make
    the identifier *shared* (links only records that agree on name and date);
    ``hub_names``/``hub_birth_dates``/``hub_records``: more than this make it a *hub* (no links).
    """

    max_names: int = 1
    max_birth_dates: int = 1
    hub_names: int = 3
    hub_birth_dates: int = 3
    hub_records: int = 500


def names_similar(a: str, b: str) -> bool:
    """Same first name up to a typo (on the Latin key)."""
    if a == b:
        return True
    if a[:1] != b[:1]:
        return False
    return SequenceMatcher(None, a, b, autojunk=False).ratio() >= NAME_SIMILARITY


def fold_dob(series: pd.Series) -> pd.Series:
    """Birth date folded so a day/month swap gives the same key: ``YYYY|lo|hi``."""
    s = series.astype("string")
    y, m, d = s.str[:4], s.str[5:7], s.str[8:10]
    lo = m.where(m <= d, d)
    hi = d.where(m <= d, m)
    return (y + "|" + lo + "|" + hi).astype("string")


def _name_groups(names: list[str]) -> list[int]:
    """Greedy grouping of first-name keys that are equal up to a typo; group index per name."""
    reps: list[str] = []
    out = []
    for n in names:
        for i, r in enumerate(reps):
            if names_similar(n, r):
                out.append(i)
                break
        else:
            reps.append(n)
            out.append(len(reps) - 1)
    return out


def identifier_table(prepared: pd.DataFrame) -> pd.DataFrame:
    """Long table (rid, kind, value, first_lat, last_lat, dob, w) of every strong identifier;
    ``w`` is the number of source records a prepared row stands for (``_weight``, default 1)."""
    parts = []
    weight = prepared.get("_weight", 1)
    base = prepared[["first_lat", "last_lat"]].assign(
        rid=np.arange(len(prepared)), dob=fold_dob(prepared["birth_date"]), w=weight
    )
    for kind, cols in IDENTIFIER_COLUMNS.items():
        for col in cols:
            if col not in prepared:
                continue
            v = prepared[col]
            mask = v.notna().to_numpy()
            if mask.any():
                parts.append(base[mask].assign(kind=kind, value=v[mask].astype(str)))
    if not parts:
        return pd.DataFrame(columns=["rid", "kind", "value", "first_lat", "last_lat", "dob", "w"])
    long = pd.concat(parts, ignore_index=True)
    return long.drop_duplicates(["rid", "kind", "value"])[
        ["rid", "kind", "value", "first_lat", "last_lat", "dob", "w"]
    ]


def _group_stats(long: pd.DataFrame) -> pd.DataFrame:
    g = long.groupby(["kind", "value"], sort=False)
    stats = pd.DataFrame(
        {
            "n_records": g["w"].sum(),
            "n_nodes": g["rid"].size(),
            "n_name_keys": g["first_lat"].nunique(),
            "n_birth_dates": g["dob"].nunique(),
        }
    ).reset_index()
    return stats


def deterministic_links(
    prepared: pd.DataFrame, guard: HubGuard | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Links ``(rid_l, rid_r, rule)`` from shared strong identifiers, and the guarded identifiers.

    The guarded table has one row per guarded identifier: kind, value, status
    (``shared``/``hub``/``contested``), n_records, n_names, n_birth_dates.
    """
    guard = guard or HubGuard()
    long = identifier_table(prepared)
    empty_links = pd.DataFrame(
        {"rid_l": pd.Series(dtype="int64"), "rid_r": pd.Series(dtype="int64"), "rule": []}
    )
    if long.empty:
        return empty_links, _empty_guarded()
    stats = _group_stats(long)
    # identifiers on one distinct record can link nothing, but a hub stays listed (the shop's
    # number on a thousand otherwise identical receipts)
    keep = (
        (stats["n_nodes"] > 1)
        | (stats["n_records"] > guard.hub_records)
        | stats["value"].str.lower().isin(PLACEHOLDERS)
    )
    stats = stats[keep].copy()
    long = long.merge(stats[["kind", "value"]], on=["kind", "value"])
    stats["n_names"] = stats["n_name_keys"]
    # Fuzzy count of distinct first names where the exact count says more than one.
    multi = stats[stats["n_name_keys"] > 1]
    if len(multi):
        sub = long.merge(multi[["kind", "value"]], on=["kind", "value"])
        sub = sub.dropna(subset=["first_lat"]).drop_duplicates(["kind", "value", "first_lat"])
        counts = {}
        first_arr = sub["first_lat"].to_numpy(dtype=object)
        last_arr = sub["last_lat"].astype(object).where(sub["last_lat"].notna(), None).to_numpy()
        for key, idx in sub.groupby(["kind", "value"], sort=False).indices.items():
            names = first_arr[idx].tolist()
            lasts = {x for x in last_arr[idx].tolist() if x is not None}
            # a first name equal to another record's last name is a swapped name, not a person
            names = [n for n in names if n not in lasts] or names[:1]
            counts[key] = len(set(_name_groups(names))) if len(names) <= 50 else len(names)
        idx = pd.MultiIndex.from_frame(stats[["kind", "value"]])
        stats["n_names"] = pd.Series(idx.map(counts), index=stats.index).fillna(
            stats["n_name_keys"]
        )
    stats["n_names"] = stats["n_names"].astype(int)
    hub = (
        (stats["n_names"] > guard.hub_names)
        | (stats["n_birth_dates"] > guard.hub_birth_dates)
        | (stats["n_records"] > guard.hub_records)
        | stats["value"].str.lower().isin(PLACEHOLDERS)
    )
    shared = ~hub & (
        (stats["n_names"] > guard.max_names) | (stats["n_birth_dates"] > guard.max_birth_dates)
    )
    stats["status"] = np.where(hub, "hub", np.where(shared, "shared", "unique"))
    long = long.merge(stats[["kind", "value", "status"]], on=["kind", "value"])

    # unique identifiers: star links to the smallest record; a phone or device seen with
    # several emails links only the records of its dominant email (and those without one)
    uni = long[long["status"] == "unique"].copy()
    contested = []
    for (kind, ctx_col), strict in CONTEXTS.items():
        if ctx_col not in prepared:
            continue
        rows = uni["kind"] == kind
        sub = uni[rows]
        values = prepared[ctx_col].to_numpy(dtype=object)
        ctx = pd.Series(values[sub["rid"].to_numpy()], index=sub.index, dtype="string")
        both = sub.assign(ctx=ctx).dropna(subset=["ctx"])
        if both.empty:
            continue
        w = both.groupby(["value", "ctx"], sort=False)["w"].sum().reset_index()
        by_ctx = w.sort_values(["ctx", "w", "value"], ascending=[1, 0, 1]).drop_duplicates("ctx")
        by_val = w.sort_values(["value", "w", "ctx"], ascending=[1, 0, 1]).drop_duplicates("value")
        ok = (
            both["value"].to_numpy() == both["ctx"].map(by_ctx.set_index("ctx")["value"]).to_numpy()
        )
        if not strict:
            dom_ctx = both["value"].map(by_val.set_index("value")["ctx"]).to_numpy()
            ok |= dom_ctx == both["ctx"].to_numpy()
        drop = both.index[~ok]
        if len(drop):
            contested.append(both.loc[drop, ["kind", "value"]])
            uni = uni.drop(index=drop)
    contested_keys = pd.concat(contested).drop_duplicates() if contested else pd.DataFrame()
    anchor = uni.groupby(["kind", "value"], sort=False)["rid"].transform("min")
    links = [pd.DataFrame({"rid_l": anchor, "rid_r": uni["rid"], "rule": uni["kind"]})]

    # shared identifiers: links only inside a (first name, birth date) subgroup
    sh = long[long["status"] == "shared"].dropna(subset=["first_lat"])
    if len(sh):
        sh = sh.copy()
        gid = np.empty(len(sh), dtype=object)
        for _, idx in sh.groupby(["kind", "value"], sort=False).indices.items():
            names = sh["first_lat"].iloc[idx].tolist()
            groups = _name_groups(names)
            for j, g in zip(idx, groups, strict=True):
                gid[j] = g
        sh["name_group"] = gid
        keys = ["kind", "value", "name_group"]
        n_dobs = sh.groupby(keys, sort=False)["dob"].transform("nunique")
        # several dates under one name: link only records with the same date
        sh["dob_key"] = np.where(n_dobs > 1, sh["dob"].fillna("?"), "*")
        sh = sh[sh["dob_key"] != "?"]
        anchor = sh.groupby([*keys, "dob_key"], sort=False)["rid"].transform("min")
        links.append(
            pd.DataFrame({"rid_l": anchor, "rid_r": sh["rid"], "rule": sh["kind"] + "+name"})
        )
    out = pd.concat(links, ignore_index=True)
    out = out[out["rid_l"] != out["rid_r"]].astype({"rid_l": "int64", "rid_r": "int64"})
    out = out.drop_duplicates(["rid_l", "rid_r", "rule"]).reset_index(drop=True)
    if len(contested_keys):
        flag = stats.merge(contested_keys.assign(_c=True), on=["kind", "value"], how="left")
        hit = flag["_c"].astype("boolean").fillna(False).to_numpy(dtype=bool)
        stats.loc[hit, "status"] = "contested"
    guarded = stats[stats["status"] != "unique"][
        ["kind", "value", "status", "n_records", "n_names", "n_birth_dates"]
    ].reset_index(drop=True)
    return out, guarded


def _empty_guarded() -> pd.DataFrame:
    return pd.DataFrame(
        columns=["kind", "value", "status", "n_records", "n_names", "n_birth_dates"]
    )
