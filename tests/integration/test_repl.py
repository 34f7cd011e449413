"""`pasture run MODEL` on a terminal: the interactive chat, typed into a real pty."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import subprocess
import sys
import termios
import time

import pytest

from tests.integration.conftest import MODEL, REPO, RunningServer

ANSI = re.compile(rb"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][A-Z0-9]|\r")


def _take_terminal() -> None:
    """In the child: a session of its own with the pty as controlling terminal, so that
    typing Ctrl+C sends SIGINT as in a real terminal."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """A child process on a pseudo-terminal, read and typed into like a user would."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        self.process = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env,
                                        preexec_fn=_take_terminal)
        os.close(slave)
        self.seen = b""

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def wait_for(self, pattern: str, timeout: float = 60) -> str:
        """Read until the screen text (escape codes removed) matches `pattern`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = ANSI.sub(b"", self.seen).decode(errors="replace")
            if re.search(pattern, text):
                return text
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                try:
                    self.seen += os.read(self.master, 65536)
                except OSError:
                    break
        raise AssertionError(f"{pattern!r} not seen in:\n{ANSI.sub(b'', self.seen).decode()}")

    def close(self) -> int:
        try:
            return self.process.wait(20)
        finally:
            os.close(self.master)


@pytest.fixture
def terminal(server: RunningServer, tmp_path):
    env = {**os.environ, "PASTURE_HOST": server.url.removeprefix("http://"),
           "PYTHONPATH": str(REPO / "src"), "HOME": str(tmp_path), "TERM": "xterm"}
    term = Terminal([sys.executable, "-m", "pasture", "run", MODEL], env)
    yield term
    if term.process.poll() is None:
        term.process.kill()
        term.close()


def test_interactive_chat_commands_and_exit(terminal: Terminal, tmp_path) -> None:
    terminal.wait_for(r">>> ")
    terminal.type("/set parameter num_predict 8\r")
    terminal.wait_for(r"Set parameter 'num_predict' to '8'")
    terminal.type("/set system You are a helpful robot.\r")
    terminal.wait_for(r"Set system message")
    terminal.type("/show system\r")
    terminal.wait_for(r"You are a helpful robot\.\s*\n.*>>> ")
    terminal.type("/show parameters\r")
    terminal.wait_for(r"num_predict\s+8")

    terminal.seen = b""
    terminal.type("Hello there\r")
    terminal.wait_for(r"(?s)Hello there\s*\n\s*\S.*>>> ")  # an answer, then the prompt

    terminal.seen = b""
    terminal.type('"""First line\rsecond line"""\r')
    terminal.wait_for(r'(?s)second line"""\s*\n\s*\S.*>>> ')

    terminal.type("/clear\r")
    terminal.wait_for(r"Cleared session context")
    terminal.type("/bye\r")
    assert terminal.close() == 0
    assert (tmp_path / ".pasture" / "history").exists()


def test_ctrl_d_exits(terminal: Terminal) -> None:
    terminal.wait_for(r">>> ")
    terminal.type("\x04")
    assert terminal.close() == 0


def test_ctrl_c_stops_the_answer_and_returns_to_the_prompt(terminal: Terminal) -> None:
    terminal.wait_for(r">>> ")
    terminal.type("/set parameter num_predict 4000\r")
    terminal.wait_for(r"Set parameter")
    terminal.seen = b""
    terminal.type("Write a very long story about the sea.\r")
    # A few words of the answer itself: a line after the question that is not a prompt.
    terminal.wait_for(r"sea\.[ \t]*\r?\n(?!>>>)[^>\n]*\w+ \w+ \w+")
    terminal.type("\x03")
    terminal.seen = b""
    terminal.wait_for(r">>> ", timeout=15)
    terminal.type("/bye\r")
    assert terminal.close() == 0
