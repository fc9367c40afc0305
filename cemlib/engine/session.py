"""The Spark session of a process, built in one place.

``spark_session(master, memory_limit=...)`` returns the active session when its master matches,
else builds one with defaults that suit a small machine (shuffle partitions from the cores it
has, driver memory from the stage's memory budget, the UI off, UTC as the session time zone so
timestamps read from Parquet compare as the DuckDB engine compares them). On a cluster the
master is ``spark://host:7077``, ``yarn`` or ``k8s://...``; its own settings win over these
defaults (``spark-defaults.conf``, ``--conf`` of a submitted job).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from typing import Any

from cemlib.errors import InputError

#: the values the ``engine`` setting takes
ENGINES: tuple[str, ...] = ("duckdb", "spark")
#: the stages that run on Spark so far (keys of the stage registry)
SPARK_STAGES: tuple[str, ...] = ("00", "01", "02", "03", "04", "05")
APP_NAME = "cemlib"
_LOCAL = re.compile(r"^local(\[(\*|\d+)(,\s*\d+)?\])?$")


def require_pyspark() -> Any:
    """The ``pyspark`` module; InputError (one line) when the extra or Java is missing."""
    try:
        import pyspark
    except ImportError:
        raise InputError(
            'engine spark needs pyspark: pip install "cemlib[spark]" (or make venv-spark)'
        ) from None
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        raise InputError("engine spark needs Java 17 or newer: no java on PATH, JAVA_HOME unset")
    return pyspark


def spark_refusal(stage_keys: list[str]) -> str | None:
    """The one-line refusal of a run with ``engine: spark`` that selects a stage not yet on
    Spark, or None when every selected stage runs there."""
    off = [k for k in stage_keys if k not in SPARK_STAGES]
    if not off:
        return None
    return (
        f"engine spark runs stages {', '.join(SPARK_STAGES)} so far; "
        f"run {', '.join(off)} with engine duckdb"
    )


def local_cores(master: str) -> int:
    """The cores a ``local[...]`` master uses (the machine's for ``local[*]``); 0 otherwise."""
    m = _LOCAL.match(master.strip())
    if not m:
        return 0
    n = m.group(2)
    return os.cpu_count() or 1 if n in (None, "*") else int(n)


def splink_jar() -> str | None:
    """The jar of Splink's Spark SQL similarity functions for this Spark version (the identity
    model on ``SparkAPI`` needs it on the session's class path), None without Splink."""
    try:
        from splink.backends.spark import similarity_jar_location
    except ImportError:  # pragma: no cover - Splink is a dependency
        return None
    return similarity_jar_location()


def session_conf(master: str, memory_limit: int | None = None, *, ui: bool = False) -> dict:
    """The settings :func:`spark_session` gives a new session (shown in the docs and tests)."""
    conf = {
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": "true" if ui else "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.sql.adaptive.enabled": "true",
    }
    jar = splink_jar()
    if jar:  # Splink's string similarities (jaro_winkler, ...) as Spark SQL functions
        conf["spark.jars"] = jar
    cores = local_cores(master)
    if cores:  # one machine: a few partitions per core, not the 200 meant for a cluster
        conf["spark.driver.bindAddress"] = "127.0.0.1"  # nothing listens beyond loopback
        conf["spark.driver.host"] = "127.0.0.1"
        conf["spark.sql.shuffle.partitions"] = str(max(2, 2 * cores))
        conf["spark.default.parallelism"] = str(max(2, 2 * cores))
        if memory_limit:  # local mode: the driver is the executor; half the stage's budget
            conf["spark.driver.memory"] = f"{max(512, memory_limit // 2 // 2**20)}m"
            # what a collect may bring to the driver: its heap, not Spark's fixed 1 GiB (sized
            # for a cluster's driver): stage 02 collects its records and scored pairs
            conf["spark.driver.maxResultSize"] = conf["spark.driver.memory"]
    return conf


def spark_session(
    master: str = "local[*]",
    *,
    memory_limit: int | None = None,
    ui: bool = False,
    app_name: str = APP_NAME,
    conf: dict | None = None,
):
    """The process's Spark session on ``master`` (built on first use, reused after).

    ``memory_limit``: the stage's budget in bytes (``cem run`` sets it; default the budget of
    :func:`cemlib.budget.stage_budget`); ``conf``: extra settings, applied last.
    """
    require_pyspark()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        if active.sparkContext.master == master:
            return active
        active.stop()
    if memory_limit is None:
        from cemlib.budget import stage_budget

        memory_limit = stage_budget()
    if local_cores(master):
        # the Python workers of pandas UDFs (identity's normalizers) run this interpreter, whose
        # packages cemlib needs, not the first python3 on PATH (pyspark reads PYSPARK_PYTHON
        # when the context starts; on a cluster the workers' Python is the cluster's setting)
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name).master(master)
    for key, value in {**session_conf(master, memory_limit, ui=ui), **(conf or {})}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def stop_spark() -> None:
    """Stop the process's Spark session, if any (its JVM stays for the next one)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        return
    active = SparkSession.getActiveSession()
    if active is not None:
        active.stop()
