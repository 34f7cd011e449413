"""`pasture list`, `ps`, `--version`, `--help`, `show`, `run` load only what they need
(issue 23: the CLI answers in tens of ms).

Guarded by counts, not time: a `pasture` process, against a canned server, reports the
modules it imported (`sys.modules` at exit), and they must stay within an allow-list: no
third-party package at all, and of Pasture only the command line, the light client and
what they share. A heavy import put back on these paths (httpx, the wire types, rich,
the engines, the server, ...) fails here, however fast the machine running the test.
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
# No third-party package: `_distutils_hack` is setuptools' .pth hook, loaded by every
# process here.
THIRD_PARTY = {"_distutils_hack", "__main__"}
PASTURE = {
    "pasture", "pasture.__main__", "pasture.cli", "pasture.cli.main", "pasture.cli.parsing",
    "pasture.cli.engine", "pasture.cli.quick", "pasture.cli.failures", "pasture.cli.render",
    "pasture.client", "pasture.client._wire", "pasture.client.light", "pasture.client.errors",
    "pasture.client.plain_http", "pasture.environment", "pasture.errors",
}
RUN = {"pasture.cli.run", "pasture.cli.chat"}
# Standard-library modules slow enough to matter here: http.client loads email and ssl
# (the light client speaks plain http over a socket), shutil loads bz2 and lzma,
# dataclasses loads inspect, a str host name makes the socket module load the idna codec.
SLOW_STDLIB = {"http.client", "email", "ssl", "shutil", "lzma", "inspect", "dataclasses",
               "encodings.idna"}
CREATED = "2026-01-01T00:00:00Z"


@pytest.fixture
def server() -> Iterator[CannedServer]:
    canned = CannedServer().start()
    canned.routes[("GET", "/api/tags")] = Reply(body={"models": []})
    canned.routes[("GET", "/api/ps")] = Reply(body={"models": []})
    canned.routes[("GET", "/api/version")] = Reply(body={"version": "0.0.0"})
    canned.routes[("POST", "/api/show")] = Reply(body={
        "details": {"family": "llama"}, "capabilities": ["completion"]})
    canned.routes[("POST", "/api/chat")] = Reply(lines=[{
        "model": "m", "created_at": CREATED, "message": {"role": "assistant", "content": "hi"},
        "done": True}])
    yield canned
    canned.stop()


def imported_by(args: list[str], server: CannedServer, tmp_path: Path) -> list[str]:
    out = tmp_path / "modules.json"
    env = {**os.environ, "PYTHONPATH": str(SRC), "PASTURE_HOST": server.url}
    env.pop("PASTURE_API_KEY", None)
    done = subprocess.run([sys.executable, "-c", WRAPPER, str(out), *args], env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(out.read_text())


def split(modules: list[str]) -> tuple[set[str], set[str]]:
    """Pasture's modules, and the other top-level packages outside the standard library."""
    ours = {m for m in modules if m.split(".")[0] == "pasture"}
    others = {m.split(".")[0] for m in modules} - sys.stdlib_module_names - {"pasture"}
    return ours, others


@pytest.mark.parametrize("args", [["list"], ["ls"], ["ps"], ["--version"], ["-v"], ["--help"],
                                  [], ["list", "--help"], ["show", "m"], ["run", "m", "hi"]])
def test_frequent_commands_import_no_third_party_package(
    args: list[str], server: CannedServer, tmp_path: Path,
) -> None:
    modules = imported_by(args, server, tmp_path)
    ours, others = split(modules)
    assert ours - PASTURE - RUN == set()
    assert others - THIRD_PARTY == set()
    if args[:1] != ["run"]:
        assert ours.isdisjoint(RUN)
    if args and "--help" not in args and args[0] != "run":  # help wraps to the terminal: shutil
        assert SLOW_STDLIB.isdisjoint(modules)


def test_engine_help_does_not_probe_engines(server: CannedServer, tmp_path: Path) -> None:
    # Only the `engine` commands themselves load the engines.
    modules = imported_by(["engine", "--help"], server, tmp_path)
    assert "pasture.engines" not in modules
    assert "rich.progress" not in modules
