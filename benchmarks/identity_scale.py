"""Seconds and peak memory of the identity stage on the synthetic world's source records.

    .venv/bin/python benchmarks/identity_scale.py --people 100000

The world is generated first and its source tables written to Parquet in a temporary
directory; the stage then runs in a fresh process (as ``cem run`` would, reading its tables),
so the peak resident memory printed is the stage's own, not the generator's. It runs what the
stage runs except the warehouse write (record preparation, resolution, record map, golden
records, link table) and prints the seconds of each step; the target at 1,000,000 people is
under 5 minutes and 12 GiB for the whole stage.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd


def peak_gib() -> float:
    """Peak resident memory of this process. On Linux from ``VmHWM``: ``ru_maxrss`` of a
    child started by ``subprocess`` carries the parent's peak across ``execve``."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def run_stage(folder: Path, seed: int, people: int) -> None:
    """The stage in this process: read the tables, then everything ``run_stage`` does but the
    warehouse write (prepare, resolve, record map, golden records, link table)."""
    from cemlib.identity.stage import resolve_sources

    t0 = time.perf_counter()
    # string columns as the generator holds them (Arrow-backed), not as Python objects
    with pd.option_context("mode.string_storage", "pyarrow"):
        tables = {p.stem: pd.read_parquet(p) for p in sorted(folder.glob("*.parquet"))}
    t_read = time.perf_counter() - t0
    n_rows = sum(map(len, tables.values()))
    print(f"read {n_rows:,} source rows in {t_read:.1f}s; peak {peak_gib():.2f} GiB", flush=True)
    t1 = time.perf_counter()
    result = resolve_sources(tables, seed=seed, consume=True)
    total = time.perf_counter() - t1
    f = result.figures
    steps = ", ".join(f"{k} {v:.1f}s" for k, v in f["seconds"].items())
    print(
        f"-> {f['records']:,} records, {len(result.resolver.nodes_):,} distinct identity "
        f"signatures, {f['profiles']:,} profiles, {f['links']:,} links"
    )
    print(f"steps: {steps}")
    print(
        f"stage total (prepare, resolve, map, golden records, links): {total:.1f}s; "
        f"peak resident memory of the stage process {peak_gib():.2f} GiB"
    )
    print(
        f"linear extrapolation to 1,000,000 people: {total * 1e6 / people / 60:.1f} min, "
        f"~{peak_gib() * 1e6 / people:.1f} GiB (an upper bound: fixed costs scale too; "
        "compare two sizes for the slope)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=50000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--stage-dir", type=Path, help=argparse.SUPPRESS)  # the child process
    args = ap.parse_args()
    if args.stage_dir is not None:
        run_stage(args.stage_dir, args.seed, args.people)
        return
    from cemlib.identity.stage import SOURCE_ROLES
    from cemlib.synth import generate

    t0 = time.perf_counter()
    world = generate(args.people, seed=args.seed, defects=False)
    t_gen = time.perf_counter() - t0
    print(
        f"generated {args.people:,} people in {t_gen:.1f}s; generator peak {peak_gib():.2f} GiB",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="cem_identity_scale_") as tmp:
        for name in SOURCE_ROLES:
            if name in world.sources:
                world.sources[name].to_parquet(Path(tmp) / f"{name}.parquet", index=False)
        del world
        cmd = [
            sys.executable,
            __file__,
            "--people",
            str(args.people),
            "--seed",
            str(args.seed),
            "--stage-dir",
            tmp,
        ]
        subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()
