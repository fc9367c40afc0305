"""Lasting ids over monthly runs: one warehouse, ``cem run`` once a month, as a scheduler would.

For each month-end ``as_of`` the synthetic world (one seed: each month holds the previous
month's records plus the new ones) is collected and checked (stages 00, 01), then profiled
(02, ``identity_mode`` auto: incremental from the second month). From the second month on, the
same 02 also runs with ``identity_mode=full`` on a copy of the warehouse, for the time and the
profiles of a full run on the same data. Per month it prints:

* the records present (and attached) in this run and the last whose last-run id resolves
  (directly or through ``merged_into``) to their profile now;
* the last run's ids that resolve to an id (none lost), and to a profile active now;
* merges, splits and moves of the run (``identity.changes``), and how many name their link;
* identity stage seconds (wall and the kernel's CPU, from the 02 headlines) incremental and
  full, and how far the incremental profiles are from the full run's (pairwise F1 of one
  against the other, profiles identical), and each one's F1 against the synthetic truth.

    .venv/bin/python benchmarks/identity_continuity.py --people 20000
    .venv/bin/python benchmarks/identity_continuity.py --people 200000 --months 2025-05-31,2025-06-30
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from cemlib.identity.evaluate import evaluate
from cemlib.identity.registry import resolve_ids
from cemlib.warehouse import Warehouse

MONTHS = ("2025-03-31", "2025-04-30", "2025-05-31", "2025-06-30")
PROJECT = Path(__file__).resolve().parents[1]


def cem_run(stages: str, run_id: str, params: dict, out: Path) -> float:
    """``cem run`` as a user types it; the wall seconds. Exits on a failed run."""
    cmd = [sys.executable, "-m", "cemlib", "run", "--stages", stages, "--out", str(out),
           "--notebooks", str(PROJECT / "notebooks"), "--no-progress", "-p", f"run_id={run_id}"]  # fmt: skip
    for k, v in params.items():
        cmd += ["-p", f"{k}={v}"]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=PROJECT)
    secs = time.perf_counter() - t0
    if done.returncode != 0:
        print(done.stdout[-3000:], done.stderr[-3000:], sep="\n")
        raise SystemExit(f"cem run {stages} {run_id} failed ({done.returncode})")
    return secs


def headlines(out: Path, run_id: str) -> dict:
    path = out / run_id / "02_profiles.headlines.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def phases(path: Path, total: list | None) -> dict:
    """The 02 stage's ``[wall, CPU]`` seconds per phase (``identity.state``), the state's own
    write as the rest of the stage's ``total``."""
    with Warehouse(path, read_only=True) as wh:
        cols = set(wh.sql("SELECT * FROM identity.state LIMIT 0").columns)
        raw = wh.sql("SELECT phases FROM identity.state")["phases"][0] if "phases" in cols else None
    out = json.loads(raw) if raw else {}
    if out and total and None not in total:
        out["write_state"] = [round(total[i] - sum(v[i] for v in out.values()), 2) for i in (0, 1)]
    return out


def read_map(path: Path) -> pd.DataFrame:
    with Warehouse(path, read_only=True) as wh:
        m = wh.sql("SELECT source_table, record_id, profile_id FROM identity.map")
    return m.astype("string")


def continuity(path: Path, before: pd.DataFrame, run_id: str) -> dict:
    """The figures of one run against the last run's map ``before``."""
    with Warehouse(path, read_only=True) as wh:
        now = wh.sql("SELECT source_table, record_id, profile_id FROM identity.map")
        registry = wh.sql("SELECT profile_id, status, merged_into FROM identity.registry")
        changes = wh.sql(f"SELECT change, evidence FROM identity.changes WHERE run_id = '{run_id}'")
    now = now.astype("string")
    both = before.dropna(subset=["profile_id"]).merge(
        now.dropna(subset=["profile_id"]), on=["source_table", "record_id"], suffixes=("_b", "_n")
    )
    old_ids = before["profile_id"].dropna().unique()
    resolved = resolve_ids(registry, old_ids)
    both["resolved"] = both["profile_id_b"].map(resolved)
    active = set(now["profile_id"].dropna())
    status = dict(zip(registry["profile_id"], registry["status"], strict=True))
    res_status = pd.Series([status.get(r) if pd.notna(r) else None for r in resolved])
    ev = changes["evidence"].fillna("")
    return {
        "records_in_both": len(both),
        "same_profile": float((both["resolved"] == both["profile_id_n"]).mean())
        if len(both)
        else 1.0,
        "previous_ids": len(old_ids),
        "resolvable": int(resolved.notna().sum()),
        "resolve_to_active": int(resolved.isin(active).sum()),
        "resolve_to_status": res_status.value_counts().to_dict(),
        "changes": changes["change"].value_counts().to_dict(),
        "changes_with_link": int(ev.str.startswith("link").sum()),
        "profiles": int(now["profile_id"].nunique()),
    }


def agreement(a: pd.DataFrame, b: pd.DataFrame) -> dict:
    """Pairwise precision/recall/F1 of partition ``a`` against ``b`` and identical profiles."""
    key = ["source_table", "record_id"]
    m = a.dropna(subset=["profile_id"]).merge(b.dropna(subset=["profile_id"]), on=key,
                                              suffixes=("_a", "_b"))  # fmt: skip
    rid = m["source_table"] + "|" + m["record_id"]
    e = evaluate(pd.DataFrame({"record_id": rid, "profile_id": m["profile_id_a"]}),
                 pd.DataFrame({"record_id": rid, "person_id": m["profile_id_b"]}))  # fmt: skip
    sets_a = set(m.groupby("profile_id_a")["record_id"].agg(lambda s: frozenset(s)))
    sets_b = set(m.groupby("profile_id_b")["record_id"].agg(lambda s: frozenset(s)))
    return {
        "precision": e["precision"],
        "recall": e["recall"],
        "f1": e["f1"],
        "identical_profiles": len(sets_a & sets_b),
        "profiles_full": len(sets_b),
        "attached_only_in_one": int(
            (a["profile_id"].notna().sum() - len(m)) + (b["profile_id"].notna().sum() - len(m))
        ),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--months", default=",".join(MONTHS), help="comma-separated as_of dates")
    ap.add_argument("--no-full", action="store_true", help="skip the full-run comparison")
    ap.add_argument("--keep", help="folder to keep the warehouse and reports in")
    args = ap.parse_args()
    months = [m.strip() for m in args.months.split(",") if m.strip()]
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="cem-continuity-"))
    root.mkdir(parents=True, exist_ok=True)
    wh, wh_full, out = root / "cem.duckdb", root / "full.duckdb", root / "reports"
    base = {"n_people": args.people, "seed": args.seed, "warehouse": str(wh)}
    before = None
    rows = []
    print(f"{args.people:,} people, seed {args.seed}, months {', '.join(months)}; in {root}")
    for as_of in months:
        tag = as_of.replace("-", "")
        t_in = cem_run("00,01", f"m{tag}-in", {**base, "as_of": as_of}, out)
        if before is not None and not args.no_full:
            shutil.copyfile(wh, wh_full)
        t_inc = cem_run("02", f"m{tag}", {**base, "as_of": as_of}, out)
        h = headlines(out, f"m{tag}")
        row = {"as_of": as_of, "collect+quality s": round(t_in, 1), "02 wall s": round(t_inc, 1),
               "mode": h.get("identity mode"), "identity s": h.get("identity seconds"),
               "identity CPU s": h.get("identity CPU seconds"), "F1 vs truth": h.get("pairwise F1"),
               "records resolved": h.get("records resolved (incremental)")}  # fmt: skip
        row["phases [wall, CPU] s"] = phases(wh, [row["identity s"], row["identity CPU s"]])
        now = read_map(wh)
        if before is not None:
            row.update(continuity(wh, before, f"m{tag}"))
            if not args.no_full:
                t_full = cem_run("02", f"m{tag}-full", {**base, "as_of": as_of,
                                 "warehouse": str(wh_full), "02_profiles.identity_mode": "full"},
                                 out)  # fmt: skip
                hf = headlines(out, f"m{tag}-full")
                row.update({"full 02 wall s": round(t_full, 1),
                            "full identity s": hf.get("identity seconds"),
                            "full identity CPU s": hf.get("identity CPU seconds"),
                            "full F1 vs truth": hf.get("pairwise F1")})  # fmt: skip
                row["full phases [wall, CPU] s"] = phases(
                    wh_full, [row["full identity s"], row["full identity CPU s"]]
                )
                if row["identity s"] and row["full identity s"]:
                    row["incremental / full (wall)"] = round(
                        row["identity s"] / row["full identity s"], 3
                    )
                    row["incremental / full (CPU)"] = round(
                        row["identity CPU s"] / row["full identity CPU s"], 3
                    )
                row["incremental vs full"] = agreement(now, read_map(wh_full))
        rows.append(row)
        print(json.dumps(row, ensure_ascii=False, default=str), flush=True)
        before = now
    print()
    for row in rows:
        line = [f"as_of {row['as_of']}: {row['mode']}, identity {row['identity s']} s "
                f"({row['identity CPU s']} CPU s)"]  # fmt: skip
        if "same_profile" in row:
            line.append(
                f"same profile {row['same_profile']:.4%} of {row['records_in_both']:,} records; "
                f"{row['resolvable']:,}/{row['previous_ids']:,} earlier ids resolve "
                f"({row['resolve_to_active']:,} to an active profile); changes {row['changes']} "
                f"({row['changes_with_link']:,} naming their link)"
            )
        if "full identity s" in row:
            agr = row["incremental vs full"]
            line.append(
                f"full run {row['full identity s']} s ({row['full identity CPU s']} CPU s): "
                f"incremental/full {row.get('incremental / full (wall)')} wall, "
                f"{row.get('incremental / full (CPU)')} CPU; profiles identical "
                f"{agr['identical_profiles']:,}/{agr['profiles_full']:,}, pairwise F1 of "
                f"incremental vs full {agr['f1']:.4f}; F1 vs truth {row['F1 vs truth']} "
                f"incremental, {row['full F1 vs truth']} full"
            )
        for key in ("phases [wall, CPU] s", "full phases [wall, CPU] s"):
            if row.get(key):
                parts = ", ".join(f"{k} {w}/{c}" for k, (w, c) in row[key].items())
                line.append(f"{key.split(' [')[0]} (wall/CPU s): {parts}")
        print("\n  ".join(line))


if __name__ == "__main__":
    main()
