"""Both engines side by side, measured the way a user runs them (``cem run``, stages 00 to 02).

    .venv/bin/python benchmarks/engine_scale.py --people 300
    .venv/bin/python benchmarks/engine_scale.py --people 20000 200000 --master 'local[2]'

For each size and engine, runs ``python -m cemlib run -p engine=<engine> --stages 00,01,02`` in
its own temporary folder and watches the whole process tree below it every ~0.5 s (Jupyter
kernels and, with ``engine: spark``, the JVM each kernel starts and its Python workers): per
stage the peak of the tree's summed resident memory, the peak of the JVM alone and of the
Python processes (the kernel is the Spark driver's Python side), the CPU seconds of the tree
while the stage ran, and the stage's seconds (from ``run.json``); then the 01 headline figures
of both engines compared and, with stage 02, the profiles of both and the pairwise agreement of
their ``identity.map`` (record pairs sharing a profile in both, over the mean of each).
Needs the extra ``spark`` (``make venv-spark``).
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


def _tree_sample(
    proc: psutil.Process, cpu: dict[int, float], kernels: dict[int, int] | None = None
) -> tuple[int, int, int, int, int]:
    """``(tree, jvm, python, driver, workers)`` resident bytes of ``proc``'s tree: ``python``
    every Python process (``cem run``, the kernels, Spark's Python workers), ``driver`` the
    largest Python process outside the JVM (the stage kernel: the Spark driver's Python side),
    ``workers`` the Python processes below the JVM (Spark's Python workers, summed). ``cpu``
    (pid -> CPU seconds last seen) is updated, so that the CPU of processes gone meanwhile is
    kept; ``kernels`` (pid -> resident bytes) is filled with each Python process outside the
    JVM, so that a stage's driver can be told from the previous stage's kernel still exiting."""
    total = jvm = py = driver = workers = 0
    with contextlib.suppress(psutil.Error):
        tree = [proc, *proc.children(recursive=True)]
        below_jvm: set[int] = set()
        for p in tree:
            with contextlib.suppress(psutil.Error):
                if p.name() == "java":
                    below_jvm.update(c.pid for c in p.children(recursive=True))
        for p in tree:
            with contextlib.suppress(psutil.Error):
                rss = p.memory_info().rss
                t = p.cpu_times()
                cpu[p.pid] = t.user + t.system
                total += rss
                name = p.name()
                if name == "java":
                    jvm += rss
                elif name.startswith("python"):
                    py += rss
                    if p.pid in below_jvm:
                        workers += rss
                    else:
                        driver = max(driver, rss)
                        if kernels is not None and p.pid != proc.pid:
                            kernels[p.pid] = rss
    return total, jvm, py, driver, workers


def _stop(proc: psutil.Process) -> None:
    """Terminate ``proc`` (the ``cem run`` this script started) and its descendants."""
    with contextlib.suppress(psutil.Error):
        tree = [*proc.children(recursive=True), proc]
        for p in tree:
            with contextlib.suppress(psutil.Error):
                p.terminate()
        _, alive = psutil.wait_procs(tree, timeout=20)
        for p in alive:
            with contextlib.suppress(psutil.Error):
                p.kill()


def run_engine(
    engine: str, people: int, master: str, folder: Path, stages: str, memory_limit: str,
    stop_after: float | None = None, execution_timeout: str = "auto",
) -> dict:  # fmt: skip
    """One ``cem run`` of ``stages`` on ``engine``: seconds, CPU seconds and peak memory (the
    tree, the JVM, the Python processes) per stage. ``stop_after`` (seconds): the run is
    stopped then, its finished stages reported and the running one as ``stopped``."""
    args = [sys.executable, "-m", "cemlib", "run", "--stages", stages, "-p", f"engine={engine}",
            "-p", f"n_people={people}", "-p", f"warehouse={folder / 'cem.duckdb'}",
            "-p", f"lake={folder / 'lake'}", "-p", f"spark_master={master}",
            "-p", "run_id=bench", "-p", f"memory_limit={memory_limit}",
            "-p", f"execution_timeout={execution_timeout}",
            "--out", str(folder / "reports")]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    watched = psutil.Process(proc.pid)
    # (s since start, tree, jvm, python, driver, workers, cpu)
    peaks: list[tuple[float, int, int, int, int, int, float]] = []
    # per sample: (s since start, {pid: resident bytes} of the Python processes outside the JVM)
    kernels: list[tuple[float, dict[int, int]]] = []
    first_seen: dict[int, float] = {}
    done = threading.Event()
    cpu: dict[int, float] = {}

    stopped = threading.Event()

    def watch() -> None:
        while not done.is_set():
            seen: dict[int, int] = {}
            sample = _tree_sample(watched, cpu, seen)
            now = time.perf_counter() - t0
            peaks.append((now, *sample, sum(cpu.values())))
            kernels.append((now, seen))
            for pid in seen:
                first_seen.setdefault(pid, now)
            if stop_after is not None and peaks[-1][0] > stop_after and not stopped.is_set():
                stopped.set()
                _stop(watched)
            time.sleep(0.5)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    out, _ = proc.communicate()
    load = Path("/proc/loadavg").read_text().split()[:3]
    done.set()
    thread.join()
    wall = time.perf_counter() - t0
    run_json = folder / "reports" / "bench" / "run.json"
    run = json.loads(run_json.read_text()) if run_json.exists() else {"stages": []}
    run["stages"] = [st for st in run["stages"] if st.get("duration") is not None]
    if stopped.is_set():  # the stage that was running when the run was stopped
        done_s = sum(st["duration"] for st in run["stages"])
        run["stages"].append({"name": "(stopped)", "status": "stopped",
                              "duration": round(wall - done_s, 1)})  # fmt: skip
    start, figures = 0.0, {"engine": engine, "people": people, "wall_s": round(wall, 1),
                           "load_at_end": load}  # fmt: skip
    for stage in run["stages"]:  # stages ran one after the other: split the samples by time
        end = start + (stage["duration"] or 0)
        inside = [row for row in peaks if start - 1 <= row[0] <= end + 1]
        inside = inside or [(0, 0, 0, 0, 0, 0, 0.0)]
        # the stage's own kernel: a Python process first seen while the stage ran (the
        # previous stage's kernel, still exiting at its start, is not this stage's driver)
        own = [rss for t, seen in kernels if start - 1 <= t <= end + 1
               for pid, rss in seen.items() if first_seen[pid] >= start - 1]  # fmt: skip
        figures[stage["name"]] = {
            "status": stage["status"], "seconds": stage["duration"],
            "cpu_seconds": round(inside[-1][-1] - inside[0][-1], 1),
            "peak_tree_gib": round(max(r[1] for r in inside) / GIB, 2),
            "peak_jvm_gib": round(max(r[2] for r in inside) / GIB, 2),
            "peak_python_gib": round(max(r[3] for r in inside) / GIB, 2),
            "peak_driver_python_gib": round(max(r[4] for r in inside) / GIB, 2),
            "peak_stage_kernel_gib": round(max(own, default=0) / GIB, 2),
            "peak_python_workers_gib": round(max(r[5] for r in inside) / GIB, 2),
            "error": (stage.get("error") or {}).get("evalue") or stage.get("reason"),
        }  # fmt: skip
        start = end
    headlines = folder / "reports" / "bench" / "01_quality.headlines.json"
    figures["quality_headlines"] = json.loads(headlines.read_text()) if headlines.exists() else {}
    headlines = folder / "reports" / "bench" / "02_profiles.headlines.json"
    figures["identity_headlines"] = json.loads(headlines.read_text()) if headlines.exists() else {}
    figures["exit"] = proc.returncode
    figures["stopped_after_s"] = stop_after if stopped.is_set() else None
    return figures


def identity_agreement(duck: Path, lake: Path) -> dict | None:
    """:func:`~cemlib.identity.sparkstage.pairwise_agreement` of the DuckDB warehouse's
    ``identity.map`` and the lake's; None when either is missing."""
    from cemlib.engine import Lake
    from cemlib.identity.sparkstage import pairwise_agreement
    from cemlib.warehouse import Warehouse

    query = "SELECT source_table, record_id, profile_id FROM identity.map"
    with Lake(lake) as lk:
        if not lk.has_table("identity", "map"):
            return None
        b = lk.sql(query)
    with Warehouse(duck, read_only=True) as wh:
        if not wh.has_table("identity", "map"):
            return None
        a = wh.sql(query)
    return pairwise_agreement(a, b)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, nargs="+", default=[300])
    parser.add_argument("--master", default="local[2]", help="spark_master of the Spark runs")
    parser.add_argument("--stages", default="00,01,02", help="the stages of each run")
    parser.add_argument("--memory-limit", default="6GB",
                        help="memory_limit of each stage (Spark's local driver gets half)")  # fmt: skip
    parser.add_argument("--stop-after", type=float, help="stop each run after these seconds")
    parser.add_argument("--execution-timeout", default="auto",
                        help="cem run's execution_timeout (auto is calibrated on DuckDB: a "
                             "large Spark run needs more, or null for no limit)")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep each run's folder")
    parser.add_argument("--folder", help="run in this kept folder (one engine, one size): "
                        "e.g. stage 02 alone on the lake a --keep run of 00,01 left")  # fmt: skip
    parser.add_argument("--engines", default="duckdb,spark", help="the engines to run, in order")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    if args.folder and (len(args.people) > 1 or "," in args.engines.strip(",")):
        parser.error("--folder takes one size and one engine")
    rows = []
    for people in args.people:
        with contextlib.ExitStack() as stack:
            folders = {}
            engines = [e.strip() for e in args.engines.split(",") if e.strip()]
            for engine in engines:
                folders[engine] = (
                    Path(args.folder)
                    if args.folder
                    else Path(tempfile.mkdtemp(prefix=f"cem-engine-{engine}-"))
                    if args.keep
                    else Path(
                        stack.enter_context(
                            tempfile.TemporaryDirectory(prefix=f"cem-engine-{engine}-")
                        )
                    )
                )
                got = run_engine(engine, people, args.master, folders[engine], args.stages,
                                 args.memory_limit, args.stop_after,
                                 args.execution_timeout)  # fmt: skip
                rows.append(got)
                stages = "\n    ".join(
                    f"{k:<14} {v['status']:<7} {v['seconds'] or 0:7.1f} s  cpu {v['cpu_seconds']:7.1f} s"
                    f"  peak tree {v['peak_tree_gib']:.2f}  driver python "
                    f"{v['peak_driver_python_gib']:.2f} (its own kernel "
                    f"{v['peak_stage_kernel_gib']:.2f})  jvm {v['peak_jvm_gib']:.2f}  python "
                    f"workers {v['peak_python_workers_gib']:.2f} GiB"
                    + (f"\n      {v['error']}" if v.get("error") else "")
                    for k, v in got.items()
                    if isinstance(v, dict) and "seconds" in v
                )
                print(f"{people:>9,} people  {engine:<6}  wall {got['wall_s']} s  exit "
                      f"{got['exit']}  load {' '.join(got['load_at_end'])}\n    {stages}",
                      flush=True)  # fmt: skip
            if len(engines) < 2:
                continue
            same = rows[-2]["quality_headlines"] == rows[-1]["quality_headlines"]
            print(
                f"{people:>9,} people  01 headlines identical between engines: {same}", flush=True
            )
            if "02" in args.stages and {"duckdb", "spark"} <= set(engines):
                agree = identity_agreement(folders["duckdb"] / "cem.duckdb",
                                           folders["spark"] / "lake")  # fmt: skip
                rows[-1]["identity_agreement"] = agree
                print(f"{people:>9,} people  02 DuckDB vs Spark: {json.dumps(agree)}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
