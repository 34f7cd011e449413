"""The `pasture` command line as a user meets it: help, aliases, usage errors.

Every command is declared once (`pasture.cli.main`) and parsed with argparse
(`pasture.cli.parsing`); these tests pin down what that shows and how a wrong command
line ends: `Error: <message>` on stderr, a hint, exit status 2, never a traceback.
Most run in this process; the last ones run `python -m pasture` against a canned server,
as a shell would, to prove the exit status and the request headers reach the outside.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pasture import __version__
from pasture.cli.main import main
from tests.unit.canned_server import CannedServer, Reply

SRC = Path(__file__).resolve().parents[2] / "src"
COMMANDS = ["serve", "worker", "run", "bench", "stop", "pull", "push", "create", "verify",
            "list", "ps", "nodes", "show", "cp", "rm", "engine"]
# Each command's options: a lost or renamed one fails here.
OPTIONS = {
    ("serve",): [],
    ("worker",): ["--host", "-p, --port", "-t, --threads", "--cache-dir", "--no-cache",
                  "--allow-wildcard", "--engine"],
    ("run",): ["--verbose", "--keepalive", "--format", "--nowordwrap", "--think", "--nothink",
               "--think-level", "--hidethinking", "--insecure"],
    ("bench",): ["--clients", "--tokens", "-o, --output"],
    ("stop",): [],
    ("pull",): ["--insecure"],
    ("push",): ["--insecure"],
    ("create",): ["-f, --file", "-q, --quantize"],
    ("verify",): ["--repair", "--insecure"],
    ("list",): [],
    ("ps",): [],
    ("nodes",): [],
    ("show",): ["--license", "--modelfile", "--parameters", "--template", "--system",
                "-v, --verbose"],
    ("cp",): [],
    ("rm",): [],
    ("engine", "list"): [],
    ("engine", "build"): ["--native", "--cuda", "--cuda-arch", "--name", "--source",
                          "-j, --jobs", "--force", "--rpc"],
    ("engine", "install"): ["--name", "--force"],
    ("engine", "remove"): [],
}


def run_main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(args)
    out, err = capsys.readouterr()
    return status, out, err


def option_names(help_text: str) -> list[str]:
    """The options a command's help lists under `Flags:`, without their values."""
    flags = help_text.split("Flags:\n")[1]
    names = []
    for line in flags.splitlines():
        if line.startswith("  -"):
            spelled = line.split("  ")[1].strip().split(", ")
            names.append(", ".join(word.split()[0] for word in spelled))
    return names


@pytest.mark.parametrize("args", [[], ["--help"], ["-h"]])
def test_help_lists_every_command_and_no_alias(
    args: list[str], capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, err = run_main(args, capsys)
    assert (status, err) == (0, "")
    assert out.startswith("Large language model runner\n\nUsage:\n  pasture [flags]\n")
    listed = out.split("Available Commands:\n")[1].split("\n\n")[0]
    assert [line.split()[0] for line in listed.splitlines() if not line.startswith("   ")] \
        == COMMANDS
    assert "  -v, --version   Show version information" in out
    assert "Run a model: answer PROMPT, or chat interactively." in out


@pytest.mark.parametrize("command", OPTIONS)
def test_command_help_shows_its_usage_and_every_option(
    command: tuple[str, ...], capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, err = run_main([*command, "--help"], capsys)
    assert (status, err) == (0, "")
    assert f"Usage:\n  pasture {' '.join(command)} " in out
    assert option_names(out) == ["-h, --help", *OPTIONS[command]]


def test_run_help_shows_its_arguments_and_the_think_spelling(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, out, _ = run_main(["run", "-h"], capsys)
    assert "Usage:\n  pasture run MODEL [PROMPT ...] [flags]\n" in out
    assert "  MODEL " in out and "Name of the model" in out
    assert "--think=LEVEL" in out


def test_engine_help_lists_its_commands(capsys: pytest.CaptureFixture[str]) -> None:
    for args in (["engine"], ["engine", "--help"]):
        status, out, _ = run_main(args, capsys)
        assert status == 0
        listed = out.split("Available Commands:\n")[1].split("\n\n")[0]
        assert [line.split()[0] for line in listed.splitlines()
                if not line.startswith("   ")] == ["list", "build", "install", "remove"]


@pytest.mark.parametrize(("alias", "name"), [("start", "serve"), ("ls", "list")])
def test_an_alias_is_the_command(alias: str, name: str,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    _, by_alias, _ = run_main([alias, "--help"], capsys)
    _, by_name, _ = run_main([name, "--help"], capsys)
    assert by_alias == by_name
    assert f"Aliases:\n  {name}, {alias}\n" in by_name


@pytest.mark.parametrize(("args", "message", "hint"), [
    (["frobnicate"], 'unknown command "frobnicate" for "pasture"', "pasture --help"),
    (["--frobnicate"], 'unknown flag "--frobnicate" for "pasture"', "pasture --help"),
    (["engine", "frobnicate"], 'unknown command "frobnicate" for "pasture engine"',
     "pasture engine --help"),
    (["show"], "the following arguments are required: MODEL", "pasture show --help"),
    (["run"], "the following arguments are required: MODEL", "pasture run --help"),
    (["cp", "a"], "the following arguments are required: DESTINATION", "pasture cp --help"),
    (["list", "--all"], "unrecognized arguments: --all", "pasture list --help"),
    (["list", "extra"], "unrecognized arguments: extra", "pasture list --help"),
    (["--version", "extra"], 'unexpected argument "extra" after --version', "pasture --help"),
    (["worker", "--port", "many"], "argument -p/--port: invalid int value: 'many'",
     "pasture worker --help"),
    (["bench", "m", "--tok", "3"], "unrecognized arguments: --tok 3", "pasture bench --help"),
    (["run", "m", "--think=lots", "x"], "invalid value for --think: 'lots'", "pasture run --help"),
    (["run", "m", "--keepalive"], "argument --keepalive: expected one argument",
     "pasture run --help"),
])
def test_a_wrong_command_line_is_an_error_line_and_status_2(
    args: list[str], message: str, hint: str, capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, err = run_main(args, capsys)
    assert (status, out) == (2, "")
    first, second = err.splitlines()
    assert first.startswith(f"Error: {message}")
    assert second == f"Run '{hint}' for usage."


@pytest.fixture
def server() -> Iterator[CannedServer]:
    canned = CannedServer().start()
    yield canned
    canned.stop()


def pasture(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pasture", *args], env=env, text=True,
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=60)


def environment(**variables: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(SRC), **variables}
    for name in ("PASTURE_HOST", "OLLAMA_HOST", "PASTURE_API_KEY"):
        if name not in variables:
            env.pop(name, None)
    return env


@pytest.mark.parametrize(("args", "route", "host"), [
    (["list"], ("GET", "/api/tags"), "PASTURE_HOST"),
    (["ls"], ("GET", "/api/tags"), "OLLAMA_HOST"),
    (["ps"], ("GET", "/api/ps"), "PASTURE_HOST"),
    (["--version"], ("GET", "/api/version"), "PASTURE_HOST"),
    (["show", "m", "--system"], ("POST", "/api/show"), "PASTURE_HOST"),
])
def test_a_process_finds_the_server_and_sends_the_api_key(
    args: list[str], route: tuple[str, str], host: str, server: CannedServer,
) -> None:
    server.routes[route] = Reply(body={"models": [], "version": __version__, "system": "hi"})
    done = pasture(args, environment(**{host: server.url, "PASTURE_API_KEY": "k3y"}))
    assert done.returncode == 0, done.stderr
    assert [(seen.method, seen.path) for seen in server.seen] == [route]
    assert server.seen[0].headers["authorization"] == "Bearer k3y"


def test_a_process_ends_with_the_status_of_its_failure(server: CannedServer) -> None:
    server.routes[("GET", "/api/tags")] = Reply(500, {"error": "the store is on fire"})
    failed = pasture(["list"], environment(PASTURE_HOST=server.url))
    assert (failed.returncode, failed.stderr) == (1, "Error: the store is on fire\n")
    wrong = pasture(["list", "--all"], environment(PASTURE_HOST=server.url))
    assert wrong.returncode == 2
    assert wrong.stderr.startswith("Error: unrecognized arguments: --all\n")
    assert "Traceback" not in failed.stderr + wrong.stderr
