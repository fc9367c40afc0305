"""The monitor stage at a million people, grading, measured the way ``cem run`` runs it.

    .venv/bin/python benchmarks/monitor_scale.py --people 1000000 --out /tmp/monitor_scale

1. **Two monthly runs at a small size** (``--base``, default 10,000 people): the synthetic
   world written once as files (history to 2025-06-30), then the real ``cem run`` with
   ``as_of`` 2025-05-31 and 2025-06-30 on one warehouse; the warehouse after the first run is
   kept (``run1.duckdb``: what it kept in ``monitor.*`` for the next run).
2. **Tiled to ``--people``** (k = people / base copies, DuckDB SQL): every table the monitor
   reads (``staging.*``, ``quarantine.*``, ``clean.*``, ``identity.map`` / ``registry`` /
   ``changes`` / ``prepared``, ``marts.churn_scores`` / ``next_offers``, ``meta.*``) is written
   k times into a new warehouse, each id made unique per tile (a suffix ``~<tile>`` on text ids,
   ``+ tile * stride`` on integer ids; tile 0 keeps the original ids): profile, record,
   contact, order, line, receipt, ticket, event, device and cookie ids, and the personal
   identifiers (phones, e-mails, cards), so that no tile's purchase or identifier meets
   another tile's. The product
   catalogue (``products``) is not tiled: a million customers buy from the same catalogue. The
   previous run's ``monitor.*`` (what ``run1`` kept) is tiled the same way — the forecasts per
   customer k times, the row counts of ``monitor.tables`` / ``reasons`` and the ``profiles``
   headline times k, the shares and column profile as they are — so that stage 05 starts in the
   state in which the second run's stage 05 started (:func:`monitor_speed.rewound`). Every
   tiled table's rows are checked to be exactly k times the original's (1 times for the
   catalogue and the run registry).
3. **Stage 05 at scale**: ``cem run --stages 05_monitor`` on the tiled warehouse with the
   second run's ``as_of`` and id (the runner copies the warehouse, runs the notebook
   through Papermill, renders the report, publishes), its kernel watched from outside
   (``pipeline_scale.Sampler``: VmHWM, CPU seconds from ``/proc``). Printed: the stage's wall
   seconds, kernel CPU seconds, kernel peak memory, report size, and the graded figures of
   ``monitor.json`` (customers graded, buyers, AUC, offers) beside the same figures of the
   small run, and the load average.

What a tiled warehouse keeps and what it does not: the row counts, the key and join
cardinalities (records per profile, lines per order, purchases per customer), the value
distributions (so the PSI is that of the small run) and every per-customer figure (AUC, hit
rate: the k copies of a customer have the same forecast and outcome, so the AUC is the small
run's); it does not have a million-person world's variety (k copies of 10,000 people, the same
catalogue). Steps already done in ``--out`` are not done again (``--retile`` redoes 2).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

MONTHS = ("2025-05-31", "2025-06-30")
RUNS = ("scale1-2025-05-31", "scale2-2025-06-30")


def build_runs(out: Path, base: int, seed: int) -> tuple[Path, Path]:
    """Two monthly ``cem run``s of a ``base``-person world on one warehouse: (the warehouse
    after the first run, after the second)."""
    from monitor_runs import _run

    from cemlib.synth import generate

    world, warehouse, reports = out / "world", out / "small.duckdb", out / "reports"
    first = out / "run1.duckdb"
    if not (world / "truth" / "record_person.csv").is_file():
        generate(n_people=base, seed=seed, as_of=MONTHS[-1]).write(world)
    cem = str(Path(sys.executable).with_name("cem"))
    for i, (as_of, run_id) in enumerate(zip(MONTHS, RUNS, strict=True)):
        done = reports / run_id / "run.json"
        if done.is_file() and json.loads(done.read_text(encoding="utf-8"))["status"] == "ok":
            print(f"{run_id}: done before, not run again", flush=True)
        else:
            t0 = time.perf_counter()
            proc = _run(cem, world, as_of, run_id, warehouse, seed, reports)
            if proc.returncode != 0:
                raise SystemExit(f"cem run {run_id} failed (exit {proc.returncode})")
            print(f"{run_id}: cem run {time.perf_counter() - t0:.0f} s wall", flush=True)
        if i == 0 and not first.is_file():
            shutil.copyfile(warehouse, first)
    return first, warehouse


#: schemas copied whole from the small warehouse (each table k times, but the catalogue)
TILED_SCHEMAS = ("staging", "quarantine", "clean")
#: single tables copied k times
TILED_TABLES = ("identity.map", "identity.registry", "identity.changes", "identity.prepared",
                "marts.churn_scores", "marts.next_offers")  # fmt: skip
#: tables of no person, copied once: the product catalogue, the run registry
ONCE = ("staging.products", "quarantine.products", "clean.products")
#: text columns that are not ids though their names say so (a catalogue, a store, a run)
NOT_IDS = frozenset({"sku", "item_id", "store_id", "run_id", "_run_id", "first_run_id",
                     "last_run_id"})  # fmt: skip
#: identifier columns (besides ``*_id``) made unique per tile: what joins a record to another
IDENTIFIERS = frozenset({"phone", "phone_2", "phone_e164", "email", "email_2", "email_norm",
                         "email_key", "loyalty_card", "national_id", "merged_into",
                         "split_from"})  # fmt: skip
#: counts of the previous run's ``monitor.*`` that grow k times with the people
SCALED_COUNTS = {"tables": ("rows", "rows_until_as_of", "quarantined", "rows_prev",
                            "rows_until_as_of_prev", "quarantined_prev"),
                 "reasons": ("n_rows",)}  # fmt: skip
SCALED_HEADLINES = ("profiles", "value at risk now", "became high-risk")


def is_id(column: str) -> bool:
    """Whether a column holds an id or identifier that must be unique per tile."""
    low = column.lower()
    return low not in NOT_IDS and (low.endswith("_id") or low in IDENTIFIERS)


def _columns(con, db: str, schema: str, table: str) -> list[tuple[str, str]]:
    return con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = ? "
        "AND schema_name = ? AND table_name = ? ORDER BY column_index",
        [db, schema, table],
    ).fetchall()


def _tile_select(con, db: str, schema: str, table: str) -> str:
    """SELECT of ``db.schema.table`` crossed with ``tiles`` (column ``_tile``): ids suffixed
    ``~<tile>`` (text) or shifted by ``tile * stride`` (integers) but in tile 0."""
    exprs = []
    for name, dtype in _columns(con, db, schema, table):
        q = '"' + name.replace('"', '""') + '"'
        if is_id(name) and dtype == "VARCHAR":
            exprs.append(f"{q} || CASE WHEN _tile = 0 THEN '' ELSE '~' || _tile END AS {q}")
        elif is_id(name) and dtype in ("BIGINT", "INTEGER", "HUGEINT"):
            stride = con.execute(f"SELECT coalesce(max(abs({q})), 0) + 1 FROM "
                                 f'{db}.{schema}."{table}"').fetchone()[0]  # fmt: skip
            exprs.append(f"{q} + _tile * {int(stride)} AS {q}")
        else:
            exprs.append(q)
    return f'SELECT {", ".join(exprs)} FROM {db}.{schema}."{table}", tiles'


def tile(before: Path, after: Path, target: Path, k: int, memory: str = "6GB") -> list[dict]:
    """A warehouse ``target`` holding ``after``'s tables the monitor reads and ``before``'s
    ``monitor.*`` (the previous run's state), each k times with its ids unique per tile (the
    module's docstring); returns per table the rows before and after and the factor."""
    import duckdb

    if target.exists():
        target.unlink()
    con = duckdb.connect(str(target))
    con.execute(f"SET memory_limit = '{memory}'; SET preserve_insertion_order = false")
    con.execute(f"ATTACH '{after}' AS s (READ_ONLY); ATTACH '{before}' AS p (READ_ONLY)")
    con.execute(f"CREATE TEMP TABLE tiles AS SELECT range AS _tile FROM range({int(k)})")
    names = [
        (s, t) for s, t in con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 's' "
            "ORDER BY 1, 2").fetchall()
        if s in TILED_SCHEMAS or f"{s}.{t}" in TILED_TABLES or s == "meta"
    ]  # fmt: skip
    jobs = [("s", s, t, None) for s, t in names]
    jobs += [("p", "monitor", t, SCALED_COUNTS.get(t)) for (t,) in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = 'p' "
        "AND schema_name = 'monitor' ORDER BY 1").fetchall()]  # fmt: skip
    checks = []
    for db, schema, table, scale in jobs:
        t0 = time.perf_counter()
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        full = f"{schema}.{table}"
        per_person = schema != "meta" and full not in ONCE
        if schema == "monitor":  # the previous run's state: per customer, or per table
            per_person = table in ("churn_forecast", "offer_forecast")
        sql = f'SELECT * FROM {db}.{schema}."{table}"'
        if per_person:
            sql = _tile_select(con, db, schema, table)
        elif scale:  # counts of the person tables times k (the catalogue's as they are)
            once = ", ".join(f"'{t.split('.')[1]}'" for t in ONCE)
            sql = "SELECT * REPLACE (" + ", ".join(
                f"CASE WHEN table_name IN ({once}) THEN {c} ELSE {c} * {int(k)} END AS {c}"
                for c in scale) + f') FROM {db}.{schema}."{table}"'  # fmt: skip
        con.execute(f'CREATE TABLE {schema}."{table}" AS {sql}')
        if schema == "monitor" and table == "headlines":
            listed = ", ".join(f"'{h}'" for h in SCALED_HEADLINES)
            con.execute(f"UPDATE monitor.headlines SET value = value * {int(k)} "
                        f"WHERE figure IN ({listed})")  # fmt: skip
        n0 = con.execute(f'SELECT count(*) FROM {db}.{schema}."{table}"').fetchone()[0]
        n1 = con.execute(f'SELECT count(*) FROM {schema}."{table}"').fetchone()[0]
        want = n0 * (k if per_person else 1)
        checks.append({"table": f"{schema}.{table}", "from": "run 1" if db == "p" else "run 2",
                       "rows": n0, "tiled": n1, "factor": k if per_person else 1,
                       "exact": n1 == want, "s": round(time.perf_counter() - t0, 1)})  # fmt: skip
        print(f"  {schema}.{table}: {n0:,} -> {n1:,} rows ({checks[-1]['s']} s)", flush=True)
    # ids unique per tile: no profile id, record id or order id shared by two tiles
    for table, col in (("identity.map", "profile_id"), ("clean.online_orders", "order_id"),
                       ("marts.churn_scores", "customer_id")):  # fmt: skip
        dup = con.execute(f"SELECT count(*) - count(DISTINCT {col}) FROM {table}").fetchone()[0]
        src = con.execute(f"SELECT count(*) - count(DISTINCT {col}) FROM s.{table}").fetchone()[0]
        checks.append({"table": f"{table}.{col}", "from": "duplicates", "rows": src,
                       "tiled": dup, "factor": k, "exact": dup == src * k, "s": 0.0})  # fmt: skip
    con.execute("CHECKPOINT")
    con.close()
    return checks


def stage_at_scale(tiled: Path, folder: Path, run_id: str, people: int, kill_above: float):
    """``cem run --stages 05_monitor`` on a copy of ``tiled`` (the run publishes into it), its
    kernel watched by ``pipeline_scale``: that benchmark's figures of the stage."""
    import pipeline_scale

    run_dir = folder / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    shutil.copyfile(tiled, run_dir / "cem.duckdb")
    ns = argparse.Namespace(
        people=people, stages="05", keep=True, dir=str(run_dir), run_id=run_id, cwd=None,
        param=[f"as_of={MONTHS[1]}"], interval=0.5, kill_above=kill_above,
        json=str(folder / "stage05.json"),
    )  # fmt: skip
    result = pipeline_scale.run_benchmark(ns)
    stage = next(s for s in result["stages"] if s["name"] == "05_monitor")
    return result, stage, run_dir / "reports" / run_id / "monitor.json"


def graded(path: Path) -> dict:
    """The graded figures of a run's ``monitor.json``."""
    mon = json.loads(path.read_text(encoding="utf-8"))
    churn, offers = mon["forecasts"]["churn"], mon["forecasts"]["offers"]
    out = {"previous run": mon.get("previous_run_id"), "alerts": len(mon["alerts"]),
           "largest psi": max((d["psi"] for d in mon["data"]["drift"]), default=None)}  # fmt: skip
    for key in (
        "customers graded",
        "customers left out: outcome unknown",
        "buyers",
        "auc",
        "auc, unknown counted as not bought",
        "brier",
        "realized purchases",
        "expected purchases",
        "realized revenue",
        "forecast's own backtest auc",
    ):
        out[key] = churn.get(key)
    for o in offers:
        short = "offers" if o["method"].startswith("next") else "baseline"
        out[f"{short} customers"] = o["customers"]
        out[f"{short} hit@10"] = o["hitrate@10"]
        out[f"{short} ndcg@10"] = o["ndcg@10"]
    out["profiles"] = mon["profiles"].get("profiles")
    return out


def main() -> int:
    import pandas as pd

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--people", type=int, default=1_000_000)
    ap.add_argument("--base", type=int, default=10_000, help="people of the two real runs")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--build-only", action="store_true", help="stop after step 1")
    ap.add_argument("--retile", action="store_true", help="tile again though tiled.duckdb exists")
    ap.add_argument("--memory", default="6GB", help="DuckDB's memory limit while tiling")
    ap.add_argument("--kill-above", type=float, default=10.0, metavar="GIB",
                    help="stop the stage if its kernel passes GIB resident")  # fmt: skip
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    first, second = build_runs(args.out, args.base, args.seed)
    if args.build_only:
        return 0
    if args.people % args.base:
        raise SystemExit(f"--people {args.people} is not a multiple of --base {args.base}")
    k = args.people // args.base
    tiled = args.out / f"tiled-{args.people}.duckdb"
    checks_path = tiled.with_suffix(".checks.json")
    if args.retile or not tiled.is_file() or not checks_path.is_file():
        print(f"tiling {second.name} (and {first.name}'s monitor.*) x{k} into {tiled}", flush=True)
        t0, c0 = time.perf_counter(), time.process_time()
        checks = tile(first, second, tiled, k, args.memory)
        print(f"tiled in {time.perf_counter() - t0:.0f} s wall, {time.process_time() - c0:.0f} "
              f"s CPU; {tiled.stat().st_size / 1e9:.2f} GB", flush=True)  # fmt: skip
        checks_path.write_text(json.dumps(checks, indent=1), encoding="utf-8")
    checks = pd.DataFrame(json.loads(checks_path.read_text(encoding="utf-8")))
    with pd.option_context("display.width", 200, "display.max_rows", 200):
        print(checks.to_string(index=False))
    if not checks["exact"].all():
        print("row counts NOT exactly k times the originals: stopped")
        return 1
    print(f"every tiled table holds exactly {k} (or 1) times its rows", flush=True)
    load0 = os.getloadavg()
    # the second run's id: its identity tables count the profiles new in it, as when it ran
    result, stage, mon_json = stage_at_scale(tiled, args.out, RUNS[1], args.people,
                                             args.kill_above)  # fmt: skip
    load1 = os.getloadavg()
    if stage["status"] != "ok" or not mon_json.is_file():
        print(f"stage 05 {stage['status']}: {stage['line']}")
        return 1
    small = graded(args.out / "reports" / RUNS[1] / "monitor.json")
    big = graded(mon_json)
    table = pd.DataFrame({f"{args.base:,} people (cem run)": small,
                          f"{args.people:,} people (tiled x{k})": big})  # fmt: skip
    with pd.option_context("display.width", 200, "display.float_format", "{:.4f}".format):
        print(table.to_string())
    print(
        f"\nstage 05 at {args.people:,} people, grading: {stage['seconds']} s wall "
        f"(cem run's stage line), kernel CPU {stage['kernel_cpu_seconds']} s, kernel peak "
        f"{stage['kernel_peak_gib']} GiB, report {stage['report_mb']} MB "
        f"(+code {stage['report_code_mb']} MB); load average before {load0[0]:.1f}, after "
        f"{load1[0]:.1f}; whole cem run {result['wall_seconds']} s (warehouse copy and "
        f"publish included)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
