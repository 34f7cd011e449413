"""CPU-heavy work on untrusted input, in a child process of its own.

A worker thread keeps such work off the event loop, but not out of the server: a hostile
GGUF header (a million tensors) takes seconds and hundreds of MB to parse, a 64 KiB
template seconds to parse, and the thread holds the GIL the loop needs, finishes after
its client has gone, and leaves its memory in the server. `isolated` runs one call in a
forked child instead: its memory and CPU are the child's (capped by `memory`), the loop
only waits on a pipe, and a caller that gives up (cancelled, or past `timeout`) kills
the child at once.

Children come from a fork server that has already imported Pasture's parsers, so a call
costs a fork, not a Python start-up (the first call starts the fork server: it is not
started with the server, which would slow every start-up for a rare request).
Results and exceptions travel back pickled.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from pasture.errors import BadRequestError

T = TypeVar("T")

# What a child may map in all: enough for any real GGUF header or template, far from
# what the attack runs reached (2 GB and more).
MEMORY = 1 << 30
# The modules the fork server imports once, so that each child starts with them: those
# whose functions run isolated (create's header checks come with the store package, some
# 120 modules: 0.3 s per child when each imports them itself). Also the CLI's entry: a
# server started by the `pasture` console script has that script as its main module, which
# multiprocessing runs again in each child, importing `pasture.cli.main` unless it is
# already there.
_PRELOAD = ["pasture.isolated", "pasture.gguf", "pasture.prompt.render", "pasture.store.create",
            "pasture.cli.main"]
_context: Any = None


def _fork_server() -> Any:
    """The multiprocessing context, its fork server told what to preload (started by the
    first child)."""
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(_PRELOAD)
    return _context


def _child(sender: Connection, memory: int, fn: Callable[..., Any], args: tuple[Any, ...]
           ) -> None:
    """In the child: cap its memory, run `fn`, send back ("ok", result) or ("error", exc)."""
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    try:
        outcome: tuple[str, Any] = ("ok", fn(*args))
    except MemoryError:
        outcome = ("error", BadRequestError(f"{_what(fn)} needs more than "
                                            f"{memory >> 20} MiB of memory"))
    except Exception as exc:  # noqa: BLE001 - every failure goes back to the caller
        outcome = ("error", exc)
    try:
        sender.send(outcome)
    except Exception as exc:  # noqa: BLE001 - an exception that does not pickle
        sender.send(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))


def _what(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__name__", "the work").replace("_", " ")


async def isolated(fn: Callable[..., T], *args: Any, timeout: float,
                   memory: int = MEMORY) -> T:
    """`fn(*args)` in a child process with at most `memory` bytes of address space; its
    exception re-raised here; BadRequestError past `timeout` seconds or if the child
    dies (its memory cap, a crash). `fn` and `args` must pickle (a module-level function
    and plain data)."""
    context = _fork_server()
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(sender, memory, fn, args), daemon=True)
    try:
        await asyncio.to_thread(process.start)  # talks to the fork server: off the loop
        sender.close()
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()
        loop.add_reader(receiver.fileno(), ready.set)
        try:
            async with asyncio.timeout(timeout):
                await ready.wait()
        except TimeoutError:
            raise BadRequestError(f"{_what(fn)} took longer than {timeout:g} s") from None
        finally:
            loop.remove_reader(receiver.fileno())
        try:
            status, value = await asyncio.to_thread(receiver.recv)
        except EOFError:  # the child died without answering
            await asyncio.to_thread(process.join)
            raise BadRequestError(f"{_what(fn)} failed: its process ended "
                                  f"(exit code {process.exitcode})") from None
    finally:
        if process.is_alive():
            process.kill()
        if process.pid is not None:
            await asyncio.to_thread(process.join)
        receiver.close()
        sender.close()
    if status == "error":
        raise value
    return value
