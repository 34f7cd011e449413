"""`isolated`: untrusted CPU work in a child process, its memory capped, killed when the
caller gives up."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from pasture.errors import BadRequestError, TemplateError
from pasture.isolated import isolated
from pasture.prompt.render import parse_template


def whose_pid() -> int:
    return os.getpid()


def hog(megabytes: int) -> int:
    return len(bytearray(megabytes << 20))


def sleep_then_mark(seconds: float, mark: str) -> None:
    Path(mark).write_text(str(os.getpid()))
    time.sleep(seconds)


def test_the_work_runs_in_another_process_and_its_result_comes_back() -> None:
    assert asyncio.run(isolated(whose_pid, timeout=30)) != os.getpid()
    template = asyncio.run(isolated(parse_template, "{{ .Prompt }}!", timeout=30))
    assert template.render_insert("hi", "", __import__("pasture.prompt.render",
                                                      fromlist=["Think"]).Think()) == "hi!"


def test_its_exception_is_raised_here() -> None:
    with pytest.raises(TemplateError, match="unclosed action"):
        asyncio.run(isolated(parse_template, "{{ .Prompt ", timeout=30))


def test_memory_past_the_cap_is_a_400_and_the_server_keeps_none_of_it() -> None:
    with pytest.raises(BadRequestError, match="needs more than 256 MiB"):
        asyncio.run(isolated(hog, 512, timeout=30, memory=256 << 20))
    assert asyncio.run(isolated(hog, 16, timeout=30, memory=256 << 20)) == 16 << 20


@pytest.mark.parametrize("how", ["timeout", "cancel"])
def test_a_caller_that_gives_up_kills_the_child(tmp_path: Path, how: str) -> None:
    mark = tmp_path / "pid"

    async def scenario() -> None:
        work = asyncio.ensure_future(isolated(sleep_then_mark, 60, str(mark),
                                              timeout=60 if how == "cancel" else 1))
        while not mark.exists() or not mark.read_text():
            await asyncio.sleep(0.01)
        if how == "cancel":
            work.cancel()
            with pytest.raises(asyncio.CancelledError):
                await work
        else:
            with pytest.raises(BadRequestError, match="took longer than 1 s"):
                await work

    asyncio.run(scenario())
    pid = int(mark.read_text())
    with pytest.raises(ProcessLookupError):  # gone, and reaped
        os.kill(pid, 0)
