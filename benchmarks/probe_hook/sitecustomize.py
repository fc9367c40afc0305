"""Loaded by every Python process started with this folder on ``PYTHONPATH`` (a ``cem run``, its
Jupyter kernels, Spark's Python workers): with ``CEM_STACKS_DIR`` set, ``SIGUSR2`` makes the
process write every thread's Python stack to ``$CEM_STACKS_DIR/<pid>.txt`` (faulthandler: no
thread of its own, nothing else changes). ``benchmarks/engine_stage_probe.py watch`` sends it."""

import os

_folder = os.environ.get("CEM_STACKS_DIR")
if _folder:
    import faulthandler
    import signal

    try:
        _out = open(os.path.join(_folder, f"{os.getpid()}.txt"), "a")  # noqa: SIM115
        faulthandler.register(signal.SIGUSR2, file=_out, all_threads=True)
    except OSError:
        pass
