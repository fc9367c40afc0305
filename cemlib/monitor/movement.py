"""What moved since the previous run: profile ids (new, merged, split) and churn risk."""

from __future__ import annotations

import pandas as pd
from sklearn.metrics import roc_auc_score

from cemlib.warehouse import Warehouse, table_columns

SEGMENTS: tuple[str, ...] = ("low", "medium", "high")


def profile_changes(wh: Warehouse, run_id: str, previous_active: int | None) -> dict:
    """Profiles now, new in this run, merged and split (``identity.registry`` /
    ``identity.changes``), records per profile, and the share of the previous run's ids that
    changed (merged, split, retired) — empty without the identity tables."""
    if not wh.has_table("identity", "registry"):
        return {}
    status = dict(
        wh.con.execute("SELECT status, count(*) FROM identity.registry GROUP BY 1").fetchall()
    )
    new = wh.con.execute(
        "SELECT count(*) FROM identity.registry WHERE first_run_id = ? AND status = 'active'",
        [run_id],
    ).fetchone()[0]
    ids: dict[str, int] = {}
    records: dict[str, int] = {}
    if wh.has_table("identity", "changes"):  # this run's changes, one row per merge, split part...
        for change, n_ids, n_records in wh.con.execute(
            "SELECT change, count(DISTINCT profile_id), coalesce(sum(records), 0) "
            "FROM identity.changes GROUP BY 1"
        ).fetchall():
            ids[change], records[change] = int(n_ids), int(n_records)
    out = {
        "profiles": int(status.get("active", 0)),
        "new profiles": int(new),
        "merged ids": ids.get("merge", 0),  # identity writes "merge", "split", "moved", ...
        "split ids": ids.get("split", 0),
        "moved records": records.get("moved", 0),
        "dormant ids": ids.get("dormant", 0),
        "retired ids": ids.get("retired", 0),
    }
    if wh.has_table("identity", "map"):
        out["records per profile"] = float(
            wh.con.execute(
                # attached records only, as 02 counts them (trial 12 F9: 4.32 with
                # the unattached rows against 02's 3.6)
                "SELECT count(profile_id) / nullif(count(DISTINCT profile_id), 0) FROM identity.map"
            ).fetchone()[0]
            or 0.0
        )
    if previous_active:
        changed = out["merged ids"] + out["split ids"] + out["retired ids"]
        out["share of ids changed"] = changed / previous_active
    return out


def closed_between(wh: Warehouse, since: str | None, until: str) -> set[str] | None:
    """Today's profile ids of the customers who left between two runs: every CRM record
    closed by ``until`` (``identity.profiles.closed_at``, stage 02), the last one after
    ``since`` (so the profile was open as of ``since``; both days inclusive, as ``as_of``).
    None when ``identity.profiles`` has no ``closed_at`` (no closing dates in the CRM) or
    there is no previous run."""
    if since is None or "closed_at" not in table_columns(wh.con, "identity", "profiles"):
        return None
    day = pd.Timedelta(days=1)
    lo, hi = pd.Timestamp(since).normalize() + day, pd.Timestamp(until).normalize() + day
    rows = wh.con.execute(
        "SELECT CAST(profile_id AS VARCHAR) FROM identity.profiles "
        "WHERE closed_at >= ? AND closed_at < ?",
        [lo.to_pydatetime(), hi.to_pydatetime()],
    ).fetchall()
    return {r[0] for r in rows}


def closures(
    previous: pd.DataFrame, current_ids: pd.Series, left: set[str], scored_now: pd.Series
) -> dict:
    """The customers of the previous run's churn forecast (``previous``, its ids followed to
    today's, ``current_ids``) who left since (``left``: :func:`closed_between`): a change of
    their own, not customers who vanished. Counts them, by their risk segment before, ranks
    them by the forecast (AUC of ``1 - p_purchase`` on "left"), and counts the customers no
    longer scored for another reason (``scored_now``: today's scored ids)."""
    prev = previous.assign(current_id=current_ids.to_numpy()).drop_duplicates("current_id")
    gone = prev["current_id"].isin(left).to_numpy(dtype=bool)
    scored = prev["current_id"].isin(set(scored_now.astype(str))).to_numpy(dtype=bool)
    out = {
        "customers who left since (every contract closed)": int(gone.sum()),
        "customers who left since: high-risk before": int(
            (gone & (prev["risk_segment"] == "high").to_numpy()).sum()
        ),
        "customers no longer scored (not closed)": int((~gone & ~scored).sum()),
    }
    if 0 < gone.sum() < len(gone):
        out["auc of the forecast on who left"] = float(
            roc_auc_score(gone, 1.0 - prev["p_purchase"].to_numpy(dtype=float))
        )
    return out


def risk_movement(
    previous: pd.DataFrame, current: pd.DataFrame, current_ids: pd.Series, n_top: int = 15
) -> tuple[pd.DataFrame, dict, pd.DataFrame]:
    """Transitions between risk segments of the customers of both runs (``previous`` is the
    last run's forecast with its ids followed to today's, ``current_ids``), the value at risk
    (historic spend of the high-risk customers) before and now, and the most valuable customers
    who became high-risk (pseudonymous profile ids)."""
    prev = previous.assign(current_id=current_ids.to_numpy()).drop_duplicates("current_id")
    both = prev[["current_id", "risk_segment"]].merge(
        current[["customer_id", "risk_segment", "historic_value", "p_purchase"]],
        left_on="current_id",
        right_on="customer_id",
        suffixes=("_before", "_now"),
    )
    table = pd.crosstab(both["risk_segment_before"], both["risk_segment_now"])
    table = table.reindex(index=list(SEGMENTS), columns=list(SEGMENTS), fill_value=0)
    table.index.name, table.columns.name = "before", "now"
    risky_now = current["risk_segment"] == "high"
    risky_before = previous["risk_segment"] == "high"
    figures = {
        "customers in both runs": int(len(both)),
        "moved to a higher risk": int(
            (
                both["risk_segment_now"].map(SEGMENTS.index)
                > both["risk_segment_before"].map(SEGMENTS.index)
            ).sum()
        ),  # fmt: skip
        "moved to a lower risk": int(
            (
                both["risk_segment_now"].map(SEGMENTS.index)
                < both["risk_segment_before"].map(SEGMENTS.index)
            ).sum()
        ),  # fmt: skip
        "value at risk now": float(current.loc[risky_now, "historic_value"].sum()),
        "value at risk before": float(previous.loc[risky_before, "historic_value"].sum()),
        "high-risk customers now": int(risky_now.sum()),
        "high-risk customers before": int(risky_before.sum()),
    }
    became = both[(both["risk_segment_now"] == "high") & (both["risk_segment_before"] != "high")]
    top = became.sort_values("historic_value", ascending=False).head(n_top)[
        ["customer_id", "risk_segment_before", "risk_segment_now", "historic_value", "p_purchase"]
    ]
    figures["became high-risk"] = int(len(became))
    if "horizon_days" in current and len(current):  # the forecast's horizon in its name
        top = top.rename(
            columns={"p_purchase": f"p_purchase_{int(current['horizon_days'].iloc[0])}"}
        )
    return table.reset_index(), figures, top.reset_index(drop=True)
