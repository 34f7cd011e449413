"""Event-loop latency probes: is the server still answering while a hostile request runs?

A request must never stall the server for the others: anything CPU-heavy it triggers runs
off the event loop, with a budget. These probes measure that from outside, while the
hostile request is in flight:

- `LoopProbe` (in-process, for `tests/routes`): a task on the server's own event loop that
  wakes every `interval` seconds and records how late each wake-up was;
- `HTTPProbe` (a live server, for `tests/integration`): a thread that sends
  `GET /api/version` every `interval` seconds and records each answer's latency.

Both report `worst`, the largest delay seen; tests assert it stays under `STALL_LIMIT`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from types import TracebackType

import httpx

STALL_LIMIT = 0.25  # seconds: another client's `/api/version` must answer within this


class LoopProbe:
    """`async with LoopProbe() as probe:` around in-process work; then `probe.worst`."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.worst = 0.0
        self.wakeups = 0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LoopProbe:
        self._task = asyncio.create_task(self._tick())
        await asyncio.sleep(0)  # let it start before the work does
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        assert self._task is not None
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass

    async def _tick(self) -> None:
        while True:
            due = time.monotonic() + self.interval
            await asyncio.sleep(self.interval)
            self.worst = max(self.worst, time.monotonic() - due)
            self.wakeups += 1


class HTTPProbe:
    """`with HTTPProbe(url) as probe:` around a hostile request; then `probe.worst`, the
    slowest `GET /api/version` (a request that failed counts as `timeout`)."""

    def __init__(self, url: str, interval: float = 0.05, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/") + "/api/version"
        self.interval = interval
        self.timeout = timeout
        self.worst = 0.0
        self.answers = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="http-probe", daemon=True)

    def __enter__(self) -> HTTPProbe:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(self.timeout + 1)

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    client.get(self.url).raise_for_status()
                    self.answers += 1
                    took = time.monotonic() - started
                except httpx.HTTPError:
                    took = self.timeout
                self.worst = max(self.worst, took)
                self._stop.wait(self.interval)
