"""The memory a stage may use, whether it will fit, DuckDB's share of it, and how long its
cells may run.

``cem run`` gives every stage kernel a budget, ``memory_limit`` of the run config (default
80 % of the machine's RAM). Before a stage starts, :func:`check_stage` estimates its peak
resident memory from the rows of the tables it reads (through the peaks measured by
``benchmarks/pipeline_scale.py`` at two or three sizes, see :class:`StageCost` and
:func:`calibrate`) and refuses a stage that cannot fit with one line naming the stage and
what to do, instead of letting its kernel die in the OOM killer an hour later.

The same measured sizes give each stage its expected duration (:data:`DURATIONS`): with
``execution_timeout: auto`` (the default) a cell may run :data:`TIMEOUT_FACTOR` times its
stage's expected duration for today's input rows, and never less than :data:`TIMEOUT_FLOOR`
(:func:`cell_timeout`), so a million-person stage is not stopped by a limit sized for twenty
thousand, and a hung cell is still stopped.

The budget and ``temp_directory`` reach the stage kernels as environment variables
(:data:`MEMORY_ENV`, :data:`TEMP_ENV`); :func:`configure_duckdb` gives each DuckDB connection
of a stage a share of the budget (:data:`DUCKDB_SHARE`) and a folder to spill to, so sorts,
joins and aggregations larger than that go to disk instead of RAM.
"""

from __future__ import annotations

import ctypes
import functools
import math
import os
import re
import resource
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MEMORY_ENV = "CEM_MEMORY_LIMIT"
"""Bytes a stage kernel may use, set by ``cem run`` for the kernels it starts."""
TEMP_ENV = "CEM_TEMP_DIRECTORY"
"""Folder DuckDB spills to, set by ``cem run`` (default ``<warehouse>.tmp``)."""
try:
    _LIBC = ctypes.CDLL("libc.so.6")
except OSError:  # pragma: no cover - not glibc (macOS, musl)
    _LIBC = None

DEFAULT_SHARE = 0.8  # of the machine's RAM: the default memory_limit
DUCKDB_SHARE = 0.25  # of the stage's budget, per DuckDB connection (the rest: pandas, models)
GIB = 1024**3

_UNITS = {
    "": 1, "b": 1,
    "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4,
    "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4,
}  # fmt: skip
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*$")


def machine_memory() -> int:
    """Total RAM of this machine in bytes (``/proc/meminfo``; 8 GiB when unknown)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # pragma: no cover - not Linux
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return 8 * GIB


def parse_size(value: Any) -> int:
    """Bytes of ``"12GB"``, ``"12 GiB"``, ``"500MB"``, ``"60%"`` (of RAM) or a number of bytes.

    ValueError for anything else (the run config turns it into one line naming the setting).
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a size like '12GB' or '60%', got {value!r}")
    if isinstance(value, int | float):
        if value <= 0:
            raise ValueError(f"expected a positive size, got {value!r}")
        return int(value)
    text = str(value).strip()
    if text.endswith("%"):
        try:
            share = float(text[:-1]) / 100
        except ValueError:
            raise ValueError(f"expected a size like '12GB' or '60%', got {value!r}") from None
        if not 0 < share <= 1:
            raise ValueError(f"a share of RAM must be in (0%, 100%], got {value!r}")
        return int(machine_memory() * share)
    m = _SIZE.match(text)
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError(f"expected a size like '12GB', '800MB' or '60%', got {value!r}")
    size = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    if size <= 0:
        raise ValueError(f"expected a positive size, got {value!r}")
    return size


def format_size(n_bytes: float) -> str:
    """``12.3 GiB`` / ``850 MiB``."""
    if n_bytes >= GIB:
        return f"{n_bytes / GIB:.1f} GiB"
    return f"{n_bytes / 1024**2:.0f} MiB"


def default_memory_limit() -> int:
    """The budget of a stage when the run config sets none: 80 % of the machine's RAM."""
    return int(machine_memory() * DEFAULT_SHARE)


def stage_budget() -> int:
    """Bytes this process (a stage kernel) may use: ``$CEM_MEMORY_LIMIT`` set by ``cem run``,
    else :func:`default_memory_limit`."""
    text = os.environ.get(MEMORY_ENV)
    if text:
        try:
            return parse_size(text)
        except ValueError:
            pass
    return default_memory_limit()


def duckdb_memory_limit(cap: str | int | None = None) -> str:
    """DuckDB's ``memory_limit`` for a connection of this stage: :data:`DUCKDB_SHARE` of the
    stage's budget, and at most ``cap`` (a connection's own default, e.g. Splink's 6GB)."""
    limit = int(stage_budget() * DUCKDB_SHARE)
    if cap is not None:
        limit = min(limit, parse_size(cap))
    return f"{max(limit // 1024**2, 64)}MiB"


def temp_directory(warehouse: str | Path | None = None) -> str | None:
    """Where DuckDB spills: ``$CEM_TEMP_DIRECTORY``, else ``<warehouse>.tmp`` (None: DuckDB's
    own default beside the database file, or none for an in-memory one)."""
    text = os.environ.get(TEMP_ENV)
    if text:
        return text
    if warehouse is not None and str(warehouse) not in ("", ":memory:"):
        return str(Path(warehouse).with_name(Path(warehouse).name + ".tmp"))
    return None


def configure_duckdb(
    con, *, warehouse: str | Path | None = None, cap: str | int | None = None
) -> dict[str, str]:
    """Set ``memory_limit`` and ``temp_directory`` of DuckDB connection ``con`` from the stage's
    budget (see :func:`duckdb_memory_limit`, :func:`temp_directory`); returns what was set.

    Insertion order stays preserved: the stages read tables in their stored order, and a seed
    and ``as_of`` must determine a run's results.
    """
    settings = {"memory_limit": duckdb_memory_limit(cap)}
    tmp = temp_directory(warehouse)
    if tmp:
        Path(tmp).mkdir(parents=True, exist_ok=True)
        settings["temp_directory"] = Path(tmp).as_posix()
    for name, value in settings.items():
        if name == "temp_directory":
            # DuckDB refuses to set its spill folder again once it spilled there, even to the
            # same folder (a stage run twice on one connection after a spill or an eviction)
            current = con.execute("SELECT current_setting('temp_directory')").fetchone()[0]
            if current == value:
                continue
        con.execute(f"SET {name} = '{value}'")
    return settings


def configure_warehouse(wh) -> dict[str, str]:
    """:func:`configure_duckdb` for a :class:`~cemlib.warehouse.Warehouse`'s connection."""
    return configure_duckdb(wh.con, warehouse=wh.path)


# -- the estimate -------------------------------------------------------------------------------
NOISE = 1.05
"""Run-to-run spread of a kernel's peak at one size (the same code at 200,000 people measured
2.76 / 2.81 GiB for identity, 3.02 / 3.07 / 3.12 for churn): every estimate is raised by it."""
BEYOND = 1.15
"""Past the largest measured size the growth of the last measured segment is raised by this
(a stage's cost curve bends down where parts are bounded, but a dead kernel costs more than a
refused run)."""


@dataclass(frozen=True)
class StageCost:
    """Peak resident memory of a stage kernel as a function of the row count of ``inputs``
    (``schema.table``; ``"people"`` = the synthetic world's people for the collection stage);
    the same curve serves for a stage's seconds (:data:`DURATIONS`).

    ``points``: measured ``(rows, peak bytes)`` at two or more sizes (:func:`calibrate`); the
    estimate runs through them (straight between neighbours: the curve flattens where parts of
    a stage are bounded, so one line through all sizes over-states the largest), continues past
    the largest with the last segment's slope raised by :data:`BEYOND` and is raised by
    :data:`NOISE` everywhere. Without points: ``fixed + bytes_per_row * rows``. ``fixed`` and
    ``bytes_per_row`` are the least-squares line through the points either way."""

    inputs: tuple[str, ...]
    fixed: float
    bytes_per_row: float
    measured: str = ""
    points: tuple[tuple[int, float], ...] = ()

    def estimate(self, rows: int) -> float:
        """Estimated peak bytes of the stage for ``rows`` input rows."""
        if len(self.points) < 2:
            return self.fixed + self.bytes_per_row * rows
        pts = sorted(self.points)
        (r0, b0), (r1, b1) = pts[0], pts[1]
        for lo, hi in zip(pts, pts[1:], strict=False):
            (r0, b0), (r1, b1) = lo, hi
            if rows <= r1:
                break
        slope = max((b1 - b0) / (r1 - r0), 0.0)
        if rows > r1:
            return NOISE * (b1 + BEYOND * slope * (rows - r1))
        return NOISE * max(b0 + slope * (rows - r0), 0.0)


_IDENTITY = ("crm_contacts", "online_orders", "pos_receipts", "web_events", "support_tickets")
_LINES = ("order_lines", "receipt_lines")
_STAGE_INPUTS: dict[str, tuple[str, ...]] = {
    "00_collect": ("people",),
    "01_quality": tuple(f"staging.{t}" for t in _IDENTITY + _LINES),
    "02_profiles": tuple(f"clean.{t}" for t in _IDENTITY),
    "03_churn": tuple(f"clean.{t}" for t in _LINES),
    "04_next_offer": tuple(f"clean.{t}" for t in (*_LINES, "web_events")),
    "05_monitor": tuple(f"staging.{t}" for t in _IDENTITY + _LINES),
}
#: Measured peaks of each stage's kernel, ``(input rows, GiB)``, all from
#: ``benchmarks/pipeline_scale.py`` (``--calibrate a.json b.json c.json`` prints this table):
#: 20,000 people (2026-12-04, ``b1265b9``), 200,000 people (2026-12-05 on a quiet machine,
#: ``a78695a``) and 1,000,000 people: collect, quality and monitor from the lead's run of
#: 2026-12-05 (03:14-04:25 UTC; its identity stage hit the cell timeout at 9.98 GiB, a lower
#: bound), identity and churn from an earlier session's complete run (code before issue 14).
#: Million-person row counts are taken as 5x the 200,000-person ones (the synthetic world's
#: rows grow with the people: 10.0x from 20,000 to 200,000). Churn at 200,000 people: 2.34 GiB,
#: ``pipeline_scale.py --people 200000 --stages 03`` on branch ``s03`` (issue 13, 2026-12-05;
#: 3.07 before); its million-person point is still the older, larger code's.
_MEASURED: dict[str, tuple[tuple[int, float], ...]] = {
    "00_collect": ((20_000, 0.60), (200_000, 1.99), (1_000_000, 8.16)),
    "01_quality": ((702_597, 0.92), (7_022_353, 2.56), (35_111_765, 8.68)),
    "02_profiles": ((416_032, 0.70), (4_167_536, 2.81), (20_837_680, 10.83)),
    "03_churn": ((276_195, 0.79), (2_750_698, 2.34), (13_753_490, 9.26)),
    "04_next_offer": ((543_728, 1.44), (5_438_509, 2.46)),
    "05_monitor": ((702_597, 0.37), (7_022_353, 0.71), (35_111_765, 0.92)),
}


def calibrate(
    points: Sequence[tuple[int, float]], inputs: tuple[str, ...], margin: float = BEYOND
) -> StageCost:
    """A stage's cost from measured ``(input rows, peak bytes)`` at two or more sizes: the
    estimate through the points (:meth:`StageCost.estimate`) and, for the record, the
    least-squares line (``fixed``, ``bytes_per_row``; the slope raised by ``margin``)."""
    if len(points) < 2:
        raise ValueError("calibration needs measurements at two sizes at least")
    n = len(points)
    mx = sum(r for r, _ in points) / n
    my = sum(b for _, b in points) / n
    sxx = sum((r - mx) ** 2 for r, _ in points)
    if sxx == 0:
        raise ValueError("calibration needs two different input sizes")
    slope = max(sum((r - mx) * (b - my) for r, b in points) / sxx, 0.0)
    fixed = max(my - slope * mx, 0.0)
    slope *= margin
    pts = sorted((int(r), float(b)) for r, b in points)
    sizes = ", ".join(f"{r:,} rows: {b / GIB:.2f} GiB" for r, b in pts)
    # two points at one size: their larger peak
    merged = {r: max(b for rr, b in pts if rr == r) for r, _ in pts}
    return StageCost(inputs, fixed, slope, measured=sizes, points=tuple(sorted(merged.items())))


def _cost(stage: str) -> StageCost:
    return calibrate([(r, g * GIB) for r, g in _MEASURED[stage]], _STAGE_INPUTS[stage])


#: every stage's cost, from :data:`_MEASURED`
COSTS: dict[str, StageCost] = {name: _cost(name) for name in _MEASURED}

_ADVICE = (
    "raise memory_limit (-p memory_limit=...) if the machine has it, run fewer people, or "
    "run the stage on a larger machine (engine: spark)"
)


#: Wall seconds of each stage at the sizes of :data:`_MEASURED`, from the same runs of
#: ``benchmarks/pipeline_scale.py`` (``"seconds"`` of its JSON): 20,000 and 200,000 people on a
#: quiet machine (2026-12-05), a million on a machine loaded by four other jobs (2026-12-05,
#: stages 02-05 continued from a kept copy with the cell timeout raised), so the million-person
#: points lean long, which is the side a time limit should err on.
_SECONDS: dict[str, tuple[float, float, float]] = {
    "00_collect": (11, 69, 1_463),
    "01_quality": (14, 38, 956),
    "02_profiles": (14, 94, 1_247),
    "03_churn": (34, 112, 434),
    "04_next_offer": (26, 274, 1_612),
    "05_monitor": (4, 5, 12),
}


def _duration(stage: str) -> StageCost:
    rows = [r for r, _ in _MEASURED[stage]]
    if len(rows) < 3:  # a million-person peak not measured: its rows are 5x the 200,000 ones
        rows.append(5 * rows[1])
    return calibrate(list(zip(rows, _SECONDS[stage], strict=True)), _STAGE_INPUTS[stage])


#: every stage's expected wall seconds by its input rows (a :class:`StageCost` in seconds)
DURATIONS: dict[str, StageCost] = {name: _duration(name) for name in _SECONDS}

#: Wall seconds of each stage with ``engine: spark`` (``local[2]`` on the same 2-core machine,
#: loaded by other jobs), ``(input rows, seconds)`` measured by ``benchmarks/engine_scale.py``:
#: 20,000 people for every stage (session 15, load 17-23) and 200,000 people for 00, 01
#: (session 15), 02 (session 17, the first complete run: 2,002 s at load 14-17), 03 and 04
#: (session 18, load 8-11, on the lake of a Spark run of 00-02). Spark's fixed costs (a JVM per
#: kernel, a job per step) make a small run many times slower than DuckDB's, and the stages
#: grow at their own rate: a limit sized on DuckDB's seconds stopped Spark stages that were
#: working. A stage measured at one size only takes DuckDB's curve scaled to that point.
_SPARK_SECONDS: dict[str, tuple[tuple[int, float], ...]] = {
    "00_collect": ((20_000, 53), (200_000, 304)),
    "01_quality": ((702_597, 359), (7_022_353, 854)),
    "02_profiles": ((416_032, 577), (4_192_633, 2_002)),
    "03_churn": ((276_195, 365), (2_750_698, 829)),
    "04_next_offer": ((543_728, 346), (5_451_864, 1_676)),
    "05_monitor": ((702_597, 14),),
}


def _spark_duration(stage: str) -> StageCost:
    points = list(_SPARK_SECONDS[stage])
    if len(points) < 2:  # DuckDB's curve through the one Spark point
        rows, seconds = points[0]
        duck = DURATIONS[stage]
        scale = seconds / duck.estimate(rows)
        points = [(r, b * scale * NOISE) for r, b in duck.points]
    return calibrate(points, _STAGE_INPUTS[stage])


#: every stage's expected wall seconds on Spark by its input rows
SPARK_DURATIONS: dict[str, StageCost] = {name: _spark_duration(name) for name in _SPARK_SECONDS}

AUTO = "auto"
"""``execution_timeout: auto``: each stage's cell limit from its expected duration."""
TIMEOUT_FLOOR = 1800.0
"""The least a cell may run under ``auto``: the fixed limit of earlier versions."""
TIMEOUT_FACTOR = 5.0
"""How many times its stage's expected duration a cell may run under ``auto``. The same stage
at the same size took up to 5x longer on this 2-core machine when other jobs shared it (one
fit: 25.5 CPU s quiet, 134.9 loaded), and a scheduled job must not fail for a busy night."""


def input_rows(
    inputs: Sequence[str], warehouse: str | Path | None, n_people: int | None
) -> int | None:
    """Rows of ``inputs`` in the warehouse (read-only, closed again); None when a table is
    missing (the stage's predecessor has not run yet) or the warehouse cannot be opened."""
    if list(inputs) == ["people"]:
        return n_people
    if warehouse is None or not Path(warehouse).is_file():
        return None
    stat = Path(warehouse).stat()  # the memory check and the cell limit read the same counts
    return _counted_rows(tuple(inputs), str(warehouse), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=32)
def _counted_rows(inputs: tuple[str, ...], warehouse: str, mtime_ns: int, size: int) -> int | None:
    """:func:`input_rows` of a warehouse file as it is at (``mtime_ns``, ``size``)."""
    import duckdb

    try:
        con = duckdb.connect(str(warehouse), read_only=True)
    except duckdb.Error:
        return None
    try:
        have = {
            f"{s}.{t}"
            for s, t in con.execute(
                "SELECT schema_name, table_name FROM duckdb_tables()"
            ).fetchall()
        }
        present = [name for name in inputs if name in have]
        if not present:
            return None
        return sum(
            con.execute(f'SELECT count(*) FROM {s}."{t}"').fetchone()[0]
            for s, t in (name.split(".", 1) for name in present)
        )
    finally:
        con.close()


def estimate(
    stage: str,
    *,
    warehouse: str | Path | None,
    n_people: int | None = None,
    synthetic: bool = True,
    costs: Mapping[str, StageCost] = COSTS,
) -> tuple[float, int] | None:
    """(estimated peak bytes, input rows) of ``stage``; None when it cannot be estimated."""
    cost = costs.get(stage)
    if cost is None:
        return None
    if cost.inputs == ("people",) and not synthetic:
        return None  # own files are read and written in chunks: bounded by the chunk size
    rows = input_rows(cost.inputs, warehouse, n_people)
    if rows is None:
        return None
    return cost.estimate(rows), rows


def refusal(
    stage: str,
    limit: int,
    *,
    warehouse: str | Path | None,
    n_people: int | None = None,
    synthetic: bool = True,
    costs: Mapping[str, StageCost] = COSTS,
) -> str | None:
    """One line saying why ``stage`` cannot fit in ``limit`` bytes, or None when it can."""
    found = estimate(
        stage, warehouse=warehouse, n_people=n_people, synthetic=synthetic, costs=costs
    )
    if found is None:
        return None
    need, rows = found
    if need <= limit:
        return None
    what = "people" if costs[stage].inputs == ("people",) else "input rows"
    return (
        f"does not fit: {stage} needs about {format_size(need)} for {rows:,} {what}, "
        f"memory_limit is {format_size(limit)}; {_ADVICE}"
    )


def check_stage(stage, cfg, warehouse: str | Path | None = None) -> str | None:
    """The runner's hook before a stage starts: the refusal line, or None to run it.

    ``warehouse``: the file the stage will read, the run's working copy (it holds what the
    stages before wrote in this run); default ``cfg.warehouse_path``.
    """
    return refusal(
        stage.name,
        cfg.memory_limit_bytes,
        warehouse=warehouse or cfg.warehouse_path,
        n_people=cfg.n_people,
        synthetic=cfg.source == "synthetic",
    )


WORKERS_ENV = "CEM_WORKERS"
"""At most this many processes of a stage work side by side (:func:`parallel_workers`); unset:
as many as the machine's cores and the stage's budget allow."""


def release() -> None:
    """Return cached free memory of pyarrow and of the C heap to the operating system.

    pyarrow's allocator and glibc's malloc both keep freed pages for reuse; between the large
    steps of a stage (generation, identity's preparation and its truth evaluation) that cached
    memory only raises the kernel's peak."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


EVICT_LIMIT = "1MiB"
"""DuckDB's ``memory_limit`` for the moment :func:`evict_duckdb_cache` lowers it."""


def evict_duckdb_cache(con, memory_limit: str) -> None:
    """Return the table blocks DuckDB keeps cached on connection ``con`` to the system.

    After a scan DuckDB keeps the blocks it read (and its allocator their pages) until its
    ``memory_limit`` is reached: with the limit a stage gives it (:func:`configure_duckdb`) that
    cache grows with the tables read and stays resident under every later step of the stage
    (identity at 100,000 people: 0.22 GiB after reading its sources). The limit is lowered to
    :data:`EVICT_LIMIT` for a moment, which evicts every block not in use (a limit above what
    is cached would evict nothing), and set back to
    ``memory_limit`` (the value the caller configured: DuckDB reports its setting rounded, so
    it is not read back). Nothing is lost: an evicted block is read again when needed. When
    DuckDB cannot go that low (pinned memory) the limit is set back all the same."""
    import duckdb

    try:
        con.execute(f"SET memory_limit = '{EVICT_LIMIT}'")
    except duckdb.Error:  # pragma: no cover - pinned memory above the lowered limit
        pass
    finally:
        con.execute(f"SET memory_limit = '{memory_limit}'")


def peak_gib() -> float:
    """Peak resident memory of this process so far, GiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def rss_gib() -> float:
    """Current resident memory, GiB (NaN where ``/proc`` is missing)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * resource.getpagesize() / 1024**3
    except OSError:  # pragma: no cover - not Linux
        return float("nan")


def usable_cpus() -> int:
    """Cores this process may run on (``os.sched_getaffinity``; ``os.cpu_count`` elsewhere)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # pragma: no cover - not Linux
        return max(os.cpu_count() or 1, 1)


def fork_hazard() -> str | None:
    """Why this process should not be forked now, or None when a forked worker is safe.

    A fork copies only the calling thread; a child of a process whose other threads hold locks
    or native state it cannot rebuild may crash or hang. The case met: a process holding a
    Spark session or its JVM (pyspark's py4j gateway and its threads, the JVM a child process)
    forked a Great Expectations worker, which died of a segmentation fault in its garbage
    collection (CI, ``tests/spark``). Hazards looked for, without importing anything:

    * pyspark's gateway or an active Spark context in this process (a stopped session keeps
      its JVM and gateway for the next one, so stopping it is not enough);
    * a ``java`` process among this process's descendants (a JVM started another way);
    * no ``fork`` start method (Windows, where worker pools here are not used).

    DuckDB's own thread pool is no hazard: its workers are idle between queries, and the
    forked children never touch the parent's connection.
    """
    import multiprocessing

    if "fork" not in multiprocessing.get_all_start_methods():  # pragma: no cover - Windows
        return "no fork start method"
    context = sys.modules.get("pyspark.context")
    spark_context = getattr(context, "SparkContext", None)
    if spark_context is not None and (
        getattr(spark_context, "_gateway", None) is not None
        or getattr(spark_context, "_active_spark_context", None) is not None
    ):
        return "a Spark JVM in this process (pyspark's gateway)"
    java = _java_descendants()
    if java:
        return f"a JVM below this process (pid {java[0]})"
    return None


def _java_descendants() -> list[int]:
    """Pids of ``java`` processes among this process's descendants (from ``/proc``)."""
    children: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:  # pragma: no cover - not Linux
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as f:
                stat = f.read()
        except OSError:  # gone meanwhile
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses
        head, _, rest = stat.rpartition(")")
        pid, name = int(entry), head.partition("(")[2]
        fields = rest.split()
        if len(fields) < 2:
            continue
        names[pid] = name
        children.setdefault(int(fields[1]), []).append(pid)
    found, todo = [], list(children.get(os.getpid(), []))
    while todo:
        pid = todo.pop()
        if names.get(pid) == "java":
            found.append(pid)
        todo.extend(children.get(pid, []))
    return sorted(found)


def fork_workers(stage: str, rows: int | None, per_worker_bytes: float) -> int:
    """:func:`parallel_workers` for worker *processes* forked from this one: 1 (no fork)
    while :func:`fork_hazard` names a hazard."""
    if fork_hazard() is not None:
        return 1
    return parallel_workers(stage, rows, per_worker_bytes)


def parallel_workers(
    stage: str, rows: int | None, per_worker_bytes: float, *, limit: int | None = None
) -> int:
    """How many processes of ``stage`` may work side by side, the calling one included
    (1: run the parts one after another in the caller).

    The stage's own peak for ``rows`` input rows (:data:`COSTS`, the serial run's measured
    curve; 0 when the stage or ``rows`` is unknown) stays in the caller; each further process
    adds ``per_worker_bytes`` (the peak of one worker, measured by the caller's benchmark).
    A worker that would not fit in ``limit`` (default :func:`stage_budget`, the stage's
    ``memory_limit``) is not counted, nor one beyond the usable cores (:func:`usable_cpus`)
    or beyond ``$CEM_WORKERS``.
    """
    budget = stage_budget() if limit is None else int(limit)
    cost = COSTS.get(stage)
    base = cost.estimate(rows) if cost is not None and rows is not None else 0.0
    n = usable_cpus()
    cap = os.environ.get(WORKERS_ENV, "").strip()
    if cap.isdigit():
        n = min(n, max(int(cap), 1))
    if per_worker_bytes > 0:
        room = int(max(budget - base, 0.0) // per_worker_bytes)
        n = min(n, 1 + room)
    return max(n, 1)


def kernel_environment(cfg) -> dict[str, str]:
    """The variables a stage kernel inherits: its budget and where DuckDB spills."""
    env = {MEMORY_ENV: str(cfg.memory_limit_bytes)}
    tmp = cfg.temp_directory or temp_directory(cfg.warehouse_path)
    if tmp:
        env[TEMP_ENV] = str(tmp)
    return env


def export(cfg) -> dict[str, str | None]:
    """Set :func:`kernel_environment` in ``os.environ``; returns the previous values."""
    before: dict[str, str | None] = {}
    for k, v in kernel_environment(cfg).items():
        before[k] = os.environ.get(k)
        os.environ[k] = v
    return before


def restore(before: Mapping[str, str | None]) -> None:
    """Undo :func:`export`."""
    for k, v in before.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def cell_timeout(stage, cfg, warehouse: str | Path | None = None) -> tuple[float | None, str]:
    """(seconds a cell of ``stage`` may run, how the limit was chosen) for the run config.

    A number or ``None`` in ``execution_timeout`` is used as it is (note ``""``). ``auto``:
    :data:`TIMEOUT_FACTOR` x the stage's expected duration for the rows it reads
    (:data:`DURATIONS`; ``warehouse``: the run's working copy), at least :data:`TIMEOUT_FLOOR`;
    the floor alone when the duration cannot be estimated (the collection stage on one's own
    files, a stage whose inputs are not written yet). With ``engine: spark`` the rows are
    counted in the lake, where that engine's stages read them, and the duration is Spark's
    (:data:`SPARK_DURATIONS`).
    """
    setting = cfg.execution_timeout
    if setting != AUTO:
        return setting, ""
    spark = getattr(cfg, "engine", "duckdb") == "spark"
    costs = SPARK_DURATIONS if spark else DURATIONS
    if spark:
        found = None
        cost = costs.get(stage.name)
        if cost is not None and not (cost.inputs == ("people",) and cfg.source != "synthetic"):
            rows = lake_rows(cost.inputs, cfg.engine_parameters()["lake"], cfg.n_people)
            found = None if rows is None else (cost.estimate(rows), rows)
    else:
        found = estimate(
            stage.name,
            warehouse=warehouse or cfg.warehouse_path,
            n_people=cfg.n_people,
            synthetic=cfg.source == "synthetic",
            costs=costs,
        )
    if found is None:
        return TIMEOUT_FLOOR, f"execution_timeout auto: {TIMEOUT_FLOOR:,.0f} s, the floor"
    expected, rows = found
    limit = max(TIMEOUT_FLOOR, TIMEOUT_FACTOR * expected)
    what = "people" if costs[stage.name].inputs == ("people",) else "input rows"
    where = " on Spark" if spark else ""
    limit = float(math.ceil(limit))  # whole seconds: what the notebook client takes
    return limit, (
        f"execution_timeout auto: {limit:,.0f} s ({TIMEOUT_FACTOR:g} x the {expected:,.0f} s "
        f"expected{where} for {rows:,} {what}, at least {TIMEOUT_FLOOR:,.0f})"
    )


def lake_rows(inputs: Sequence[str], lake: str, n_people: int | None) -> int | None:
    """Rows of ``inputs`` (``schema.table``) in the lake folder ``lake``, from the Parquet
    footers (nothing read but them); None when none of them is written yet or the lake is
    not a folder of this machine (an object store: the floor serves)."""
    if list(inputs) == ["people"]:
        return n_people
    if "://" in lake and not lake.startswith("file://"):
        return None
    import duckdb

    root = Path(lake.removeprefix("file://"))
    files = [
        sorted((root / schema / table).glob("*.parquet"))
        for schema, table in (name.split(".", 1) for name in inputs)
    ]
    files = [str(f) for group in files for f in group]
    if not files:
        return None
    with duckdb.connect(":memory:") as con:
        (rows,) = con.execute(
            "SELECT sum(num_rows) FROM (SELECT DISTINCT file_name, row_group_id, "
            "row_group_num_rows AS num_rows FROM parquet_metadata(?))",
            [files],
        ).fetchone()
    return int(rows or 0)


class Beside:
    """Run functions in one thread beside the caller, in the order submitted, when
    ``n_workers > 1``; else each at once, in the caller.

    ``submit(fn, *a)`` returns a future whose ``result()`` is ``fn(*a)`` (an error raised in
    ``fn`` is raised by ``result()``). Closing waits for what is running and cancels what has
    not started."""

    def __init__(self, n_workers: int = 1):
        self.pool = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="cem-beside")
            if n_workers > 1
            else None
        )

    def submit(self, fn, *args, **kwargs) -> Future:
        if self.pool is None:
            done: Future = Future()
            try:
                done.set_result(fn(*args, **kwargs))
            except BaseException as err:  # noqa: BLE001 - raised again by result()
                done.set_exception(err)
            return done
        return self.pool.submit(fn, *args, **kwargs)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Beside:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
