"""One writer of a warehouse at a time: a lock file with the holder's pid and run id."""

from __future__ import annotations

import json
import subprocess
import sys

from cemlib.lock import lock_path
from tests.reliability.conftest import cem, one_line_error


def test_second_writer_gets_one_line_naming_the_holder(tmp_path, crm_dir):
    wh = tmp_path / "w.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock_path(wh).write_text(
            json.dumps({"pid": holder.pid, "run_id": "night-1", "command": "cem run"})
        )
        proc = cem("collect", "--source", crm_dir, "--warehouse", wh, "--quiet")
        err = one_line_error(proc, str(holder.pid), "night-1", "in use")
        assert "Conflicting lock" not in err
        assert not wh.exists()
    finally:
        holder.kill()
        holder.wait()


def test_stale_lock_of_a_dead_pid_is_taken_over_with_a_note(tmp_path, crm_dir):
    wh = tmp_path / "w.duckdb"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock_path(wh).write_text(json.dumps({"pid": dead.pid, "run_id": "crashed", "command": "x"}))
    proc = cem("collect", "--source", crm_dir, "--warehouse", wh, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "stale lock" in proc.stderr and str(dead.pid) in proc.stderr
    assert wh.exists() and not lock_path(wh).exists()


def test_lock_released_after_a_failed_command(tmp_path, crm_dir):
    wh = tmp_path / "w.duckdb"
    (crm_dir / "order_lines.csv").write_text("order_id,sku,quantity,price\n")  # no header table
    proc = cem("collect", "--source", crm_dir, "--warehouse", wh, "--quiet")
    assert proc.returncode == 2
    assert not lock_path(wh).exists()


def test_cem_run_refused_while_the_warehouse_is_in_use(tmp_path):
    wh = tmp_path / "w.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock_path(wh).write_text(
            json.dumps({"pid": holder.pid, "run_id": "r0", "command": "cem collect"})
        )
        proc = cem("run", "-p", f"warehouse={wh}", "--out", tmp_path / "reports", "--no-progress")
        one_line_error(proc, str(holder.pid), "r0", "cem collect")
    finally:
        holder.kill()
        holder.wait()
