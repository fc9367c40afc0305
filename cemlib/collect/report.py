"""What ``00_collect.ipynb`` shows: the summary in words, headline figures, plots and masked
examples, built from a :class:`~cemlib.collect.stage.CollectResult` (logic here, notebook thin)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from cemlib.collect.stage import CollectResult
from cemlib.reports import mask_frame
from cemlib.schema import TABLES
from cemlib.warehouse import Warehouse


def _pct(x: float) -> str:
    return "n/a" if pd.isna(x) else f"{100 * x:.1f}%"


def _cov(result: CollectResult, table: str, identifier: str, what: str = "share_valid") -> float:
    c = result.coverage
    hit = c[(c["table"] == table) & (c["identifier"] == identifier)]
    return float(hit[what].iloc[0]) if len(hit) else float("nan")


def headlines(result: CollectResult) -> dict[str, Any]:
    """The stage's key numbers (for ``save_headlines`` and the run index)."""
    t = result.tables.set_index("table")
    norm = result.normalization
    phones = norm[norm["kind"] == "phone"]
    emails = norm[norm["kind"] == "email"]
    masked = int(_masked_counts(phones).sum())
    # a masked phone (a marketplace's +7 *** ***-87-48) is empty in staging but not a bad value:
    # counted apart, and left out of the share of valid phones
    bad_phones = int(phones["n_unparsed"].sum()) - masked
    figures: dict[str, Any] = {
        "tables loaded": len(t),
        "rows loaded": int(t["n_raw"].sum()),
        "values not parseable": result.n_unparsed - masked,
        "phones valid (E.164)": _pct(
            1 - bad_phones / max(int(phones["n_values"].sum()) - masked, 1)
        ),
        "emails valid": _pct(1 - emails["n_unparsed"].sum() / max(emails["n_values"].sum(), 1)),
        "phone values masked": masked,
        "rows dated after as_of": int(t["n_after_as_of"].sum()),
        "days with rows after as_of": _days_after(t),
        "lines set aside (more fields than the header)": _set_aside(t),
    }
    for table in ("crm_contacts", "online_orders", "pos_receipts", "web_events"):
        if table in t.index:
            figures[f"{table} rows"] = int(t.loc[table, "n_raw"])
    if "pos_receipts" in t.index:
        figures["receipts with phone or card"] = _pct(
            _cov(result, "pos_receipts", "any identifier")
        )
    if "online_orders" in t.index:
        figures["orders with email"] = _pct(_cov(result, "online_orders", "email"))
    if "web_events" in t.index:
        figures["web events with email"] = _pct(_cov(result, "web_events", "email"))
    return figures


def _days_after(t: pd.DataFrame) -> int:
    """The most calendar days after ``as_of`` that one table holds rows on."""
    return int(t["days_after_as_of"].max()) if "days_after_as_of" in t and len(t) else 0


def _set_aside(t: pd.DataFrame) -> int:
    """Lines kept in raw but not read (more fields than the header): quarantined by 01."""
    return int(t["n_set_aside"].sum()) if "n_set_aside" in t else 0


def verdict_of(result: CollectResult) -> dict[str, Any]:
    """The stage's verdict (``cemlib.reports.verdict`` arguments): status, key figures, caveats."""
    t = result.tables.set_index("table")
    h = headlines(result)
    rows = int(t["n_raw"].sum())
    kept = bool((t["n_raw"] == t["n_staging"]).all())
    header_only = [str(n) for n, r in t.iterrows() if r.status != "ok"]
    caveats = []
    if not kept:
        caveats.append("some rows did not reach staging: rows in raw and in staging differ")
    if header_only:
        caveats.append("header only (0 rows): " + ", ".join(header_only))
    if result.n_unparsed:
        caveats.append(
            f"{result.n_unparsed:,} values could not be read; they are empty in staging and the "
            "quality stage quarantines the rows that need them"
        )
    after = int(t["n_after_as_of"].sum())
    if after:
        caveats.append(f"{after:,} rows are dated after as_of and are ignored by the models")
    caveats += [str(w) for w in result.warnings]
    status = "failed" if not kept else "warning" if header_only or result.warnings else "ok"
    return {
        "status": status,
        "title": f"{rows:,} rows from {len(t)} source tables collected, none dropped"
        if kept
        else "rows were lost between raw and staging",
        "figures": {
            "rows collected": f"{rows:,}",
            "tables": f"{len(t)} of {len(TABLES)}",
            "valid phones (E.164)": h["phones valid (E.164)"],
            "valid e-mails": h["emails valid"],
            "values not readable": f"{result.n_unparsed:,}",
            "lines set aside": f"{_set_aside(t):,}",
        },
        "comparison": "Every row of every file reached both raw (as received) and staging "
        "(typed, normalized)."
        if kept
        else "",
        "caveats": caveats,
    }


def table_overview(result: CollectResult) -> pd.DataFrame:
    """Rows and date ranges per table, with the file columns only for files read from disk."""
    cols = ["table", "n_raw", "n_staging", "date_column", "first_date", "p01_date", "p99_date",
            "last_date", "n_after_as_of", "n_set_aside", "status"]  # fmt: skip
    t = result.tables
    if "file" in t and t["file"].astype(str).str.contains(r"[/\\.]", regex=True).any():
        cols[1:1] = [c for c in ("file", "encoding", "delimiter") if c in t]
    out = t[[c for c in cols if c in t]].copy()
    if "file" in out:
        out["file"] = out["file"].map(lambda f: Path(str(f)).name if f else f)
    return out


def summary_markdown(result: CollectResult) -> str:
    """A few paragraphs in words, with the figures, for the top of the report."""
    t = result.tables.set_index("table")
    lines = [
        f"**Source:** {result.source}. **Run** `{result.run_id}`, history up to "
        f"**{result.as_of}** (inclusive).",
        "",
        f"{len(t)} of {len(TABLES)} canonical tables were loaded, "
        f"{int(t['n_raw'].sum()):,} rows in all; every row reached both `raw` (text as received) "
        f"and `staging` (typed, normalized): "
        + ", ".join(f"{name} {int(r.n_raw):,}" for name, r in t.iterrows())
        + ".",
    ]
    if result.missing_tables:
        lines += ["", "Not in the source (optional): " + ", ".join(result.missing_tables) + "."]
    header_only = [n for n, r in t.iterrows() if r.status != "ok"]
    if header_only:
        lines += ["", "**Header only (0 rows):** " + ", ".join(header_only) + "."]
    dated = t[t["date_column"].notna() & t["first_date"].notna()]
    # activity: the event tables; a CRM's registration dates reach years before any purchase
    activity = dated[dated["date_column"] != "registered_at"]
    registered = dated[dated["date_column"] == "registered_at"]
    if len(activity):
        first, last = activity["p01_date"].min(), activity["p99_date"].max()
        lines += [
            "",
            f"The bulk of the activity (1st–99th percentile of the dates of "
            f"{', '.join(activity.index)}) runs from {first:%d.%m.%Y} to {last:%d.%m.%Y}; the "
            f"extreme dates are {activity['first_date'].min():%d.%m.%Y} and "
            f"{activity['last_date'].max():%d.%m.%Y}.",
        ]
    for name, r in registered.iterrows():
        lines += [
            "",
            f"Customers of {name} registered from {r.p01_date:%d.%m.%Y} to {r.p99_date:%d.%m.%Y} "
            f"(1st–99th percentile; extremes {r.first_date:%d.%m.%Y} and {r.last_date:%d.%m.%Y}).",
        ]
    if len(dated):
        lines += [
            "",
            f"{int(t['n_after_as_of'].sum()):,} rows are dated after `as_of` and will be ignored "
            "by the models.",
        ]
    parts = []
    if "pos_receipts" in t.index:
        parts.append(
            f"{_pct(_cov(result, 'pos_receipts', 'any identifier'))} of till receipts carry a "
            f"loyalty card or a valid phone (the rest are anonymous sales)"
        )
    if "online_orders" in t.index:
        parts.append(
            f"{_pct(_cov(result, 'online_orders', 'email'))} of online orders a valid email and "
            f"{_pct(_cov(result, 'online_orders', 'phone'))} a valid phone"
        )
    if "web_events" in t.index:
        parts.append(f"{_pct(_cov(result, 'web_events', 'email'))} of web events a logged-in email")
    if parts:
        lines += ["", "Identifiers for the identity stage: " + "; ".join(parts) + "."]
    norm = result.normalization
    if len(norm):
        norm = norm.assign(n_masked=_masked_counts(norm))
        counts = ["n_values", "n_changed", "n_unparsed", "n_masked"]
        by_kind = norm.groupby("kind")[counts].sum(min_count=1)
        bits = []
        for kind, label in (("phone", "phones"), ("email", "emails")):
            if kind in by_kind.index:
                r = by_kind.loc[kind]
                masked = int(r.n_masked) if pd.notna(r.n_masked) else 0
                bits.append(
                    f"{int(r.n_changed):,} of {int(r.n_values):,} {label} were rewritten to the "
                    f"canonical form and {int(r.n_unparsed) - masked:,} are not valid"
                    + (f" ({masked:,} more are masked, below)" if masked else "")
                )
        dates = norm[norm["kind"].isin(["timestamp", "date"])]["n_unparsed"].sum()
        numbers = norm[norm["kind"] == "number"]["n_unparsed"].sum()
        bits.append(f"{int(dates):,} dates and {int(numbers):,} numbers could not be parsed")
        lines += [
            "",
            "Normalization: " + "; ".join(bits) + ". Unparseable values are NA in `staging`; "
            "their text stays in `raw` for the quality stage to quarantine.",
        ]
        masked = masked_phones_markdown(norm)
        if masked:
            lines += ["", masked]
    for w in result.warnings:
        lines += ["", f"*Note:* {w}"]
    return "\n".join(lines)


def _masked_counts(norm: pd.DataFrame) -> pd.Series:
    """``n_masked`` of the normalization figures (0 for a result of a version without it)."""
    if "n_masked" not in norm:
        return pd.Series(0, index=norm.index)
    return norm["n_masked"].fillna(0).astype(int)


def masked_phones_markdown(norm: pd.DataFrame) -> str:
    """The masked phones per table and column, in words (empty when there are none): counts
    only, never a value."""
    if not len(norm):
        return ""
    m = norm[(norm["kind"] == "phone") & (_masked_counts(norm) > 0)]
    if not len(m):
        return ""
    per = "; ".join(
        f"`{r.table}.{r.column}`: **{int(r.n_masked):,}** of {int(r.n_values):,} values"
        for r in m.itertuples()
    )
    return (
        f"Masked phones (digits hidden, like `+7 *** ***-12-34`, as a marketplace shows its "
        f"buyers): {per}. They are not counted as not valid: a masked phone is no phone (empty "
        "in `staging`, its shown last digits kept in `<column>_tail`) and never merges two "
        "records; stage 02 attaches such a record to the one profile whose phone ends in those "
        "digits, with the same first name and the same place (city or pick-up point), birth "
        "date or last name, or to none."
    )


def monthly_volume(wh: Warehouse, result: CollectResult) -> pd.DataFrame:
    """Rows per month and table (dated tables), within the bulk of the dates up to ``as_of``."""
    frames = []
    for _, r in result.tables.iterrows():
        if pd.isna(r["date_column"]) or pd.isna(r["p01_date"]):
            continue
        lo = pd.Timestamp(r["p01_date"]).to_period("M").to_timestamp()
        hi = pd.Timestamp(result.as_of) + pd.Timedelta(days=1)
        df = wh.sql(
            f"SELECT date_trunc('month', \"{r['date_column']}\") AS month, count(*) AS n_rows "
            f'FROM staging."{r["table"]}" WHERE "{r["date_column"]}" >= ? AND "{r["date_column"]}" < ? '
            "GROUP BY 1 ORDER BY 1",
            [lo, hi],
        )
        df["table"] = r["table"]
        frames.append(df)
    if not frames:
        return pd.DataFrame(columns=["month", "n_rows", "table"])
    return pd.concat(frames, ignore_index=True)


#: the columns of the masked examples: raw beside normalized, few enough to fit the page
EXAMPLE_COLUMNS = ("contact_id", "full_name", "first_name", "last_name", "phone", "phone_e164",
                   "email", "email_norm", "email_key", "city", "registered_at")  # fmt: skip


def _roles(columns) -> dict[str, str]:
    roles = {}
    for c in columns:
        low = c.lower()
        if low.startswith("consent") or low.startswith("_"):
            continue
        if "phone" in low:
            roles[c] = "phone"
        elif "email" in low:
            roles[c] = "email"
        elif "name" in low:
            roles[c] = "name"
        elif (
            "address" in low or "birth" in low or low in ("loyalty_card", "device_id", "cookie_id")
        ):
            roles[c] = "drop"
    return roles


def masked_examples(
    wh: Warehouse, table: str = "crm_contacts", n: int = 5, seed: int = 0
) -> pd.DataFrame:
    """A few staging rows beside their normalized columns, personal data masked.

    The rows are chosen by a seeded hash of their ``_source_row`` (their place in the source
    file), not by a reservoir sample over the table's stored row order, which differs between
    two runs that write the table in parallel chunks: the same input shows the same rows."""
    if not wh.has_table("staging", table):
        return pd.DataFrame()
    cols = wh.sql(f'SELECT * FROM staging."{table}" LIMIT 0').columns
    if "_source_row" in cols:
        pick = f"ORDER BY hash(_source_row, {int(seed)}), _source_row LIMIT {int(n)}"
    else:  # a staging table written by hand: DuckDB's seeded sample
        pick = f"USING SAMPLE {int(n)} ROWS (reservoir, {int(seed)})"
    df = wh.sql(f'SELECT * FROM staging."{table}" {pick}')
    keep = [c for c in df.columns if not c.startswith("_") or c == "_source_row"]
    shown = [c for c in EXAMPLE_COLUMNS if c in keep] or keep[:10]
    return mask_frame(df[shown], roles=_roles(shown))


# -- plots ------------------------------------------------------------------------------------
def plot_row_counts(result: CollectResult):
    """Rows loaded per table (log scale)."""
    import matplotlib.pyplot as plt

    t = result.tables.sort_values("n_raw")
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(t) + 1.5))
    ax.barh(t["table"], t["n_raw"])
    ax.set_xscale("log")
    for y, v in enumerate(t["n_raw"]):
        ax.text(v, y, f" {v:,}", va="center", fontsize=9)
    ax.set_title("Rows per source table")
    ax.set_xlabel("rows (log scale)")
    ax.set_ylabel("table")
    return fig


def plot_coverage(result: CollectResult):
    """Share of rows with each identifier present (raw) and valid (staging), per table."""
    import matplotlib.pyplot as plt

    c = result.coverage.copy()
    c["label"] = c["table"] + " · " + c["identifier"]
    c = c.iloc[::-1]
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(c) + 1.5))
    ax.barh(c["label"], c["share_present"] * 100, color="#c9d7ec", label="present (raw)")
    ax.barh(c["label"], c["share_valid"] * 100, height=0.5, label="valid after normalization")
    ax.set_xlim(0, 100)
    ax.set_title("Identifier coverage per table")
    ax.set_xlabel("share of rows, %")
    ax.set_ylabel("table · identifier")
    ax.legend(loc="lower right")
    return fig


def plot_normalization(result: CollectResult):
    """Share of values changed or not parseable per normalized column (those above 0.5%)."""
    import matplotlib.pyplot as plt

    n = result.normalization
    n = n[n["n_values"] > 0].copy()
    moved = (n["n_changed"].astype("Float64").fillna(0) + n["n_unparsed"]) / n["n_values"]
    n = n[moved.astype(float) >= 0.005]  # the table below lists every column
    n["label"] = n["table"] + " · " + n["column"] + " (" + n["kind"] + ")"
    n = n.iloc[::-1]
    changed = n["n_changed"].astype("Float64").fillna(0).astype(float) / n["n_values"] * 100
    unparsed = n["n_unparsed"] / n["n_values"] * 100
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(n) + 1.5))
    ax.barh(n["label"], changed, label="rewritten by normalization")
    ax.barh(n["label"], unparsed, left=changed, color="#c0392b", label="not parseable -> NA")
    ax.set_title("What normalization did (columns where it touched 0.5% or more)")
    ax.set_xlabel("share of non-empty values, %")
    ax.set_ylabel("table · column (kind)")
    ax.legend(loc="lower right")
    return fig


def plot_monthly_volume(volume: pd.DataFrame):
    """Rows per month and source table up to ``as_of`` (log scale)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    for table, df in volume.groupby("table"):
        ax.plot(df["month"], df["n_rows"], marker=".", label=table)
    ax.set_yscale("log")
    ax.set_title("Rows per month and source (up to as_of)")
    ax.set_xlabel("month")
    ax.set_ylabel("rows (log scale)")
    ax.legend(ncol=2, fontsize=8)
    return fig
