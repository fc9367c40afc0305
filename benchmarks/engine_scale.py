"""Both engines side by side, measured the way a user runs them (``cem run``, stages 00 and 01).

    .venv/bin/python benchmarks/engine_scale.py --people 300
    .venv/bin/python benchmarks/engine_scale.py --people 200000 1000000 --master 'local[2]'

For each size and engine, runs ``python -m cemlib run -p engine=<engine> --stages 00,01`` in
its own temporary folder and watches the whole process tree below it every ~0.5 s (Jupyter
kernels and, with ``engine: spark``, the JVM each kernel starts): the peak of the tree's summed
resident memory while each stage ran, the stage's seconds (from ``run.json``), and the 01
headline figures of both engines compared. Needs the extra ``spark`` (``make venv-spark``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

GIB = 1024**3


def _tree_rss(proc: psutil.Process) -> int:
    """Resident bytes of ``proc`` and every descendant (0 for the ones gone meanwhile)."""
    total = 0
    with contextlib.suppress(psutil.Error):
        for p in [proc, *proc.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
    return total


def run_engine(engine: str, people: int, master: str, folder: Path) -> dict:
    """One ``cem run`` of stages 00, 01 on ``engine``: seconds and peak tree memory per stage."""
    args = [sys.executable, "-m", "cemlib", "run", "--stages", "00,01", "-p", f"engine={engine}",
            "-p", f"n_people={people}", "-p", f"warehouse={folder / 'cem.duckdb'}",
            "-p", f"lake={folder / 'lake'}", "-p", f"spark_master={master}",
            "-p", "run_id=bench", "--out", str(folder / "reports")]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    watched = psutil.Process(proc.pid)
    peaks: list[tuple[float, int]] = []  # (seconds since start, tree bytes)
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            peaks.append((time.perf_counter() - t0, _tree_rss(watched)))
            time.sleep(0.5)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    out, _ = proc.communicate()
    done.set()
    thread.join()
    wall = time.perf_counter() - t0
    run = json.loads((folder / "reports" / "bench" / "run.json").read_text())
    start, figures = 0.0, {"engine": engine, "people": people, "wall_s": round(wall, 1)}
    for stage in run["stages"]:  # stages ran one after the other: split the samples by time
        end = start + (stage["duration"] or 0)
        inside = [b for t, b in peaks if start - 1 <= t <= end + 1] or [0]
        figures[stage["name"]] = {"status": stage["status"], "seconds": stage["duration"],
                                  "peak_tree_gib": round(max(inside) / GIB, 2)}  # fmt: skip
        start = end
    headlines = folder / "reports" / "bench" / "01_quality.headlines.json"
    figures["quality_headlines"] = json.loads(headlines.read_text()) if headlines.exists() else {}
    figures["exit"] = proc.returncode
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, nargs="+", default=[300])
    parser.add_argument("--master", default="local[2]", help="spark_master of the Spark runs")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    rows = []
    for people in args.people:
        for engine in ("duckdb", "spark"):
            with tempfile.TemporaryDirectory(prefix=f"cem-engine-{engine}-") as tmp:
                got = run_engine(engine, people, args.master, Path(tmp))
            rows.append(got)
            stages = "  ".join(
                f"{k} {v['seconds']:.1f} s peak {v['peak_tree_gib']:.2f} GiB"
                for k, v in got.items()
                if isinstance(v, dict) and "seconds" in v
            )
            print(f"{people:>9,} people  {engine:<6}  {stages}  wall {got['wall_s']} s", flush=True)
        same = rows[-2]["quality_headlines"] == rows[-1]["quality_headlines"]
        print(f"{people:>9,} people  01 headlines identical between engines: {same}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
