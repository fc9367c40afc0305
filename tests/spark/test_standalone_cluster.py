"""The quality stage on a real standalone cluster: pyspark's own ``spark-class`` master and
one worker started on loopback by the fixture (stopped after, whatever happens), the driver
connecting to ``spark://127.0.0.1:<port>``; the counts are the DuckDB engine's."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import AS_OF, NEEDS_SPARK

pytest.importorskip("pyspark")
pytestmark = NEEDS_SPARK
START_TIMEOUT = 60  # seconds for the master to listen and the worker to register
DRIVER_TIMEOUT = 200  # seconds for the driver process (the stage of one table: 95 s at load 12)


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
    """``spark://127.0.0.1:<port>`` of a master and a worker started for the test (killed after,
    whatever happened)."""
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
                         "--cores", "2", "--memory", "1g", "--webui-port", str(_free_port())],
                        tmp_path / "worker.log", env)  # fmt: skip
        procs.append(worker)
        _wait_for(tmp_path / "worker.log", "Successfully registered with master", worker, deadline)
        yield url
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.timeout(300)  # three JVMs (master, worker, driver) and an executor: 2-2.5 min
def test_quality_on_a_standalone_cluster(cluster, world, tmp_path):  # at load 13 on 2 cores
    """The driver in its own process on the cluster's master; the stage's counts are the DuckDB
    engine's and the work ran on the worker's executor."""
    _, lake_root, reference = world
    lake = tmp_path / "lake"  # a copy: the driver writes clean/quarantine/quality there
    shutil.copytree(lake_root, lake)
    done = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("cluster_driver.py")), cluster, str(lake),
         "order_lines", AS_OF],
        capture_output=True, text=True, timeout=DRIVER_TIMEOUT,
        env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    want = reference.conservation.set_index("table").loc["order_lines"]
    assert got["master"] == cluster
    assert (got["rows_in"], got["clean"], got["quarantined"]) == (
        want["rows_in"], want["clean"], want["quarantined"],
    )  # fmt: skip
    assert want["quarantined"] > 0
    assert got["block_managers"] == 2  # the driver's and the worker's executor's
