"""What the JavaScript client's tests share: Node, the package's dev dependencies, and an
environment that points the client at the test server and nowhere else."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.integration.conftest import REPO

JS = REPO / "clients" / "js"
# Anything that would point the client elsewhere or add a key is kept out of the run.
_CLIENT_ENV = ("PASTURE_HOST", "OLLAMA_HOST", "PASTURE_API_KEY", "OLLAMA_API_KEY")


def node() -> str:
    path = shutil.which("node")
    assert path, "Node.js (>= 20) must be on PATH to test the JavaScript client"
    return path


def install_dev_dependencies(package: Path = JS) -> None:
    """`npm ci` in `package`, only when its node_modules is missing or older than its
    package-lock.json."""
    installed = package / "node_modules" / ".package-lock.json"
    lock = package / "package-lock.json"
    if installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return
    npm = shutil.which("npm")
    assert npm, "npm must be on PATH to install the JavaScript client's dev dependencies"
    result = subprocess.run(
        [npm, "ci", "--prefix", str(package), "--no-audit", "--no-fund"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, f"npm ci failed:\n{result.stdout}\n{result.stderr}"


def client_env(**extra: str) -> dict[str, str]:
    """This process's environment without the client's host and key settings, plus `extra`."""
    env = {key: value for key, value in os.environ.items() if key not in _CLIENT_ENV}
    env.update(extra)
    return env
