"""`pasture list` loads only what listing needs (issue 23: the CLI answers in tens of ms).

Guarded by counts, not time: a `pasture list` process, against a canned server, reports the
modules it imported (`sys.modules` at exit), and they must stay within an allow-list. A
heavy import put back on this path (the engines, the server, rich's progress, anyio,
fastapi, ...) fails here, however fast the machine running the test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.canned_server import CannedServer, Reply

SRC = Path(__file__).resolve().parents[2] / "src"
# Prints the imported modules to the file named in argv[1] at exit, then runs `pasture`.
WRAPPER = """
import atexit, json, runpy, sys
out = sys.argv.pop(1)
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
runpy.run_module("pasture", run_name="__main__")
"""
# Third-party packages `pasture list` may load: typer (and shellingham), the blocking
# client's httpx stack (httpcore loads anyio itself), pydantic for the wire types.
# httpx's package imports its own command line (`httpx._main`), which brings click, rich
# and pygments with it.
THIRD_PARTY = {
    "typer", "shellingham", "annotated_doc", "httpx", "httpcore", "h11", "idna", "certifi",
    "sniffio", "anyio", "pydantic", "pydantic_core", "annotated_types", "typing_extensions",
    "typing_inspection", "click", "rich", "pygments", "markdown_it", "mdurl",
    "_distutils_hack", "__main__", "_sysconfigdata__linux_x86_64-linux-gnu",
}
PASTURE = {
    "pasture", "pasture.__main__", "pasture.api", "pasture.api.ollama", "pasture.api.requires",
    "pasture.cli", "pasture.cli.main", "pasture.cli.engine", "pasture.cli.render",
    "pasture.client", "pasture.client._sync", "pasture.client._calls", "pasture.client._inputs",
    "pasture.client._protocol", "pasture.client.blobs", "pasture.client.errors",
    "pasture.config", "pasture.digests", "pasture.durations", "pasture.errors",
}


@pytest.fixture
def server() -> Iterator[CannedServer]:
    canned = CannedServer().start()
    canned.routes[("GET", "/api/tags")] = Reply(body={"models": []})
    yield canned
    canned.stop()


def imported_by(args: list[str], server: CannedServer, tmp_path: Path) -> list[str]:
    out = tmp_path / "modules.json"
    env = {**os.environ, "PYTHONPATH": str(SRC), "PASTURE_HOST": server.url}
    env.pop("PASTURE_API_KEY", None)
    done = subprocess.run([sys.executable, "-c", WRAPPER, str(out), *args], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(out.read_text())


def test_pasture_list_imports_only_the_allow_list(server: CannedServer,
                                                  tmp_path: Path) -> None:
    modules = imported_by(["list"], server, tmp_path)
    ours = {m for m in modules if m.split(".")[0] == "pasture"}
    others = {m.split(".")[0] for m in modules} - sys.stdlib_module_names - {"pasture"}
    assert ours - PASTURE == set()
    assert others - THIRD_PARTY == set()


def test_engine_help_does_not_probe_engines(server: CannedServer, tmp_path: Path) -> None:
    # The `engine` group is registered on every start; only its commands load the engines.
    modules = imported_by(["engine", "--help"], server, tmp_path)
    assert "pasture.engines" not in modules
    assert "rich.progress" not in modules
