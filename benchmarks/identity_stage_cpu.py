"""Stage 02 (``notebooks/02_profiles.ipynb``, every code cell) in one process, by phase: the CPU
seconds (``time.process_time()``: all threads, DuckDB's included) and the peak resident memory
of each phase (the process's high-water mark, reset when a phase starts, so a phase's peak is
its own; a nested phase's peak counts in its caller's too), and per notebook cell.

    .venv/bin/python benchmarks/identity_stage_cpu.py WAREHOUSE OUT [-p n_people=200000 ...]

``WAREHOUSE`` holds the published stages 00-01 and no ``identity`` schema (a first run: a
warehouse whose 02 already ran would take the incremental path, or carry the earlier ids); it
is copied to ``OUT.duckdb`` and the notebook runs on the copy as ``cem run`` runs it (its
parameters cell, then ``-p`` values, like Papermill). Writes ``OUT.json`` (the phases, the
cells, the load) and ``OUT.map.parquet`` (``identity.map`` ordered, to compare two runs'
profiles with ``--compare OTHER.map.parquet``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time

import nbformat

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from notebook_cells import _kib, _reset_peak, code_cells  # noqa: E402  (the same /proc readings)

GIB_KIB = 1024**2
PHASES: dict[str, list[float]] = {}  # name: [cpu s, wall s, peak GiB, calls]
_STACK: list[list[float]] = []  # per open phase: [peak KiB seen so far]


def _enter() -> None:
    hwm = _kib("VmHWM")
    for frame in _STACK:  # the callers' peaks so far, before the mark is reset
        frame[0] = max(frame[0], hwm)
    _reset_peak()
    _STACK.append([0])


def _leave() -> float:
    hwm = _kib("VmHWM")
    peak = max(_STACK.pop()[0], hwm)
    for frame in _STACK:
        frame[0] = max(frame[0], peak)
    return peak / GIB_KIB


def timed(name: str, fn):
    """``fn`` with its CPU and wall seconds and its peak resident memory added to
    ``PHASES[name]``."""

    def wrap(*a, **k):
        c0, w0 = time.process_time(), time.perf_counter()
        _enter()
        try:
            return fn(*a, **k)
        finally:
            peak = _leave()
            p = PHASES.setdefault(name, [0.0, 0.0, 0.0, 0])
            p[0] += time.process_time() - c0
            p[1] += time.perf_counter() - w0
            p[2] = max(p[2], peak)
            p[3] += 1

    return wrap


def instrument() -> None:
    """Wrap the stage's phases where the stage looks them up."""
    import importlib

    graph, model, resolve, stage = (
        importlib.import_module(f"cemlib.identity.{m}")
        for m in ("graph", "model", "resolve", "stage")
    )  # modules, not the package's functions of the same names
    from splink.internals.linker_components import training

    patches = [
        (stage, "read_sources", "read sources (DuckDB -> pandas)"),
        (stage, "source_records", "normalise (source_records)"),
        (resolve, "record_signatures", "  signatures (nodes)"),
        (resolve, "contact_links", "  contact links"),
        (resolve, "deterministic_links", "  rules (deterministic_links)"),
        (resolve, "silver_calibration", "  silver calibration"),
        (resolve, "silver_disagreement", "  silver disagreement (constraints)"),
        (resolve, "record_profile_ids", "  record profile ids"),
        (stage, "golden_records", "golden records"),
        (stage, "carry_ids", "carry ids (registry)"),
        (stage, "_write_tables", "write tables"),
        (stage, "remember_ids", "remember ids (record_ids)"),
        (stage, "write_state", "write state (prepared, model)"),
        (stage, "write_source_hashes", "write source hashes"),
        (stage, "attach_masked_warehouse", "masked-phone pass"),
        (stage, "evaluate_warehouse", "evaluate (truth, in DuckDB)"),
    ]
    for mod, attr, name in patches:
        if hasattr(mod, attr):  # an older version of the stage may lack a phase
            setattr(mod, attr, timed(name, getattr(mod, attr)))
    methods = [
        (stage, "resolve_records", "resolve_records (all below)"),
        (resolve.IdentityResolver, "fit", " resolver.fit"),
        (resolve.IdentityResolver, "_fit_nodes", "  _fit_nodes (links + clustering)"),
        (model.SplinkModel, "fit", "  Splink fit (EM)"),
        (model.SplinkModel, "_connect", "   Splink records registered"),
        (
            training.LinkerTraining,
            "estimate_probability_two_random_records_match",
            "   Splink prior",
        ),
        (training.LinkerTraining, "estimate_u_using_random_sampling", "   Splink u sampling"),
        (model.SplinkModel, "_train_em", "   Splink EM passes"),
        (model.SplinkModel, "predict", "  Splink predict"),
        (graph.ChainGuardClusterer, "fit", "  clustering (chain guard)"),
        (resolve.IdentityResolver, "_corroborated", "  household corroboration"),
        (resolve.IdentityResolver, "_household_nodes", "  household nodes"),
        (resolve.IdentityResolver, "record_map", "record map"),
        (resolve.IdentityResolver, "link_table", "link table"),
    ]
    for owner, attr, name in methods:
        if hasattr(owner, attr):
            setattr(owner, attr, timed(name, getattr(owner, attr)))


def run_notebook(path: str, params: list[str]) -> list[dict]:
    from IPython.core.interactiveshell import InteractiveShell

    nb = nbformat.read(path, as_version=4)
    shell = InteractiveShell.instance()
    cells = []
    for n, source in code_cells(nb, params):
        c0, w0 = time.process_time(), time.perf_counter()
        _enter()
        res = shell.run_cell(source, silent=True)
        peak = _leave()
        first = next((ln for ln in source.splitlines() if ln.strip() and ln[0] != "#"), "")
        cells.append({
            "cell": n, "cpu": round(time.process_time() - c0, 2),
            "wall": round(time.perf_counter() - w0, 2), "peak_gib": round(peak, 2),
            "after_gib": round(_kib("VmRSS") / GIB_KIB, 2), "first": first[:60],
        })  # fmt: skip
        if not res.success:
            raise SystemExit(f"cell {n} failed: {res.error_in_exec or res.error_before_exec}")
    return cells


def compare(a: str, b: str) -> None:
    """How many records sit in another profile between two runs' maps (profiles compared as
    sets of records: ids may differ)."""
    import pandas as pd

    x, y = pd.read_parquet(a), pd.read_parquet(b)
    key = ["source_table", "record_id"]
    m = x.merge(y, on=key, how="outer", suffixes=("_a", "_b"), indicator=True)
    print(f"records: {len(x):,} / {len(y):,}; only in one: {(m['_merge'] != 'both').sum():,}")
    ids_equal = (m["profile_id_a"].fillna("") == m["profile_id_b"].fillna("")).all()
    print(f"profile ids identical: {ids_equal}")
    la = m["profile_id_a"].astype("string").fillna("<none>")
    lb = m["profile_id_b"].astype("string").fillna("<none>")
    pair = la + "|" + lb
    # a record is 'moved' when its profile's partner in the other run is not a bijection
    n_b_per_a = pair.groupby(la).transform("nunique")
    n_a_per_b = pair.groupby(lb).transform("nunique")
    moved = ((n_b_per_a > 1) | (n_a_per_b > 1)).sum()
    print(f"records in a profile that differs between the runs: {moved:,}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("warehouse", nargs="?")
    ap.add_argument("out", nargs="?")
    ap.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--notebook", default="notebooks/02_profiles.ipynb")
    ap.add_argument("--compare", nargs=2, metavar=("A.map.parquet", "B.map.parquet"))
    args = ap.parse_args()
    if args.compare:
        compare(*args.compare)
        return 0
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("CEM_BATCH", "1")
    work = os.path.abspath(args.out + ".duckdb")
    shutil.copyfile(args.warehouse, work)
    heads = os.path.abspath(args.out + ".headlines.json")
    params = [f"warehouse={work}", "run_id=bench", f"headlines_path={heads}", *args.param]
    notebook = os.path.abspath(args.notebook)
    instrument()
    os.chdir(os.path.dirname(notebook))
    load0 = os.getloadavg()[0]
    c0, w0 = time.process_time(), time.perf_counter()
    cells = run_notebook(notebook, params)
    cpu, wall, load1 = time.process_time() - c0, time.perf_counter() - w0, os.getloadavg()[0]
    peak = max(c["peak_gib"] for c in cells)
    print(
        f"TOTAL cpu {cpu:.1f} s wall {wall:.1f} s peak {peak:.2f} GiB load {load0:.1f}->{load1:.1f}"
    )
    print(f"{'phase':40s} {'cpu s':>7} {'wall s':>7} {'peak GiB':>9} calls")
    for k, (c, w, p, n) in PHASES.items():
        print(f"{k:40s} {c:7.1f} {w:7.1f} {p:9.2f} {n:5d}")
    print(f"{'cell':>4} {'cpu s':>7} {'wall s':>7} {'peak GiB':>9} {'after':>6}  first line")
    for c in cells:
        print(f"{c['cell']:>4} {c['cpu']:7.1f} {c['wall']:7.1f} {c['peak_gib']:9.2f} "
              f"{c['after_gib']:6.2f}  {c['first']}")  # fmt: skip
    import duckdb

    con = duckdb.connect(work, read_only=True)
    rmap = con.sql(
        "SELECT source_table, record_id, profile_id FROM identity.map ORDER BY 1, 2"
    ).df()
    con.close()
    rmap.to_parquet(args.out + ".map.parquet")
    with open(heads, encoding="utf-8") as fh:
        headlines = json.load(fh)
    print("headlines", json.dumps(headlines, default=str)[:1500])
    out = {
        "cpu_seconds": round(cpu, 1), "wall_seconds": round(wall, 1), "peak_gib": peak,
        "load": [round(load0, 1), round(load1, 1)],
        "phases": {k: [round(v[0], 2), round(v[1], 2), round(v[2], 2), v[3]]
                   for k, v in PHASES.items()},
        "cells": cells, "headlines": headlines,
    }  # fmt: skip
    with open(args.out + ".json", "w", encoding="utf-8") as fh:
        json.dump(out, fh, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
