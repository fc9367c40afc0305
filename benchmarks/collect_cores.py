"""Stage 00 (generate the synthetic world, collect it) with 1, 2, ... staging workers: CPU
seconds, wall seconds, peak memory, and a hash of every table it writes.

    .venv/bin/python benchmarks/collect_cores.py --people 200000 --workers 1 2
    .venv/bin/python benchmarks/collect_cores.py --people 20000 --workers 1 2 --hash \
        --hash-out /tmp/x/new.json     # identity: every table the same for every setting

Each setting runs ``cemlib.collect.run`` as notebook 00 calls it, in its own child process
with ``CEM_WORKERS`` set (so it also runs on code before the staging workers, which ignores
it). Printed per setting: the load average before it, wall seconds, CPU seconds of the stage's
process and of its workers (``RUSAGE_CHILDREN``: the pool is joined before the child exits),
the peak resident memory of the stage's process and of the largest worker. ``--hash`` adds an
MD5 of each table of ``raw``, ``staging`` and ``truth`` (columns, types, rows in order) and
says whether every setting wrote the same tables; ``--hash-out`` keeps them as JSON, to compare
runs of two checkouts (``--compare a.json b.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def table_hashes(db: str) -> dict[str, str]:
    """MD5 per table of ``raw``, ``staging`` and ``truth``: its columns and types, then every
    row as text in stored order."""
    import duckdb

    con = duckdb.connect(db, read_only=True)
    out = {}
    try:
        tables = con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() "
            "WHERE schema_name IN ('raw', 'staging', 'truth') ORDER BY ALL"
        ).fetchall()
        for schema, name in tables:
            cols = con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
                [schema, name],
            ).fetchall()
            sel = ", ".join(f'"{c}"' for c, _ in cols)
            rows, digest = con.execute(
                f"SELECT count(*), md5(coalesce(string_agg(md5(CAST(ROW({sel}) AS VARCHAR)), "
                f"'' ORDER BY rowid), '')) FROM {schema}.\"{name}\""
            ).fetchone()
            out[f"{schema}.{name}"] = f"{rows} rows {digest} {cols}"
    finally:
        con.close()
    return out


def _child(people: int, seed: int, want_hash: bool) -> dict:
    import resource
    import time

    import cemlib.collect

    with tempfile.TemporaryDirectory(prefix="collect_cores_") as tmp:
        db = str(Path(tmp) / "cem.duckdb")
        c0, w0 = time.process_time(), time.perf_counter()
        cemlib.collect.run(db, run_id="bench", as_of="2025-06-30", seed=seed,
                           source="synthetic", n_people=people, progress=False)  # fmt: skip
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        me = resource.getrusage(resource.RUSAGE_SELF)
        out = {
            "wall_s": round(wall, 1),
            "cpu_s": round(cpu, 1),
            "workers_cpu_s": round(kids.ru_utime + kids.ru_stime, 1),
            "peak_gib": round(me.ru_maxrss / 2**20, 2),
            "worker_peak_gib": round(kids.ru_maxrss / 2**20, 2),
        }
        if want_hash:
            out["hashes"] = table_hashes(db)
    return out


def _compare(a_path: str, b_path: str) -> int:
    a, b = (json.loads(Path(p).read_text()) for p in (a_path, b_path))
    differ = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    for k in differ:
        print(f"differs: {k}")
    print(f"{len(set(a) | set(b))} tables compared, {len(differ)} differ")
    return 1 if differ else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--people", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--hash", action="store_true", help="hash every table written")
    ap.add_argument("--hash-out", help="JSON file for the hashes of the last setting")
    ap.add_argument("--compare", nargs=2, metavar="JSON", help="compare two --hash-out files")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.compare:
        return _compare(*args.compare)
    if args.child:
        print(json.dumps(_child(args.people, args.seed, args.hash)))
        return 0
    print(f"stage 00 at {args.people:,} people, seed {args.seed}")
    print(f"{'workers':>7} {'load':>5} {'wall s':>7} {'CPU s':>6} {'workers CPU s':>13} "
          f"{'total CPU s':>11} {'peak GiB':>8} {'worker peak GiB':>15}")  # fmt: skip
    hashes = []
    for n in args.workers:
        cmd = [sys.executable, __file__, "--child", "--people", str(args.people),
               "--seed", str(args.seed)] + (["--hash"] if args.hash else [])  # fmt: skip
        load = os.getloadavg()[0]
        env = {**os.environ, "CEM_WORKERS": str(n), "TQDM_DISABLE": "1"}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            return proc.returncode
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        total = r["cpu_s"] + r["workers_cpu_s"]
        print(f"{n:>7} {load:>5.1f} {r['wall_s']:>7} {r['cpu_s']:>6} {r['workers_cpu_s']:>13} "
              f"{total:>11.1f} {r['peak_gib']:>8} {r['worker_peak_gib']:>15}", flush=True)  # fmt: skip
        if args.hash:
            hashes.append(r["hashes"])
    if hashes:
        same = all(h == hashes[0] for h in hashes)
        print(f"{len(hashes[0])} tables of raw, staging and truth hashed: "
              + ("the same for every setting" if same else "DIFFERENT between settings"))  # fmt: skip
        if args.hash_out:
            Path(args.hash_out).write_text(json.dumps(hashes[-1], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
