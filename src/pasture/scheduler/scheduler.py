"""Keeps runners loaded while they are wanted, as Ollama's scheduler does.

One runner per model file and load spec. A request takes a lease on a runner; when the
last lease ends, the keep_alive timer starts (`0` unloads at once, `inf` never). Loads
happen one at a time; at the loaded-model limit the idle runner with the shortest
keep_alive is evicted first. A runner found dead is replaced on the next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from pasture.errors import ServerBusyError
from pasture.runner.base import LoadSpec, Runner, RunnerCrashed

log = logging.getLogger(__name__)

StartRunner = Callable[[LoadSpec], Awaitable[Runner]]


@dataclass(eq=False)
class Loaded:
    """A loaded model: its runner and its lifetime bookkeeping."""

    key: str  # the model's name, as shown by /api/ps
    digest: str  # manifest digest of the model
    spec: LoadSpec
    runner: Runner
    keep_alive: float
    size: int
    leases: int = 0
    expires_at: float = math.inf  # wall-clock seconds; inf = forever
    stopping: bool = False
    loaded_at: float = field(default_factory=time.time)
    _timer: asyncio.Task[None] | None = None


@dataclass
class Lease:
    """What a request holds while it uses a runner."""

    loaded: Loaded
    load_duration: float  # seconds spent loading for this request (0 if already loaded)

    @property
    def runner(self) -> Runner:
        return self.loaded.runner


class Scheduler:
    """Loads, shares, expires and evicts runners."""

    def __init__(self, start_runner: StartRunner, *, max_loaded: int, max_queue: int) -> None:
        self._start_runner = start_runner
        self._max_loaded = max_loaded
        self._max_queue = max_queue
        self._loaded: dict[str, Loaded] = {}
        self._pending = 0
        self._load_lock = asyncio.Lock()
        self._changed = asyncio.Condition()

    def loaded(self) -> list[Loaded]:
        """Runners currently loaded, most distant expiry first (as /api/ps lists them)."""
        return sorted(self._loaded.values(), key=lambda m: -m.expires_at)

    @contextlib.asynccontextmanager
    async def lease(self, key: str, digest: str, spec: LoadSpec, keep_alive: float,
                    size: int) -> AsyncIterator[Lease]:
        """Hold a loaded runner for `key` for the duration of a request."""
        if self._pending >= self._max_queue:
            raise ServerBusyError()
        self._pending += 1
        try:
            lease = await self._acquire(key, digest, spec, keep_alive, size)
        finally:
            self._pending -= 1
        try:
            yield lease
        except RunnerCrashed:
            lease.loaded.stopping = True  # the process may not be reaped yet: don't reuse it
            raise
        finally:
            await self._release(lease.loaded)

    async def _acquire(self, key: str, digest: str, spec: LoadSpec, keep_alive: float,
                       size: int) -> Lease:
        async with self._load_lock:
            while True:
                current = self._loaded.get(key)
                usable = current and current.runner.alive and not current.stopping
                if usable and current.spec == spec:
                    break
                if current and (current.leases == 0 or not current.runner.alive):
                    await self._unload(current)
                    continue
                if current:  # busy with other load options: wait for it to drain
                    await self._wait_for_change()
                    continue
                if len(self._loaded) >= self._max_loaded and not await self._evict_one():
                    await self._wait_for_change()
                    continue
                started = time.perf_counter()
                runner = await self._start_runner(spec)
                current = Loaded(key, digest, spec, runner, keep_alive, size)
                self._loaded[key] = current
                current.leases += 1
                self._touch(current, keep_alive)
                return Lease(current, time.perf_counter() - started)
            current.leases += 1
            self._touch(current, keep_alive)
            return Lease(current, 0.0)

    def _touch(self, loaded: Loaded, keep_alive: float) -> None:
        """A request arrived: cancel the expiry timer and remember its keep_alive."""
        loaded.keep_alive = keep_alive
        loaded.expires_at = time.time() + keep_alive if math.isfinite(keep_alive) else math.inf
        if loaded._timer:
            loaded._timer.cancel()
            loaded._timer = None

    async def _release(self, loaded: Loaded) -> None:
        loaded.leases -= 1
        if loaded.leases == 0 and self._loaded.get(loaded.key) is loaded:
            if not loaded.runner.alive or loaded.keep_alive <= 0 or loaded.stopping:
                await self._unload(loaded)
            elif math.isfinite(loaded.keep_alive):
                loaded.expires_at = time.time() + loaded.keep_alive
                loaded._timer = asyncio.create_task(self._expire(loaded, loaded.keep_alive))
        async with self._changed:
            self._changed.notify_all()

    async def _expire(self, loaded: Loaded, delay: float) -> None:
        await asyncio.sleep(delay)
        loaded._timer = None
        if loaded.leases == 0 and self._loaded.get(loaded.key) is loaded:
            log.info("keep_alive expired for %s", loaded.key)
            await self._unload(loaded)

    async def _evict_one(self) -> bool:
        """Unload the idle runner with the shortest keep_alive; False if all are busy."""
        idle = [m for m in self._loaded.values() if m.leases == 0]
        if not idle:
            return False
        victim = min(idle, key=lambda m: m.keep_alive)
        log.info("evicting %s to make room", victim.key)
        await self._unload(victim)
        return True

    async def _wait_for_change(self) -> None:
        """Wait for a lease to end; the load lock is released meanwhile."""
        self._load_lock.release()
        try:
            async with self._changed:
                await self._changed.wait()
        finally:
            await self._load_lock.acquire()

    async def _unload(self, loaded: Loaded) -> None:
        loaded.stopping = True
        if loaded._timer:
            loaded._timer.cancel()
            loaded._timer = None
        if self._loaded.get(loaded.key) is loaded:
            del self._loaded[loaded.key]
        await loaded.runner.close()

    async def unload(self, key: str) -> bool:
        """Unload `key` now if idle, or as soon as its current requests finish."""
        loaded = self._loaded.get(key)
        if loaded is None:
            return False
        if loaded.leases == 0:
            await self._unload(loaded)
        else:
            loaded.keep_alive = 0
            loaded.stopping = True
        return True

    async def close(self) -> None:
        """Stop every runner (server shutdown)."""
        for loaded in list(self._loaded.values()):
            await self._unload(loaded)
