"""The whole run at scale, measured the way a user runs it.

    .venv/bin/python benchmarks/pipeline_scale.py --people 200000
    .venv/bin/python benchmarks/pipeline_scale.py --people 20000 --stages 00,01,02 --keep
    nice -n 5 .venv/bin/python benchmarks/pipeline_scale.py --people 1000000 --kill-above 18

Runs ``python -m cemlib run -p n_people=N -p warehouse=<dir>/cem.duckdb --out <dir>/reports``
as a subprocess in its own temporary folder (every stage notebook through Papermill, the
DuckDB warehouse, the HTML reports) and watches it from outside: every ~0.5 s it reads
``VmHWM``/``VmRSS`` from ``/proc`` for each Jupyter kernel below the ``cem run`` process
(a kernel runs exactly one stage notebook, so its high-water mark is that stage's peak).
The stage lines of ``cem run`` stream through as they are printed; at the end a table gives,
per stage, the status, seconds, the kernel's peak resident memory, the warehouse size after
the stage and the size of the stage's HTML report, and the wall time of the whole run.

``--kill-above GIB`` stops the run when any kernel's resident memory passes GIB (a machine
shared with other jobs must not be pushed into the OOM killer). ``--json FILE`` writes the
figures for the docs. Extra ``-p name=value`` are passed to ``cem run``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

GIB = 1024**3
_STAGE_LINE = re.compile(r"^\[(\d+)/(\d+)\]\s+(\S+)\s+(ok|failed|skipped|not available)\b")


@dataclass
class StageFigures:
    name: str
    status: str = ""
    seconds: float | None = None
    kernel_peak_gib: float | None = None
    kernel_cpu_seconds: float | None = None
    kernel_pids: list[int] = field(default_factory=list)
    warehouse_mb: float | None = None
    report_mb: float | None = None
    report_code_mb: float | None = None
    input_rows: int | None = None
    line: str = ""


def _status_kib(pid: int) -> dict[str, int]:
    """VmHWM and VmRSS of ``pid`` in KiB (empty when the process is gone)."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith(("VmHWM:", "VmRSS:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0])
    except (OSError, ValueError):
        return {}
    return out


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` (its threads, and children it waited for)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # fields after the command: state is [0], utime [11], stime [12], cutime [13], cstime [14]
    return sum(int(x) for x in fields[11:15]) / _TICK


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` from /proc/<pid>/task/*/children."""
    kids: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as fh:
                    kids.extend(int(x) for x in fh.read().split())
            except OSError:
                continue
    except OSError:
        pass
    return kids


def _descendants(pid: int) -> list[int]:
    todo, seen = [pid], []
    while todo:
        p = todo.pop()
        for c in _children(p):
            if c not in seen:
                seen.append(c)
                todo.append(c)
    return seen


def _is_kernel(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmd = fh.read().replace(b"\0", b" ")
    except OSError:
        return False
    return b"ipykernel" in cmd


class Sampler(threading.Thread):
    """Polls the kernels below ``root`` and keeps each one's highest resident memory."""

    def __init__(self, root: int, interval: float, kill_above_gib: float | None) -> None:
        super().__init__(daemon=True)
        self.root, self.interval, self.kill_above = root, interval, kill_above_gib
        self.peak_kib: dict[int, int] = {}  # kernel pid -> max(VmHWM, VmRSS) seen
        self.cpu: dict[int, float] = {}  # kernel pid -> CPU seconds at the last sample
        self.order: list[int] = []  # kernel pids in the order they appeared
        self.runner_peak_kib = 0
        self.min_available_kib: int | None = None
        self.killed: str | None = None
        self._halt = threading.Event()
        self._lock = threading.Lock()

    def stop(self) -> None:
        self._halt.set()

    def kernels_since(self, n: int) -> list[int]:
        with self._lock:
            return self.order[n:]

    def _available_kib(self) -> int | None:
        try:
            with open("/proc/meminfo", encoding="ascii") as fh:
                for line in fh:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    def sample(self) -> None:
        runner = _status_kib(self.root)
        if runner:
            self.runner_peak_kib = max(self.runner_peak_kib, runner.get("VmHWM", 0))
        for pid in _descendants(self.root):
            if pid not in self.peak_kib and not _is_kernel(pid):
                continue
            st = _status_kib(pid)
            if not st:
                continue
            kib = max(st.get("VmHWM", 0), st.get("VmRSS", 0))
            with self._lock:
                if pid not in self.peak_kib:
                    self.order.append(pid)
                    self.peak_kib[pid] = 0
                self.peak_kib[pid] = max(self.peak_kib[pid], kib)
                cpu = _cpu_seconds(pid)
                if cpu is not None:
                    self.cpu[pid] = cpu
            if self.kill_above and st.get("VmRSS", 0) > self.kill_above * GIB / 1024:
                self.killed = (
                    f"kernel {pid} passed {self.kill_above:g} GiB resident "
                    f"({st['VmRSS'] / 1024**2:.1f} GiB): run stopped"
                )
                os.killpg(self.root, signal.SIGTERM)
                time.sleep(2)
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        avail = self._available_kib()
        if avail is not None:
            self.min_available_kib = (
                avail if self.min_available_kib is None else min(self.min_available_kib, avail)
            )

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.interval)
        self.sample()


def _mb(path: Path) -> float | None:
    return round(path.stat().st_size / 1e6, 2) if path.is_file() else None


def _warehouse_mb(path: Path) -> float | None:
    """Size of the warehouse and its WAL; during a run, of the run's working copy
    (``.<name>.run-<run_id>.<pid>``, see cemlib.pipeline.isolation), which is what the stages
    write until the run publishes it."""
    copies = sorted(path.parent.glob(f".{path.name}.run-*"))
    copies = [c for c in copies if c.is_file() and not c.name.endswith((".wal", ".tmp"))]
    target = copies[-1] if copies else path
    if not target.is_file():
        return None
    size = target.stat().st_size
    wal = target.with_name(target.name + ".wal")
    if wal.is_file():
        size += wal.stat().st_size
    return round(size / 1e6, 1)


def run_benchmark(args: argparse.Namespace) -> dict:
    base = (
        Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix=f"cem-scale-{args.people}-"))
    )
    base.mkdir(parents=True, exist_ok=True)
    warehouse = base / "cem.duckdb"
    reports = base / "reports"
    run_id = args.run_id or f"scale-{args.people}"
    cmd = [
        sys.executable, "-m", "cemlib", "run",
        "-p", f"n_people={args.people}",
        "-p", f"warehouse={warehouse}",
        "-p", f"run_id={run_id}",
        "--out", str(reports),
        "--no-progress",
    ]  # fmt: skip
    if args.stages:
        cmd += ["--stages", args.stages]
    for p in args.param:
        cmd += ["-p", p]
    print("$ " + " ".join(cmd), flush=True)
    print(f"folder: {base}", flush=True)

    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        start_new_session=True,  # its own process group: --kill-above stops the whole tree
        cwd=args.cwd or os.getcwd(),
    )
    sampler = Sampler(proc.pid, args.interval, args.kill_above)
    sampler.start()
    stages: list[StageFigures] = []
    seen_kernels = 0
    t_stage = t0
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            line = line.rstrip("\n")
            print(line, flush=True)
            m = _STAGE_LINE.match(line)
            if not m:
                continue
            sampler.sample()  # the kernel has exited by now; its last VmHWM was sampled
            fig = StageFigures(name=m.group(3), status=m.group(4), line=line)
            secs = re.search(r"\s([\d.]+) s\b", line)
            fig.seconds = float(secs.group(1)) if secs else None
            pids = sampler.kernels_since(seen_kernels)
            seen_kernels += len(pids)
            fig.kernel_pids = pids
            if pids:
                fig.kernel_peak_gib = round(max(sampler.peak_kib[p] for p in pids) / 1024**2, 2)
                fig.kernel_cpu_seconds = round(sum(sampler.cpu.get(p, 0.0) for p in pids), 1)
            fig.warehouse_mb = _warehouse_mb(warehouse)
            run_dir = reports / run_id
            fig.report_mb = _mb(run_dir / f"{fig.name}.html")
            fig.report_code_mb = _mb(run_dir / f"{fig.name}.code.html")
            stages.append(fig)
            if fig.status != "skipped":
                print(
                    f"    {fig.name}: kernel peak {fig.kernel_peak_gib} GiB, "
                    f"CPU {fig.kernel_cpu_seconds} s, warehouse "
                    f"{fig.warehouse_mb} MB, report {fig.report_mb} MB "
                    f"(+code {fig.report_code_mb} MB), {time.perf_counter() - t_stage:.0f} s since "
                    "the previous stage line",
                    flush=True,
                )
            t_stage = time.perf_counter()
        rc = proc.wait()
    except KeyboardInterrupt:
        os.killpg(proc.pid, signal.SIGINT)
        rc = proc.wait()
    wall = time.perf_counter() - t0
    sampler.stop()
    sampler.join(5)
    # the rows each stage read, for the memory estimate of cemlib.budget
    from cemlib.budget import COSTS, input_rows

    for fig in stages:
        cost = COSTS.get(fig.name)
        if cost is not None and fig.status == "ok":
            fig.input_rows = input_rows(cost.inputs, warehouse, args.people)

    result = {
        "people": args.people,
        "command": " ".join(cmd),
        "exit_code": rc,
        "wall_seconds": round(wall, 1),
        "runner_peak_gib": round(sampler.runner_peak_kib / 1024**2, 2),
        "min_available_gib": (
            round(sampler.min_available_kib / 1024**2, 1) if sampler.min_available_kib else None
        ),
        "warehouse_mb": _warehouse_mb(warehouse),
        "killed": sampler.killed,
        "stages": [asdict(s) for s in stages],
    }
    print_table(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2), encoding="utf-8")
    if args.keep:
        print(f"kept: {base}")
    else:
        shutil.rmtree(base, ignore_errors=True)
    return result


def print_table(result: dict) -> None:
    print()
    print(f"cem run at {result['people']:,} people: exit {result['exit_code']}")
    head = f"{'stage':<15}{'status':<9}{'seconds':>9}{'CPU s':>8}{'kernel GiB':>12}"
    head += f"{'warehouse MB':>14}"
    print(head + f"{'report MB':>11}{'+code MB':>10}")
    fmt = lambda v, spec: format(v, spec) if v is not None else "-"  # noqa: E731
    for s in result["stages"]:
        print(
            f"{s['name']:<15}{s['status']:<9}{fmt(s['seconds'], '9.1f'):>9}"
            f"{fmt(s.get('kernel_cpu_seconds'), '8.0f'):>8}"
            f"{fmt(s['kernel_peak_gib'], '12.2f'):>12}{fmt(s['warehouse_mb'], '14.1f'):>14}"
            f"{fmt(s['report_mb'], '11.2f'):>11}{fmt(s['report_code_mb'], '10.2f'):>10}"
        )
    print(
        f"whole run: {result['wall_seconds']:.1f} s wall; cem run process peak "
        f"{result['runner_peak_gib']} GiB; warehouse {result['warehouse_mb']} MB; "
        f"lowest MemAvailable {result['min_available_gib']} GiB"
    )
    if result["killed"]:
        print(result["killed"])


def calibrate(paths: list[str]) -> None:
    """The measured points of ``cemlib.budget._MEASURED`` from two or more runs' JSON (e.g.
    20,000, 200,000 and 1,000,000 people), and what the estimate through them says."""
    from cemlib.budget import COSTS, GIB
    from cemlib.budget import calibrate as fit

    runs = [json.loads(Path(p).read_text(encoding="utf-8")) for p in paths]
    for name in COSTS:
        points = sorted(
            (s["input_rows"], s["kernel_peak_gib"])
            for run in runs
            for s in run["stages"]
            if s["name"] == name and s.get("input_rows") and s.get("kernel_peak_gib")
        )
        if len({r for r, _ in points}) < 2:
            print(f"# {name}: measured at fewer than two sizes")
            continue
        c = fit([(r, g * GIB) for r, g in points], COSTS[name].inputs)
        pts = ", ".join(f"({r:_}, {g:.2f})" for r, g in points)
        check = "; ".join(f"{r:,}: {c.estimate(r) / GIB:.2f}" for r, _ in points)
        print(f'    "{name}": ({pts}),  # estimate GiB at {check}')


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--people", type=int, default=20000)
    ap.add_argument("--stages", help="stages to run, e.g. 00,01,02 (default: all)")
    ap.add_argument("--keep", action="store_true", help="keep the folder (warehouse, reports)")
    ap.add_argument("--dir", help="folder to use instead of a new temporary one")
    ap.add_argument("--run-id", help="run id (default scale-<people>)")
    ap.add_argument("--cwd", help="working directory of cem run (default: this one)")
    ap.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--interval", type=float, default=0.5, help="seconds between samples")
    ap.add_argument("--kill-above", type=float, metavar="GIB", help="stop the run past GIB")
    ap.add_argument("--json", metavar="FILE", help="write the figures as JSON")
    ap.add_argument(
        "--calibrate", nargs="+", metavar="JSON", help="print budget.COSTS from runs' --json"
    )
    args = ap.parse_args(argv)
    if args.calibrate:
        calibrate(args.calibrate)
        return 0
    result = run_benchmark(args)
    return 0 if result["exit_code"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
