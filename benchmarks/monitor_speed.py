"""The monitor stage's cost, measured in-process on the warehouses of two monthly runs.

    .venv/bin/python benchmarks/monitor_speed.py \\
        --case RUN1.duckdb RUN2.duckdb 2025-06-30 RUN2 [--case ... for another size] [--profile 25]

``RUN1.duckdb`` is a warehouse copied after a run (what it kept in ``monitor.*`` for the next
run), ``RUN2.duckdb`` the same warehouse after the next run (``benchmarks/monitor_runs.py``
leaves them as ``monthN-<as_of>.duckdb``). A temporary copy of ``RUN2`` gets ``RUN1``'s
``monitor.*`` back — the state in which the next run's stage 05 starts — and
``cemlib.monitor.run_stage`` runs on it: printed are the wall and CPU seconds (CPU: this
process, DuckDB's threads included), the people graded and, with ``--profile N``, the N
functions of most cumulative time (cProfile). Importing ``cemlib.monitor`` is timed apart.
With two sizes or more, the seconds per 1,000 profiles through the two largest and the line
carried to a million profiles (an extrapolation, printed as such).
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

import pandas as pd


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


def measure(before: Path, after: Path, as_of: str, run_id: str, profile: int = 0) -> dict:
    """``run_stage`` on the rewound copy: wall and CPU seconds, profiles, customers graded."""
    from cemlib.monitor import run_stage
    from cemlib.warehouse import Warehouse

    with tempfile.TemporaryDirectory(dir=after.parent) as tmp:
        path = rewound(before, after, Path(tmp))
        with Warehouse(path) as wh:
            n = wh.con.execute("SELECT count(DISTINCT profile_id) FROM identity.map").fetchone()[0]
            prof = cProfile.Profile() if profile else None
            t0, c0 = time.perf_counter(), time.process_time()
            if prof:
                prof.enable()
            res = run_stage(wh, as_of, run_id=run_id, write=True)
            if prof:
                prof.disable()
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if prof:
        pstats.Stats(prof).sort_stats("cumulative").print_stats(profile)
    c = res.churn
    return {"warehouse": after.name, "profiles": n, "customers graded": c.get("customers graded"),
            "graded auc": c.get("auc"), "offer rows": len(res.offers),
            "wall s": wall, "cpu s": cpu}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--case", nargs=4, action="append", required=True,
                    metavar=("BEFORE", "AFTER", "AS_OF", "RUN_ID"),
                    help="two warehouses of consecutive runs, the later run's as_of and id; "
                         "repeat for several sizes")  # fmt: skip
    ap.add_argument("--profile", type=int, default=0, help="print the N costliest functions")
    args = ap.parse_args()
    t0, c0 = time.perf_counter(), time.process_time()
    import cemlib.monitor  # noqa: F401

    print(f"import cemlib.monitor: {time.perf_counter() - t0:.1f} s wall, "
          f"{time.process_time() - c0:.1f} s CPU")  # fmt: skip
    rows = [measure(Path(b), Path(a), d, r, args.profile) for b, a, d, r in args.case]
    table = pd.DataFrame(rows)
    with pd.option_context("display.float_format", "{:.2f}".format, "display.width", 200):
        print(table.to_string(index=False))
    sizes = table.sort_values("profiles").drop_duplicates("profiles", keep="last")
    if len(sizes) >= 2:  # a line through the two largest sizes, carried to a million profiles
        a, b = sizes.iloc[-2:].to_dict("records")
        if b["profiles"] < 2 * a["profiles"]:
            print("sizes within a factor 2 of each other: no slope drawn")
            return 0
        for col in ("cpu s", "wall s"):
            slope = (b[col] - a[col]) / (b["profiles"] - a["profiles"])
            print(
                f"{col} per 1,000 profiles: {1000 * slope:.3f}; EXTRAPOLATED (not measured) "
                f"to 1,000,000 profiles: {b[col] + slope * (1_000_000 - b['profiles']):.0f} s"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
