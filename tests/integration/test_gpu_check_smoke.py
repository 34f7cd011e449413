"""The GPU proofs run end to end on a CPU (tiny model), so the few minutes of a lent GPU
cannot be lost to plumbing: bench/gpu_check.py (server start, import, three placements,
the table in $OUT) and bench/gpu_engines.py (an engine build installed with `pasture
engine install` — here PyPI's CPU wheel standing in for the CUDA one —, served through,
and measured against the same build in-process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def bench(script: str, out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # An engines directory of its own: none of this machine's builds take part.
    env = {**os.environ, "OUT": str(out), "PASTURE_ENGINES": str(out / "engines")}
    return subprocess.run([sys.executable, str(REPO / "bench" / script), "--cpu-smoke", *args],
                          env=env, capture_output=True, text=True, timeout=300)


def test_gpu_check_cpu_smoke_writes_its_table(tmp_path: Path) -> None:
    result = bench("gpu_check.py", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    table = (tmp_path / "gpu_check.txt").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ") and "CPU" in line]
    assert [row.split(" | ")[0].split(" (")[0] for row in rows] == ["| auto", "| partial",
                                                                    "| cpu"]
    assert all("100% CPU" in row for row in rows)
    assert "engine: xllamacpp" in table
    assert (tmp_path / "serve-auto.log").exists()


def test_gpu_engines_cpu_smoke_serves_through_the_installed_build(
        tmp_path: Path, default_wheel: Path) -> None:
    result = bench("gpu_engines.py", tmp_path, "--wheel", str(default_wheel))
    assert result.returncode == 0, result.stdout + result.stderr
    report = (tmp_path / "gpu_engines.txt").read_text()
    name = "cpu-" + default_wheel.name.split("-")[1]  # what `engine install` names it
    checks = [line for line in report.splitlines() if line.startswith("- ")]
    assert checks and all(line.startswith("- ok: ") for line in checks), report
    assert f"- ok: no num_gpu: /api/ps says engine {name}, 100% CPU" in report
    assert f"- ok: num_gpu 0: /api/ps says engine {name}, 100% CPU" in report
    assert f"/engines/{name}/site/xllamacpp/__init__.py" in report
    assert f"CPU placements use: {name}" in report  # `pasture engine list`, as printed
    rows = {line.split(" | ")[0][2:]: line.split(" | ")[1:]
            for line in report.splitlines() if line.startswith("| ") and " tok/s" not in line}
    assert list(rows) == ["Pasture, no num_gpu", "engine in-process, n_gpu_layers 999",
                          "Pasture, num_gpu 0"]
    assert all(cells[0] == name for cells in rows.values())
    assert rows["engine in-process, n_gpu_layers 999"][-1] == "1.000, 1.000 |"
    assert all(float(cells[2]) > 0 and cells[4] == "8, 8" for cells in rows.values())
    # Greedy from the same build with the same prompts: Pasture adds nothing to the tokens.
    assert "same greedy text from Pasture and the in-process engine: yes" in report
    assert (tmp_path / "serve-engines.log").exists() and (tmp_path / "in-process.log").exists()
