"""What ``notebooks/01_quality.ipynb`` shows: summary in words, plots, masked examples."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cemlib.config import reports_dir
from cemlib.quality.rowsql import quote
from cemlib.quality.scorecard import expectation_scorecard, table_scorecard
from cemlib.quality.stage import QualityReport
from cemlib.reports import mask_frame
from cemlib.warehouse import STAMP_COLUMNS, Warehouse


def data_docs_location(
    data_docs_dir: str | Path | None, headlines_path: str | Path | None, run_id: str
) -> tuple[Path, str]:
    """Where to write the Data Docs and the link to them relative to the HTML report.

    The report of a run lives in the folder of its headlines file (``reports/<run>/``); the
    Data Docs go beside it in ``01_quality_data_docs/``.
    """
    if data_docs_dir:
        path = Path(data_docs_dir).resolve()
        base = Path(headlines_path).resolve().parent if headlines_path else Path.cwd()
    else:
        base = Path(headlines_path).resolve().parent if headlines_path else reports_dir() / run_id
        path = base / "01_quality_data_docs"
    try:
        link = path.relative_to(base).as_posix() + "/index.html"
    except ValueError:
        link = path.as_uri() + "/index.html"
    return path, link


def headline_figures(report: QualityReport) -> dict[str, object]:
    cons = report.conservation
    res = report.results[report.results["success"].notna()]
    rows_in, quarantined = int(cons["rows_in"].sum()), int(cons["quarantined"].sum())
    return {
        "tables validated": len(cons),
        "rows in": rows_in,
        "rows clean": int(cons["clean"].sum()),
        "rows quarantined": quarantined,
        "quarantined %": round(100.0 * quarantined / rows_in, 3) if rows_in else 0.0,
        "expectations evaluated": len(res),
        "expectations passed": int(res["success"].astype(bool).sum()),
        "warnings": len(report.warnings),
        "rows conserved": bool(cons["conserved"].all()),
    }


def summary_markdown(report: QualityReport, trend: pd.DataFrame | None = None) -> str:
    """A few sentences with the figures of the run."""
    h = headline_figures(report)
    cons = report.conservation.sort_values("quarantined_pct", ascending=False)
    worst = cons.iloc[0] if len(cons) else None
    reasons = report.quarantine_by_reason
    lines = [
        f"Run **{report.run_id}** (as of {report.as_of}) validated **{h['tables validated']}** "
        f"source tables against their Great Expectations suites: **{h['rows in']:,}** rows in, "
        f"**{h['rows clean']:,}** clean and **{h['rows quarantined']:,}** "
        f"({h['quarantined %']:.2f}%) held in quarantine with their reason. "
        f"Every input row is accounted for exactly once (rows in = clean + quarantined: "
        f"**{'yes' if h['rows conserved'] else 'NO'}**).",
        "",
        f"{h['expectations passed']} of {h['expectations evaluated']} expectations passed; "
        f"{h['warnings']} warning(s) were reported without holding back rows.",
    ]
    if worst is not None and worst["quarantined"] > 0:
        lines += [
            "",
            f"The table with the largest share quarantined is **{worst['table']}** "
            f"({int(worst['quarantined']):,} of {int(worst['rows_in']):,} rows, "
            f"{worst['quarantined_pct']:.2f}%).",
        ]
    if len(reasons):
        top = reasons.iloc[0]
        lines += [
            "",
            f"The most frequent reason is *{top['reason']}* in {top['table']} "
            f"({int(top['rows_quarantined']):,} rows).",
        ]
    if trend is not None and len(trend):
        changed = trend.dropna(subset=["rows_change_pct"])
        if len(changed):
            big = changed.loc[changed["rows_change_pct"].abs().idxmax()]
            if abs(big["rows_change_pct"]) < 0.05:
                text = "every table has the same number of rows"
            else:
                text = (
                    f"the largest change in volume is {big['table']} "
                    f"({big['rows_change_pct']:+.1f}% rows)"
                )
            lines += ["", f"Against the previous run {report.previous_run_id}, {text}."]
    else:
        lines += ["", "This is the first run in this warehouse: there is no trend yet."]
    return "\n".join(lines)


def plot_quarantine_by_reason(report: QualityReport, top: int = 15):
    """Horizontal bars: rows quarantined per (table, reason)."""
    import matplotlib.pyplot as plt

    data = report.quarantine_by_reason.head(top).iloc[::-1]
    fig, ax = plt.subplots(figsize=(9, 0.35 * max(len(data), 3) + 1.2))
    if len(data):
        labels = [f"{t}: {r}" for t, r in zip(data["table"], data["reason"], strict=True)]
        ax.barh(labels, data["rows_quarantined"])
    else:
        ax.text(0.5, 0.5, "no row quarantined", ha="center", va="center")
    ax.set_title("Rows quarantined by reason (a row can carry several reasons)")
    ax.set_xlabel("rows")
    ax.set_ylabel("table: reason")
    fig.tight_layout()
    return fig


def plot_pass_rates(report: QualityReport):
    """Lowest pass rate of the row-level expectations of each table."""
    import matplotlib.pyplot as plt

    card = expectation_scorecard(report.results)
    row = card[card["level"] == "row"]
    worst = row.groupby("table")["pass_rate"].min().sort_values()
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.bar(worst.index, 100.0 * worst.values)
    ax.set_ylim(min(95.0, 100.0 * float(worst.min()) - 0.5) if len(worst) else 0, 100.05)
    ax.set_title("Lowest pass rate among each table's row-level expectations")
    ax.set_xlabel("table")
    ax.set_ylabel("rows passing (%)")
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    return fig


def masked_examples(wh: Warehouse, report: QualityReport, per_reason: int = 2) -> pd.DataFrame:
    """A few quarantined rows per (table, first reason), personal data masked."""
    frames = []
    for table in report.outcomes:
        if not wh.has_table("quarantine", table):
            continue
        q = wh.sql(
            f"SELECT * EXCLUDE ({', '.join(STAMP_COLUMNS)}) FROM ("
            f"SELECT *, row_number() OVER (PARTITION BY split_part(reason, '; ', 1) "
            f"ORDER BY _source_row) AS _n FROM quarantine.{quote(table)}) WHERE _n <= ?",
            [per_reason],
        ).drop(columns=["_n"])
        if q.empty:
            continue
        hidden = ("loyalty_card", "device_id", "cookie_id", "gender_hint")
        keep = [
            c
            for c in q.columns
            if (not c.endswith(("_key", "_lat", "_norm")) or "email" in c) and c not in hidden
        ]
        q = mask_frame(q[keep], roles=_pii_roles(keep))
        values = q.drop(columns=["reason", "expectation", "_source_row"])
        q = pd.DataFrame(
            {
                "table": table,
                "row": q["_source_row"],
                "reason": q["reason"],
                "values (masked)": values.astype(str).apply(
                    lambda r: ", ".join(
                        f"{k}={v}"
                        for k, v in r.items()
                        if v not in ("", "None", "nan", "NaT", "<NA>")
                    ),
                    axis=1,
                ),
            }
        )
        frames.append(q)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _pii_roles(columns: list[str]) -> dict[str, str]:
    """Masking role per column (consent flags are not emails, ids are not names)."""
    roles = {}
    for col in columns:
        low = col.lower()
        if low.startswith("consent") or low in ("expectation", "reason"):
            continue
        if "phone" in low:
            roles[col] = "phone"
        elif "email" in low:
            roles[col] = "email"
        elif low.endswith("name") or low.endswith("_name_norm"):
            roles[col] = "name"
        elif "address" in low or "birth" in low:
            roles[col] = "drop"
    return roles


__all__ = [
    "data_docs_location",
    "expectation_scorecard",
    "headline_figures",
    "masked_examples",
    "plot_pass_rates",
    "plot_quarantine_by_reason",
    "summary_markdown",
    "table_scorecard",
]
