"""The scale benchmark runs end to end on tiny worlds (its figures are printed, not asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "synth_scale.py"


def test_synth_scale_prints_figures():
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--people", "300", "600", "--no-load"],
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "generate s" in out and "peak GiB" in out
    assert "rows at 600 people" in out and "web_events" in out
    assert "extrapolated to 1,000,000 people" in out
