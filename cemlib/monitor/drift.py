"""Data drift between two runs: per source table the rows, quarantine and null shares, and the
population stability index (PSI) of each numeric and categorical column.

A run stores a compact profile of its columns (``monitor.column_profile``: decile bins of each
numeric column, the shares of each category), so the next run compares its data with the
previous run's without reading the previous data again. Everything is counted in DuckDB.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from cemlib.schema import TABLES
from cemlib.warehouse import Warehouse

#: PSI bands: below 0.1 stable, 0.1 to 0.25 moderate shift, above 0.25 significant shift
PSI_BANDS: tuple[float, float] = (0.1, 0.25)
#: a text column with at most this many distinct values is profiled as a category
MAX_CATEGORIES = 50
#: share given to an empty bin, so that the PSI stays finite
_EPS = 1e-4
_PII = ("phone", "email", "name", "address", "birth", "cookie", "device")
PROFILE_COLUMNS = ("table_name", "column_name", "kind", "bin", "lo", "hi", "share")


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of ``actual`` shares against ``expected`` shares (same bins):
    ``sum((a - e) * ln(a / e))``, empty bins counted as a share of 0.0001."""
    e = np.clip(np.asarray(expected, float), _EPS, None)
    a = np.clip(np.asarray(actual, float), _EPS, None)
    return float(np.sum((a - e) * np.log(a / e)))


def psi_band(value: float | None) -> str:
    """``stable`` (< 0.1), ``moderate`` (0.1-0.25) or ``significant`` (> 0.25)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if value < PSI_BANDS[0]:
        return "stable"
    return "moderate" if value <= PSI_BANDS[1] else "significant"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def source_tables(wh: Warehouse) -> list[str]:
    """The canonical source tables staged in this run."""
    return [t for t in TABLES if wh.has_table("staging", t)]


def _rows_until(table: str, as_of: str, schema: str = "staging") -> str:
    """SQL of ``<schema>.<table>`` restricted to rows dated on or before ``as_of`` (undated
    rows included: a bad date is a quality finding of the run)."""
    spec = TABLES[table]
    where = ""
    if spec.date_column:
        where = (
            f" WHERE {_q(spec.date_column)} IS NULL OR "
            f"CAST({_q(spec.date_column)} AS DATE) <= DATE '{as_of}'"
        )
    return f"(SELECT * FROM {schema}.{_q(table)}{where})"


def profiled_columns(wh: Warehouse, table: str) -> dict[str, str]:
    """``column -> "numeric" | "category"`` of the columns whose distribution is compared: numbers,
    and text or flags with at most :data:`MAX_CATEGORIES` values (chosen from the data); ids,
    dates and personal data are left out."""
    spec = TABLES[table]
    skip = {spec.id_column, spec.date_column, *spec.identifiers, "order_id", "receipt_id"}
    cols = wh.con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'staging' AND table_name = ? ORDER BY ordinal_position",
        [table],
    ).fetchall()
    out: dict[str, str] = {}
    text: list[str] = []
    for name, dtype in cols:
        low = name.lower()
        if name in skip or name.startswith("_") or any(p in low for p in _PII) or "_id" in low:
            continue
        dtype = dtype.upper()
        if any(t in dtype for t in ("INT", "DOUBLE", "DECIMAL", "FLOAT", "REAL", "NUMERIC")):
            out[name] = "numeric"
        elif dtype in ("VARCHAR", "BOOLEAN"):
            text.append(name)
    if text:
        sel = ", ".join(f"approx_count_distinct({_q(c)})" for c in text)
        counts = wh.con.execute(f"SELECT {sel} FROM staging.{_q(table)}").fetchone()
        out.update(
            {c: "category" for c, n in zip(text, counts, strict=True) if n <= MAX_CATEGORIES}
        )
    return out


def _numeric_profile(wh: Warehouse, rel: str, col: str) -> pd.DataFrame:
    """Decile bins of ``col`` (distinct edges) with the share of rows in each; nulls a bin."""
    qs = wh.con.execute(
        f"SELECT quantile_cont({_q(col)}, [0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9]) FROM {rel}"
    ).fetchone()[0]
    edges = sorted({float(x) for x in (qs or []) if x is not None})
    return _shares_in_bins(wh, rel, col, edges)


def _shares_in_bins(wh: Warehouse, rel: str, col: str, edges: list[float]) -> pd.DataFrame:
    """Share of rows of ``rel`` in the bins ``(-inf, e1], (e1, e2], ..., (en, inf)`` and null."""
    cases = " ".join(f"WHEN {_q(col)} <= {e!r} THEN {i}" for i, e in enumerate(edges))
    expr = f"CASE WHEN {_q(col)} IS NULL THEN -1 {cases} ELSE {len(edges)} END"
    got = dict(wh.con.execute(f"SELECT {expr} AS b, count(*) FROM {rel} GROUP BY b").fetchall())
    total = sum(got.values()) or 1
    lo = [-math.inf, *edges]
    hi = [*edges, math.inf]
    rows = [("null", None, None, got.get(-1, 0) / total)]
    rows += [(str(i), lo[i], hi[i], got.get(i, 0) / total) for i in range(len(edges) + 1)]
    return pd.DataFrame(rows, columns=["bin", "lo", "hi", "share"])


def _category_profile(wh: Warehouse, rel: str, col: str) -> pd.DataFrame:
    got = wh.con.execute(
        f"SELECT coalesce(CAST({_q(col)} AS VARCHAR), 'null') AS b, count(*) FROM {rel} GROUP BY b"
    ).fetchall()
    total = sum(n for _, n in got) or 1
    return pd.DataFrame(
        [(b, None, None, n / total) for b, n in got], columns=["bin", "lo", "hi", "share"]
    )


def column_profile(wh: Warehouse, as_of: str) -> pd.DataFrame:
    """This run's profile of every compared column of every source table (rows up to
    ``as_of``): :data:`PROFILE_COLUMNS`."""
    parts = []
    for table in source_tables(wh):
        rel = _rows_until(table, as_of)
        for col, kind in profiled_columns(wh, table).items():
            prof = (_numeric_profile if kind == "numeric" else _category_profile)(wh, rel, col)
            parts.append(prof.assign(table_name=table, column_name=col, kind=kind))
    parts = [p.astype({"lo": float, "hi": float, "share": float}) for p in parts]
    if not parts:
        return pd.DataFrame(columns=list(PROFILE_COLUMNS))
    out = pd.concat(parts, ignore_index=True)[list(PROFILE_COLUMNS)]
    return out.astype({"lo": float, "hi": float, "share": float})


def column_drift(wh: Warehouse, as_of: str, previous: pd.DataFrame) -> pd.DataFrame:
    """PSI of each column profiled in ``previous`` (the last run's ``monitor.column_profile``)
    that this run still has: table, column, kind, psi, band. Numeric columns are counted in the
    previous run's bins; a category new in this run counts against an empty previous bin."""
    rows = []
    have = {t: profiled_columns(wh, t) for t in source_tables(wh)}
    for (table, col), prev in previous.groupby(["table_name", "column_name"], sort=True):
        if col not in have.get(table, {}):
            continue
        rel = _rows_until(table, as_of)
        kind = prev["kind"].iloc[0]
        if kind == "numeric":
            edges = sorted(prev["hi"].dropna().loc[lambda s: np.isfinite(s)].unique().tolist())
            now = _shares_in_bins(wh, rel, col, edges)
            prev = prev.assign(bin=prev["bin"].astype(str))
        else:
            now = _category_profile(wh, rel, col)
        both = prev[["bin", "share"]].merge(
            now[["bin", "share"]], on="bin", how="outer", suffixes=("_prev", "_now")
        )
        both = both.fillna(0.0)
        value = psi(both["share_prev"].to_numpy(), both["share_now"].to_numpy())
        rows.append((table, col, kind, value, psi_band(value)))
    return pd.DataFrame(rows, columns=["table_name", "column_name", "kind", "psi", "band"])


def table_figures(wh: Warehouse, as_of: str) -> pd.DataFrame:
    """Per source table: rows staged, rows up to ``as_of``, and of these the rows quarantined
    and their share (rows dated after ``as_of`` are quarantined for that alone: not counted)."""
    rows = []
    for table in source_tables(wh):
        n = wh.con.execute(f"SELECT count(*) FROM staging.{_q(table)}").fetchone()[0]
        n_until = wh.con.execute(f"SELECT count(*) FROM {_rows_until(table, as_of)}").fetchone()[0]
        q = 0
        if wh.has_table("quarantine", table):
            rel = _rows_until(table, as_of, "quarantine")
            q = wh.con.execute(f"SELECT count(*) FROM {rel}").fetchone()[0]
        rows.append((table, int(n), int(n_until), int(q), q / n_until if n_until else 0.0))
    cols = ["table_name", "rows", "rows_until_as_of", "quarantined", "quarantine_share"]
    return pd.DataFrame(rows, columns=cols)


def null_shares(wh: Warehouse, as_of: str) -> pd.DataFrame:
    """Per source table, the null share of its id and identifier (key) columns up to ``as_of``."""
    rows = []
    for table in source_tables(wh):
        spec = TABLES[table]
        have = set(wh.con.execute(f"SELECT * FROM staging.{_q(table)} LIMIT 0").df().columns)
        keys = [c for c in dict.fromkeys((spec.id_column, *spec.identifiers)) if c in have]
        if not keys:
            continue
        sel = ", ".join(f"avg(CASE WHEN {_q(c)} IS NULL THEN 1.0 ELSE 0.0 END)" for c in keys)
        got = wh.con.execute(f"SELECT {sel} FROM {_rows_until(table, as_of)}").fetchone()
        rows += [
            (table, c, float(v) if v is not None else 0.0) for c, v in zip(keys, got, strict=True)
        ]
    return pd.DataFrame(rows, columns=["table_name", "column_name", "null_share"])


def quarantine_reasons(wh: Warehouse) -> pd.DataFrame:
    """Rows quarantined per table and expectation (the reasons) in this run; a row failing
    several expectations counts for each."""
    parts = []
    for table in wh.tables("quarantine"):
        got = wh.con.execute(
            "SELECT trim(e) AS expectation, count(*) AS n_rows FROM (SELECT "
            f"unnest(string_split(expectation, '; ')) AS e FROM quarantine.{_q(table)}) GROUP BY 1"
        ).df()
        parts.append(got.assign(table_name=table))
    if not parts:
        return pd.DataFrame(columns=["table_name", "expectation", "n_rows"])
    out = pd.concat(parts, ignore_index=True)
    out["expectation"] = out["expectation"].astype(str)
    return out[["table_name", "expectation", "n_rows"]]
