"""Scorecards: pass rates per expectation and per table, and the trend against the last run."""

from __future__ import annotations

import pandas as pd

from cemlib.warehouse import Warehouse


def expectation_scorecard(results: pd.DataFrame) -> pd.DataFrame:
    """One row per evaluated expectation with its pass rate (share of rows passing; 1/0 for
    table-level checks), skipped ones left out."""
    r = results[results["success"].notna()].copy()
    unexpected = pd.to_numeric(r["unexpected_count"], errors="coerce")
    total = pd.to_numeric(r["element_count"], errors="coerce")
    rate = 1.0 - unexpected / total.where(total > 0)
    table_level = unexpected.isna()
    rate = rate.where(~table_level, r["success"].astype(float))
    r["pass_rate"] = rate.fillna(r["success"].astype(float))
    cols = [
        "table",
        "expectation",
        "severity",
        "level",
        "success",
        "unexpected_count",
        "pass_rate",
        "rows_quarantined",
        "reason",
    ]
    return r[cols].reset_index(drop=True)


def table_scorecard(results: pd.DataFrame, conservation: pd.DataFrame) -> pd.DataFrame:
    """Per table: expectations passed/failed, warnings, rows in/clean/quarantined."""
    r = results[results["success"].notna()]
    agg = r.groupby("table").agg(
        expectations=("expectation", "size"),
        passed=("success", lambda s: int(s.astype(bool).sum())),
        critical_failed=(
            "success",
            lambda s: int(((~s.astype(bool)) & (r.loc[s.index, "severity"] == "critical")).sum()),
        ),
        warnings=(
            "success",
            lambda s: int(((~s.astype(bool)) & (r.loc[s.index, "severity"] == "warning")).sum()),
        ),
    )
    out = conservation.set_index("table").join(agg, how="left").reset_index()
    return out[
        [
            "table",
            "rows_in",
            "clean",
            "quarantined",
            "quarantined_pct",
            "conserved",
            "expectations",
            "passed",
            "critical_failed",
            "warnings",
        ]
    ]


def trend(wh: Warehouse, run_id: str, previous_run_id: str | None) -> pd.DataFrame:
    """Rows and quarantine share per table, this run against the previous one (empty if none)."""
    if previous_run_id is None or not wh.has_table("quality", "results"):
        return pd.DataFrame()
    df = wh.sql(
        'SELECT run_id, "table", max(element_count) AS rows_in, '
        "sum(rows_quarantined) AS flagged, "
        "avg(CASE WHEN success THEN 1.0 ELSE 0.0 END) AS share_passed "
        "FROM quality.results WHERE run_id IN (?, ?) AND success IS NOT NULL "
        'GROUP BY run_id, "table"',
        [run_id, previous_run_id],
    )
    now = df[df["run_id"] == run_id].set_index("table")
    before = df[df["run_id"] == previous_run_id].set_index("table")
    out = now[["rows_in", "share_passed"]].join(
        before[["rows_in", "share_passed"]], rsuffix="_previous", how="outer"
    )
    out["rows_change_pct"] = 100.0 * (out["rows_in"] / out["rows_in_previous"] - 1.0)
    return out.reset_index()


def format_scorecard(report) -> str:
    """Plain-text scorecard for the terminal (``cem validate``)."""
    tab = table_scorecard(report.results, report.conservation)
    lines = [f"quality scorecard  run {report.run_id}  as_of {report.as_of}", ""]
    header = f"{'table':<16}{'rows in':>10}{'clean':>10}{'quarant.':>10}{'%':>9}  checks  failed(crit/warn)"
    lines.append(header)
    for _, t in tab.iterrows():
        lines.append(
            f"{t['table']:<16}{t['rows_in']:>10,}{t['clean']:>10,}{t['quarantined']:>10,}"
            f"{t['quarantined_pct']:>8.2f}%  {int(t['passed'])}/{int(t['expectations'])}"
            f"     {int(t['critical_failed'])}/{int(t['warnings'])}"
        )
    total_in, total_clean, total_q = (
        int(tab[c].sum()) for c in ("rows_in", "clean", "quarantined")
    )
    lines.append(
        f"{'total':<16}{total_in:>10,}{total_clean:>10,}{total_q:>10,}  "
        f"rows in = clean + quarantined: {'yes' if total_in == total_clean + total_q else 'NO'}"
    )
    by_reason = report.quarantine_by_reason
    if len(by_reason):
        lines += ["", "rows quarantined by reason (a row may fail several checks):"]
        for _, r in by_reason.iterrows():
            lines.append(f"  {r['table']:<16}{int(r['rows_quarantined']):>8,}  {r['reason']}")
    if report.warnings:
        lines += ["", "warnings:"] + [f"  {w}" for w in report.warnings]
    return "\n".join(lines)
