"""bench/gpu_check.py runs end to end on a CPU (tiny model), so the one GPU run cannot
fail on plumbing: server start, import, three placements, the table in $OUT."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_gpu_check_cpu_smoke_writes_its_table(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "gpu_check.py"), "--cpu-smoke"],
        env={**os.environ, "OUT": str(tmp_path)}, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    table = (tmp_path / "gpu_check.txt").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ") and "CPU" in line]
    assert [row.split(" | ")[0].split(" (")[0] for row in rows] == ["| auto", "| partial",
                                                                    "| cpu"]
    assert all("100% CPU" in row for row in rows)
    assert "engine: xllamacpp" in table
    assert (tmp_path / "serve-auto.log").exists()
