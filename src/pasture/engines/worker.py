"""A long job on untrusted input in a child process: llama.cpp's quantizer, its converters.

Such a job reads a file a user uploaded and takes minutes of every core on a large model,
so it runs as a child process of its own, started fresh (not from `pasture.isolated`'s
fork server: it loads a native library, or torch, and its own limits are set by its
entry point). Its anonymous memory is watched like a runner's and the child is killed
past the cap, or when the request goes away (the caller stops iterating). What it says
comes back line by line from its stderr, for progress. The child's entry point calls
`limit_self` first: low priority, a cap on its output file, and death with the server, so
a server killed mid-job leaves no job running unwatched (and no scratch folder in use).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import resource
import signal
from collections.abc import AsyncIterator, Sequence

from pasture.errors import BadRequestError, RunnerError
from pasture.runner import watchdog

# The tail of the child's stderr kept for an error message.
_TAIL_LINES = 20
_PARENT = "PASTURE_WORKER_PARENT"  # the server's pid, for the child to check it is alive
_PR_SET_PDEATHSIG = 1


class WorkerExited(Exception):
    """The child ended with a non-zero status (negative: killed by that signal)."""

    def __init__(self, code: int, tail: list[str]) -> None:
        super().__init__(f"exit status {code}")
        self.code = code
        self.tail = tail


async def stderr_lines(argv: Sequence[str], *, memory_limit: int | None, what: str,
                       env: dict[str, str] | None = None, timeout: float | None = None
                       ) -> AsyncIterator[bytes]:
    """Run `argv` and yield each line it writes to stderr. RunnerError if it outgrows
    `memory_limit` bytes of anonymous memory ("`what` used more than..."), BadRequestError
    past `timeout` seconds, WorkerExited if it fails; closing the iterator early kills
    the child."""
    env = {**(os.environ if env is None else env), _PARENT: str(os.getpid())}
    process = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE, env=env)
    overran: list[int] = []

    def stop(used: int) -> None:
        overran.append(used)
        with contextlib.suppress(ProcessLookupError):
            process.kill()

    guard = asyncio.create_task(watchdog.watch(process.pid, memory_limit, stop)) \
        if memory_limit else None
    tail: list[str] = []
    try:
        assert process.stderr is not None
        deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    line = await process.stderr.readline()
            except TimeoutError:
                raise BadRequestError(f"{what} took longer than {timeout:g} s") from None
            except ValueError:  # a line past the stream's limit: dropped, not fatal
                continue
            if not line:
                break
            tail = [*tail[-(_TAIL_LINES - 1):], line.decode(errors="replace").rstrip()]
            yield line
        code = await process.wait()
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        if guard is not None:
            guard.cancel()
    if overran:
        raise RunnerError(f"{what} used more than its memory limit "
                          f"({(memory_limit or 0) >> 20} MiB) and was stopped")
    if code != 0:
        raise WorkerExited(code, tail)


def limit_self(max_output: int) -> None:
    """In the child, first: run at low priority, with files it writes capped at
    `max_output` bytes (SIGXFSZ past it: a hostile input cannot fill the disk), and be
    killed when the server dies (Linux's PR_SET_PDEATHSIG): its time and memory limits
    are the server's to enforce, so it must not outlive it."""
    ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if str(os.getppid()) != os.environ.get(_PARENT):  # it died before the line above
        os._exit(1)
    resource.setrlimit(resource.RLIMIT_FSIZE, (max_output, max_output))
    with contextlib.suppress(OSError):
        os.nice(10)  # last: a lower priority says the limits are set
