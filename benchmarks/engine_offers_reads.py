"""Stage 04 on Spark: the seconds of the driver's reads of the history, step by step.

    TMPDIR=/tmp/me PYTHONPATH=. .venv/bin/python benchmarks/engine_offers_reads.py /tmp/w/lake

:class:`~cemlib.offers.sparkstage.SparkOffers` over an existing lake (``clean.*`` and
``identity.map``, e.g. the folder ``engine_scale.py`` leaves) at ``--as-of``, and the reads the
stage makes before its fit, each timed from here (so the same script times any version of
the class): the never-kept pairs (the constructor), the fit sample, the sample's lines, its
events, every customer (with a sample), then the rows the scoring reads (counted), at
``as_of`` and 60 days back (the backtest's). Prints one JSON object: seconds per read, their total, the driver's
peak resident memory, the JVM's and the Spark block manager's bytes (the history kept). The
lake is only read.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_world import GIB, children  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lake", type=Path)
    parser.add_argument("--as-of", default="2025-06-30")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-gib", type=int, default=3, help="Spark driver memory (GiB)")
    parser.add_argument(
        "--keep-history",
        action="store_true",
        help="persist the history in Spark (SparkOffers(keep_history=True); off by default)",
    )
    args = parser.parse_args()
    from cemlib.engine import Lake, spark_session
    from cemlib.offers.sparkstage import SparkOffers

    spark = spark_session(args.master, memory_limit=2 * args.driver_gib * GIB)
    lake = Lake(args.lake, spark_master=args.master)
    seconds = {}
    t0 = t = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal t
        now = time.perf_counter()
        seconds[step] = round(now - t, 1)
        t = now

    on = SparkOffers(spark, lake, args.as_of, keep_history=args.keep_history)
    lap("never_kept")
    sample = on.sample
    lap("fit_sample")
    tx = on.transactions()
    lap("transactions")
    ev = on.events()
    lap("events")
    if sample is not None:  # (without a sample the fit's customers are every customer's)
        everyone = on.customers(None)
        lap("customers")
    # the scoring's input (``mapInPandas`` over these rows), read twice by a stage without
    # truth: the offers at as_of and the backtest's 60 days back (counted here, not scored)
    for name, day in (("scoring_rows", args.as_of), ("backtest_rows", None)):
        day = day or (pd.Timestamp(args.as_of) - pd.Timedelta(days=60)).date()
        on._rows(pd.Timestamp(day)).count()
        lap(name)
    seconds["total"] = round(time.perf_counter() - t0, 1)
    jsc = spark.sparkContext._jsc.sc()
    kept = sum(int(i.memSize()) + int(i.diskSize()) for i in jsc.getRDDStorageInfo())
    out = {
        "seconds": seconds,
        "lines_on_driver": len(tx), "events_on_driver": 0 if ev is None else len(ev),
        "sampled": sample is not None,
        "customers": len(everyone) if sample is not None else tx["customer_id"].nunique(),
        "never_kept_pairs": len(on.never_kept()),
        "block_manager_mib": round(kept / 2**20, 1),
        "driver_peak_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "children_peak_gib": {k: v[0] for k, v in children().items()},
    }  # fmt: skip
    print(json.dumps(out), flush=True)
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
