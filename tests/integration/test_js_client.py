"""The JavaScript client (`clients/js`, npm package `pasture`) against the shared live server.

Its tests are written with `node:test` and live beside it; this module is how `make test`
(and so CI) runs them: it installs the package's dev dependencies (TypeScript, for the type
check) when the lock file changed, then runs `node --test` with the server's URL and model.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from tests.integration.conftest import MODEL, REPO, RunningServer

JS = REPO / "clients" / "js"
# Anything that would point the client elsewhere or add a key is kept out of the run.
_CLIENT_ENV = ("PASTURE_HOST", "OLLAMA_HOST", "PASTURE_API_KEY", "OLLAMA_API_KEY")


def _node() -> str:
    node = shutil.which("node")
    assert node, "Node.js (>= 20) must be on PATH to test the JavaScript client"
    return node


def _install_dev_dependencies() -> None:
    """`npm ci`, only when node_modules is missing or older than package-lock.json."""
    installed = JS / "node_modules" / ".package-lock.json"
    lock = JS / "package-lock.json"
    if installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return
    npm = shutil.which("npm")
    assert npm, "npm must be on PATH to install the JavaScript client's dev dependencies"
    result = subprocess.run(
        [npm, "ci", "--prefix", str(JS), "--no-audit", "--no-fund"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, f"npm ci failed:\n{result.stdout}\n{result.stderr}"


def test_js_client_suite_passes_against_the_live_server(
    server: RunningServer, smollm2_gguf: Path
) -> None:
    node = _node()
    _install_dev_dependencies()
    env = {key: value for key, value in os.environ.items() if key not in _CLIENT_ENV}
    env.update(
        PASTURE_TEST_URL=server.url,
        PASTURE_TEST_MODEL=MODEL,
        PASTURE_TEST_GGUF=str(smollm2_gguf),
    )
    test_files = sorted(str(path) for path in (JS / "test").glob("*.test.mjs"))
    assert test_files, "no JavaScript test files found"
    result = subprocess.run(
        # One file at a time: they share one server, whose single slot they would queue on.
        [node, "--test", "--test-concurrency=1", "--test-reporter=spec", *test_files],
        cwd=JS, env=env, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, (
        f"node --test failed (exit {result.returncode}):\n{result.stdout}\n{result.stderr}"
    )
    # The spec reporter's summary: tests did run, and none failed.
    assert re.search(r"^ℹ pass [1-9]", result.stdout, re.MULTILINE), result.stdout
    assert re.search(r"^ℹ fail 0$", result.stdout, re.MULTILINE), result.stdout
