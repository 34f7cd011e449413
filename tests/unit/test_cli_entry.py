"""`pasture list`, `ls`, `ps` and `--version` end the same without typer as with it.

`pasture.cli.entry` answers those exact command lines before typer loads (issue 23), with
the functions the typer commands run. Each case here runs once through the entry point
(`python -m pasture`) and once through the typer app, in fresh processes against one
canned server, and compares all they did: stdout, stderr, exit status, and the requests
the server saw (host variables, API key, user agent).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pasture import OLLAMA_VERSION, __version__
from tests.unit.canned_server import CannedServer, Reply

SRC = Path(__file__).resolve().parents[2] / "src"
TYPER = "from pasture.cli.main import app; app(prog_name='pasture')"
MODEL = {
    "name": "smollm2:latest", "model": "smollm2:latest", "modified_at": "2026-01-01T00:00:00Z",
    "size": 98_000_000, "digest": "a1b2c3d4e5f6" + "0" * 52, "size_vram": 0,
    "expires_at": "2318-01-01T00:00:00Z", "context_length": 4096,
    "details": {"format": "gguf", "family": "llama", "parameter_size": "135M",
                "quantization_level": "Q4_1"},
}
TAGS, PS, VERSION = ("GET", "/api/tags"), ("GET", "/api/ps"), ("GET", "/api/version")
Outcome = tuple[int, str, str, list[tuple[str, str, dict[str, str]]]]


@pytest.fixture
def server() -> Iterator[CannedServer]:
    canned = CannedServer().start()
    yield canned
    canned.stop()


def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


def outcome(argv: list[str], env: dict[str, str], server: CannedServer) -> Outcome:
    """What one process did: its exit status, stdout, stderr, and the requests it sent."""
    before = len(server.seen)
    done = subprocess.run([sys.executable, *argv], env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60)
    sent = [(seen.method, seen.path, seen.headers) for seen in server.seen[before:]]
    return done.returncode, done.stdout, done.stderr, sent


CASES: dict[str, tuple[list[str], dict[tuple[str, str], Reply], str, int, str]] = {
    # id: (arguments, canned routes, where the host variable points, exit status, a part
    # of stdout + stderr)
    "list": (["list"], {TAGS: Reply(body={"models": [MODEL]})}, "PASTURE_HOST", 0,
             "smollm2:latest    a1b2c3d4e5f6    98 MB"),
    "ls-ollama-host": (["ls"], {TAGS: Reply(body={"models": [MODEL]})}, "OLLAMA_HOST", 0,
                       "smollm2:latest"),
    "ps": (["ps"], {PS: Reply(body={"models": [MODEL]})}, "PASTURE_HOST", 0, "Forever"),
    "version": (["--version"], {VERSION: Reply(body={"version": OLLAMA_VERSION,
                                                     "pasture": __version__})},
                "PASTURE_HOST", 0, f"pasture version is {__version__}\n"),
    "version-of-ollama": (["-v"], {VERSION: Reply(body={"version": "9.9.9"})},
                          "PASTURE_HOST", 0, f"Warning: client version is {__version__}"),
    "error-answer": (["list"], {TAGS: Reply(500, {"error": "the store is on fire"})},
                     "PASTURE_HOST", 1, "Error: the store is on fire\n"),
    "malformed-answer": (["ps"], {PS: Reply(body={"models": [{"name": "m", "digest": None}]})},
                         "PASTURE_HOST", 1, "Error: unexpected answer from the server"),
    "server-down": (["list"], {}, "down", 1, "pasture serve"),
    "version-server-down": (["--version"], {}, "down", 0, "could not connect"),
}


@pytest.mark.parametrize("case", CASES)
def test_entry_answers_as_the_typer_app_does(case: str, server: CannedServer) -> None:
    args, routes, host, status, part = CASES[case]
    server.routes.update(routes)
    env: dict[str, Any] = {**os.environ, "PYTHONPATH": str(SRC), "PASTURE_API_KEY": "k3y"}
    for name in ("PASTURE_HOST", "OLLAMA_HOST"):
        env.pop(name, None)
    if host == "down":
        env["PASTURE_HOST"] = closed_port()
    else:
        env[host] = server.url
    quick = outcome(["-m", "pasture", *args], env, server)
    assert quick == outcome(["-c", TYPER, *args], env, server)
    assert quick[0] == status
    assert part in quick[1] + quick[2]
    assert "Traceback" not in quick[2]
    if host != "down":
        assert [(method, path) for method, path, _ in quick[3]] == [next(iter(routes))]
        assert quick[3][0][2]["authorization"] == "Bearer k3y"
