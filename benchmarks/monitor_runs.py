"""Four monthly runs on one warehouse, each grading the previous run's forecasts.

    .venv/bin/python benchmarks/monitor_runs.py --people 20000 --out /tmp/monitor_runs

writes the synthetic world once as files (``cem generate``, history to 2025-06-30), then runs
``cem run`` on them with ``as_of`` 2025-03-31, 04-30, 05-31 and 06-30 on one warehouse and one
reports folder: the models of each run see only rows up to its ``as_of``, and the purchases
between two ``as_of`` dates are in the files. For the second to fourth runs it prints the
monitor's graded churn AUC beside

* the same AUC computed independently from the synthetic truth: the truth's person of each
  previous profile (the person most of its records belong to, by ``truth/record_person``) and
  whether that person bought between the two ``as_of`` dates (orders and receipts of the files
  without an injected defect — a duplicated receipt id excepted: the purchase happened — by
  the truth's record-person table), once counting the purchases
  that carry an identifier (an e-mail, phone, device or loyalty card: what any profile can be
  credited with) and once counting every purchase, anonymous till receipts included;
* the previous run's own backtest (holdout) AUC from its churn report,

and the offers graded (hit rate@10, NDCG@10 against the personal-then-popular baseline), the
alerts and the monitor stage's time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
from sklearn.metrics import roc_auc_score

MONTHS = ("2025-03-31", "2025-04-30", "2025-05-31", "2025-06-30")
_SALES = (
    ("online_orders", "order_id", "ordered_at", ("email", "phone", "device_id")),
    ("pos_receipts", "receipt_id", "purchased_at", ("loyalty_card", "phone")),
)


def truth_buyers(folder: Path, since: str, until: str, *, identified: bool) -> set[str]:
    """The people who bought after ``since`` and on or before ``until`` by the truth (records
    with a defect left out but for a duplicated receipt id; ``identified``: only purchases
    carrying an identifier)."""
    rp = pd.read_csv(folder / "truth" / "record_person.csv", dtype=str)
    bad = pd.read_csv(folder / "truth" / "defects.csv", dtype=str)
    lo = pd.Timestamp(since) + pd.Timedelta(days=1)
    hi = pd.Timestamp(until) + pd.Timedelta(days=1)
    parts = []
    for table, id_col, ts_col, idents in _SALES:
        f = pd.read_csv(folder / f"{table}.csv", dtype=str)
        ts = pd.to_datetime(f[ts_col], format="%Y-%m-%d %H:%M:%S", errors="coerce")
        # a duplicated receipt id is a purchase all the same (one copy of it is kept)
        gone = bad[(bad["table"] == table) & (bad["defect"] != "duplicate_receipt_id")]
        keep = ~f[id_col].isin(gone["record_id"])
        if identified:
            keep &= f[[c for c in idents if c in f]].notna().any(axis=1)
        ids = f.loc[keep & (ts >= lo) & (ts < hi), id_col]
        parts.append(pd.DataFrame({"source_table": table, "record_id": ids}))
    recs = pd.concat(parts).merge(rp, on=["source_table", "record_id"])
    return set(recs["person_id"])


def profile_person(folder: Path, identity_map: pd.DataFrame) -> pd.Series:
    """profile_id -> the truth's person most of the profile's records belong to."""
    rp = pd.read_csv(folder / "truth" / "record_person.csv", dtype=str)
    m = identity_map.astype({"record_id": str, "profile_id": str})
    m = m.merge(rp, on=["source_table", "record_id"])
    n = m.groupby(["profile_id", "person_id"]).size().rename("n").reset_index()
    n = n.sort_values(["profile_id", "n", "person_id"], ascending=[True, False, True])
    return n.drop_duplicates("profile_id").set_index("profile_id")["person_id"]


def truth_auc(
    folder: Path,
    identity_map: pd.DataFrame,
    forecast: pd.DataFrame,
    since: str,
    until: str,
    *,
    identified: bool = True,
    graded: pd.Series | None = None,
) -> float:
    """AUC of the forecast's ``p_purchase`` for "bought again" by the truth; ``graded`` (the
    monitor's customers, by ``customer_id``): only those, as the monitor grades them."""
    if graded is not None:
        forecast = forecast[forecast["customer_id"].astype(str).isin(set(graded.astype(str)))]
    person = forecast["customer_id"].astype(str).map(profile_person(folder, identity_map))
    y = person.isin(truth_buyers(folder, since, until, identified=identified)).astype(float)
    return float(roc_auc_score(y, forecast["p_purchase"]))


def _published(warehouse: Path, keep: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The published run's identity map and churn forecast (kept in ``keep``, so that a
    benchmark run again skips the months already done)."""
    from cemlib.warehouse import Warehouse

    paths = keep.with_suffix(".map.parquet"), keep.with_suffix(".forecast.parquet")
    snapshot = keep.with_suffix(".duckdb")  # the month's warehouse, for the decomposition
    if not snapshot.is_file():
        shutil.copyfile(warehouse, snapshot)
    if not paths[0].is_file():
        with Warehouse(warehouse, read_only=True) as wh:
            wh.sql("SELECT source_table, record_id, profile_id FROM identity.map").to_parquet(
                paths[0]
            )
            wh.read_table("monitor", "churn_forecast").to_parquet(paths[1])
    return pd.read_parquet(paths[0]), pd.read_parquet(paths[1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--people", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    from cemlib.synth import generate

    world_dir, warehouse, reports = (
        args.out / "world",
        args.out / "cem.duckdb",
        args.out / "reports",
    )
    if not (world_dir / "truth" / "record_person.csv").is_file():
        generate(n_people=args.people, seed=args.seed, as_of=MONTHS[-1]).write(world_dir)
    cem = str(Path(sys.executable).with_name("cem"))
    rows, previous = [], None
    for i, as_of in enumerate(MONTHS, 1):
        run_id = f"month{i}-{as_of}"
        done = reports / run_id / "run.json"
        if done.is_file() and json.loads(done.read_text(encoding="utf-8"))["status"] == "ok":
            print(f"{run_id}: done before, not run again")
        else:
            proc = _run(cem, world_dir, as_of, run_id, warehouse, args.seed, reports)
            if proc.returncode != 0:
                return proc.returncode
        rows.append(_figures(reports / run_id, world_dir, previous, warehouse))
        previous = _published(warehouse, args.out / run_id)
    table = pd.DataFrame(rows).set_index("run").T
    with pd.option_context("display.float_format", "{:.4f}".format, "display.width", 200):
        print(table.to_string())
    return 0


def _run(cem, world_dir, as_of, run_id, warehouse, seed, reports):
    """``cem run`` of one month on the files; prints its summary line."""
    proc = subprocess.run(
        [cem, "run", "-p", f"source={world_dir}", "-p", f"as_of={as_of}", "-p",
         f"run_id={run_id}", "-p", f"warehouse={warehouse}", "-p", f"seed={seed}",
         "--out", str(reports)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    print(proc.stdout.strip().splitlines()[-2] if proc.stdout else proc.stderr[-500:])
    if proc.returncode != 0:
        print(proc.stdout, proc.stderr)
    return proc


def _graded(warehouse: Path, forecast: pd.DataFrame, since: str, until: str) -> pd.Series:
    """The customers the monitor graded (``customer_id``; those whose outcome it left out as
    unknown excluded), by its own grading on the month's warehouse."""
    from cemlib.monitor.forecasts import grade_churn
    from cemlib.warehouse import Warehouse

    with Warehouse(warehouse, read_only=True) as wh:
        _, _, per = grade_churn(wh, forecast, since, until)
    return per.loc[per["graded"].to_numpy(dtype=bool), "customer_id"]


def _figures(run_dir: Path, world_dir: Path, previous, warehouse: Path) -> dict:
    """One column of the printed table: the run's monitor figures and the truth's AUC (on the
    customers the monitor graded, and on every customer of the forecast)."""
    run = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    mon = json.loads((run_dir / "monitor.json").read_text(encoding="utf-8"))
    stage = {s["name"]: s for s in run["stages"]}["05_monitor"]
    churn, offers = mon["forecasts"]["churn"], mon["forecasts"]["offers"]
    row = {"run": run_dir.name, "run s": round(run["duration"]), "monitor s": stage["duration"],
           "alerts": len(mon["alerts"]), "largest psi": max((d["psi"] for d in mon["data"]["drift"]),
                                                           default=None)}  # fmt: skip
    for a in mon["alerts"]:
        print(f"  {run_dir.name} alert: {a['message']}")
    if churn and previous is not None:
        pmap, forecast = previous
        since, until = churn["forecast as_of"], mon["as_of"]
        graded = _graded(warehouse, forecast, since, until)
        row.update({
            "graded auc": churn["auc"],
            "truth auc (identified)": truth_auc(world_dir, pmap, forecast, since, until,
                                                graded=graded),
            "truth auc (all)": truth_auc(world_dir, pmap, forecast, since, until, identified=False,
                                         graded=graded),
            "graded auc, unknown as not bought": churn.get("auc, unknown counted as not bought"),
            "truth auc, every customer": truth_auc(world_dir, pmap, forecast, since, until),
            "customers left out (unknown)": churn.get("customers left out: outcome unknown"),
            "own backtest auc": churn["forecast's own backtest auc"],
            "buyers": churn["buyers"], "customers graded": churn["customers graded"],
            "realized/expected purchases": churn["realized purchases"] / churn["expected purchases"],
            "realized/expected revenue": churn["realized revenue"] / churn["expected revenue"],
        })  # fmt: skip
    for o in offers:
        short = "offers" if o["method"].startswith("next") else "baseline"
        row[f"{short} hit@10"] = o["hitrate@10"]
        row[f"{short} ndcg@10"] = o["ndcg@10"]
    return row


if __name__ == "__main__":
    sys.exit(main())
