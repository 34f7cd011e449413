"""A cap on each runner's own memory, enforced from the parent.

A runaway request (a `format` schema demanding a billion items grows llama.cpp's grammar
state by about 350 MB/s, measured on SmolLM2) must cost its runner, not the machine. The
weights are memory-mapped, so an address-space limit (RLIMIT_AS) would refuse the load
itself, and the resident size counts file pages the kernel can drop at will. What runs
away is anonymous memory (`RssAnon`: KV cache, compute buffers, grammar and prompt-cache
state, and the weights only when loaded without mmap): the watchdog reads that from
/proc twice a second and kills the child past its limit.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

POLL_INTERVAL = 0.5  # seconds between readings: at 350 MB/s, ~175 MB past the cap at most
_MIN_HEADROOM = 1 << 30  # the default never caps a runner within 1 GiB of its loaded size


def anonymous_memory(pid: int) -> int | None:
    """Bytes of anonymous memory resident in process `pid`; None once it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def physical_memory() -> int:
    """The machine's RAM in bytes (0 where the platform cannot say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 0


def memory_limit(setting: int | None, loaded: int) -> int | None:
    """The cap for a runner holding `loaded` bytes once loaded: `setting` when given
    (0: none), else half the machine's RAM, but at least 1 GiB above `loaded` so that a
    large model loaded without mmap is not stopped for being what it is."""
    if setting is not None:
        return setting or None
    half = physical_memory() // 2
    return max(half, loaded + _MIN_HEADROOM) if half else None


async def watch(pid: int, limit: int, exceeded: Callable[[int], None],
                interval: float = POLL_INTERVAL) -> None:
    """Read `pid`'s anonymous memory every `interval` seconds; past `limit`, call
    `exceeded` with the bytes seen and return. Returns too once the process is gone."""
    while True:
        used = anonymous_memory(pid)  # a few µs: /proc/PID/status takes no mm lock
        if used is None:
            return
        if used > limit:
            exceeded(used)
            return
        await asyncio.sleep(interval)
