"""Stage 02 on both engines over the same ``clean.*``: profiles, pairwise agreement, cost.

    PYTHONPATH=. .venv/bin/python benchmarks/engine_identity_parity.py /tmp/w20k --people 20000

Builds (once, in ``folder``) a synthetic world: collect and quality on DuckDB
(``cem.duckdb``), ``raw.*``, ``staging.*``, ``clean.*`` and ``truth.*`` copied to the lake
(``lake/``; stage 01's own parity is tested apart, so both engines resolve the same records).
Then stage 02 on Spark (``local[2]``) over the lake and on DuckDB over the warehouse, and prints
each engine's headlines, seconds, CPU seconds (the driver process; on Spark also the JVM and
its Python workers, from ``/proc``), peak resident memory, and
:func:`~cemlib.identity.sparkstage.pairwise_agreement` of the two ``identity.map``.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import cemlib.collect
import cemlib.identity
import cemlib.quality
from cemlib.engine import Lake, spark_session
from cemlib.identity.sparkstage import pairwise_agreement
from cemlib.warehouse import Warehouse

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_world import AS_OF, GIB, build_world, children, world_arguments  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    world_arguments(parser)
    parser.add_argument("--driver-gib", type=int, default=3, help="Spark driver memory (GiB)")
    args = parser.parse_args()
    if not (args.folder / "cem.duckdb").exists():
        build_world(args.folder, args.people, args.seed, identity=False)
    print("load", Path("/proc/loadavg").read_text().split()[:3], flush=True)
    spark = spark_session(args.master, memory_limit=2 * args.driver_gib * GIB)
    lake = Lake(args.folder / "lake", spark_master=args.master)
    c, t = time.process_time(), time.perf_counter()
    on_spark = cemlib.identity.run(lake, run_id="s", as_of=AS_OF, seed=args.seed)
    driver_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"spark : {time.perf_counter() - t:.1f} s, driver CPU {time.process_time() - c:.1f} s, "
          f"driver peak {driver_peak:.2f} GiB", flush=True)  # fmt: skip
    print("  children (peak GiB, CPU s):", children())
    print("  steps (s):", on_spark.detail.figures["seconds"])
    print("  headlines:", on_spark.headlines, flush=True)
    spark.stop()
    with Warehouse(args.folder / "cem.duckdb") as wh:
        c, t = time.process_time(), time.perf_counter()
        duck = cemlib.identity.run(wh, run_id="d", as_of=AS_OF, seed=args.seed,
                                   identity_mode="full")  # fmt: skip
        print(f"duckdb: {time.perf_counter() - t:.1f} s, CPU {time.process_time() - c:.1f} s")
        print("  headlines:", duck.headlines)
        a = wh.sql("SELECT source_table, record_id, profile_id FROM identity.map")
    b = lake.sql("SELECT source_table, record_id, profile_id FROM identity.map")
    print("agreement (a = duckdb, b = spark):", json.dumps(pairwise_agreement(a, b)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
