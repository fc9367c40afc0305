"""Seconds and peak memory of the identity stage on the synthetic world's source records.

    .venv/bin/python benchmarks/identity_scale.py --people 100000

Prints the time of each step (record preparation, rules, Splink, clustering) and the process's
peak resident memory before and after resolution; the target at 1,000,000 people is under 5
minutes and 12 GiB for the whole stage.
"""

from __future__ import annotations

import argparse
import resource
import time

from cemlib.identity.resolve import IdentityResolver
from cemlib.identity.stage import source_records
from cemlib.synth import generate


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=50000)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    t0 = time.perf_counter()
    world = generate(args.people, seed=args.seed, defects=False)
    t_gen = time.perf_counter() - t0
    print(
        f"generated {args.people:,} people in {t_gen:.1f}s; peak {peak_gib():.2f} GiB", flush=True
    )
    t1 = time.perf_counter()
    records = source_records(world.sources)
    t_prep = time.perf_counter() - t1
    del world
    print(f"prepared {len(records):,} records in {t_prep:.1f}s", flush=True)
    t2 = time.perf_counter()
    res = IdentityResolver(seed=args.seed).fit(records)
    t_res = time.perf_counter() - t2
    m = res.record_map()
    total = t_prep + t_res
    print(
        f"resolved {len(res.nodes_):,} distinct identity signatures in {t_res:.1f}s -> "
        f"{m['profile_id'].nunique():,} profiles, {len(res.links_):,} links"
    )
    print(
        f"stage total (prepare + resolve): {total:.1f}s; peak resident memory {peak_gib():.2f} GiB"
    )
    print(
        f"linear extrapolation to 1,000,000 people: {total * 1e6 / args.people / 60:.1f} min; "
        f"peak memory ~{peak_gib() * 1e6 / args.people:.1f} GiB if it grew linearly (an upper "
        "bound: the peak includes the generated world held in memory)"
    )


if __name__ == "__main__":
    main()
