"""The monitor stage's cost, measured in-process on the warehouses of two monthly runs.

    .venv/bin/python benchmarks/monitor_speed.py --before RUN1.duckdb --after RUN2.duckdb \\
        --as-of 2025-06-30 --run-id RUN2 [--profile 25]

``RUN1.duckdb`` is a warehouse copied after a run (what it kept in ``monitor.*`` for the next
run), ``RUN2.duckdb`` the same warehouse after the next run (``benchmarks/monitor_runs.py``
leaves them as ``monthN-<as_of>.duckdb``). A temporary copy of ``RUN2`` gets ``RUN1``'s
``monitor.*`` back — the state in which the next run's stage 05 starts — and
``cemlib.monitor.run_stage`` runs on it: printed are the wall and CPU seconds (CPU: this
process, DuckDB's threads included), the people graded and, with ``--profile N``, the N
functions of most cumulative time (cProfile). Importing ``cemlib.monitor`` is timed apart.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path


def rewound(before: Path, after: Path, folder: Path) -> Path:
    """A copy of ``after`` whose ``monitor.*`` tables are ``before``'s."""
    import duckdb

    path = folder / "monitor_speed.duckdb"
    shutil.copyfile(after, path)
    con = duckdb.connect(str(path))
    con.execute(f"ATTACH '{before}' AS b (READ_ONLY)")
    for (name,) in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = 'monitor'"
    ).fetchall():
        con.execute(f'DROP TABLE monitor."{name}"')
    for (name,) in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = 'b' "
        "AND schema_name = 'monitor'"
    ).fetchall():
        con.execute(f'CREATE TABLE monitor."{name}" AS SELECT * FROM b.monitor."{name}"')
    con.close()
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", type=Path, required=True)
    ap.add_argument("--after", type=Path, required=True)
    ap.add_argument("--as-of", required=True)
    ap.add_argument("--run-id", required=True)
    ap.add_argument("--profile", type=int, default=0, help="print the N costliest functions")
    args = ap.parse_args()
    t0, c0 = time.perf_counter(), time.process_time()
    from cemlib.monitor import run_stage
    from cemlib.warehouse import Warehouse

    print(f"import cemlib.monitor: {time.perf_counter() - t0:.1f} s wall, "
          f"{time.process_time() - c0:.1f} s CPU")  # fmt: skip
    with tempfile.TemporaryDirectory(dir=args.after.parent) as tmp:
        path = rewound(args.before, args.after, Path(tmp))
        with Warehouse(path) as wh:
            n = wh.con.execute("SELECT count(DISTINCT profile_id) FROM identity.map").fetchone()[0]
            prof = cProfile.Profile() if args.profile else None
            t0, c0 = time.perf_counter(), time.process_time()
            if prof:
                prof.enable()
            res = run_stage(wh, args.as_of, run_id=args.run_id, write=True)
            if prof:
                prof.disable()
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    c = res.churn
    print(f"run_stage: {wall:.1f} s wall, {cpu:.1f} s CPU; {n:,} profiles; graded "
          f"{c.get('customers graded', 0):,} customers (AUC {c.get('auc', float('nan')):.4f}), "
          f"{len(res.offers)} offer rows; previous run {res.previous_run_id}")  # fmt: skip
    if prof:
        pstats.Stats(prof).sort_stats("cumulative").print_stats(args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
