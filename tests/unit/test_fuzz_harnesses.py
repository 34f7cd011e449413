"""A short run of each atheris harness in `fuzz/`: a few seconds of coverage-guided fuzzing
from the seeds must find no crash (the long runs are recorded in fuzz/RESULTS.md)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SECONDS = 3


@pytest.mark.parametrize("target", ["gguf", "modelfile", "gotemplate", "names"])
def test_short_fuzz_run_finds_no_crash(target: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "fuzz" / f"fuzz_{target}.py"), f"-max_total_time={SECONDS}",
         f"-artifact_prefix={tmp_path}/", "-print_final_stats=1"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    log = result.stdout + result.stderr
    assert not list(tmp_path.glob("crash-*")), log[-4000:]
    assert result.returncode == 0, log[-4000:]
    runs = re.search(r"Done (\d+) runs", log)
    assert runs and int(runs.group(1)) > 100, log[-4000:]
