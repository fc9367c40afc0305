"""Per-customer survival data as of a date, from any transactions table.

A *purchase occasion* is one customer-day with at least one sale (same-day orders are one
visit). A return (a row with a negative amount or quantity: :func:`return_rows`) is no occasion:
its amount, margin and items are taken off the customer's occasion on or before its day, so
monetary value is net of returns and a return does not make a customer look recent. Everything here only looks at occasions dated on or before the cut-off, so features built
"as of" a date never see later rows even when the input holds them.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from cemlib.columns import ID, NUMBER, TIME, typed_columns
from cemlib.errors import InputError

REQUIRED = ("customer_id", "ts", "amount")
OPTIONAL = ("margin", "channel", "item_id", "quantity", "order_id", "category")
#: what :func:`validate_transactions` checks: the required columns and the optional numbers
TRANSACTION_KINDS = {
    "customer_id": ID,
    "ts": TIME,
    "amount": NUMBER,
    "margin": NUMBER,
    "quantity": NUMBER,
}

FEATURES: tuple[str, ...] = (
    "n_purchases",
    "log_n",
    "recency_days",
    "age_days",
    "log_age",
    "mean_gap",
    "std_gap",
    "last_gap",
    "overdue",
    "rate",
    "n_30d",
    "n_90d",
    "n_180d",
    "n_365d",
    "log_monetary",
    "log_total",
    "amount_90d",
    "online_share_tx",
    "n_items",
)


def end_of_day(as_of: str | dt.date | pd.Timestamp) -> pd.Timestamp:
    """The first instant after ``as_of`` (``as_of`` is inclusive, whole day)."""
    return pd.Timestamp(as_of).normalize() + pd.Timedelta(days=1)


def validate_transactions(df: pd.DataFrame, source: str = "transactions") -> pd.DataFrame:
    """Check and type a transactions frame: customer_id (text), ts (timestamp), amount (float;
    empty is 0), and margin and quantity when present (:func:`cemlib.columns.typed_columns`).

    Raises :class:`InputError` naming the column for a missing column, an unparseable date or a
    non-numeric amount.
    """
    typed = typed_columns(df, TRANSACTION_KINDS, source=source, optional=OPTIONAL)
    out = df.copy()
    for col, values in typed.items():
        out[col] = values
    out["amount"] = out["amount"].astype(float).fillna(0.0)
    return out


def return_rows(df: pd.DataFrame) -> pd.Series | None:
    """Boolean per row: a return (a negative amount, or a negative quantity), None when no row
    is one (the common case: nothing to net)."""
    neg = df["amount"].lt(0)
    if "quantity" in df:
        neg = neg | df["quantity"].lt(0)
    neg = neg.fillna(False).astype(bool)
    return neg if neg.any() else None


def screen_transactions(
    df: pd.DataFrame, source: str = "transactions"
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Typed transactions without exact duplicate rows (a line exported twice), and how many
    were left out, and how many rows are returns (negative amounts: kept, and netted from the
    purchase occasion before them by :func:`purchase_occasions`):
    ``rows_in = rows_used + duplicates``; ``negative_amount`` of the rows used are returns."""
    typed = validate_transactions(df, source)
    dup = typed.duplicated(keep="first")
    kept = typed[~dup].reset_index(drop=True)
    neg = return_rows(kept)
    counts = {
        "rows_in": len(typed),
        "rows_used": len(kept),
        "duplicates": int(dup.sum()),
        "negative_amount": 0 if neg is None else int(neg.sum()),
    }
    if neg is not None and neg.all():
        kept = kept.iloc[:0]
    if kept.empty:
        raise InputError(
            f"no usable rows: {counts['duplicates']} exact duplicates and "
            f"{counts['negative_amount']} negative amounts of {counts['rows_in']}",
            source=source,
        )
    return kept, counts


def purchase_occasions(
    transactions: pd.DataFrame, as_of: str | dt.date | None = None
) -> pd.DataFrame:
    """Customer-day purchase occasions on or before ``as_of``: customer_id, day, amount, margin,
    online (share of online rows), n_items. Rows after ``as_of`` are dropped here."""
    df = transactions
    if as_of is not None:
        df = df[df["ts"] < end_of_day(as_of)]
    returned = return_rows(df)
    if returned is not None:  # returns: taken off the occasions, never one themselves
        returns, df = df[returned], df[~returned.to_numpy()]
    day = df["ts"].dt.normalize()
    agg = {"amount": ("amount", "sum")}
    work = pd.DataFrame({"customer_id": df["customer_id"].values, "day": day.values})
    work["amount"] = df["amount"].values
    work["margin"] = df["margin"].values if "margin" in df else np.nan
    if "channel" in df:
        work["online"] = (df["channel"].astype(str).str.lower() == "online").astype(float).values
    else:
        work["online"] = np.nan
    work["n_items"] = df["quantity"].fillna(1).values if "quantity" in df else 1.0
    agg = {
        "amount": ("amount", "sum"),
        "online": ("online", "mean"),
        "n_items": ("n_items", "sum"),
    }
    g = work.groupby(["customer_id", "day"], sort=True)
    occ = g.agg(**agg)
    # a day's margin is missing only when all its lines' are (sum with min_count=1), computed
    # by pandas' own groupby sum instead of a Python call per customer-day
    margin = g["margin"].sum(min_count=1) if "margin" in df else g["margin"].first()
    occ.insert(1, "margin", margin)
    occ = occ.reset_index()
    if returned is not None:
        occ = _net_returns(occ, returns, df)
    return occ


def _net_returns(occ: pd.DataFrame, returns: pd.DataFrame, sales: pd.DataFrame) -> pd.DataFrame:
    """``occ`` (purchase occasions) with each return's amount, margin and items taken off the
    occasion of its sale: the same customer's latest purchase of the same item on or before the
    return's day (without ``item_id``, or when none: the customer's latest occasion on or before
    it); amount and items not below zero. A return with no occasion before it (its sale before
    the history) is dropped."""
    r = pd.DataFrame(
        {
            "customer_id": returns["customer_id"].to_numpy(),
            "day": returns["ts"].dt.normalize().to_numpy(),
            "amount": returns["amount"].abs().to_numpy(),
            "margin": returns["margin"].abs().to_numpy() if "margin" in returns else np.nan,
            "n_items": (
                returns["quantity"].abs().fillna(1).to_numpy() if "quantity" in returns else 1.0
            ),
        }
    )
    r["sale_day"] = pd.Series(pd.NaT, index=r.index, dtype=r["day"].dtype)
    if "item_id" in returns and "item_id" in sales:
        r["item_id"] = returns["item_id"].astype(str).to_numpy()
        bought = pd.DataFrame(
            {
                "customer_id": sales["customer_id"].to_numpy(),
                "item_id": sales["item_id"].astype(str).to_numpy(),
                "sale_day": sales["ts"].dt.normalize().to_numpy(),
            }
        ).drop_duplicates()
        r = r.drop(columns="sale_day").sort_values("day", kind="stable")
        r = pd.merge_asof(
            r, bought.sort_values("sale_day").assign(_d=lambda b: b["sale_day"]),
            left_on="day", right_on="_d", by=["customer_id", "item_id"], direction="backward",
        ).drop(columns=["_d", "item_id"])  # fmt: skip
    lost = r["sale_day"].isna()
    if lost.any():  # no sale of the item: the customer's occasion before the return
        days = occ[["customer_id", "day"]].rename(columns={"day": "_d"}).sort_values("_d")
        fall = pd.merge_asof(
            r.loc[lost, ["customer_id", "day"]].reset_index().sort_values("day"), days,
            left_on="day", right_on="_d", by="customer_id", direction="backward",
        ).set_index("index")["_d"]  # fmt: skip
        r.loc[lost, "sale_day"] = fall.reindex(r.index[lost]).to_numpy()
    r = r[r["sale_day"].notna()]
    if r.empty:
        return occ
    take = r.groupby(["customer_id", "sale_day"], sort=False)[["amount", "margin", "n_items"]]
    take = take.sum(min_count=1)
    at = pd.MultiIndex.from_arrays([occ["customer_id"], occ["day"]])
    rows = at.get_indexer(take.index)
    found = rows >= 0
    rows, take = rows[found], take[found]
    out = occ.copy()
    for col, floor in (("amount", True), ("n_items", True), ("margin", False)):
        values = out[col].to_numpy(float).copy()
        values[rows] = values[rows] - take[col].fillna(0).to_numpy()
        if floor:
            values[rows] = np.maximum(values[rows], 0.0)
        out[col] = values
    return out


def customer_features(occasions: pd.DataFrame, cutoff: str | dt.date) -> pd.DataFrame:
    """RFM and inter-purchase features per customer with a purchase on or before ``cutoff``.

    Index: customer_id. Days are counted to the end of ``cutoff``'s day.
    """
    cut = pd.Timestamp(cutoff).normalize()
    occ = occasions[occasions["day"] <= cut]
    if occ.empty:
        return pd.DataFrame(columns=FEATURES)
    g = occ.groupby("customer_id", sort=True)
    first, last = g["day"].min(), g["day"].max()
    n = g.size().astype(float)
    age = (cut - first).dt.days.astype(float)
    rec = (cut - last).dt.days.astype(float)
    gaps = occ["day"].diff().dt.days.where(occ["customer_id"].eq(occ["customer_id"].shift()))
    gg = gaps.groupby(occ["customer_id"].values)
    mean_gap = gg.mean().reindex(n.index)
    std_gap = gg.std().reindex(n.index)
    last_gap = gg.last().reindex(n.index)
    f = pd.DataFrame(index=n.index)
    f["n_purchases"] = n
    f["log_n"] = np.log(n)
    f["recency_days"] = rec
    f["age_days"] = age
    f["log_age"] = np.log1p(age)
    span = (age - rec).clip(lower=0)
    # mean gap unknown for one-time buyers: fall back to the time observed
    f["mean_gap"] = mean_gap.fillna(age + 1.0)
    f["std_gap"] = std_gap.fillna(0.0)
    f["last_gap"] = last_gap.fillna(age + 1.0)
    f["overdue"] = rec / (f["mean_gap"] + 1.0)
    f["rate"] = (n - 1) / (span + 30.0)
    for d in (30, 90, 180, 365):
        recent = occ[occ["day"] > cut - pd.Timedelta(days=d)]
        f[f"n_{d}d"] = recent.groupby("customer_id").size().reindex(n.index).fillna(0.0)
    f["log_monetary"] = np.log1p(g["amount"].mean().clip(lower=0))
    f["log_total"] = np.log1p(g["amount"].sum().clip(lower=0))
    recent = occ[occ["day"] > cut - pd.Timedelta(days=90)]
    f["amount_90d"] = np.log1p(
        recent.groupby("customer_id")["amount"].sum().reindex(n.index).fillna(0.0).clip(lower=0)
    )
    f["online_share_tx"] = g["online"].mean().fillna(-1.0)
    f["n_items"] = np.log1p(g["n_items"].sum().clip(lower=0))
    f["first_day"] = first
    f["last_day"] = last
    f["mean_amount"] = g["amount"].mean()
    f["mean_margin"] = g["margin"].mean()
    return f


def future_counts(occasions_all: pd.DataFrame, start: pd.Timestamp, days: int) -> pd.DataFrame:
    """Occasions and amount per customer in the window (start, start + days] (whole days)."""
    s = pd.Timestamp(start).normalize()
    w = occasions_all[
        (occasions_all["day"] > s) & (occasions_all["day"] <= s + pd.Timedelta(days=days))
    ]
    g = w.groupby("customer_id")
    return pd.DataFrame({"n": g.size().astype(float), "amount": g["amount"].sum()})


def join_covariates(
    features: pd.DataFrame, covariates: pd.DataFrame | None, source: str = "covariates"
) -> tuple[pd.DataFrame, list[str]]:
    """Left-join customer covariates (numeric kept, categoricals one-hot with the most frequent
    level as reference, missing numerics imputed by the median plus a missing-indicator)."""
    if covariates is None or len(covariates) == 0:
        return features, []
    if "customer_id" not in covariates.columns:
        raise InputError("missing column", source=source, column="customer_id")
    cov = covariates.copy()
    cov["customer_id"] = cov["customer_id"].astype(str)
    if cov["customer_id"].duplicated().any():
        raise InputError("duplicate customer ids", source=source, column="customer_id")
    cov = cov.set_index("customer_id")
    cols: list[str] = []
    parts = []
    for c in cov.columns:
        s = cov[c]
        if c.startswith("_"):
            continue
        if pd.api.types.is_bool_dtype(s):
            s = s.astype(float)
        if pd.api.types.is_numeric_dtype(s):
            parts.append(s.astype(float).rename(f"cov_{c}"))
        else:
            s = s.astype("string").fillna("unknown")
            levels = s.value_counts()
            keep = [lv for lv in levels.index[1:] if levels[lv] >= max(5, 0.01 * len(s))]
            for lv in keep[:5]:
                parts.append((s == lv).astype(float).rename(f"cov_{c}={lv}"))
    if not parts:
        return features, []
    X = pd.concat(parts, axis=1).reindex(features.index)
    for c in list(X.columns):
        if X[c].isna().any():
            if X[c].notna().any() and X[c].nunique() > 1 and X[c].isna().mean() > 0.01:
                X[f"{c}_missing"] = X[c].isna().astype(float)
            X[c] = X[c].fillna(X[c].median() if X[c].notna().any() else 0.0)
    X = X.loc[:, X.nunique() > 1]
    cols = list(X.columns)
    return features.join(X), cols


def independent_columns(frame: pd.DataFrame, columns: list[str] | tuple) -> list[str]:
    """The ``columns`` of ``frame`` left after dropping, in order, each one with no variance or
    that is a linear combination of the intercept and the columns kept before it.

    Such a column leaves a survival fit without a unique coefficient: lifelines then warns that
    the variance matrix has negative values and reports an effect split arbitrarily between the
    aliased columns (trial 10: ``loyalty member`` 0 exactly where ``region: unknown`` is 1)."""
    kept: list[str] = []
    basis = np.empty((len(frame), 0))
    for c in columns:
        x = frame[c].to_numpy(dtype=float)
        x = x - x.mean()
        scale = np.abs(x).max() if len(x) else 0.0
        if not np.isfinite(scale) or scale == 0.0:
            continue
        x = x / scale
        if basis.shape[1]:
            # the part of x outside the span of the columns kept (least squares residual)
            coef, *_ = np.linalg.lstsq(basis, x, rcond=None)
            x_res = x - basis @ coef
        else:
            x_res = x
        if np.abs(x_res).max() <= 1e-8:
            continue
        kept.append(c)
        basis = np.column_stack([basis, x])
    return kept
