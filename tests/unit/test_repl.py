"""The interactive REPL's commands and conversation, against a canned HTTP server.

The canned server stands in for the model only to check what the REPL sends and prints;
the real server is covered by the integration tests. The line editor is driven through
prompt_toolkit's pipe input, as a terminal would.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from prompt_toolkit.application import create_app_session
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from pasture.cli import repl as repl_module
from pasture.cli.chat import Session
from pasture.cli.repl import Repl, read_input
from pasture.client.light import LightClient
from tests.unit.canned_server import CannedServer, Reply

CREATED = "2026-01-01T00:00:00Z"


def chat_line(content: str, done: bool = False) -> dict[str, object]:
    return {"model": "m", "created_at": CREATED,
            "message": {"role": "assistant", "content": content}, "done": done}


@pytest.fixture
def server() -> Iterator[CannedServer]:
    canned = CannedServer().start()
    canned.routes[("POST", "/api/chat")] = Reply(lines=[chat_line("Hi!"), chat_line("", True)])
    yield canned
    canned.stop()


@pytest.fixture
def repl(server: CannedServer) -> Repl:
    return Repl(LightClient(server.url), Session(model="m"), out=io.StringIO(), err=io.StringIO())


def output(repl: Repl) -> str:
    assert isinstance(repl.out, io.StringIO)
    return repl.out.getvalue()


def test_the_conversation_keeps_its_history(repl: Repl, server: CannedServer) -> None:
    assert repl.handle("hello")
    assert repl.handle("and again")
    second = server.requests("POST", "/api/chat")[1].json()["messages"]
    assert [(m["role"], m["content"]) for m in second] == [
        ("user", "hello"), ("assistant", "Hi!"), ("user", "and again")]
    assert output(repl).startswith("Hi!\n")


def test_clear_forgets_the_conversation(repl: Repl, server: CannedServer) -> None:
    repl.handle("hello")
    repl.handle("/clear")
    repl.handle("fresh")
    assert len(server.requests("POST", "/api/chat")[1].json()["messages"]) == 1
    assert "Cleared session context" in output(repl)


def test_set_parameter_is_typed_and_sent(repl: Repl, server: CannedServer) -> None:
    repl.handle("/set parameter temperature 0.3")
    repl.handle("/set parameter stop <end> <eot>")
    repl.handle("/set parameter num_ctx lots")
    repl.handle("hello")
    assert server.requests("POST", "/api/chat")[0].json()["options"] == {
        "temperature": 0.3, "stop": ["<end>", "<eot>"]}
    text = output(repl)
    assert "Set parameter 'temperature' to '0.3'" in text
    assert "Set parameter 'stop' to '<end>, <eot>'" in text
    assert "Couldn't set parameter" in text


def test_set_system_format_and_verbose(repl: Repl, server: CannedServer) -> None:
    repl.handle('/set system """You are a pirate."""')
    repl.handle("/set format json")
    repl.handle("/set verbose")
    repl.handle("ahoy")
    sent = server.requests("POST", "/api/chat")[0].json()
    assert sent["messages"][0] == {"role": "system", "content": "You are a pirate."}
    assert sent["format"] == "json"
    assert repl.session.verbose
    repl.handle("/set noformat")
    assert repl.session.format is None


def test_show_commands_ask_the_server(repl: Repl, server: CannedServer) -> None:
    server.routes[("POST", "/api/show")] = Reply(body={
        "modelfile": "FROM x\n", "details": {"family": "llama"}, "license": "MIT",
        "model_info": {}, "capabilities": ["completion"]})
    repl.handle("/show license")
    repl.handle("/show template")
    repl.handle("/show info")
    text = output(repl)
    assert "MIT\n" in text
    assert "No prompt template was specified for this model." in text
    assert "  Capabilities\n    completion\n" in text


def test_exit_help_and_unknown_commands(repl: Repl) -> None:
    assert repl.handle("/?")
    assert repl.handle("/help set")
    assert repl.handle("/nope")
    assert not repl.handle("/bye")
    assert not repl.handle("/exit")
    text = output(repl)
    assert "/set parameter ..." in text
    assert "Unknown command '/nope'" in text


def test_an_error_drops_the_turn(repl: Repl, server: CannedServer) -> None:
    server.routes[("POST", "/api/chat")] = Reply(500, {"error": "runner crashed"})
    repl.handle("hello")
    assert repl.session.messages == []
    assert repl.err.getvalue() == "Error: runner crashed\n"  # type: ignore[attr-defined]


def test_triple_quotes_span_lines() -> None:
    lines = iter(['"""first', "second", 'third"""'])
    assert read_input(lambda prompt: next(lines)) == '"""first\nsecond\nthird"""'
    assert read_input(lambda prompt: '"""one line"""') == '"""one line"""'


def test_line_editor_session(
    repl: Repl, server: CannedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(repl_module, "HISTORY_FILE", tmp_path / "history")
    monkeypatch.delenv("PASTURE_NOHISTORY", raising=False)
    with create_pipe_input() as pipe:
        # A multi-line message, Ctrl+C on an empty line (hint), then Ctrl+D to leave.
        pipe.send_text('"""line one\r')
        pipe.send_text('line two"""\r')
        pipe.send_text("\x03")
        pipe.send_text("\x04")
        with create_app_session(input=pipe, output=DummyOutput()):
            repl.run()
    sent = server.requests("POST", "/api/chat")[0].json()["messages"]
    assert sent == [{"role": "user", "content": "line one\nline two"}]
    assert repl_module.EXIT_HINT in output(repl)
    assert "line one" in (tmp_path / "history").read_text()


def test_set_think_takes_a_level(repl: Repl, server: CannedServer) -> None:
    repl.handle("/set think max")
    repl.handle("hello")
    assert server.requests("POST", "/api/chat")[0].json()["think"] == "max"
    repl.handle("/set think lots")
    assert repl.session.think == "max"
    text = output(repl)
    assert "Set 'think' mode to 'max'." in text
    assert "Invalid thinking level 'lots'" in text
