"""Stage 03 on both engines over the same ``clean.*`` and ``identity.map``: AUC, scores, cost.

    PYTHONPATH=. .venv/bin/python benchmarks/engine_churn_parity.py /tmp/w20k --people 20000
    PYTHONPATH=. .venv/bin/python benchmarks/engine_churn_parity.py /tmp/w20k --engines spark \
        --fit-customers 5000

Builds (once, in ``folder``) a synthetic world on DuckDB: collect, quality and identity
(``cem.duckdb``), then ``clean.*``, ``identity.*`` and ``truth.*`` copied to the lake (``lake/``),
so that both engines score the same profiles. Then stage 03 on DuckDB and on Spark
(``local[2]``, ``memory_limit`` 6 GB: the driver's JVM may take 3 GiB), each in a process of its
own, and prints per engine the headlines (the held-out AUC among them), CPU seconds (the
process; on Spark also the JVM and its Python workers, from ``/proc``), the peak resident
memory of the driver's Python and of the JVM, and the two ``marts.churn_scores`` side by side:
the customers, the largest difference of a purchase probability, the totals.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_world import AS_OF, GIB, build_world, children, world_arguments  # noqa: E402


def run_one(args) -> dict:
    """Stage 03 on one engine in this process; its figures."""
    import cemlib.churn
    from cemlib.engine import Lake, spark_session
    from cemlib.warehouse import Warehouse

    params = {"seed": args.seed}
    out: dict = {"engine": args.engine, "load": Path("/proc/loadavg").read_text().split()[:3]}
    if args.engine == "spark":
        spark = spark_session(args.master, memory_limit=args.memory_gib * GIB)
        spark.range(3).count()  # the JVM started before the clock
        lake = Lake(args.folder / "lake", spark_master=args.master)
        if args.fit_customers:
            params["fit_customers"] = args.fit_customers
        c, t = time.process_time(), time.perf_counter()
        res = cemlib.churn.run(lake, run_id="s", as_of=AS_OF, **params)
        out["fit_customers"] = res.detail.transactions.attrs["fit_customers"]
        out["customers"] = res.detail.transactions.attrs["customers"]
    else:
        c, t = time.process_time(), time.perf_counter()
        with Warehouse(args.folder / "cem.duckdb") as wh:
            res = cemlib.churn.run(wh, run_id="d", as_of=AS_OF, **params)
    out["seconds"] = round(time.perf_counter() - t, 1)
    out["cpu_seconds"] = round(time.process_time() - c, 1)
    out["driver_peak_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    kids = children()
    out["children"] = kids
    out["children_cpu_seconds"] = round(sum(v[1] for v in kids.values()), 1)
    out["jvm_peak_gib"] = max((v[0] for k, v in kids.items() if k.startswith("java")), default=0)
    out["headlines"] = {k: v for k, v in res.headlines.items()}
    out["holdout_customers"] = res.detail.truth.get("holdout_customers")
    return out


def compare(folder: Path) -> dict:
    """The two engines' ``marts.churn_scores``: customers, probabilities, totals."""
    from cemlib.engine import Lake
    from cemlib.warehouse import Warehouse

    cols = "customer_id, p_purchase, expected_purchases, expected_revenue, clv, risk_segment"
    with Warehouse(folder / "cem.duckdb", read_only=True) as wh:
        a = wh.sql(f"SELECT {cols} FROM marts.churn_scores").set_index("customer_id")
    with Lake(folder / "lake") as lake:
        b = lake.sql(f"SELECT {cols} FROM marts.churn_scores").set_index("customer_id")
    out = {
        "customers_duckdb": len(a), "customers_spark": len(b),
        "same_customers": bool(set(a.index) == set(b.index) and b.index.is_unique),
    }  # fmt: skip
    b = b.reindex(a.index)
    out["p_purchase_max_abs_diff"] = float(np.nanmax(np.abs(a["p_purchase"] - b["p_purchase"])))
    out["risk_segment_agreement"] = float((a["risk_segment"] == b["risk_segment"]).mean())
    for c in ("expected_purchases", "expected_revenue", "clv"):
        out[f"{c}_total"] = (round(float(a[c].sum()), 1), round(float(b[c].sum()), 1))
        out[f"{c}_rel_diff"] = round(float(b[c].sum() / a[c].sum() - 1), 4)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    world_arguments(parser)
    parser.add_argument("--memory-gib", type=int, default=6, help="the stage's memory_limit")
    parser.add_argument("--fit-customers", type=int, default=None,
                        help="the Spark driver's fit sample (default: the stage's cap)")  # fmt: skip
    parser.add_argument("--engines", default="duckdb,spark",
                        help="the engines to run (the other's scores: from its last run)")  # fmt: skip
    parser.add_argument("--engine", choices=("duckdb", "spark"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.engine:  # a child: one engine
        print(json.dumps(run_one(args)))
        return 0
    if not (args.folder / "cem.duckdb").exists():
        build_world(args.folder, args.people, args.seed)
    results = {}
    for engine in args.engines.split(","):
        cmd = [sys.executable, __file__, str(args.folder), "--engine", engine,
               "--seed", str(args.seed), "--master", args.master,
               "--memory-gib", str(args.memory_gib)]  # fmt: skip
        if args.fit_customers:
            cmd += ["--fit-customers", str(args.fit_customers)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode:
            print(done.stderr[-3000:], file=sys.stderr)
            return done.returncode
        results[engine] = json.loads(done.stdout.strip().splitlines()[-1])
        print(engine, json.dumps(results[engine], indent=1), flush=True)
    auc = {e: results[e]["headlines"].get("holdout auc") for e in results}
    if len(auc) == 2:
        print("holdout AUC", auc, "difference", round(abs(auc["spark"] - auc["duckdb"]), 4))
    print("scores", json.dumps(compare(args.folder), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
