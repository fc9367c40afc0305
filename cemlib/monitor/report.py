"""What the monitor notebook shows: the summary, the alerts first, tables and plots."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cemlib.monitor.drift import PSI_BANDS
from cemlib.monitor.result import MonitorResult


def json_path(headlines_path: str | None) -> Path | None:
    """``monitor.json`` beside the run's headline files (the run folder), None outside a run."""
    return Path(headlines_path).parent / "monitor.json" if headlines_path else None


#: the profiles whose every CRM record closed between the two runs (customers who left)
CLOSED_SINCE = "profiles closed since the previous run"


def closures_markdown(res: MonitorResult) -> str:
    """What the summary says of the customers who left since (empty without closing dates)."""
    n = res.profiles.get(CLOSED_SINCE)
    if n is None:
        return ""
    text = (f"{n:,} profiles closed since the previous run (every contract or account closed): "
            "customers who left, counted apart, not as ids that vanished. ")  # fmt: skip
    r = res.risk
    if "customers who left since (every contract closed)" in r:
        gone = r["customers who left since (every contract closed)"]
        text += (f"{gone:,} of them were in the previous churn forecast, "
                 f"{r['customers who left since: high-risk before']:,} of those in its high-risk "
                 "segment")  # fmt: skip
        auc = r.get("auc of the forecast on who left")
        text += f"; it ranked who left with AUC {auc:.3f}. " if auc is not None else ". "
        other = r.get("customers no longer scored (not closed)", 0)
        if other:
            text += f"{other:,} other customers of that forecast are no longer scored. "
    return text


def headlines(res: MonitorResult) -> dict:
    """The monitor's headline figures (also kept in ``monitor.headlines`` and shown in the
    history of the reports index)."""
    out: dict = {"alerts": int(len(res.alerts)), "previous run": res.previous_run_id or "none"}
    if len(res.data.get("drift", [])):
        out["largest PSI"] = float(res.data["drift"]["psi"].max())
    for key in ("profiles", "share of ids changed", CLOSED_SINCE):
        if key in res.profiles:
            out[key] = res.profiles[key]
    if res.risk:
        out["value at risk now"] = res.risk["value at risk now"]
        out["became high-risk"] = res.risk["became high-risk"]
    if res.churn:
        out["graded churn auc"] = res.churn.get("auc")
        out["forecast's own backtest auc"] = res.churn.get("forecast's own backtest auc")
        out["realized / expected purchases"] = (
            res.churn["realized purchases"] / res.churn["expected purchases"]
            if res.churn.get("expected purchases") else None
        )  # fmt: skip
    if len(res.offers):
        hit = [c for c in res.offers.columns if c.startswith("hitrate@")][0]
        out[f"graded offers {hit}"] = float(res.offers[hit].iloc[0])
        out[f"baseline {hit}"] = float(res.offers[hit].iloc[1])
    return out


def summary_markdown(res: MonitorResult) -> str:
    """The summary paragraph: the run compared with, the graded forecasts, the alerts."""
    if res.previous_run_id is None:
        return f"**{res.note}.** This run's profile and forecasts are kept for the next run."
    text = (f"Compared with run **{res.previous_run_id}** (as of {res.previous_as_of}); "
            f"this run is as of **{res.as_of}**. ")  # fmt: skip
    if res.churn:
        c = res.churn
        own = c.get("forecast's own backtest auc")
        own_text = f" (its own backtest said {own:.3f})" if own is not None else ""
        text += (f"The previous churn forecast graded **AUC {c['auc']:.3f}**{own_text} on "
                 f"{c['customers graded']:,} customers over {c['elapsed days']} days: "
                 f"{c['realized purchases']:,.0f} purchases realized against "
                 f"{c['expected purchases']:,.0f} expected. ")  # fmt: skip
        if scaled := horizon_note(c):
            text += scaled[0].upper() + scaled[1:] + ". "
        left = c.get("customers left out: outcome unknown") or 0
        if left:
            text += (f"{left:,} customers are not graded: no purchase reached their profile, "
                     "but an order or receipt of the window that identity attached to no "
                     "profile carries their phone, e-mail, card or device (a family's card at "
                     "the till), so whether they bought is unknown (counted as not bought, "
                     f"the AUC would be {c['auc, unknown counted as not bought']:.3f}). ")  # fmt: skip
        if data_alerts(res):
            text += (
                "**This grade may be biased**: the data raised "
                f"{len(data_alerts(res))} alert(s) this run, and purchases that lost the "
                "identifiers tying them to a profile count as no purchase, so the realized "
                "figures and the AUC can move for reasons other than the forecast. "
            )
    text += closures_markdown(res)
    if res.note:
        text += f"Note: {res.note}. "
    text += f"**{len(res.alerts)} alert(s).**"
    return text


def horizon_note(churn: dict) -> str | None:
    """Says that the forecast was graded on a window other than its horizon, and how it was
    scaled; ``None`` when the elapsed days are the horizon."""
    share = churn.get("expectation scaled to the elapsed days")
    if share is None or share == 1.0:
        return None
    days, horizon = churn["elapsed days"], churn["forecast horizon days"]
    part = "a part of" if share < 1 else "more than"
    return (
        f"the {horizon}-day forecast is graded on the {days} days elapsed ({part} its horizon): "
        f"its expected purchases and revenue are scaled by {days}/{horizon} (of "
        f"{churn['expected purchases over the horizon']:,.0f} purchases over the horizon) and "
        "each probability to the elapsed days with a constant purchase rate inside the "
        "horizon; the AUC does not depend on it. Set monitor_horizon_days to the schedule's "
        "period to grade whole horizons"
    )


def data_alerts(res: MonitorResult) -> list:
    """The alerts of the data section (a table's rows, nulls, quarantine, drift)."""
    if not len(res.alerts):
        return []
    return [a for a in res.alerts.itertuples() if a.section == "data"]


def alerts_markdown(res: MonitorResult) -> str:
    """One bullet per alert, or that no threshold was breached."""
    if not len(res.alerts):
        return "No threshold breached."
    return "\n".join(f"- **{a.section}**: {a.message}" for a in res.alerts.itertuples())


def tables_view(res: MonitorResult) -> pd.DataFrame:
    """Per source table: rows up to as_of now and before, quarantine share now and before."""
    t = res.data["tables"]
    view = pd.DataFrame({
        "table": t["table_name"],
        "rows up to as_of": t["rows_until_as_of"],
        "previous": t["rows_until_as_of_prev"],
        "change": t["rows_until_as_of"] / t["rows_until_as_of_prev"] - 1.0,
        "quarantine share": t["quarantine_share"],
        "previous share": t["quarantine_share_prev"],
    })  # fmt: skip
    return view.round(4)


def plot_tables(res: MonitorResult):
    """Rows up to ``as_of`` per source table, this run beside the previous one (log scale)."""
    import matplotlib.pyplot as plt
    import numpy as np

    t = res.data["tables"]
    y = np.arange(len(t))
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.4 * len(t) + 1)))
    has_prev = t["rows_until_as_of_prev"].notna().any()
    h = 0.4 if has_prev else 0.8
    ax.barh(y + (h / 2 if has_prev else 0), t["rows_until_as_of"], height=h, label=res.as_of)
    if has_prev:
        ax.barh(y - h / 2, t["rows_until_as_of_prev"], height=h, label=res.previous_as_of)
        ax.legend(title="as of")
    ax.set_yticks(y, t["table_name"])
    ax.set_xscale("log")
    ax.set_title("Rows up to as_of per source table")
    ax.set_xlabel("rows (log scale)")
    ax.set_ylabel("source table")
    return fig


def plot_psi(drift: pd.DataFrame, top: int = 20):
    """Horizontal bars of the largest PSIs with the 0.1 / 0.25 bands."""
    import matplotlib.pyplot as plt

    d = drift.sort_values("psi", ascending=False).head(top).iloc[::-1]
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.28 * len(d) + 1)))
    ax.barh(d["table_name"] + "." + d["column_name"], d["psi"])
    for x, style in zip(PSI_BANDS, (":", "--"), strict=True):
        ax.axvline(x, color="grey", linestyle=style)
    ax.set_title("Distribution shift since the previous run (PSI)")
    ax.set_xlabel("population stability index (0.1 moderate, 0.25 significant)")
    ax.set_ylabel("column")
    return fig


def plot_calibration(cal: pd.DataFrame, churn: dict):
    """Predicted probability against the observed share buying, per decile."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    top = max(cal["predicted"].max(), cal["observed"].max(), 0.05)
    ax.plot([0, top], [0, top], color="grey", linestyle="--")
    ax.plot(cal["predicted"], cal["observed"], marker="o")
    ax.set_title(f"Calibration over {churn['elapsed days']} days")
    ax.set_xlabel(f"predicted p(purchase in {churn['elapsed days']} days)" if horizon_note(churn)
                  else f"predicted p(purchase in {churn['forecast horizon days']} days)")  # fmt: skip
    ax.set_ylabel("observed share buying")
    return fig


def verdict_of(res: MonitorResult) -> dict:
    """The stage's verdict (``cemlib.reports.verdict`` arguments): alerts first, then how the
    previous run's forecasts did."""
    n_alerts = int(len(res.alerts))
    if res.previous_run_id is None:
        return {
            "status": "ok",
            "title": "First run of this warehouse: nothing to compare with yet",
            "figures": {"alerts": "0", "previous run": "none"},
            "comparison": "This run's data profile and forecasts are kept; the next run compares "
            "with them and grades them.",
            "caveats": [],
        }
    figures: dict[str, str] = {"alerts": f"{n_alerts:,}"}
    drift = res.data.get("drift")
    if drift is not None and len(drift):
        figures["largest column drift (PSI)"] = f"{float(drift['psi'].max()):.2f}"
    if "share of ids changed" in res.profiles:
        figures["profile ids changed"] = f"{float(res.profiles['share of ids changed']):.1%}"
    if CLOSED_SINCE in res.profiles:
        figures["customers who left (all contracts closed)"] = f"{res.profiles[CLOSED_SINCE]:,}"
    comparison = f"Against run {res.previous_run_id} (as of {res.previous_as_of})."
    if res.churn:
        c = res.churn
        figures["graded churn AUC"] = f"{c['auc']:.3f}"
        expected = c.get("expected purchases") or 0
        if expected:
            label = "realized / expected purchases" + (
                f" ({c['elapsed days']} of {c['forecast horizon days']} days)"
                if horizon_note(c) else ""
            )  # fmt: skip
            figures[label] = f"{c['realized purchases'] / expected:.0%}"
        own = c.get("forecast's own backtest auc")
        comparison += (
            f" The previous churn forecast ranked who bought again in the {c['elapsed days']} "
            f"days since with AUC {c['auc']:.3f}"
            + (f" (its own backtest had promised {own:.3f})." if own is not None else ".")
        )
    caveats = [f"{a.section}: {a.message}" for a in res.alerts.itertuples()][:5]
    if res.churn and (scaled := horizon_note(res.churn)):
        caveats.insert(0, scaled)
    if res.churn and data_alerts(res):
        caveats.insert(0, "the forecast grade may be biased: this run's data raised alerts")
    if n_alerts > 5:
        caveats.append(f"and {n_alerts - 5} more alerts below")
    if res.note:
        caveats.append(res.note)
    return {
        "status": "warning" if n_alerts else "ok",
        "title": f"{n_alerts} alert(s) since run {res.previous_run_id}"
        if n_alerts
        else f"No threshold breached since run {res.previous_run_id}",
        "figures": figures,
        "comparison": comparison,
        "caveats": caveats,
    }
