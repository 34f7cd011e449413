"""The `pasture` commands' output and exit codes, against a canned HTTP server.

The canned server replays Ollama-shaped replies so these tests pin down the CLI's side
only (formatting, flags, error lines, exit codes). The real server is covered by the
integration tests.
"""

from __future__ import annotations

import io
import socket
import sys
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest

from pasture import OLLAMA_VERSION, __version__
from pasture.cli.main import main
from tests.unit.canned_server import CannedServer, Reply

CREATED = "2026-01-01T00:00:00Z"
DETAILS = {"format": "gguf", "family": "llama", "parameter_size": "135M",
           "quantization_level": "Q4_1"}
SHOW = {"modelfile": "FROM /blobs/x\n", "details": DETAILS, "parameters": "temperature 0.2",
        "template": "{{ .Prompt }}", "system": "Be nice.", "license": "MIT",
        "model_info": {"general.architecture": "llama"}, "capabilities": ["completion"]}


def chat_line(content: str, done: bool = False, **extra: object) -> dict[str, object]:
    return {"model": "m", "created_at": CREATED,
            "message": {"role": "assistant", "content": content}, "done": done, **extra}


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[CannedServer]:
    canned = CannedServer().start()
    monkeypatch.setenv("PASTURE_HOST", canned.url)
    monkeypatch.delenv("PASTURE_API_KEY", raising=False)
    yield canned
    canned.stop()


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def invoke(*args: str, input: str = "") -> Result:
    """Run `pasture ARGS` in this process (fast), with `input` as its piped stdin."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with (redirect_stdout(stdout), redirect_stderr(stderr),
          mock.patch.object(sys, "stdin", io.StringIO(input))):
        code = main(args)
    return Result(code, stdout.getvalue(), stderr.getvalue())


def test_list_prints_ollamas_table(server: CannedServer) -> None:
    server.routes[("GET", "/api/tags")] = Reply(body={"models": [{
        "name": "smollm2:latest", "model": "smollm2:latest", "modified_at": CREATED,
        "size": 98_000_000, "digest": "a1b2c3d4e5f6" + "0" * 52, "details": DETAILS}]})
    for name in ("list", "ls"):
        result = invoke(name)
        assert result.exit_code == 0
        header, row = result.stdout.splitlines()
        assert header.split() == ["NAME", "ID", "SIZE", "MODIFIED"]
        assert row.startswith("smollm2:latest    a1b2c3d4e5f6    98 MB    ")
        assert row.endswith(" ago")


def test_ps_prints_processor_context_and_until(server: CannedServer) -> None:
    server.routes[("GET", "/api/ps")] = Reply(body={"models": [{
        "name": "smollm2:latest", "model": "smollm2:latest", "size": 200_000_000,
        "digest": "b" * 64, "details": DETAILS, "expires_at": "2318-01-01T00:00:00Z",
        "size_vram": 0, "context_length": 4096}]})
    result = invoke("ps")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[1].split() == [
        "smollm2:latest", "bbbbbbbbbbbb", "200", "MB", "100%", "CPU", "4096", "Forever"]


def test_server_errors_become_one_error_line_and_exit_1(server: CannedServer) -> None:
    server.routes[("POST", "/api/show")] = Reply(404, {"error": "model 'nope' not found"})
    result = invoke("show", "nope")
    assert result.exit_code == 1
    assert result.stderr == "Error: model 'nope' not found\n"
    assert "Traceback" not in result.output


def test_a_stopped_server_is_reported_with_how_to_start_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("PASTURE_HOST", f"127.0.0.1:{port}")
    result = invoke("list")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: could not connect")
    assert "pasture serve" in result.stderr


def test_show_sections_and_single_fields(server: CannedServer) -> None:
    server.routes[("POST", "/api/show")] = Reply(body=SHOW)
    info = invoke("show", "m")
    assert info.exit_code == 0
    assert "  Model\n    architecture    llama\n" in info.stdout
    assert "  License\n    MIT\n" in info.stdout
    assert invoke("show", "m", "--modelfile").stdout == "FROM /blobs/x\n"
    assert invoke("show", "m", "--template").stdout == "{{ .Prompt }}"
    assert invoke("show", "m", "--system").stdout == "Be nice."
    both = invoke("show", "m", "--license", "--system")
    assert both.exit_code == 1 and "only one of" in both.stderr


def test_run_with_a_prompt_streams_the_answer(server: CannedServer) -> None:
    server.routes[("POST", "/api/show")] = Reply(body=SHOW)
    server.routes[("POST", "/api/chat")] = Reply(lines=[
        chat_line("Hello"), chat_line(" there"),
        chat_line("", True, total_duration=10**9, eval_count=5, eval_duration=5 * 10**8)])
    result = invoke("run", "m", "say", "hi", "--verbose", "--keepalive", "1m")
    assert result.exit_code == 0, result.output
    assert result.stdout == "Hello there\n"
    assert "eval rate:            10.0 tokens/s" in result.stderr
    sent = server.requests("POST", "/api/chat")[0].json()
    assert sent["messages"] == [{"role": "user", "content": "say hi"}]
    assert sent["keep_alive"] == "1m"


def test_run_puts_piped_stdin_before_the_prompt(server: CannedServer) -> None:
    server.routes[("POST", "/api/show")] = Reply(body=SHOW)
    server.routes[("POST", "/api/chat")] = Reply(lines=[chat_line("ok", True)])
    assert invoke("run", "m", "summarize", input="some text").exit_code == 0
    assert invoke("run", "m", input="only stdin").exit_code == 0
    first, second = (r.json()["messages"][0]["content"]
                     for r in server.requests("POST", "/api/chat"))
    assert first == "some text\n\nsummarize"
    assert second == "only stdin"


def test_run_pulls_a_missing_model_first(server: CannedServer) -> None:
    server.routes[("POST", "/api/show")] = [
        Reply(404, {"error": "model 'm' not found"}), Reply(body=SHOW)]
    server.routes[("POST", "/api/pull")] = Reply(lines=[
        {"status": "pulling manifest"},
        {"status": "pulling abcdef123456", "digest": "sha256:" + "ab" * 32,
         "total": 1000, "completed": 1000},
        {"status": "success"}])
    server.routes[("POST", "/api/chat")] = Reply(lines=[chat_line("hi", True)])
    result = invoke("run", "m", "hello")
    assert result.exit_code == 0, result.output
    assert result.stdout == "hi\n"
    assert "pulling manifest" in result.stderr and "success" in result.stderr
    assert server.requests("POST", "/api/pull")[0].json()["model"] == "m"


def test_run_reports_an_error_in_the_stream(server: CannedServer) -> None:
    server.routes[("POST", "/api/show")] = Reply(body=SHOW)
    server.routes[("POST", "/api/chat")] = Reply(lines=[chat_line("par"), {"error": "boom"}])
    result = invoke("run", "m", "x")
    assert result.exit_code == 1
    assert result.stderr.endswith("Error: boom\n")


def test_run_rejects_bad_flags(server: CannedServer) -> None:
    assert "only 'json'" in invoke("run", "m", "x", "--format", "yaml").stderr
    assert "thinking level" in invoke("run", "m", "x", "--think-level", "lots").stderr
    assert "invalid value for --think" in invoke("run", "m", "x", "--think=lots").stderr


@pytest.mark.parametrize(("flag", "sent"), [("--think=max", "max"), ("--think=High", "high"),
                                            ("--think=false", False), ("--think", True),
                                            ("--think-level=max", "max")])
def test_run_takes_ollamas_think_spellings(server: CannedServer, flag: str,
                                           sent: object) -> None:
    server.routes[("POST", "/api/show")] = Reply(body=SHOW)
    server.routes[("POST", "/api/chat")] = Reply(lines=[chat_line("hi", True)])
    result = invoke("run", "m", flag, "x")
    assert result.exit_code == 0, result.output
    assert server.requests("POST", "/api/chat")[0].json()["think"] == sent


def test_a_prompt_after_double_dash_is_never_read_as_a_flag(server: CannedServer) -> None:
    server.routes[("POST", "/api/show")] = Reply(body=SHOW)
    server.routes[("POST", "/api/chat")] = Reply(lines=[chat_line("hi", True)])
    assert invoke("run", "m", "--", "--think=lots").exit_code == 0
    sent = server.requests("POST", "/api/chat")[0].json()
    assert sent["messages"][-1]["content"] == "--think=lots" and "think" not in sent


def test_stop_unloads_with_keep_alive_zero(server: CannedServer) -> None:
    server.routes[("POST", "/api/generate")] = [
        Reply(body={"model": "m", "created_at": CREATED, "done": True, "done_reason": "unload"}),
        Reply(404, {"error": "model 'y' not found"})]
    assert invoke("stop", "m").exit_code == 0
    assert server.requests("POST", "/api/generate")[0].json() == {
        "model": "m", "prompt": "", "stream": False, "keep_alive": 0, "raw": False}
    missing = invoke("stop", "y")
    assert missing.exit_code == 1
    assert missing.stderr == 'Error: couldn\'t find model "y" to stop\n'


def test_cp_and_rm(server: CannedServer) -> None:
    server.routes[("POST", "/api/copy")] = Reply(raw=b"")
    server.routes[("POST", "/api/generate")] = Reply(404, {"error": "not loaded"})
    server.routes[("DELETE", "/api/delete")] = Reply(raw=b"")
    assert invoke("cp", "a", "b").stdout == "copied 'a' to 'b'\n"
    assert invoke("rm", "a", "b").stdout == "deleted 'a'\ndeleted 'b'\n"
    assert [r.json()["model"] for r in server.requests("DELETE", "/api/delete")] == ["a", "b"]


def test_create_uploads_and_shows_the_servers_statuses(
    server: CannedServer, tmp_path: Path
) -> None:
    (tmp_path / "model.gguf").write_bytes(b"gguf bytes")
    (tmp_path / "Modelfile").write_text("FROM ./model.gguf\nPARAMETER temperature 0.1\n")
    server.routes[("POST", "/api/create")] = Reply(lines=[
        {"status": "parsing GGUF"}, {"status": "writing manifest"}, {"status": "success"}])
    result = invoke("create", "mine", "-f", str(tmp_path / "Modelfile"))
    assert result.exit_code == 0, result.output
    assert "writing manifest" in result.stderr and "success" in result.stderr
    assert len(server.blobs) == 1
    assert server.requests("POST", "/api/create")[0].json()["parameters"] == {"temperature": 0.1}


def test_create_errors(server: CannedServer, tmp_path: Path) -> None:
    missing = invoke("create", "mine", "-f", str(tmp_path / "nope"))
    assert missing.exit_code == 1
    assert missing.stderr.startswith("Error: open ") and "no such file" in missing.stderr
    (tmp_path / "Modelfile").write_text("FROM x\nPARAMETER top_k many\n")
    bad = invoke("create", "mine", "-f", str(tmp_path / "Modelfile"))
    assert bad.exit_code == 1
    assert bad.stderr.startswith("Error: (line 2): ")


def test_version_with_and_without_a_server(
    server: CannedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.routes[("GET", "/api/version")] = Reply(body={"version": OLLAMA_VERSION,
                                                         "pasture": __version__})
    assert invoke("--version").stdout == f"pasture version is {__version__}\n"
    server.routes[("GET", "/api/version")] = Reply(body={"version": "9.9.9"})  # an Ollama
    assert invoke("--version").stdout == ("pasture version is 9.9.9\n"
                                          f"Warning: client version is {__version__}\n")
    monkeypatch.setenv("PASTURE_HOST", "127.0.0.1:9")
    assert "could not connect" in invoke("-v").stdout


@pytest.mark.parametrize(("command", "path", "reply", "detail"), [
    ("list", ("GET", "/api/tags"), Reply(body={"models": [{"name": "m"}]}), "no field 'digest'"),
    ("list", ("GET", "/api/tags"), Reply(body={"models": "m"}), "string indices"),
    ("list", ("GET", "/api/tags"), Reply(body=["m"]), '["m"]'),
    ("list", ("GET", "/api/tags"), Reply(raw=b"<html>proxy</html>"), "<html>proxy</html>"),
    ("ps", ("GET", "/api/ps"), Reply(body={"models": [{"name": "m", "digest": None}]}),
     "'NoneType'"),
    ("nodes", ("GET", "/api/nodes"), Reply(body={"nodes": [{}]}), "no field 'name'"),
    ("show", ("POST", "/api/show"), Reply(body={"modelfile": 3}), "'int'"),
])
def test_a_malformed_answer_is_one_error_line(
    server: CannedServer, command: str, path: tuple[str, str], reply: Reply, detail: str,
) -> None:
    server.routes[path] = reply
    result = invoke(command, *(["m", "--modelfile"] if command == "show" else []))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ")
    assert "answer" in result.stderr and detail in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
