"""Reading users' transaction, covariate and subscription files for ``cem churn``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cemlib.errors import InputError


def read_frame(path: str | Path, what: str = "file") -> pd.DataFrame:
    """A CSV (any delimiter, UTF-8 or cp1251, gzip) or Parquet file as text columns.

    Uses the collect stage's reader (encoding and delimiter sniffing, clear errors) and falls
    back to pandas when it is not available.
    """
    p = Path(path)
    source = str(p)
    if not p.is_file():
        raise InputError(f"{what} not found", source=source)
    if p.stat().st_size == 0:
        raise InputError("empty file (0 bytes): expected a header line", source=source)
    if p.suffix.lower() in (".parquet", ".pq"):
        from cemlib.collect.loaders import nested_columns

        nested_columns(p, source)
        try:
            return pd.read_parquet(p)
        except Exception as exc:  # noqa: BLE001 - any reader failure is the user's file
            raise InputError(f"not a readable Parquet file: {exc}", source=source) from None
    try:
        from cemlib.collect.loaders import _read_csv

        frame, _, _ = _read_csv(p, source, None, None)
    except ImportError:  # pragma: no cover
        try:
            frame = pd.read_csv(p, sep=None, engine="python", dtype=str)
        except Exception as exc:  # noqa: BLE001
            raise InputError(f"unreadable CSV: {exc}", source=source) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty:
        raise InputError("no data rows (header only)", source=source)
    return frame


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
