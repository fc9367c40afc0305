"""Stage 04 on both engines over the same ``clean.*``, ``identity.*`` and ``truth.*``.

    PYTHONPATH=. .venv/bin/python benchmarks/engine_offers_parity.py /tmp/w20k --people 20000

Builds (once, in ``folder``) a synthetic world: collect, quality and identity on DuckDB
(``cem.duckdb``), ``clean.*``, ``identity.*`` and ``truth.*`` copied to the lake (``lake/``),
so that both engines read the same inputs. Then stage 04 on each engine, each in its own
process (``--engine`` runs one), and prints NDCG@10 of the model and the best baseline, the
offers, seconds, CPU seconds (the driver process; on Spark also the JVM and its Python
workers, from ``/proc``) and peak resident memory (``--memory-limit`` the stage's budget, 6GB
by default, as ``cem run`` gives it; the Spark driver ``--driver-gib``), then how far the two engines' top-10 lists
agree (same item at the same rank) and their reasons.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_world import AS_OF, GIB, build_world, children, world_arguments  # noqa: E402


def _cap(max_train_customers: int | None) -> str:
    """``NextOfferModel``'s default ``max_train_customers`` set for both engines (the stage
    takes the model's default; the Spark engine's fit sample follows it); the file suffix."""
    if not max_train_customers:
        return ""
    from cemlib.offers.model import NextOfferModel

    NextOfferModel.__init__.__kwdefaults__["max_train_customers"] = int(max_train_customers)
    return f"_cap{int(max_train_customers)}"


def run_one(
    folder: Path, engine: str, seed: int, master: str, driver_gib: int, cap: int | None = None
) -> None:
    import cemlib.offers
    from cemlib.engine import Lake, spark_session
    from cemlib.warehouse import Warehouse

    suffix = _cap(cap)

    spark_cpu = 0.0
    if engine == "spark":
        spark_session(master, memory_limit=2 * driver_gib * GIB).range(1).count()
        spark_cpu = sum(c for _, c in children().values())  # the JVM's start, not the stage's
    c, t = time.process_time(), time.perf_counter()
    if engine == "spark":
        stage = cemlib.offers.run(Lake(folder / "lake", spark_master=master), run_id="s",
                                  as_of=AS_OF, seed=seed, horizon_days=60)  # fmt: skip
    else:
        with Warehouse(folder / "cem.duckdb") as wh:
            stage = cemlib.offers.run(wh, run_id="d", as_of=AS_OF, seed=seed, horizon_days=60)
    seconds, cpu = time.perf_counter() - t, time.process_time() - c
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    kids = children()
    r = stage.detail
    figures = {
        "engine": engine, "seconds": round(seconds, 1), "driver_cpu_seconds": round(cpu, 1),
        "driver_peak_gib": round(peak, 2),
        "children_cpu_seconds": round(sum(c for _, c in kids.values()) - spark_cpu, 1),
        "children_peak_gib": {k: v[0] for k, v in kids.items()},
        "model_ndcg@10": round(float(r.metrics.loc["model", "ndcg@10"]), 6),
        "best_baseline_ndcg@10": round(float(r.metrics.drop(index="model")["ndcg@10"].max()), 6),
        "candidate_recall": round(float(r.candidate_recall), 6),
        "profiles_offered": int(r.all_offers["customer_id"].nunique()),
        "offers_sent": len(r.offers), "published": r.published,
        "spark_scoring": r.extras.get("spark_scoring"),
        "fit_customers": int(r.model.tx_["customer_id"].nunique()), "fit_lines": len(r.model.tx_),
        "training_queries": {w: v["queries"] for w, v in r.model.windows_.items()},
    }  # fmt: skip
    print(json.dumps(figures), flush=True)
    r.all_offers.to_parquet(folder / f"offers_{engine}{suffix}.parquet")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    world_arguments(parser)
    parser.add_argument("--driver-gib", type=int, default=3, help="Spark driver memory (GiB)")
    parser.add_argument("--engine", choices=("duckdb", "spark"), help="run this engine only")
    parser.add_argument("--memory-limit", default="6GB", help="the stage's budget (both engines)")
    parser.add_argument(
        "--max-train-customers",
        type=int,
        help="the model's cap per training window (both engines; default 50,000)",
    )
    args = parser.parse_args()
    from cemlib.budget import MEMORY_ENV

    os.environ[MEMORY_ENV] = args.memory_limit  # as cem run gives it to a stage kernel
    if not (args.folder / "cem.duckdb").exists():
        build_world(args.folder, args.people, args.seed)
    if args.engine:
        run_one(args.folder, args.engine, args.seed, args.master, args.driver_gib,
                args.max_train_customers)  # fmt: skip
        return 0
    print("load", Path("/proc/loadavg").read_text().split()[:3], flush=True)
    for engine in ("duckdb", "spark"):
        cmd = [sys.executable, __file__, str(args.folder), "--engine", engine,
               "--seed", str(args.seed), "--master", args.master,
               "--driver-gib", str(args.driver_gib),
               "--memory-limit", args.memory_limit]  # fmt: skip
        if args.max_train_customers:
            cmd += ["--max-train-customers", str(args.max_train_customers)]
        subprocess.run(cmd, check=True)
    print("load", Path("/proc/loadavg").read_text().split()[:3], flush=True)
    suffix = f"_cap{args.max_train_customers}" if args.max_train_customers else ""
    a = pd.read_parquet(args.folder / f"offers_duckdb{suffix}.parquet")
    b = pd.read_parquet(args.folder / f"offers_spark{suffix}.parquet")
    m = a.merge(b, on=["customer_id", "rank"], how="outer", suffixes=("_d", "_s"))
    print(json.dumps({
        "offers": [len(a), len(b)],
        "same_item_at_rank": round(float((m["item_id_d"] == m["item_id_s"]).mean()), 6),
        "same_reasons": round(float((m["reasons_d"] == m["reasons_s"]).mean()), 6),
        "max_score_difference": float((m["score_d"] - m["score_s"]).abs().max()),
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
