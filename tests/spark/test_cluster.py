"""The quality stage on a real standalone cluster: pyspark's own ``spark-class`` master and
one worker started on loopback by the fixture (stopped after, whatever happens), the driver
connecting to ``spark://127.0.0.1:<port>``; the counts are the DuckDB engine's."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cemlib.engine import Lake, spark_session, stop_spark
from cemlib.quality.sparkstage import SparkQualityStage

from .conftest import AS_OF

pytestmark = pytest.mark.spark
START_TIMEOUT = 90  # seconds for the master to listen and the worker to register


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args: list[str], log: Path, env: dict) -> subprocess.Popen:
    import pyspark

    spark_class = Path(pyspark.__file__).parent / "bin" / "spark-class"
    with open(log, "wb") as out:
        return subprocess.Popen(
            [str(spark_class), *args], stdout=out, stderr=subprocess.STDOUT, env=env,
            start_new_session=True,
        )  # fmt: skip


def _wait_for(log: Path, text: str, proc: subprocess.Popen, deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{log.name}: exited {proc.returncode}: {log.read_text()[-2000:]}")
        if log.exists() and text in log.read_text(errors="replace"):
            return
        time.sleep(0.5)
    pytest.fail(f"{log.name}: no {text!r} within {START_TIMEOUT} s: {log.read_text()[-2000:]}")


@pytest.fixture
def cluster(tmp_path):
    """``spark://127.0.0.1:<port>`` of a master and a 1-core worker started for the test."""
    import pyspark

    port = _free_port()
    env = {**os.environ, "SPARK_HOME": str(Path(pyspark.__file__).parent),
           "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable,
           "SPARK_LOG_DIR": str(tmp_path), "SPARK_WORKER_DIR": str(tmp_path / "work")}  # fmt: skip
    url = f"spark://127.0.0.1:{port}"
    procs = []
    try:
        deadline = time.monotonic() + START_TIMEOUT
        master = _start(["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                         "--port", str(port), "--webui-port", str(_free_port())],
                        tmp_path / "master.log", env)  # fmt: skip
        procs.append(master)
        _wait_for(tmp_path / "master.log", "I have been elected leader", master, deadline)
        worker = _start(["org.apache.spark.deploy.worker.Worker", url, "--host", "127.0.0.1",
                         "--cores", "1", "--memory", "1g", "--webui-port", str(_free_port())],
                        tmp_path / "worker.log", env)  # fmt: skip
        procs.append(worker)
        _wait_for(tmp_path / "worker.log", "Successfully registered with master", worker, deadline)
        yield url
    finally:
        stop_spark()
        for proc in reversed(procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def test_quality_on_a_standalone_cluster(cluster, world, tmp_path):
    _, lake_root, reference = world
    lake = Lake(lake_root, spark_master=cluster)
    spark = spark_session(cluster, memory_limit=2**30, conf={"spark.executor.memory": "512m",
                                                            "spark.cores.max": "1"})  # fmt: skip
    assert spark.sparkContext.master == cluster
    got = SparkQualityStage(tables=["order_lines"], progress=False).run_spark(
        spark, lake, run_id="t", as_of=AS_OF
    )
    want = reference.conservation.set_index("table").loc["order_lines"]
    mine = got.conservation.set_index("table").loc["order_lines"]
    assert (mine["rows_in"], mine["clean"], mine["quarantined"]) == (
        want["rows_in"], want["clean"], want["quarantined"],
    )  # fmt: skip
    assert want["quarantined"] > 0
    # the work ran on the worker's executor, not in the driver
    executors = spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size()
    assert executors == 2  # the driver and the worker's executor
