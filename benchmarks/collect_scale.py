"""Seconds and peak memory of the collection stage, and the speed of each normalizer.

    .venv/bin/python benchmarks/collect_scale.py --people 50000 [--files] [--values 1000000]

Prints: generation, staging+write from memory (the synthetic path), optionally the same world
written as CSV files and collected from the folder, and per-normalizer throughput on
``--values`` values drawn from the world's own columns (realistic repetition) and on as many
distinct values.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from cemlib.collect import collect
from cemlib.normalize import (
    email_key,
    email_norm,
    normalize_phone,
    parse_amounts,
    parse_dates,
    split_full_name,
    translit_key,
)
from cemlib.synth import generate


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def timed(label: str, func, *args, **kwargs):
    t = time.perf_counter()
    out = func(*args, **kwargs)
    print(
        f"{label:<48} {time.perf_counter() - t:8.2f} s   peak RSS {peak_gib():5.2f} GiB", flush=True
    )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--people", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--values", type=int, default=1_000_000, help="values per normalizer benchmark")
    ap.add_argument(
        "--files", action="store_true", help="also write CSV files and collect from them"
    )
    args = ap.parse_args(argv)

    print(f"collection benchmark: {args.people:,} people, seed {args.seed}")
    world = timed(
        "generate world", generate, n_people=args.people, seed=args.seed, as_of="2025-06-30"
    )
    rows = sum(len(f) for f in world.sources.values())
    print(f"  {rows:,} source rows")
    with tempfile.TemporaryDirectory() as tmp:
        wh = Path(tmp) / "cem.duckdb"
        result = timed(
            "collect synthetic (stage + write raw/staging/truth)",
            collect,
            "synthetic",
            warehouse=wh,
            world=world,
            progress=False,
        )
        print(
            f"  {result.tables['n_raw'].sum():,} rows loaded, {result.n_unparsed:,} values unparsed"
        )
        if args.files:
            folder = Path(tmp) / "export"
            timed("write world as CSV files", world.write, folder, format="csv")
            timed("collect from the CSV folder", collect, folder, warehouse=wh, progress=False)

    rng = np.random.default_rng(0)
    crm, orders = world.sources["crm_contacts"], world.sources["online_orders"]
    phones = pd.concat([crm["phone"], orders["phone"]]).dropna()
    emails = pd.concat([crm["email"], orders["email"]]).dropna()
    names = crm["full_name"].dropna()
    dates = world.sources["web_events"]["ts"].dropna()
    amounts = world.sources["order_lines"]["price"].astype(str).str.replace(".", ",", regex=False)
    n = args.values
    print(f"normalizers on {n:,} values (sampled from the world, repeats as in real data)")
    for label, func, pool in (
        ("normalize_phone", normalize_phone, phones),
        ("email_norm", email_norm, emails),
        ("email_key", email_key, emails),
        ("split_full_name", split_full_name, names),
        ("translit_key (full names)", translit_key, names),
        ("parse_dates", parse_dates, dates),
        ("parse_amounts (decimal comma)", parse_amounts, amounts),
    ):
        sample = pd.Series(pool.to_numpy()[rng.integers(0, len(pool), n)])
        timed(f"  {label} ({sample.nunique():,} distinct)", func, sample)
    distinct = pd.Series(
        [
            f"+7 ({x // 10**7}) {x // 10**4 % 1000}-{x % 10**4:04d}"
            for x in rng.integers(9 * 10**9, 10**10, n)
        ]
    )
    timed(f"  normalize_phone ({distinct.nunique():,} distinct)", normalize_phone, distinct)
    return 0


if __name__ == "__main__":
    sys.exit(main())
