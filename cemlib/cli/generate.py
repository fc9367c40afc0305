"""``cem generate``: write the synthetic world's source tables and ground truth as files."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from cemlib import DEFAULT_AS_OF, DEFAULT_PEOPLE, DEFAULT_SEED, DEFAULT_WORLD_END

#: the generator's parameters -> the options of ``cem generate`` that set them
OPTIONS = {"n_people": "--people", "start": "--start", "horizon_days": "--horizon-days",
           "joined_by": "--joined-by", "world_end": "--world-end", "as_of": "--as-of"}  # fmt: skip


def register(subparsers) -> None:
    """Add ``cem generate`` to the subcommands."""
    p = subparsers.add_parser(
        "generate",
        help="write the seeded synthetic customer world (source tables + truth) as files",
        description=(
            "Generate the synthetic Russian-market customer world and write one file per "
            "canonical source table into OUT and the ground truth into OUT/truth/."
        ),
    )
    p.add_argument(
        "--people", type=int, default=DEFAULT_PEOPLE, help="number of people (default %(default)s)"
    )
    p.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help="random seed (default %(default)s)"
    )
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument(
        "--format", choices=("csv", "parquet"), default="csv", help="file format (default csv)"
    )
    p.add_argument(
        "--as-of",
        default=DEFAULT_AS_OF,
        help="last day of history, inclusive (default %(default)s)",
    )
    p.add_argument(
        "--start", default="2022-01-01", help="first day of history (default %(default)s)"
    )
    p.add_argument(
        "--horizon-days",
        type=int,
        default=365,
        help="days of future truth after as_of (default 365)",
    )
    p.add_argument(
        "--joined-by", default=DEFAULT_AS_OF, help="the people join by this day (YYYY-MM-DD)"
    )
    p.add_argument(
        "--world-end",
        default=DEFAULT_WORLD_END,
        help="the world is generated to this day and cut at as_of; a later as_of extends the "
        "same world (default %(default)s)",
    )
    p.add_argument("--no-defects", action="store_true", help="do not inject quality defects")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """``cem generate``: write the synthetic world's source files and truth into ``--out``."""
    from cemlib.cli.checks import as_of_date, output_dir
    from cemlib.errors import InputError
    from cemlib.synth import generate

    output_dir(args.out)  # a file, under a file, or where nothing can be written: before the work
    args.as_of = as_of_date(args.as_of)
    t0 = time.perf_counter()
    try:
        world = generate(
            n_people=args.people,
            seed=args.seed,
            as_of=args.as_of,
            start=args.start,
            horizon_days=args.horizon_days,
            defects=not args.no_defects,
            joined_by=args.joined_by,
            world_end=args.world_end,
        )
    except InputError as exc:  # the generator names its parameter; the user typed an option
        if exc.source != "generate" or exc.column not in OPTIONS:
            raise
        text = str(exc).split(": ", 1)[-1]
        raise InputError(f"{OPTIONS[exc.column]}: {text}") from None
    t1 = time.perf_counter()
    written = world.write(args.out, format=args.format)
    t2 = time.perf_counter()
    sizes = {
        **{k: len(v) for k, v in world.sources.items()},
        **{f"truth/{k}": len(v) for k, v in world.truth.items()},
    }
    width = max(len(str(p)) for p in written.values())
    print(f"synthetic world: {args.people:,} people, seed {args.seed}, as_of {world.as_of.date()}")
    for name, path in written.items():
        print(f"  {str(path):<{width}}  {sizes[name]:>12,} rows")
    print(f"generated in {t1 - t0:.1f} s, written in {t2 - t1:.1f} s")
    return 0
