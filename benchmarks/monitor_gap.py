"""Where the graded churn AUC and the truth's AUC part: the gap decomposed by cause.

    .venv/bin/python benchmarks/monitor_gap.py --out /tmp/monitor_runs

reads what ``benchmarks/monitor_runs.py --out DIR`` left (the world's files and truth, and
per month the warehouse after the run, ``monthN-<as_of>.duckdb``, its identity map and churn
forecast) and, for each run that graded the previous one, labels every graded customer twice:

* **monitor**: the monitor's own grading (``cemlib.monitor.forecasts.grade_churn`` on the
  month's warehouse: purchases in the window credited to today's profiles; the customers it
  leaves out, outcome unknown, are printed apart and not decomposed);
* **truth**: the person most of the previous profile's records belong to bought in the
  window (``monitor_runs.truth_buyers``: orders and receipts carrying an identifier).

Each customer the two disagree on gets one cause:

* **(a) unattached**: the person's purchase is in ``clean.*`` but identity attached it to no
  profile (an identity error: a receipt of a known person left anonymous);
* **(b) mixed / split person**: the purchase is on another lasting profile (the person split
  in two, also when identity moved some of the profile's records to another profile since),
  or this profile holds another person's purchase (two people mixed, also when the previous
  profile was merged into another person's since) — identity errors;
* **(c) ids changed between the runs**: the purchase is on a part split off this profile
  since (``identity.registry.split_from``), which the monitor does not credit (it follows an
  id to the part holding most of its records, ``merged_into``) — the monitor's choice;
* **(d) definitions**: the purchase is not a dated order or receipt of ``clean.*`` in the window
  (quarantined, another timestamp), or the truth left it out (a record with an
  injected defect, a purchase without an identifier) though it is the person's own.

The AUC is then recomputed with the truth's label put back cause by cause (d, c, a, b), and
each cause's share of the gap printed; also with each cause alone.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import pandas as pd
from sklearn.metrics import roc_auc_score

CAUSES = ("d", "c", "a", "b")
NAMES = {"d": "(d) definitions", "c": "(c) ids changed between runs",
         "a": "(a) unattached purchase", "b": "(b) mixed / split person"}  # fmt: skip


def _runs_module():
    path = Path(__file__).with_name("monitor_runs.py")
    spec = importlib.util.spec_from_file_location("monitor_runs", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def window_records(world: Path, since: str, until: str) -> pd.DataFrame:
    """Every sales header record of the files dated in the window: source_table, record_id,
    person_id, identified, defect."""
    runs = _runs_module()
    rp = pd.read_csv(world / "truth" / "record_person.csv", dtype=str)
    bad = pd.read_csv(world / "truth" / "defects.csv", dtype=str)
    lo = pd.Timestamp(since) + pd.Timedelta(days=1)
    hi = pd.Timestamp(until) + pd.Timedelta(days=1)
    parts = []
    for table, id_col, ts_col, idents in runs._SALES:
        f = pd.read_csv(world / f"{table}.csv", dtype=str)
        ts = pd.to_datetime(f[ts_col], format="%Y-%m-%d %H:%M:%S", errors="coerce")
        f = f[(ts >= lo) & (ts < hi)]
        parts.append(pd.DataFrame({
            "source_table": table, "record_id": f[id_col],
            "identified": f[[c for c in idents if c in f]].notna().any(axis=1),
            "defect": f[id_col].isin(bad.loc[(bad["table"] == table)
                                              & (bad["defect"] != "duplicate_receipt_id"),
                                              "record_id"]),
        }))  # fmt: skip
    recs = pd.concat(parts, ignore_index=True)
    return recs.merge(rp, on=["source_table", "record_id"], how="left")


def warehouse_facts(db: Path, since: str, until: str) -> tuple[pd.DataFrame, dict]:
    """From the month's warehouse: the dated sales records in the window (source_table,
    record_id, customer_id; NULL: attached to no profile) and each split-off id's origin."""
    from cemlib.marts import sales_headers_sql
    from cemlib.warehouse import Warehouse

    with Warehouse(db, read_only=True) as wh:
        sql, params = sales_headers_sql(wh, until)
        lo = (pd.Timestamp(since) + pd.Timedelta(days=1)).to_pydatetime()
        sales = wh.con.execute(
            f"SELECT DISTINCT split_part(order_id, ':', 1) AS source_table, "
            f"split_part(order_id, ':', 2) AS record_id, customer_id FROM ({sql}) "
            "WHERE ts >= ?",
            [*params, lo],
        ).df()
        reg = wh.sql("SELECT CAST(profile_id AS VARCHAR) p, CAST(split_from AS VARCHAR) s "
                     "FROM identity.registry WHERE split_from IS NOT NULL")  # fmt: skip
    return sales, dict(zip(reg["p"], reg["s"], strict=True))


def labels(out: Path, prev_run: str, run: str) -> pd.DataFrame:
    """:func:`labels_for` the run ``run`` of ``monitor_runs.py``'s folder ``out``."""
    mon = json.loads((out / "reports" / run / "monitor.json").read_text(encoding="utf-8"))
    since, until = mon["forecasts"]["churn"]["forecast as_of"], mon["as_of"]
    pmap = pd.read_parquet(out / f"{prev_run}.map.parquet")
    forecast = pd.read_parquet(out / f"{prev_run}.forecast.parquet")
    return labels_for(out / "world", pmap, forecast, out / f"{run}.duckdb", since, until)


def labels_for(
    world: Path, pmap: pd.DataFrame, forecast: pd.DataFrame, db: Path, since: str, until: str
) -> pd.DataFrame:
    """Per customer of the previous run's ``forecast`` (its identity map ``pmap``) graded on
    the warehouse ``db``: p, the monitor's label (``bought``), the truth's, and the cause."""
    from cemlib.monitor.forecasts import grade_churn
    from cemlib.warehouse import Warehouse

    runs = _runs_module()
    pmap = pmap.astype({"record_id": str, "profile_id": str})
    with Warehouse(db, read_only=True) as wh:
        figures, _, per = grade_churn(wh, forecast, since, until)
    person = per["customer_id"].astype(str).map(runs.profile_person(world, pmap))
    buyers = runs.truth_buyers(world, since, until, identified=True)
    per = per.assign(person=person.to_numpy(), truth=person.isin(buyers).astype(float).to_numpy())
    recs = window_records(world, since, until)
    sales, split_from = warehouse_facts(db, since, until)
    recs = recs.merge(sales, on=["source_table", "record_id"], how="left", indicator="in_clean")
    recs["in_clean"] = recs["in_clean"].eq("both")
    per["cause"] = [
        _cause(r, recs, split_from) if r.bought != r.truth else "" for r in per.itertuples()
    ]
    # customers the monitor leaves out (outcome unknown: an unattributed purchase carries
    # their identifier) are kept apart, with their causes, for the printout
    unknown = per[~per["graded"].to_numpy(dtype=bool)]
    per = per[per["graded"].to_numpy(dtype=bool)].copy()
    per.attrs.update(figures=figures, since=since, until=until, unknown=unknown)
    return per


def like_with_like(per: pd.DataFrame) -> dict:
    """The monitor's and the truth's AUC on the customers identity attributed right (every
    customer but those of causes (a) and (b)): the grading checked apart from identity."""
    keep = ~per["cause"].isin(["a", "b"])
    sub = per[keep]
    return {"customers": int(keep.sum()), "left out (identity)": int((~keep).sum()),
            "monitor auc": roc_auc_score(sub["bought"], sub["p_purchase"]),
            "truth auc": roc_auc_score(sub["truth"], sub["p_purchase"])}  # fmt: skip


def _cause(r, recs: pd.DataFrame, split_from: dict) -> str:
    """The cause of one customer's disagreement (see the module's docstring)."""
    cur, prev = str(r.current_id), str(r.customer_id)
    related = {prev, cur}
    if r.truth == 1.0:  # the person bought; the monitor saw no purchase on today's profile
        own = recs[(recs["person_id"] == r.person) & recs["identified"] & ~recs["defect"]]
        dated = own[own["in_clean"]]
        if dated.empty:
            return "d"
        elsewhere = dated["customer_id"].dropna()
        if elsewhere.map(split_from).isin(related).any():  # a part split off since
            return "c"
        return "b" if len(elsewhere) else "a"
    # the monitor credited a purchase the truth does not give this customer's person
    credited = recs[recs["in_clean"] & (recs["customer_id"] == cur)]
    if (credited["person_id"] == r.person).any():
        return "d"  # the person's own purchase, left out by the truth (defect, no identifier)
    # another person's purchase on the profile: two people mixed, in this run or by a merge
    # of the previous profile into another person's (the monitor follows the merge)
    return "b"


def decompose(per: pd.DataFrame) -> pd.DataFrame:
    """The AUC with the truth's label put back cause by cause (cumulative) and alone."""
    p = per["p_purchase"].to_numpy()
    y = per["bought"].to_numpy().copy()
    rows = [{"step": "monitor", "customers": 0, "auc": roc_auc_score(y, p)}]
    for c in CAUSES:
        mask = (per["cause"] == c).to_numpy()
        y[mask] = per["truth"].to_numpy()[mask]
        alone = per["bought"].to_numpy().copy()
        alone[mask] = per["truth"].to_numpy()[mask]
        rows.append({"step": f"+ {NAMES[c]}", "customers": int(mask.sum()),
                     "truth 1 / monitor 0": int((mask & (per["truth"] == 1).to_numpy()).sum()),
                     "auc": roc_auc_score(y, p),
                     "alone: auc change": roc_auc_score(alone, p) - rows[0]["auc"]})  # fmt: skip
    rows.append({"step": "truth", "customers": int((per["cause"] != "").sum()),
                 "auc": roc_auc_score(per["truth"], p)})  # fmt: skip
    out = pd.DataFrame(rows)
    out["cumulative change"] = out["auc"] - out["auc"].iloc[0]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="monitor_runs.py's --out folder")
    args = ap.parse_args()
    months = sorted(p.stem for p in args.out.glob("month*.duckdb"))
    for prev_run, run in zip(months, months[1:], strict=False):
        per = labels(args.out, prev_run, run)
        table = decompose(per)
        print(f"\n{run} grading {prev_run} ({per.attrs['since']} .. {per.attrs['until']}): "
              f"{len(per):,} customers, monitor buyers {int(per['bought'].sum()):,}, "
              f"truth buyers {int(per['truth'].sum()):,}")  # fmt: skip
        with pd.option_context("display.float_format", "{:.4f}".format, "display.width", 200):
            print(table.to_string(index=False))
        unknown = per.attrs["unknown"]
        print(f"left out by the monitor (outcome unknown): {len(unknown):,} customers; by the "
              f"truth {int(unknown['truth'].sum()):,} of them bought; causes "
              f"{unknown['cause'].replace('', 'agree').value_counts().to_dict()}")  # fmt: skip
        like = like_with_like(per)
        print(f"like with like ({like['customers']:,} customers, {like['left out (identity)']} "
              f"left out for identity's errors): monitor {like['monitor auc']:.4f}, "
              f"truth {like['truth auc']:.4f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
