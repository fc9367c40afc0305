"""Golden records by survivorship: one row per profile that keeps every phone and email.

For each attribute the surviving value is the most frequent non-empty value of the profile's
records; ties go to the most recent record, then to the source with the highest priority.
"""

from __future__ import annotations

import pandas as pd

DEFAULT_SOURCE_PRIORITY: tuple[str, ...] = (
    "crm_contacts",
    "online_orders",
    "support_tickets",
    "pos_receipts",
    "web_events",
)
SURVIVING: tuple[str, ...] = (
    "first_name",
    "last_name",
    "middle_name",
    "birth_date",
    "city",
    "address",
    "postcode",
    "region",
    "loyalty_card",
)


def golden_records(
    records: pd.DataFrame,
    *,
    source_priority: tuple[str, ...] = DEFAULT_SOURCE_PRIORITY,
) -> pd.DataFrame:
    """``records`` = prepared records plus ``profile_id`` (NA rows skipped) -> golden records.

    Columns: profile_id, n_records, sources, first_seen, last_seen, the surviving attributes,
    ``phones`` and ``emails`` (every distinct value, most frequent first).
    """
    df = records[records["profile_id"].notna()].copy()
    rank = {s: i for i, s in enumerate(source_priority)}
    df["_prio"] = df["source"].map(rank).fillna(len(rank)).astype(int)
    df["_ts"] = pd.to_datetime(df["updated_at"], errors="coerce")
    g = df.groupby("profile_id", sort=True)
    out = pd.DataFrame(
        {
            "n_records": g.size(),
            "sources": g["source"].agg(lambda s: sorted(set(s.dropna()))),
            "first_seen": g["_ts"].min(),
            "last_seen": g["_ts"].max(),
        }
    )
    for col in SURVIVING:
        if col not in df or df[col].isna().all():
            out[col] = pd.NA
            continue
        sub = df.loc[df[col].notna(), ["profile_id", col, "_ts", "_prio"]]
        stats = (
            sub.groupby(["profile_id", col], sort=False)
            .agg(n=("_prio", "size"), ts=("_ts", "max"), prio=("_prio", "min"))
            .reset_index()
        )
        stats["ts"] = stats["ts"].fillna(pd.Timestamp.min)
        stats = stats.sort_values(
            ["profile_id", "n", "ts", "prio", col], ascending=[True, False, False, True, True]
        )
        out[col] = stats.drop_duplicates("profile_id").set_index("profile_id")[col]
    for kind, cols in (("phones", ("phone", "phone_2")), ("emails", ("email", "email_2"))):
        long = pd.concat(
            [df[["profile_id", c]].rename(columns={c: "v"}) for c in cols if c in df]
        ).dropna()
        counts = long.groupby(["profile_id", "v"]).size().reset_index(name="n")
        counts = counts.sort_values(["profile_id", "n", "v"], ascending=[True, False, True])
        out[kind] = counts.groupby("profile_id")["v"].agg(list)
        out[kind] = out[kind].apply(lambda v: v if isinstance(v, list) else [])
    return out.reset_index()
