"""What ``cem churn`` computes from users' files: purchase probability, expected purchases and
CLV per customer from transactions, or cancellation risk per active contract from
subscriptions. Files are read by the one reader (:func:`cemlib.io.read_file`); columns are
renamed by an explicit mapping, then by common aliases."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cemlib import DEFAULT_SEED
from cemlib.io import read_file
from cemlib.normalize import parse_amounts

MAIN_COLUMNS = (
    "customer_id",
    "p_purchase",
    "expected_purchases",
    "expected_revenue",
    "risk_segment",
)

ALIASES = {
    "customer_id": ("customer", "client_id", "profile_id", "person_id", "клиент", "id_клиента"),
    "ts": ("date", "datetime", "timestamp", "ordered_at", "purchased_at", "дата"),
    "amount": ("sum", "revenue", "value", "dollar_value", "сумма"),
}


def with_aliases(frame: pd.DataFrame, mapping: dict[str, str] | None = None) -> pd.DataFrame:
    """Rename columns by an explicit ``{their: canonical}`` mapping, then by common aliases
    (only where the canonical name is absent)."""
    df = frame.rename(columns=mapping or {})
    lower = {str(c).lower(): c for c in df.columns}
    for canon, names in ALIASES.items():
        if canon in df.columns:
            continue
        for n in names:
            if n in lower:
                df = df.rename(columns={lower[n]: canon})
                break
    return df


def typed_covariates(cov: pd.DataFrame) -> pd.DataFrame:
    """Covariate columns read as text: numbers (decimal commas allowed) become floats."""
    out = cov.copy()
    for c in out.columns:
        if c == "customer_id" or pd.api.types.is_numeric_dtype(out[c]):
            continue
        num = parse_amounts(out[c])
        present = out[c].notna() & (out[c].astype(str).str.strip() != "")
        if present.any() and num[present].notna().mean() > 0.95:
            out[c] = num
    return out


def score_transactions(
    transactions: str | Path | pd.DataFrame,
    as_of: str | pd.Timestamp,
    horizon_days: int,
    covariates: str | Path | pd.DataFrame | None = None,
    mapping: dict[str, str] | None = None,
    annual_discount: float = 0.1,
    seed: int = DEFAULT_SEED,
) -> pd.DataFrame:
    """What ``cem churn TRANSACTIONS`` computes, as a DataFrame (the benchmarks call this).

    ``attrs["model"]`` holds the fitted :class:`~cemlib.churn.models.ChurnModel` and
    ``attrs["screened"]`` the counts of rows left out (duplicates, negative amounts).
    """
    from cemlib.churn.features import screen_transactions
    from cemlib.churn.models import ChurnModel

    source = (
        transactions.attrs.get("source", "transactions")  # a frame read from a file names it
        if isinstance(transactions, pd.DataFrame)
        else str(transactions)
    )
    tx = transactions if isinstance(transactions, pd.DataFrame) else read_file(transactions)
    tx = with_aliases(tx, mapping)
    tx, screened = screen_transactions(tx, source)
    cov = None
    if covariates is not None:
        cov = covariates if isinstance(covariates, pd.DataFrame) else read_file(covariates)
        cov = with_aliases(cov, mapping)
        cov = typed_covariates(cov)
    horizons = sorted({h for h in (90, 180, 365) if h < horizon_days} | {int(horizon_days)})
    model = ChurnModel(horizons=horizons, annual_discount=annual_discount, seed=seed)
    model.fit(tx, as_of=as_of, covariates=cov, source=source)
    scores = model.predict()
    rest = [c for c in scores.columns if c not in MAIN_COLUMNS]
    scores = scores[list(MAIN_COLUMNS) + rest]
    scores.attrs["model"] = model
    scores.attrs["screened"] = screened
    return scores


def score_subscriptions(
    subscriptions: str | Path | pd.DataFrame,
    as_of: str | pd.Timestamp,
    horizon_days: int,
    mapping: dict[str, str] | None = None,
    seed: int = DEFAULT_SEED,
) -> pd.DataFrame:
    """What ``cem churn --subscriptions`` computes, as a DataFrame (``attrs["model"]`` holds the
    fitted :class:`~cemlib.churn.subscriptions.SubscriptionChurnModel`)."""
    from cemlib.churn.subscriptions import SubscriptionChurnModel

    source = str(subscriptions) if not isinstance(subscriptions, pd.DataFrame) else "subscriptions"
    subs = subscriptions if isinstance(subscriptions, pd.DataFrame) else read_file(subscriptions)
    subs = typed_covariates(with_aliases(subs, mapping))
    for c in ("start", "end"):
        if c in subs:
            subs[c] = subs[c].astype("string")
    model = SubscriptionChurnModel(seed=seed).fit(subs, as_of, source=source)
    out = model.predict(horizon_days)
    out.attrs["model"] = model
    return out
