"""Seconds and peak memory of the quality stage on the source tables of an N-person world.

    .venv/bin/python benchmarks/quality_scale.py --people 100000
    .venv/bin/python benchmarks/quality_scale.py --people 200000 --workers 1 2

The world is generated and collected into a temporary DuckDB warehouse first (timed apart);
the quality stage then runs in a fresh process so its peak resident memory (ru_maxrss) is its own.
``--workers`` runs the stage once per setting of ``CEM_WORKERS`` on the same warehouse (copied
fresh each time) and adds its CPU seconds and those of its Great Expectations workers
(``RUSAGE_CHILDREN``), and the largest worker's peak.
Target for 1,000,000 people: under 5 minutes and 8 GiB on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _stage(warehouse: str, as_of: str, gx_max_rows: int | None, memory: str | None) -> None:
    from cemlib.quality import QualityStage
    from cemlib.warehouse import Warehouse

    t0, c0 = time.perf_counter(), time.process_time()
    with Warehouse(warehouse) as wh:
        if memory:  # DuckDB's buffer pool otherwise grows to 80% of RAM, spilling past it
            wh.con.execute(f"SET memory_limit = '{memory}'")
        # "auto": workers as CEM_WORKERS allows (the stage's default is one process)
        workers = "auto" if os.environ.get("CEM_WORKERS") else None
        report = QualityStage(progress=False, gx_max_rows=gx_max_rows, workers=workers).run(
            wh, run_id="bench", as_of=as_of
        )
        cons = report.conservation
        gx_s = sum(o.seconds.get("great_expectations", 0) for o in report.outcomes.values())
        sql_s = sum(o.seconds.get("sql_flags", 0) for o in report.outcomes.values())
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": cpu,
                "workers_cpu_seconds": kids.ru_utime + kids.ru_stime,
                "worker_peak_bytes": kids.ru_maxrss * 1024,
                "gx_seconds": gx_s,
                "sql_seconds": sql_s,
                "write_seconds": report.write_seconds,
                "peak_bytes": peak,
                "rows_in": int(cons["rows_in"].sum()),
                "quarantined": int(cons["quarantined"].sum()),
                "per_table": cons[["table", "rows_in", "quarantined"]].to_dict("records"),
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--people", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--as-of", default="2025-06-30")
    ap.add_argument(
        "--gx-max-rows",
        type=int,
        default=200_000,
        help="rows Great Expectations validates per table (0 = all)",
    )
    ap.add_argument(
        "--duckdb-memory",
        default="4GB",
        help="DuckDB memory_limit for the stage's connection ('' = DuckDB default)",
    )
    ap.add_argument(
        "--workers", type=int, nargs="+", help="run the stage with each CEM_WORKERS setting"
    )
    ap.add_argument("--stage-only", metavar="WAREHOUSE", help=argparse.SUPPRESS)
    args = ap.parse_args()
    gx_max = args.gx_max_rows or None
    if args.stage_only:
        _stage(args.stage_only, args.as_of, gx_max, args.duckdb_memory)
        return

    from cemlib.collect import collect

    with tempfile.TemporaryDirectory(prefix="cem_qbench_") as tmp:
        wh_path = str(Path(tmp) / "bench.duckdb")
        t0 = time.perf_counter()
        collect(
            "synthetic",
            warehouse=wh_path,
            n_people=args.people,
            seed=args.seed,
            as_of=args.as_of,
            run_id="bench",
            progress=False,
        )
        collect_s = time.perf_counter() - t0
        runs = []
        for n in args.workers or [None]:
            stage_wh = str(Path(tmp) / "stage.duckdb")
            shutil.copy(wh_path, stage_wh)
            env = dict(os.environ)
            if n is not None:
                env["CEM_WORKERS"] = str(n)
            load = os.getloadavg()[0]
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--stage-only",
                    stage_wh,
                    "--as-of",
                    args.as_of,
                    "--gx-max-rows",
                    str(args.gx_max_rows),
                    "--duckdb-memory",
                    args.duckdb_memory,
                ],
                check=True,
                capture_output=True,
                text=True,
                env=env,
            )
            runs.append((n, load, json.loads(out.stdout.strip().splitlines()[-1])))
            Path(stage_wh).unlink()
        fig = runs[-1][2]
    if args.workers:
        print(f"{'workers':>7} {'load':>5} {'wall s':>7} {'CPU s':>6} {'workers CPU s':>13} "
              f"{'total CPU s':>11} {'peak GiB':>8} {'worker peak GiB':>15}")  # fmt: skip
        for n, load, r in runs:
            total = r["cpu_seconds"] + r["workers_cpu_seconds"]
            print(f"{n:>7} {load:>5.1f} {r['seconds']:>7.1f} {r['cpu_seconds']:>6.1f} "
                  f"{r['workers_cpu_seconds']:>13.1f} {total:>11.1f} "
                  f"{r['peak_bytes'] / 2**30:>8.2f} {r['worker_peak_bytes'] / 2**30:>15.2f}")  # fmt: skip
    print(f"people                 {args.people:,}")
    print(f"source rows            {fig['rows_in']:,}")
    for t in fig["per_table"]:
        print(f"  {t['table']:<20} {t['rows_in']:>12,} rows, {t['quarantined']:>9,} quarantined")
    print(f"generate+collect       {collect_s:8.1f} s (not part of the stage)")
    print(f"quality stage          {fig['seconds']:8.1f} s")
    print(f"  Great Expectations   {fig['gx_seconds']:8.1f} s")
    print(f"  SQL row flags        {fig['sql_seconds']:8.1f} s")
    print(f"  writing clean/quar.  {fig['write_seconds']:8.1f} s")
    rest = fig["seconds"] - fig["gx_seconds"] - fig["sql_seconds"] - fig["write_seconds"]
    print(f"  other                {rest:8.1f} s")
    print(f"peak memory (stage)    {fig['peak_bytes'] / 2**30:8.2f} GiB")
    print(f"rows per second        {fig['rows_in'] / fig['seconds']:,.0f}")
    print(f"GE rows per table cap  {gx_max if gx_max else 'all'}")
    print(f"DuckDB memory_limit    {args.duckdb_memory or 'default (80% of RAM)'}")


if __name__ == "__main__":
    main()
