"""What ``notebooks/01_quality.ipynb`` shows: summary in words, plots, masked examples."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from cemlib.config import reports_dir
from cemlib.quality.rowsql import quote
from cemlib.quality.scorecard import expectation_scorecard, table_scorecard
from cemlib.quality.stage import QualityReport
from cemlib.quality.suites import load_suites
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


def headlines(report: QualityReport) -> dict[str, object]:
    """The stage's headline figures for the run index: tables, rows in, clean and quarantined,
    expectations evaluated and passed, warnings, whether rows are conserved, and (only when
    there are some) the tables mostly quarantined (:func:`mostly_quarantined`)."""
    cons = report.conservation
    res = report.results[report.results["success"].notna()]
    rows_in, quarantined = int(cons["rows_in"].sum()), int(cons["quarantined"].sum())
    mostly = mostly_quarantined(report)
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
        **({MOSTLY_QUARANTINED: "; ".join(mostly)} if mostly else {}),
    }


def summary_markdown(report: QualityReport, trend: pd.DataFrame | None = None) -> str:
    """A few sentences with the figures of the run."""
    h = headlines(report)
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


#: outcome of a check in words, in the order the report lists them
OUTCOMES = ("failed", "warning", "rows quarantined", "passed")


def _thresholds(suites_dir: str | Path | None) -> dict[tuple[str, str], float]:
    """(table, expectation name) -> ``mostly`` of the suites' checks that set one."""
    try:
        suites = load_suites(suites_dir)
    except Exception:  # the report still shows every result without its threshold
        return {}
    return {
        (table, c.name): float(c.kwargs["mostly"])
        for table, suite in suites.items()
        for c in suite.checks
        if "mostly" in c.kwargs
    }


def check_table(report: QualityReport, suites_dir: str | Path | None = None) -> pd.DataFrame:
    """Every evaluated check in words: outcome (failing and warning first), the threshold it is
    held to, rows checked and failing, the share passing and the rows quarantined."""
    card = expectation_scorecard(report.results)
    mostly = _thresholds(suites_dir)
    failing = pd.to_numeric(card["unexpected_count"], errors="coerce")
    ok = card["success"].astype(bool)
    outcome = np.select(
        [
            ~ok & (card["severity"] == "warning"),
            ~ok & (card["level"] == "table"),
            (card["rows_quarantined"] > 0) | (~ok & (card["level"] == "row")),
        ],
        ["warning", "failed", "rows quarantined"],
        default="passed",
    )

    def threshold(r) -> str:
        if r["level"] == "table":
            return "the whole table"
        m = mostly.get((r["table"], r["expectation"]))
        if m is not None:
            return f"≥ {100 * m:g}% of rows"
        return "every row" + (" (else quarantined)" if r["severity"] == "critical" else "")

    out = pd.DataFrame(
        {
            "outcome": outcome,
            "table": card["table"],
            "check": card["reason"],
            "severity": card["severity"],
            "threshold": card.apply(threshold, axis=1),
            "rows failing": failing.astype("Int64"),
            "pass_rate": card["pass_rate"],
            "rows_quarantined": card["rows_quarantined"].astype("Int64"),
            "expectation": card["expectation"],
        }
    )
    order = {o: i for i, o in enumerate(OUTCOMES)}
    out["_o"] = out["outcome"].map(order)
    out = out.sort_values(["_o", "rows failing"], ascending=[True, False], kind="stable")
    return out.drop(columns="_o").reset_index(drop=True)


def _share_text(share: float) -> str:
    """A share as a percentage with two decimals; a share above 0 that rounds to 0.00% is
    "< 0.01%" (6 rows of 123,544 are not none)."""
    return "< 0.01%" if 0 < share < 0.00005 else f"{100 * share:.2f}%"


#: a table that quarantines more than this share of its rows has a systematic problem (a column
#: in another format, a changed export), not scattered bad values: the verdict says so
HEAVY_QUARANTINE = 0.10


#: the suites' reason for a row dated after the run's ``as_of``: held back from the models, not a
#: defect of the export (``cem run`` warns under the 00 line when ``as_of`` is behind the data)
AFTER_AS_OF = "after as_of"


#: the headline (and run-line warning) naming the tables of which one check quarantines most
#: rows up to ``as_of``: what the later stages see of them is the exception, not the table
MOSTLY_QUARANTINED = "tables mostly quarantined"


def _quarantined_parts(report: QualityReport, r) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """``(reasons of table r, those of rows after as_of, rows after as_of)``."""
    by_reason = report.quarantine_by_reason
    mine = pd.DataFrame(columns=["reason", "rows_quarantined"])
    if by_reason is not None and len(by_reason):
        mine = by_reason[by_reason["table"] == r.table]
    later_rows = mine[mine["reason"].astype(str).str.contains(AFTER_AS_OF, regex=False)]
    later = min(int(later_rows["rows_quarantined"].sum()), int(r.quarantined))
    return mine, later_rows, later


def mostly_quarantined(report: QualityReport) -> list[str]:
    """One message per table of which one and the same check quarantines more than half the
    rows up to ``as_of`` (rows after ``as_of`` are held back on purpose, not defects), naming
    the table's quarantined share and that check's reason.

    The rule is the data's own majority: scattered defects spread over several checks (a tiny
    table may lose half its rows to four unrelated ones), while a check that rejects most of
    a table says the check or the mapping is at fault rather than the rows, and the stages
    after 01 work on what is left (trial 10: every line quarantined for a line number
    repeated across receipts, then stage 03 failed with "no rows")."""
    out = []
    cons = report.conservation
    if cons is None or not len(cons):
        return out
    for r in cons.itertuples():
        if not r.quarantined:
            continue
        mine, later_rows, later = _quarantined_parts(report, r)
        judged, rest = int(r.rows_in) - later, int(r.quarantined) - later
        defects = mine.drop(later_rows.index)
        if judged <= 0 or not len(defects):
            continue
        first = defects.sort_values("rows_quarantined", ascending=False).iloc[0]
        n_top = int(first["rows_quarantined"])
        if 2 * n_top <= judged:
            continue
        out.append(
            f"{r.table}: {rest / judged:.0%} of its rows quarantined ({rest:,} of {judged:,}"
            f"{' up to as_of' if later else ''}), most often {first['reason']!r} "
            f"({n_top:,} rows)"
        )
    return out


def _heavily_quarantined(report: QualityReport) -> list[str]:
    """A caveat per table whose quarantined share is above :data:`HEAVY_QUARANTINE`, naming
    its most frequent reason. Rows dated after ``as_of`` are counted apart: many of them say
    the run's ``as_of`` is behind the data (a backtest, or a date not moved), not that a
    column came in another format."""
    out = []
    cons = report.conservation
    if cons is None or not len(cons):
        return out
    for r in cons.itertuples():
        if not r.rows_in or r.quarantined / r.rows_in <= HEAVY_QUARANTINE:
            continue
        mine, later_rows, later = _quarantined_parts(report, r)
        if later / r.rows_in > HEAVY_QUARANTINE:
            out.append(
                f"{r.table}: {later / r.rows_in:.0%} of its rows ({later:,} of {r.rows_in:,}) "
                "are dated after as_of and held back from the models: as_of is behind the "
                "data (a backtest, or a scheduled run whose as_of did not move)"
            )
        defects = mine.drop(later_rows.index)
        rest = int(r.quarantined) - later
        if rest / r.rows_in <= HEAVY_QUARANTINE:
            continue
        top = ""
        if len(defects):
            first = defects.sort_values("rows_quarantined", ascending=False).iloc[0]
            top = f"; most often: {first['reason']} ({int(first['rows_quarantined']):,} rows)"
        out.append(
            f"{r.table}: {rest / r.rows_in:.0%} of its rows quarantined "
            f"({rest:,} of {r.rows_in:,}{' besides those after as_of' if later else ''}){top}: "
            "a systematic problem, such as a column in another format, not scattered bad values"
        )
    return out


_CHECK_FAILED = re.compile(
    r"^table (?P<table>[\w.]+): (?P<check>\S.*?) failed \((?P<reason>.*)\); observed "
    r"(?P<observed>.*?)(?:, expected (?P<bounds>.*))?$",
    re.S,
)
_BOUND_WORDS = {"min_value": "at least", "max_value": "at most"}


def plain_words(warning: str) -> str:
    """A check's warning in the reader's words: the suite's ``reason`` instead of the Great
    Expectations call (``table t: expect_column_values_to_be_in_set(c, value_set=...) failed
    (reason); observed 1 of 12096 rows`` -> ``t: reason: 1 of 12,096 rows``); other warnings
    as they are (trial 8 L5)."""
    m = _CHECK_FAILED.match(str(warning))
    if not m:
        return str(warning)
    observed = re.sub(
        r"(\d+) of (\d+) rows",
        lambda n: (
            f"{int(n.group(1)):,} of {int(n.group(2)):,} row{'s' if n.group(2) != '1' else ''}"
        ),
        m["observed"],
    )
    text = (
        f"{m['table']}: {m['reason']}: {observed}"
        if observed != "n/a"
        else (f"{m['table']}: {m['reason']}")
    )
    if m["bounds"]:
        bounds = m["bounds"]
        for k, v in _BOUND_WORDS.items():
            bounds = bounds.replace(k, v)
        text += f" (expected {bounds})"
    return text


def verdict_of(report: QualityReport, trend: pd.DataFrame | None = None) -> dict[str, object]:
    """The stage's verdict (``cemlib.reports.verdict`` arguments); the warnings in plain words
    (:func:`plain_words`)."""
    h = headlines(report)
    share = h["rows quarantined"] / max(h["rows in"], 1)
    caveats = [plain_words(w) for w in report.warnings[:4]]
    if len(report.warnings) > 4:
        caveats.append(f"and {len(report.warnings) - 4} more warnings, listed below")
    heavy = _heavily_quarantined(report)
    caveats = heavy + caveats
    if not h["rows conserved"]:
        caveats.insert(0, "rows were lost: rows in differ from clean + quarantined")
    comparison = "This is the first run in this warehouse: no trend yet."
    if trend is not None and len(trend):
        now = pd.to_numeric(trend["rows_in"], errors="coerce").sum()
        before = pd.to_numeric(trend["rows_in_previous"], errors="coerce").sum()
        passed = pd.to_numeric(trend["share_passed"], errors="coerce").mean()
        passed_before = pd.to_numeric(trend["share_passed_previous"], errors="coerce").mean()
        comparison = (
            f"Against the previous run {report.previous_run_id}: {int(now):,} rows in "
            f"(was {int(before):,}); {100 * passed:.1f}% of the checks passed "
            f"(was {100 * passed_before:.1f}%)."
        )
    elif report.previous_run_id:
        comparison = f"Previous run: {report.previous_run_id}."
    status = (
        "failed" if not h["rows conserved"] else "warning" if report.warnings or heavy else "ok"
    )
    return {
        "status": status,
        "title": f"{h['rows clean']:,} of {h['rows in']:,} rows clean, "
        f"{h['rows quarantined']:,} held in quarantine with a reason",
        "figures": {
            "rows in": f"{h['rows in']:,}",
            "rows quarantined": f"{h['rows quarantined']:,} ({_share_text(share)})",
            "checks passed": f"{h['expectations passed']} of {h['expectations evaluated']}",
            "warnings": f"{h['warnings']}",
            "rows conserved": "yes" if h["rows conserved"] else "NO",
        },
        "comparison": comparison,
        "caveats": caveats,
    }


def plot_quarantine_by_reason(report: QualityReport, top: int = 15):
    """Horizontal bars: rows quarantined per (table, reason)."""
    import matplotlib.pyplot as plt

    data = report.quarantine_by_reason.head(top).iloc[::-1]
    data = data.assign(reason=data["reason"].map(lambda r: r if len(r) <= 60 else r[:57] + "..."))
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
    """Lowest pass rate of the row-level expectations of each table (axis from 0)."""
    import matplotlib.pyplot as plt

    card = expectation_scorecard(report.results)
    row = card[card["level"] == "row"]
    worst = row.groupby("table")["pass_rate"].min().sort_values()
    fig, ax = plt.subplots(figsize=(8, 3.2))
    ax.bar(worst.index, 100.0 * worst.values)
    ax.set_ylim(0, 112)
    ax.set_yticks([0, 20, 40, 60, 80, 100])
    for x, v in enumerate(worst.values):
        ax.text(x, 100.0 * v, f"{100.0 * v:.1f}%", ha="center", va="bottom", fontsize=9)
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
        if low == "_raw_line":  # a line collection could not read: its text as received
            roles[col] = "drop"
        elif "phone" in low:
            roles[col] = "phone"
        elif "email" in low:
            roles[col] = "email"
        elif low.endswith("name") or low.endswith("_name_norm"):
            roles[col] = "name"
        elif "address" in low or "birth" in low:
            roles[col] = "drop"
    return roles


__all__ = [
    "MOSTLY_QUARANTINED",
    "check_table",
    "data_docs_location",
    "expectation_scorecard",
    "headlines",
    "masked_examples",
    "mostly_quarantined",
    "plot_pass_rates",
    "plot_quarantine_by_reason",
    "summary_markdown",
    "table_scorecard",
    "verdict_of",
]
