"""`pasture bench MODEL` against the live server: a table, a JSON file and a chart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.integration.conftest import MODEL, REPO, RunningServer


def _pasture(server: RunningServer, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PASTURE_HOST": server.url.removeprefix("http://"),
           "PYTHONPATH": str(REPO / "src")}
    return subprocess.run([sys.executable, "-m", "pasture", *args], env=env, text=True,
                          capture_output=True, timeout=600, cwd=cwd)


def test_bench_measures_a_model_and_writes_json_and_a_chart(server: RunningServer,
                                                            tmp_path: Path) -> None:
    result = _pasture(server, "bench", MODEL, "--clients", "2,1", "--tokens", "8", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "time to first token" in result.stdout and "2 at once" in result.stdout
    report = json.loads((tmp_path / "pasture-bench-smollm2-135m.json").read_text())
    assert report["model"] == MODEL
    assert report["load_seconds"] > 0 and report["ttft_seconds"] > 0
    assert report["prompt_tokens"] > 100 and report["prefill_tokens_per_second"] > 0
    for task in ("chat", "echo"):
        for kind in ("off", "ngram"):
            assert report["decode_tokens"][task][kind] > 1
            assert report["decode_tokens_per_second"][task][kind] > 0
    assert list(report["aggregate_tokens_per_second"]["ngram"]) == ["1", "2"]
    assert (tmp_path / "pasture-bench-smollm2-135m.png").read_bytes()[:4] == b"\x89PNG"


def test_bench_refuses_bad_arguments_and_unknown_models(server: RunningServer,
                                                        tmp_path: Path) -> None:
    bad = _pasture(server, "bench", MODEL, "--clients", "two", cwd=tmp_path)
    assert bad.returncode == 1 and "--clients takes numbers" in bad.stderr
    missing = _pasture(server, "bench", "nosuch", cwd=tmp_path)
    assert missing.returncode == 1
    assert "not found" in missing.stderr and "Traceback" not in missing.stderr
    assert list(tmp_path.iterdir()) == []
