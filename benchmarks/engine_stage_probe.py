"""Where a stage's driver memory goes, step by step: watch a running ``cem run`` and read back
which step of cemlib its kernel was in at each sample.

    # 1. start the run with the hook on PYTHONPATH and a folder for the stacks
    mkdir -p /tmp/probe/stacks
    CEM_STACKS_DIR=/tmp/probe/stacks PYTHONPATH=benchmarks/probe_hook:. \\
        .venv/bin/python benchmarks/engine_scale.py --people 200000 --engines spark \\
        --stages 03,04 --folder /tmp/lake200 --execution-timeout null &
    # 2. beside it: every 5 s each kernel's resident memory, its VmHWM, its JVM and Spark's
    #    Python workers; every 10 s its Python stack (SIGUSR2, only to a kernel that loaded
    #    the hook: without it the signal would end the process)
    .venv/bin/python benchmarks/engine_stage_probe.py watch /tmp/lake200 /tmp/probe
    # 3. per stack dump: the time, the kernel's memory and the innermost cemlib frames
    .venv/bin/python benchmarks/engine_stage_probe.py steps /tmp/probe/stacks/<kernel pid>.txt

The memory log is ``<out>/watch.log``; a kernel's stacks are ``<stacks>/<pid>.txt``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import sys
import time
from pathlib import Path

import psutil

GIB = 1024**3


def _run_of(folder: str) -> psutil.Process | None:
    """The ``cem run`` whose command line names ``folder``."""
    for p in psutil.process_iter(["cmdline"]):
        line = " ".join(p.info["cmdline"] or [])
        if "cemlib run" in line and folder in line:
            return p
    return None


def watch(folder: str, out: Path, every: float = 5.0) -> None:
    """Sample the kernels below the ``cem run`` of ``folder`` until it ends (waits for it)."""
    stacks = Path(os.environ.get("CEM_STACKS_DIR") or out / "stacks")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    root = _run_of(folder)
    while root is None:
        time.sleep(2)
        root = _run_of(folder)
    with (out / "watch.log").open("a", buffering=1) as log:
        n = 0
        while root.is_running():
            try:
                kids = root.children(recursive=True)
            except psutil.Error:
                break
            jvms = [k for k in kids if k.name() == "java"]
            workers: set[int] = set()
            for j in jvms:
                with contextlib.suppress(psutil.Error):
                    workers.update(c.pid for c in j.children(recursive=True))
            for k in kids:
                try:
                    if "ipykernel_launcher" not in " ".join(k.cmdline()):
                        continue
                    status = Path(f"/proc/{k.pid}/status").read_text().splitlines()
                    hwm = int(next(s for s in status if s.startswith("VmHWM")).split()[1]) * 1024
                    jvm = sum(j.memory_info().rss for j in jvms if j.ppid() == k.pid)
                    wrk = sum(psutil.Process(w).memory_info().rss for w in workers
                              if psutil.pid_exists(w))  # fmt: skip
                    rss = k.memory_info().rss
                    log.write(f"{time.strftime('%H:%M:%S')} t={time.time() - t0:7.1f} kernel "
                              f"{k.pid} rss {rss / GIB:.3f} hwm {hwm / GIB:.3f} jvm "
                              f"{jvm / GIB:.2f} workers {wrk / GIB:.2f} cpu "
                              f"{sum(k.cpu_times()[:2]):.1f}\n")  # fmt: skip
                    dump = stacks / f"{k.pid}.txt"
                    if n % 2 == 0 and dump.exists():  # the hook is loaded: the signal is safe
                        with dump.open("a") as f:
                            f.write(f"=== {time.strftime('%H:%M:%S')} rss {rss / GIB:.3f}\n")
                        os.kill(k.pid, signal.SIGUSR2)
                except (psutil.Error, OSError, StopIteration):
                    pass
            n += 1
            time.sleep(every)


def steps(path: Path, depth: int = 4) -> list[str]:
    """Per dump of ``path``: ``HH:MM:SS rss <GiB>`` and the innermost ``depth`` cemlib frames
    of the thread holding most of them (the stage's own thread)."""
    lines = []
    for block in path.read_text().split("=== ")[1:]:
        head, _, rest = block.partition("\n")
        best: list[str] = []
        for thread in re.split(r"\n(?=Thread 0x|Current thread 0x)", rest):
            frames = re.findall(r'File "([^"]+)", line (\d+) in (\S+)', thread)
            ours = [f"{f.split('/cemlib/')[-1]}:{n}:{fn}" for f, n, fn in frames
                    if "/cemlib/" in f]  # fmt: skip
            if len(ours) > len(best):
                best = ours
        lines.append(f"{head} {' < '.join(best[:depth])}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("watch", help="sample the kernels of a running cem run")
    w.add_argument("folder", help="the run's folder (as engine_scale.py --folder names it)")
    w.add_argument("out", help="folder of watch.log (and the stacks without CEM_STACKS_DIR)")
    w.add_argument("--every", type=float, default=5.0, help="seconds between samples")
    s = sub.add_parser("steps", help="the cemlib step of each stack dump of a kernel")
    s.add_argument("stacks", help="<CEM_STACKS_DIR>/<kernel pid>.txt")
    s.add_argument("--depth", type=int, default=4, help="innermost cemlib frames shown")
    args = parser.parse_args()
    if args.cmd == "watch":
        watch(args.folder, Path(args.out), args.every)
    else:
        print("\n".join(steps(Path(args.stacks), args.depth)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
