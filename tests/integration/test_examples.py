"""Every Python example in examples/ runs against a live server and prints something."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.integration.conftest import MODEL, REPO, RunningServer

EXAMPLES = sorted((REPO / "examples").glob("*.py"))


def test_there_are_examples() -> None:
    assert {p.stem for p in EXAMPLES} >= {"chat", "streaming", "tools", "structured",
                                         "embeddings", "async_chat"}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs(example, server: RunningServer) -> None:
    env = {**os.environ, "PASTURE_HOST": server.url.removeprefix("http://"),
           "PASTURE_EXAMPLE_MODEL": MODEL, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run([sys.executable, str(example)], env=env, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip()
    if example.stem == "tools":
        assert "model called add(" in done.stdout and "= " in done.stdout
