"""The world the ``engine_*_parity.py`` benchmarks share, and how they watch Spark's processes.

:func:`build_world` builds (once, in a folder) a synthetic world on the DuckDB engine and copies
its tables to a lake, so that both engines read the same inputs; :func:`children` reads the
peak memory and CPU seconds of the JVM and the Python workers a Spark session started.
"""

from __future__ import annotations

from pathlib import Path

import psutil

AS_OF = "2025-06-30"
GIB = 2**30


def children() -> dict[str, tuple[float, float]]:
    """``name:pid -> (peak resident GiB, CPU seconds)`` of this process's descendants."""
    out = {}
    for p in psutil.Process().children(recursive=True):
        try:
            status = Path(f"/proc/{p.pid}/status").read_text().splitlines()
            hwm = int(next(line for line in status if line.startswith("VmHWM")).split()[1])
            t = p.cpu_times()
            out[f"{p.name()}:{p.pid}"] = (round(hwm / 2**20, 2), round(t.user + t.system, 1))
        except (psutil.Error, OSError, StopIteration):
            pass
    return out


def build_world(folder: Path, people: int, seed: int, *, identity: bool = True) -> None:
    """Collect and quality (and with ``identity``, identity) on DuckDB into
    ``folder/cem.duckdb`` at :data:`AS_OF`, then ``clean.*``, ``truth.*`` (and ``identity.*``)
    copied to the lake ``folder/lake``. Without ``identity`` the lake has no ``identity.*``:
    the identity benchmark resolves the records on each engine."""
    import cemlib.collect
    import cemlib.identity
    import cemlib.quality
    from cemlib.collect.sparklake import copy_to_lake
    from cemlib.engine import Lake
    from cemlib.warehouse import Warehouse

    folder.mkdir(parents=True, exist_ok=True)
    lake = Lake(folder / "lake")
    cemlib.collect.run(folder / "cem.duckdb", run_id="w", as_of=AS_OF, seed=seed,
                       n_people=people, progress=False, lake=lake)  # fmt: skip
    with Warehouse(folder / "cem.duckdb") as wh:
        cemlib.quality.run(wh, run_id="w", as_of=AS_OF, progress=False)
        schemas = ("clean", "truth")
        if identity:
            cemlib.identity.run(wh, run_id="w", as_of=AS_OF, seed=seed, identity_mode="full")
            schemas = ("clean", "identity", "truth")
        copy_to_lake(wh, lake, run_id="w", schemas=schemas)


def world_arguments(parser) -> None:
    """The arguments every parity script takes: the world's folder, its size, seed and the
    Spark master."""
    parser.add_argument("folder", type=Path)
    parser.add_argument("--people", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--master", default="local[2]")
