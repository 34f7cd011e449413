"""The loop-latency probe itself: it must see a stalled event loop, and not a busy worker."""

from __future__ import annotations

import asyncio
import time

from tests.loop_probe import STALL_LIMIT, LoopProbe


def test_the_probe_sees_work_that_blocks_the_loop() -> None:
    async def scenario() -> float:
        async with LoopProbe() as probe:
            time.sleep(STALL_LIMIT + 0.1)  # what a CPU-heavy step on the loop does
            await asyncio.sleep(0.05)
        return probe.worst

    assert asyncio.run(scenario()) > STALL_LIMIT


def test_the_probe_does_not_blame_work_done_in_a_worker() -> None:
    async def scenario() -> tuple[float, int]:
        async with LoopProbe() as probe:
            await asyncio.to_thread(time.sleep, STALL_LIMIT + 0.1)
        return probe.worst, probe.wakeups

    worst, wakeups = asyncio.run(scenario())
    assert worst < STALL_LIMIT and wakeups > 5
