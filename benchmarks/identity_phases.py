"""Where an incremental identity run spends its time, phase by phase, against a full run.

Builds (unless ``--base`` names one) a warehouse as a monthly schedule leaves it: ``cem run``
of stages 00-02 as of ``--first``, then 00-01 as of ``--second``. On copies of it, runs the 02
stage's function (``cemlib.identity.run``, what the notebook's run cell calls) with
``identity_mode`` auto (incremental) and full, and prints each phase's wall and CPU seconds
(``time.process_time``: the process's threads, DuckDB's included; fairer than wall on a
shared machine), the records resolved, and how far the two runs' profiles are apart.

    .venv/bin/python benchmarks/identity_phases.py --people 200000 --keep /tmp/phases
    .venv/bin/python benchmarks/identity_phases.py --base /tmp/phases/base.duckdb
    .venv/bin/python benchmarks/identity_phases.py --base /tmp/phases/base.duckdb \
        --keep /tmp/phases2 --full /tmp/phases/full.duckdb   # the incremental run only
    .venv/bin/python benchmarks/identity_phases.py --base /tmp/phases/base.duckdb \
        --touched-parts   # which part of the touched set pulls how many records
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from identity_continuity import agreement, cem_run, read_map

import cemlib.identity
from cemlib.identity import HubGuard
from cemlib.warehouse import Warehouse


def build(root: Path, people: int, seed: int, first: str, second: str) -> Path:
    """The warehouse after month one's 00-02 and month two's 00-01 (``cem run``)."""
    wh, out = root / "cem.duckdb", root / "reports"
    base = {"n_people": people, "seed": seed, "warehouse": str(wh)}
    for stages, run_id, as_of in (("00,01", "m1-in", first), ("02", "m1", first),
                                  ("00,01", "m2-in", second)):  # fmt: skip
        secs = cem_run(stages, run_id, {**base, "as_of": as_of}, out)
        print(f"cem run --stages {stages} as_of {as_of}: {secs:.0f} s", flush=True)
    shutil.copyfile(wh, root / "base.duckdb")
    return root / "base.duckdb"


def stage(base: Path, work: Path, mode: str, as_of: str, seed: int) -> dict:
    """The 02 stage on a copy of ``base`` in ``mode``, as the notebook's defaults run it."""
    shutil.copyfile(base, work)
    guard = HubGuard(max_names=1, max_birth_dates=1, hub_names=3, hub_birth_dates=3,
                     hub_records=500)  # fmt: skip
    wall, cpu = time.perf_counter(), time.process_time()
    with Warehouse(work) as wh:
        res = cemlib.identity.run(wh, run_id=f"m2-{mode}", as_of=as_of, seed=seed, guard=guard,
                                  match_threshold=None, identity_mode=mode, keep_records=False,
                                  household_signals=("refused_link", "shared_identifier"))  # fmt: skip
    out = dict(res.detail.figures["identity_mode"])
    out["call"] = [round(time.perf_counter() - wall, 2), round(time.process_time() - cpu, 2)]
    return out


def touched_parts(base: Path, work: Path, as_of: str) -> None:
    """Print which part of the touched set (:func:`cemlib.identity.touched.touched_records`)
    pulls how many earlier records and profiles: the records sharing an identifier (or a
    name key) with a new record, with their whole profiles, and one identifier further (what
    a run resolves), on a copy of ``base``."""
    import pandas as pd

    from cemlib.identity.incremental_direct import direct_candidates
    from cemlib.identity.sources import read_sources, source_records
    from cemlib.identity.store import changed_records, read_model
    from cemlib.identity.touched import NAME_KEYS, touched_and_gone, touched_records

    shutil.copyfile(base, work)
    with Warehouse(work) as wh:
        tables = {k: v for k, v in read_sources(wh, new_only=True, changed=changed_records(wh))
                  .items() if len(v)}  # fmt: skip
        new = source_records(tables, consume=True)
        cut = pd.Timestamp(as_of) + pd.Timedelta(days=1)
        new = new[~(new["updated_at"] >= cut).fillna(False).to_numpy(dtype=bool)]
        con = wh.con
        total = con.execute(
            "SELECT count(*), count(DISTINCT profile_id) FROM identity.map"
        ).fetchall()[0]
        print(f"\ntouched parts: {len(new):,} new records up to as_of; the last run's map holds "
              f"{total[0]:,} records, {total[1]:,} profiles")  # fmt: skip
        fingerprint, threshold = con.execute(
            "SELECT fingerprint, threshold FROM identity.state"
        ).fetchall()[0]
        saved = read_model(wh, fingerprint)
        con.execute("SELECT 1").fetchall()  # read_model leaves a fetchone's result open
        model = (saved, float(threshold)) if saved is not None and threshold else None
        none = new.iloc[:0][["source", "record_id"]]
        for label, names, whole, hops in (
            ("sharing an identifier", (), False, 1),
            ("sharing an identifier or a name key", NAME_KEYS, False, 1),
            ("  + their whole profiles, identifiers only", (), True, 1),
            ("  + their whole profiles", NAME_KEYS, True, 1),
            ("  + one identifier further, identifiers only", (), True, 2),
            ("  + one identifier further (the 7th attempt's set)", NAME_KEYS, True, 2),
            ("what a run resolves (touched_and_gone)", None, True, 0),
        ):
            cpu = time.process_time()
            if names is None:  # the run's own set (touched_and_gone), records joining
                # a kept profile directly left out as the run leaves them (incremental_direct)
                fresh = new.reset_index(drop=True)
                direct = direct_candidates(wh, fresh, hub_records=500) if model else None
                keys = touched_and_gone(wh, fresh, none, model=model, direct=direct)[0]
            else:
                keys = touched_records(wh, new.reset_index(drop=True), hops, name_keys=names,
                                       whole_profiles=whole, unattached_hop=False)  # fmt: skip
            cpu = time.process_time() - cpu
            con.register("_parts", keys)
            n_prof = con.execute(
                "SELECT count(DISTINCT m.profile_id) FROM identity.map m SEMI JOIN _parts k "
                "ON m.source_table = k.source AND m.record_id = k.record_id"
            ).fetchall()[0][0]
            con.unregister("_parts")
            print(f"  {label:50s} {len(keys):>10,} records ({len(keys) / total[0]:.1%}) "
                  f"{n_prof:>8,} profiles  {cpu:6.2f} CPU s")  # fmt: skip
    work.unlink(missing_ok=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--first", default="2025-05-31")
    ap.add_argument("--second", default="2025-06-30")
    ap.add_argument("--base", help="a warehouse built by an earlier run of this script")
    ap.add_argument("--keep", help="folder for the warehouses (default: a temporary one)")
    ap.add_argument(
        "--full",
        help="the warehouse of an earlier full run on the same --base "
        "(its figures are not printed; the agreement is measured against it)",
    )
    ap.add_argument(
        "--touched-parts",
        action="store_true",
        help="only print which part of the touched set pulls how many records (no stage run)",
    )
    args = ap.parse_args()
    root = Path(args.keep or tempfile.mkdtemp(prefix="cem-phases-"))
    root.mkdir(parents=True, exist_ok=True)
    base = Path(args.base) if args.base else build(root, args.people, args.seed, args.first,
                                                   args.second)  # fmt: skip
    if args.touched_parts:
        return touched_parts(base, root / "parts.duckdb", args.second)
    modes = ("auto",) if args.full else ("auto", "full")
    runs = {m: stage(base, root / f"{m}.duckdb", m, args.second, args.seed) for m in modes}
    for mode, fig in runs.items():
        print(f"\n{mode}: {fig['used']}, stage {fig['stage_seconds']} s wall, "
              f"{fig['stage_cpu_seconds']} s CPU; records resolved {fig.get('records_resolved', 'all')}")  # fmt: skip
        for phase, (wall, cpu) in fig.get("phases", {}).items():
            print(f"  {phase:28s} {wall:8.2f} s wall {cpu:8.2f} s CPU")
        if "model" in fig:  # incremental: the last full run's saved model, or trained again
            print(f"  model: {fig['model']}")
        for k in ("records_joined_directly", "profiles_joined_directly", "not_joined_directly"):
            if k in fig:
                print(f"  {k}: {fig[k]}")
    inc = runs["auto"]
    if "full" in runs:
        full = runs["full"]
        print(f"\nincremental / full: CPU {inc['stage_cpu_seconds'] / full['stage_cpu_seconds']:.3f}, "
              f"wall {inc['stage_seconds'] / full['stage_seconds']:.3f}")  # fmt: skip
    full_wh = Path(args.full) if args.full else root / "full.duckdb"
    agree = agreement(read_map(root / "auto.duckdb"), read_map(full_wh))
    print("incremental vs full:", json.dumps(agree))


if __name__ == "__main__":
    main()
