"""Seconds and peak memory to generate the synthetic world and load it into DuckDB.

    .venv/bin/python benchmarks/synth_scale.py --people 20000 100000
    .venv/bin/python benchmarks/synth_scale.py --people 1000000 --no-load

Each size runs in its own child process, so the peak resident memory (``ru_maxrss``) is that
run's own. Stages: ``generate`` (``cemlib.synth.generate``), ``write`` (CSV files, optional with
``--write``) and ``load`` into a fresh DuckDB file: with ``--loader collect`` (default) through
``cemlib.collect.collect`` (raw + typed, normalized staging + truth), with ``--loader raw`` (or
when the collection stage is not installed) the frames as generated through
``Warehouse.write_tables`` into ``raw`` and ``truth``; the output names the loader used.
Targets (issue #2): 20,000 people in under 30 s; 1,000,000 in under 10 minutes and 8 GiB on 2
cores. Run sizes up to 100,000 on a shared machine and read the extrapolation it prints.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux: KiB


def _one(n: int, seed: int, load: bool, write: bool, loader: str = "collect") -> dict:
    from cemlib.synth import generate

    out: dict = {"people": n}
    t = time.perf_counter()
    world = generate(n_people=n, seed=seed)
    out["generate_s"] = round(time.perf_counter() - t, 1)
    out["generate_peak_gib"] = round(_peak_gib(), 2)
    out["rows"] = {k: len(v) for k, v in world.sources.items()}
    out["frames_gib"] = round(
        sum(df.memory_usage(deep=True).sum() for df in world.sources.values()) / 1024**3, 2
    )
    with tempfile.TemporaryDirectory(prefix="synth_scale_") as tmp:
        if write:
            t = time.perf_counter()
            world.write(Path(tmp) / "files")
            out["write_s"] = round(time.perf_counter() - t, 1)
            out["csv_mib"] = round(
                sum(p.stat().st_size for p in (Path(tmp) / "files").rglob("*.csv")) / 1024**2
            )
        if load:
            db = Path(tmp) / "bench.duckdb"
            collect = None
            if loader == "collect":
                try:
                    from cemlib.collect import collect
                except ImportError:  # the collection stage is not installed: write the frames
                    collect = None
            t = time.perf_counter()
            if collect is not None:
                # collect takes the world's frames over and frees each once written, as
                # `cem collect` does with the world it generates itself
                collect(
                    "synthetic",
                    warehouse=db,
                    world=world,
                    seed=seed,
                    progress=False,
                    release_world=True,
                )
                out["loader"] = "cemlib.collect.collect (raw + staging + truth)"
            else:
                from cemlib.warehouse import Warehouse

                with Warehouse(db) as wh:
                    wh.write_tables("raw", world.sources, run_id="bench", as_of=world.as_of.date())
                    wh.write_tables("truth", world.truth, run_id="bench", as_of=world.as_of.date())
                out["loader"] = "Warehouse.write_tables: raw (sources as generated) + truth"
            out["load_s"] = round(time.perf_counter() - t, 1)
            out["db_mib"] = round(db.stat().st_size / 1024**2)
    out["peak_gib"] = round(_peak_gib(), 2)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--people", type=int, nargs="+", default=[20_000, 100_000])
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--no-load", action="store_true", help="skip the DuckDB load")
    ap.add_argument("--write", action="store_true", help="also write the CSV files and time it")
    ap.add_argument(
        "--loader",
        choices=("collect", "raw"),
        default="collect",
        help="collect = the collection stage (raw + staging + truth); raw = frames written as is",
    )
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(
            json.dumps(_one(args.people[0], args.seed, not args.no_load, args.write, args.loader))
        )
        return 0
    print(
        f"{'people':>10} {'generate s':>10} {'gen peak GiB':>12} {'write s':>8} {'CSV MiB':>8} "
        f"{'load s':>8} {'DB MiB':>7} {'peak GiB':>9}  loader"
    )
    results = []
    for n in args.people:
        cmd = [sys.executable, __file__, "--child", "--people", str(n), "--seed", str(args.seed)]
        cmd += ["--no-load"] if args.no_load else []
        cmd += ["--write"] if args.write else []
        cmd += ["--loader", args.loader]
        proc = subprocess.run(
            cmd, capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"}
        )
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            return proc.returncode
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        results.append(r)
        print(
            f"{r['people']:>10,} {r['generate_s']:>10} {r['generate_peak_gib']:>12} "
            f"{r.get('write_s', '-'):>8} {r.get('csv_mib', '-'):>8} {r.get('load_s', '-'):>8} "
            f"{r.get('db_mib', '-'):>7} {r['peak_gib']:>9}  {r.get('loader', '-')}"
        )
    for r in results:
        print(
            f"rows at {r['people']:,} people: "
            + ", ".join(f"{k} {v:,}" for k, v in r["rows"].items())
        )
    if len(results) >= 2:
        # extrapolate along the slope between the two largest sizes (fixed costs drop out)
        a, b = results[-2], results[-1]
        span = b["people"] - a["people"]
        ahead = 1_000_000 - b["people"]

        def ext(key: str) -> float:
            return b[key] + ahead * (b[key] - a[key]) / span

        line = (
            f"extrapolated to 1,000,000 people (time in proportion to {b['people']:,}, memory "
            f"along the slope {a['people']:,} -> {b['people']:,}): generate "
            f"~{b['generate_s'] * 1_000_000 / b['people']:.0f} s, "
            f"generate peak ~{ext('generate_peak_gib'):.1f} GiB"
        )
        if "load_s" in a and "load_s" in b:
            line += (
                f", load ~{b['load_s'] * 1_000_000 / b['people']:.0f} s, "
                f"peak with load ~{ext('peak_gib'):.1f} GiB"
            )
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
