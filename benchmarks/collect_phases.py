"""Where stage 00's CPU goes: generation, staging, writing (raw, staging, truth), per phase.

    .venv/bin/python benchmarks/collect_phases.py --people 200000 --out /tmp/x/cem.duckdb

Runs ``cemlib.collect.run`` as notebook 00 calls it (one process, no staging workers), with the
stage's phases wrapped: ``time.process_time`` (this process's CPU, DuckDB's threads included)
and wall seconds around the world's generation (``_synthetic``), the staging of each chunk
(``stage_chunk``: typing, phones, e-mails, names, dates) and each write (``write_chunk``, per
schema). Prints the phases by CPU, the whole stage, the peak (``ru_maxrss``) and the load
average. To compare two checkouts, run it with each on ``PYTHONPATH``, alternating, at one
load: the CPU seconds inflate with the load.
"""

from __future__ import annotations

import argparse
import collections
import os
import resource
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=50_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", required=True, help="warehouse file to write (replaced)")
    args = ap.parse_args(argv)

    import cemlib.collect
    import cemlib.collect.stage as stage_module
    import cemlib.collect.workers as workers_module

    acc: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0, 0])

    def wrap(module, name, key=None):
        func = getattr(module, name)

        def timed(*a, **k):
            c, w = time.process_time(), time.perf_counter()
            try:
                return func(*a, **k)
            finally:
                entry = acc[key(a) if key else name]
                entry[0] += time.process_time() - c
                entry[1] += time.perf_counter() - w
                entry[2] += 1

        setattr(module, name, timed)

    wrap(stage_module, "_synthetic", lambda a: "generate the world")
    wrap(workers_module, "stage_chunk", lambda a: "stage chunks")
    wrap(stage_module, "write_chunk", lambda a: f"write {a[1]}")
    out = Path(args.out)
    out.unlink(missing_ok=True)
    load = os.getloadavg()
    c0, t0 = time.process_time(), time.perf_counter()
    cemlib.collect.run(out, run_id="phases", as_of="2025-06-30", seed=args.seed,
                       n_people=args.people, progress=False)  # fmt: skip
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    print(f"stage 00 at {args.people:,} people: {cpu:.1f} CPU s, {wall:.1f} s wall, peak "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB, load "
          f"{load[0]:.1f} -> {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"{'phase':<20} {'CPU s':>7} {'share':>6} {'wall s':>7} {'calls':>6}")
    for name, (c, w, n) in sorted(acc.items(), key=lambda kv: -kv[1][0]):
        print(f"{name:<20} {c:7.1f} {c / cpu:6.1%} {w:7.1f} {n:6d}")
    rest = cpu - sum(v[0] for v in acc.values())
    print(f"{'the rest':<20} {rest:7.1f} {rest / cpu:6.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
