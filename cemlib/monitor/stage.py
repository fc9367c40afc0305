"""The monitor stage: this run against the previous one, written to ``monitor.*``.

A run keeps what the next run needs to compare and grade (``monitor.column_profile``,
``monitor.tables``, ``monitor.reasons``, ``monitor.churn_forecast``, ``monitor.offer_forecast``,
``monitor.headlines``): the next run reads them before replacing them, so the previous run's
forecasts are graded even though stages 03 and 04 have since rewritten ``marts.*``. Each kept
table is stamped with the ``as_of`` of the data it describes.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd

from cemlib.monitor import drift as dr
from cemlib.monitor.alerts import Thresholds, alert_frame, data_alerts, forecast_alerts
from cemlib.monitor.forecasts import churn_forecast, current_ids, grade_churn, grade_offers
from cemlib.monitor.movement import closed_between, closures, profile_changes, risk_movement
from cemlib.monitor.report import headlines
from cemlib.monitor.result import MonitorResult
from cemlib.monitor.window import last_purchase
from cemlib.warehouse import Warehouse

#: what a run keeps in ``monitor.*`` for the next run to compare with and grade
KEPT: tuple[str, ...] = ("column_profile", "tables", "nulls", "reasons", "headlines",
                         "churn_forecast", "offer_forecast")  # fmt: skip


#: kept tables graded in DuckDB where they are (one row per offer: not read into pandas)
IN_PLACE: tuple[str, ...] = ("offer_forecast",)


def _kept(wh: Warehouse, name: str) -> tuple[pd.DataFrame | str | None, str | None, str | None]:
    """A table the previous run kept for this one: (frame — or, for :data:`IN_PLACE`, the
    table's name —, its run id, its as_of)."""
    if not wh.has_table("monitor", name):
        return None, None, None
    stamp = wh.stamp("monitor", name)
    frame = f"monitor.{name}" if name in IN_PLACE else wh.read_table("monitor", name)
    if stamp is None:
        return frame, None, None
    return frame, str(stamp[0]), str(pd.Timestamp(stamp[1]).date())


def previous_backtest_auc(wh: Warehouse, run_id: str | None) -> float | None:
    """The previous run's own backtest (holdout) AUC from its churn report's headlines, found
    through ``meta.runs``' ``run_dir``; None when it is not there."""
    if not run_id or not wh.has_table("meta", "runs"):
        return None
    row = wh.con.execute(
        "SELECT run_dir FROM meta.runs WHERE run_id = ? ORDER BY published_at DESC LIMIT 1",
        [run_id],
    ).fetchone()
    path = Path(row[0]) / "03_churn.headlines.json" if row and row[0] else None
    if path is None or not path.is_file():
        return None
    figures = json.loads(path.read_text(encoding="utf-8"))
    value = figures.get("holdout auc", figures.get("truth auc"))
    return float(value) if value is not None else None


def _exclusion_entries(spec) -> list[str]:
    """The entries of a stage-04 ``exclude`` parameter as the offers stage reads them (a list,
    a comma-separated text, or a file: one entry a line, ``#`` comments, or a CSV/Parquet with
    ``item_id``/``sku``/``category``); the stages do not import each other."""
    if spec is None:
        return []
    if isinstance(spec, list | tuple):
        values = [str(v) for v in spec]
    else:
        text = str(spec).strip()
        path = Path(text).expanduser()
        if path.suffix.lower() in (".csv", ".tsv", ".parquet") and path.is_file():
            table = (
                pd.read_parquet(path)
                if path.suffix.lower() == ".parquet"
                else pd.read_csv(path, dtype=str, sep=None, engine="python")
            )
            cols = [c for c in ("item_id", "sku", "category") if c in table.columns]
            values = [str(v) for c in cols for v in table[c].dropna()]
        elif path.is_file():
            lines = path.read_text(encoding="utf-8-sig").splitlines()
            values = [line.split("#", 1)[0] for line in lines]
        else:
            values = text.split(",")
    return [e for e in dict.fromkeys(v.strip() for v in values) if e]


def previous_exclusion(wh: Warehouse, run_id: str | None) -> list[str]:
    """The exclusion entries (``exclude``) the previous run's offers stage was given, from its
    ``run.json`` found through ``meta.runs``' ``run_dir``: its offers never hold those items,
    so they are graded without them. Empty when there is none or it cannot be read (a file
    given by a path relative to the project is read from the current folder)."""
    if not run_id or not wh.has_table("meta", "runs"):
        return []
    row = wh.con.execute(
        "SELECT run_dir FROM meta.runs WHERE run_id = ? ORDER BY published_at DESC LIMIT 1",
        [run_id],
    ).fetchone()
    path = Path(row[0]) / "run.json" if row and row[0] else None
    if path is None or not path.is_file():
        return []
    try:
        stages = json.loads(path.read_text(encoding="utf-8")).get("stages", [])
        spec = next(
            (s.get("parameters", {}).get("exclude") for s in stages
             if s.get("name") == "04_next_offer"),
            None,
        )  # fmt: skip
        return _exclusion_entries(spec)
    except (ValueError, OSError, AttributeError):
        return []


def _with_previous(now: pd.DataFrame, prev: pd.DataFrame | None, keys: list[str], cols: list[str]):
    if prev is None or prev.empty:
        return now.assign(**{f"{c}_prev": float("nan") for c in cols})
    return now.merge(prev[keys + cols], on=keys, how="left", suffixes=("", "_prev"))


def data_section(wh: Warehouse, as_of: str, previous: dict) -> dict[str, pd.DataFrame]:
    """Tables (rows, quarantine), nulls, drift (PSI), new quarantine reasons, and this run's
    column profile and reasons (kept for the next run)."""
    now = dr.table_figures(wh, as_of)
    prev_tables = previous.get("tables")
    if prev_tables is not None and len(prev_tables):
        # a table the previous run had and this run's source lacks (an export that did not
        # arrive) is a table of 0 rows now, not a row left out of the comparison
        gone = sorted(set(prev_tables["table_name"]) - set(now["table_name"]))
        if gone:
            zero = pd.DataFrame({"table_name": gone, "rows": 0, "rows_until_as_of": 0,
                                 "quarantined": 0, "quarantine_share": 0.0})  # fmt: skip
            now = pd.concat([now, zero], ignore_index=True)
    tables = _with_previous(now, prev_tables, ["table_name"],
                            ["rows", "rows_until_as_of", "quarantined", "quarantine_share"])  # fmt: skip
    nulls = _with_previous(dr.null_shares(wh, as_of), previous.get("nulls"),
                           ["table_name", "column_name"], ["null_share"])  # fmt: skip
    reasons = dr.quarantine_reasons(wh)
    prev_profile = previous.get("column_profile")
    drift = (dr.column_drift(wh, as_of, prev_profile) if prev_profile is not None
             else pd.DataFrame(columns=["table_name", "column_name", "kind", "psi", "band"]))  # fmt: skip
    new_reasons = reasons.iloc[0:0]
    if previous.get("reasons") is not None:
        seen = previous["reasons"][["table_name", "expectation"]].assign(_seen=True)
        flagged = reasons.merge(seen, on=["table_name", "expectation"], how="left")
        new_reasons = flagged[flagged["_seen"].isna()].drop(columns="_seen")
    return {"tables": tables, "nulls": nulls, "drift": drift, "new_reasons": new_reasons,
            "reasons": reasons, "column_profile": dr.column_profile(wh, as_of)}  # fmt: skip


def run_stage(
    wh: Warehouse,
    as_of: str | dt.date,
    *,
    run_id: str = "dev",
    horizon_days: int = 30,
    k: int = 10,
    thresholds: Thresholds | None = None,
    write: bool = True,
    json_path: str | Path | None = None,
) -> MonitorResult:
    """Compare this run with the previous one, grade the previous forecasts, raise alerts, and
    (``write=True``) replace ``monitor.*`` and write ``json_path``."""
    from cemlib.budget import configure_warehouse

    configure_warehouse(wh)
    as_of = str(pd.Timestamp(as_of).date())
    t = thresholds or Thresholds()
    prev = _previous(wh, run_id)
    prev_run, prev_as_of = prev["column_profile"][1:] if "column_profile" in prev else (None, None)
    res = MonitorResult(run_id, as_of, prev_run, prev_as_of, thresholds=t.as_dict())
    if prev_run is None:
        res.note = "no previous run of this warehouse: nothing to compare with yet"
    frames = {name: v[0] for name, v in prev.items()}
    data = data_section(wh, as_of, frames if prev_run else {})
    keep = {n: data.pop(n) for n in ("reasons", "column_profile")}
    res.data = data
    heads = frames.get("headlines")
    before = dict(zip(heads["figure"], heads["value"], strict=True)) if heads is not None else {}
    res.profiles = profile_changes(wh, run_id, before.get("profiles"))
    # customers who left between the runs (every CRM record closed): a change of their own
    left = closed_between(wh, prev_as_of, as_of)
    if left is not None and res.profiles:
        res.profiles["profiles closed since the previous run"] = len(left)
    forecast, scores_as_of = None, None
    if wh.has_table("marts", "churn_scores"):
        forecast = churn_forecast(wh.read_table("marts", "churn_scores"), horizon_days)
        scores_as_of = str(pd.Timestamp(wh.stamp("marts", "churn_scores")[1]).date())
    _forecast_sections(wh, res, prev, forecast, k, left)
    res.alerts = alert_frame(
        data_alerts(t, res.data["tables"], res.data["drift"], res.data["nulls"])
        + forecast_alerts(t, res.churn, res.profiles)
    )
    if write:
        _write(wh, res, keep, forecast, scores_as_of, run_id, as_of)
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(
            json.dumps(res.to_json(), ensure_ascii=False, indent=2, default=str), encoding="utf-8"
        )
    return res


def _previous(wh: Warehouse, run_id: str) -> dict[str, tuple]:
    """The tables the previous run kept for this one: ``name -> (frame, run id, as_of)``."""
    out = {}
    for name in KEPT:
        frame, r, a = _kept(wh, name)
        if frame is not None and r != run_id:  # a table this run wrote itself is no baseline
            out[name] = (frame, r, a)
    return out


def _forecast_sections(wh, res: MonitorResult, prev: dict, forecast, k: int,
                       left: set[str] | None = None) -> None:  # fmt: skip
    """Risk movement against the previous churn forecast, and the previous churn and offer
    forecasts graded on the purchases since their ``as_of`` (when it is before this one);
    ``left``: the customers who left since (:func:`~cemlib.monitor.movement.closed_between`),
    counted apart in the risk movement and the grade."""
    graded = False
    if ("churn_forecast" in prev or "offer_forecast" in prev) and wh.has_table("identity", "map"):
        since = min(v[2] for n, v in prev.items() if n.endswith("_forecast"))
        last = last_purchase(wh, res.as_of)
        graded = last is not None and last >= pd.Timestamp(since) + pd.Timedelta(days=1)
        if not graded:
            res.note = (f"no purchase dated after {since} in this run's data: the previous "
                        "forecasts are graded once the data reaches past their as_of")  # fmt: skip
    if "churn_forecast" in prev and forecast is not None:
        pf = prev["churn_forecast"][0]
        now_ids = current_ids(wh, pf["customer_id"])
        res.transitions, res.risk, res.became_high_risk = risk_movement(pf, forecast, now_ids)
        if left is not None:
            res.risk.update(closures(pf, now_ids, left, forecast["customer_id"]))
    if "churn_forecast" in prev and graded:
        pf, r, since = prev["churn_forecast"]
        if since < res.as_of:
            figures, res.calibration, per = grade_churn(wh, pf, since, res.as_of)
            res.churn = {"forecast run": r, "forecast as_of": since, **figures,
                         "forecast's own backtest auc": previous_backtest_auc(wh, r)}  # fmt: skip
            if left is not None:  # graded on what they did before they left
                gone = per["current_id"].astype(str).isin(left) & per["graded"]
                res.churn["graded customers who left since"] = int(gone.sum())
                res.churn["of them bought before leaving"] = int((gone & (per["bought"] > 0)).sum())
    if "offer_forecast" in prev and graded:
        po, r, since = prev["offer_forecast"]
        if since < res.as_of:
            excluded = previous_exclusion(wh, r)
            res.offers = grade_offers(wh, po, since, res.as_of, k, excluded).assign(forecast_run=r)


def _write(wh, res, keep, forecast, scores_as_of, run_id, as_of) -> None:
    heads = headlines(res)
    numeric = {k: float(v) for k, v in heads.items()
               if isinstance(v, int | float) and v is not None}  # fmt: skip
    tables = {
        "tables": res.data["tables"], "nulls": res.data["nulls"], "drift": res.data["drift"],
        "new_reasons": res.data["new_reasons"], "reasons": keep["reasons"],
        "column_profile": keep["column_profile"], "alerts": res.alerts,
        "transitions": res.transitions, "became_high_risk": res.became_high_risk,
        "calibration": res.calibration, "offers_graded": res.offers,
        "churn_graded": pd.DataFrame({"figure": list(res.churn), "value": [str(v) for v in res.churn.values()]}),
        "profiles": pd.DataFrame({"figure": list(res.profiles), "value": [float(v) for v in res.profiles.values()]}),
        "headlines": pd.DataFrame({"figure": list(numeric), "value": list(numeric.values())}),
    }  # fmt: skip
    with wh.transaction():
        for name, frame in tables.items():
            if len(frame.columns):
                wh.write_table("monitor", name, frame, run_id=run_id, as_of=as_of)
            else:  # a section without figures in this run: no stale table of an earlier one
                wh.drop_table("monitor", name)
        if forecast is not None:
            wh.write_table("monitor", "churn_forecast", forecast, run_id=run_id, as_of=scores_as_of)
        if wh.has_table("marts", "next_offers"):
            stamp = wh.stamp("marts", "next_offers")
            # a lake copies the offers its own way (cemlib.monitor.sparkstage.LakeWrites)
            keep = getattr(wh, "keep_offers", None) or (lambda *a: _keep_offers(wh, *a))
            keep(run_id, stamp[1] if stamp else as_of)


def _keep_offers(wh: Warehouse, run_id: str, as_of) -> None:
    """``monitor.offer_forecast``: ``marts.next_offers``' profile, rank and item copied inside
    DuckDB (one row per offer, not through pandas), stamped and logged as
    :meth:`Warehouse.write_table` does."""
    day = pd.Timestamp(as_of).date()
    wh.con.execute(
        "CREATE OR REPLACE TABLE monitor.offer_forecast AS SELECT profile_id, rank, item_id, "
        "CAST(? AS VARCHAR) AS _run_id, CAST(? AS DATE) AS _as_of FROM marts.next_offers",
        [run_id, day],
    )
    n = wh.con.execute("SELECT count(*) FROM monitor.offer_forecast").fetchone()[0]
    wh.con.execute(
        "INSERT INTO meta.table_log VALUES (?, ?, ?, ?, ?, ?)",
        ["monitor", "offer_forecast", run_id, day, n, dt.datetime.now()],
    )
