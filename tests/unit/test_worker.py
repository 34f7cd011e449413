"""`engines.worker`: a long job's child is killed past its time limit or when its reader
leaves, and a failure comes back with the child's last words."""

from __future__ import annotations

import asyncio
import contextlib
import sys

import pytest

from pasture.engines import worker
from pasture.errors import BadRequestError
from tests.processes import alive


async def _collect(argv: list[str], **limits: float) -> list[bytes]:
    lines = worker.stderr_lines(argv, memory_limit=None, what="the job", **limits)
    async with contextlib.aclosing(lines):
        return [line async for line in lines]


def test_lines_come_back_and_a_failure_carries_the_tail() -> None:
    script = "import sys; print('one', file=sys.stderr); print('boom', file=sys.stderr); " \
             "sys.exit(3)"
    with pytest.raises(worker.WorkerExited) as failed:
        asyncio.run(_collect([sys.executable, "-c", script]))
    assert failed.value.code == 3 and failed.value.tail == ["one", "boom"]


def test_a_child_past_its_time_limit_is_killed() -> None:
    script = "import os, sys, time; print(os.getpid(), file=sys.stderr, flush=True); " \
             "time.sleep(60)"
    pids: list[int] = []

    async def run() -> None:
        lines = worker.stderr_lines([sys.executable, "-c", script], memory_limit=None,
                                    what="the job", timeout=2)
        async with contextlib.aclosing(lines):
            async for line in lines:
                pids.append(int(line))

    with pytest.raises(BadRequestError, match="the job took longer than 2 s"):
        asyncio.run(run())
    assert pids and not alive(pids[0])


def test_a_reader_that_leaves_kills_the_child() -> None:
    script = "import os, sys, time; print(os.getpid(), file=sys.stderr, flush=True); " \
             "time.sleep(60)"

    async def first_line() -> int:
        lines = worker.stderr_lines([sys.executable, "-c", script], memory_limit=None,
                                    what="the job")
        async with contextlib.aclosing(lines):
            async for line in lines:
                return int(line)
        raise AssertionError("no line")

    assert not alive(asyncio.run(first_line()))
