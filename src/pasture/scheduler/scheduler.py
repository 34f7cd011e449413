"""Keeps runners loaded while they are wanted, as Ollama's scheduler does, and queues
the requests they cannot serve yet.

One runner per model file (as Ollama keys them): two names for one GGUF, say a model and
a copy with another template or parameters, share a runner when their load specs
(weights, adapters, projector, draft, load options) are equal; templates and sampling
are per request. A different spec for the same file reloads it once the runner is idle.

A request takes a lease on a runner, then one of its slots (`num_parallel`): beyond
those it waits in the runner's queue, first come first served. `max_queue` bounds the
requests waiting, for a load or for a slot, across the server: past it a request is
refused at once (503), as it is after `queue_timeout` seconds of waiting. When the last
lease ends, the keep_alive timer starts (`0` unloads at once, `inf` never). Loads happen
one at a time; at the loaded-model limit the idle runner with the shortest keep_alive is
evicted first, and so is it when the new model does not fit in the memory the loaded
ones leave (see `placement`). A runner found dead is replaced on the next request; a
load that runs out of GPU memory is retried with half the layers, then on the CPU.

Replicas (a cluster, `max_replicas` > 1): when a request has waited `replica_after`
seconds for a slot, another runner of the model is started on a node that has none and
room for it now (nothing is evicted for a replica), and the requests at the head of the
queue move to it; its memory is reserved while it starts, and requests for loaded models
go on meanwhile. A slot freed at a replica with no queue of its own takes the head of the
longest sibling queue. A request goes to the replica it would wait least at, preferring the
one that last served its prompt's prefix (`affinity`), whose prompt cache holds it, and
else the one used least recently. Each replica expires with keep_alive on its own.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from pasture.errors import NoRoomError, PastureError, QueueTimeoutError, ServerBusyError
from pasture.runner.base import LoadSpec, Runner, RunnerCrashed, RunnerOutOfMemory
from pasture.scheduler.placement import GPU_RUNTIME_BYTES, Held, Placement, Planner

log = logging.getLogger(__name__)

StartRunner = Callable[[LoadSpec], Awaitable[Runner]]


OnQueued = Callable[[int], None]  # told a waiting request's place in its queue (1: next)
AFFINITY_ENTRIES = 4096  # prompt prefixes remembered with the replica that last served each


class PlacesReplicas(Protocol):
    """A planner that can keep a model off nodes (the cluster's): replicas need one."""

    def place(self, spec: LoadSpec, held: Sequence[Held] = (),
              avoid: Collection[str] = ()) -> Placement: ...


class Watcher:
    """Told what happens to runners (the server's metrics listen); does nothing here."""

    def loaded(self, key: str, seconds: float) -> None:
        """`key` was loaded, in `seconds` (memory placement included)."""

    def crashed(self, key: str) -> None:
        """`key`'s runner was found dead while loaded."""


@dataclass(frozen=True)
class NeedsRoom:
    """A model gets more memory once loaded ones leave: on `node` (None: this machine),
    or on the nodes that would lend it memory (a split), where an idle one is evicted
    first."""

    node: str | None
    lenders: frozenset[str] = frozenset()


@dataclass(eq=False)
class Waiter:
    """A request waiting for a slot: resolved with the replica whose slot passes to it
    (the one it queued at, or a new replica it was moved to)."""

    turn: asyncio.Future[Loaded]
    on_queued: OnQueued | None = None
    since: float = field(default_factory=time.monotonic)


@dataclass(eq=False)
class Loaded:
    """A loaded model: its runner and its lifetime bookkeeping."""

    key: str  # the name of the model that loaded it, as shown by /api/ps
    digest: str  # manifest digest of that model
    # As requested (num_gpu -1, num_parallel 0: automatic): equal specs share the runner.
    spec: LoadSpec
    runner: Runner
    keep_alive: float
    placement: Placement  # where it went (the runner was started with its layers, slots)
    leases: int = 0  # requests holding it: running, or waiting for a slot
    running: int = 0  # requests holding one of its slots
    # Requests waiting for a slot, in arrival order; a freed slot passes to the first.
    waiting: collections.deque[Waiter] = field(default_factory=collections.deque)
    expires_at: float = math.inf  # wall-clock seconds; inf = forever
    stopping: bool = False
    loaded_at: float = field(default_factory=time.time)
    last_used: float = 0.0  # monotonic seconds of the last lease: replicas share requests
    _timer: asyncio.Task[None] | None = None
    names: set[str] = field(default_factory=set)  # every name a request leased it by

    def __post_init__(self) -> None:
        self.names.add(self.key)

    @property
    def file(self) -> str:
        """The model file it runs: the scheduler's key for it."""
        return self.spec.model_path

    @property
    def slot_free(self) -> bool:
        """A request arriving now would run at once."""
        return self.running < self.placement.parallel and not self.waiting

    @property
    def size(self) -> int:
        """Bytes the model takes: what the engine logged it allocated, else the estimate."""
        memory = self.runner.memory
        return memory.total if memory is not None else self.placement.size

    @property
    def size_vram(self) -> int:
        """Of `size`, the bytes on a GPU."""
        memory = self.runner.memory
        return memory.on_gpu if memory is not None else self.placement.size_vram

    @property
    def held(self) -> Held:
        """What this model takes from each memory pool, for placing the next one."""
        memory = self.runner.memory
        if memory is None:  # not logged yet: the estimate
            return _held(self.placement)
        return _held(self.placement, memory.on_gpu,
                     memory.total - memory.on_gpu - memory.remote)  # remote: on RPC workers


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

    def __init__(self, start_runner: StartRunner, *, max_loaded: int, max_queue: int,
                 planner: Planner | PlacesReplicas | None = None,
                 queue_timeout: float | None = None, max_replicas: int = 1,
                 replica_after: float = 2.0) -> None:
        self._start_runner = start_runner
        self._planner = planner  # None: start runners with the spec as given (tests)
        self._max_loaded = max_loaded
        self._max_queue = max_queue
        self._queue_timeout = queue_timeout  # seconds a request may wait; None: no limit
        self._max_replicas = max_replicas  # > 1 only with a planner that avoids nodes
        self._replica_after = replica_after
        self._loaded: list[Loaded] = []  # several of one file: replicas on other nodes
        self._affinity: collections.OrderedDict[str, Loaded] = collections.OrderedDict()
        self._growing: dict[str, asyncio.Task[bool]] = {}  # file -> adding a replica
        self._reserved: list[Held] = []  # memory of the replicas being started
        self._pending = 0
        self._load_lock = asyncio.Lock()
        self._changed = asyncio.Condition()
        self.watcher = Watcher()

    def loaded(self) -> list[Loaded]:
        """Runners currently loaded, most distant expiry first (as /api/ps lists them)."""
        return sorted(self._loaded, key=lambda m: -m.expires_at)

    def _replicas(self, file: str) -> list[Loaded]:
        return [m for m in self._loaded if m.file == file]

    @contextlib.asynccontextmanager
    async def lease(self, key: str, digest: str, spec: LoadSpec, keep_alive: float,
                    size: int, on_queued: OnQueued | None = None, *, slot: bool = True,
                    affinity: str | None = None) -> AsyncIterator[Lease]:
        """Hold a loaded runner for `key`, and one of its slots, for the duration of a
        request: 503 at once when `max_queue` requests wait already (unless a slot is
        free now), or after `queue_timeout` seconds of waiting. `on_queued` hears the
        request's place in the model's queue whenever it has to wait and moves up.
        `slot=False` holds the runner alone, for what the engine answers beside its
        generations (tokenizing, applying the chat template): no wait behind them, and
        any runner of the model's file will do, whatever its load options. `affinity`
        names the prompt's prefix: its replica is preferred (see the module's doc)."""
        if self._pending >= self._max_queue and not self._runs_now(spec):
            raise ServerBusyError()
        self._pending += 1
        try:
            lease = await self._acquire(key, digest, spec, keep_alive, size, any_spec=not slot,
                                        affinity=affinity)
            served: Loaded | None = None  # the replica whose slot this request holds
            try:
                if slot:
                    served = await self._take_slot(lease.loaded, on_queued)
                    if served is not lease.loaded:  # moved to another replica
                        # Point the lease at the new one first: cancelled while the old
                        # one closes, the lease and slot released below are the new one's.
                        old, lease = lease.loaded, Lease(served, lease.load_duration)
                        await asyncio.shield(self._release(old))
            except BaseException:
                if served is not None:
                    self._free_slot(served)
                await self._release(lease.loaded)
                raise
        finally:
            self._pending -= 1
        if affinity is not None:
            self._affinity[affinity] = lease.loaded
            self._affinity.move_to_end(affinity)
            if len(self._affinity) > AFFINITY_ENTRIES:
                self._affinity.popitem(last=False)
        try:
            yield lease
        except RunnerCrashed:
            if not lease.loaded.stopping:
                self.watcher.crashed(lease.loaded.key)
            lease.loaded.stopping = True  # the process may not be reaped yet: don't reuse it
            raise
        finally:
            if slot:
                self._free_slot(lease.loaded)
            await self._release(lease.loaded)

    @property
    def waiting(self) -> int:
        """Requests waiting, for a load or for a slot, across the server."""
        return self._pending

    def _runs_now(self, spec: LoadSpec) -> bool:
        return any(m.spec == spec and m.runner.alive and not m.stopping and m.slot_free
                   for m in self._replicas(spec.model_path))

    async def _take_slot(self, loaded: Loaded, on_queued: OnQueued | None) -> Loaded:
        """One of `loaded`'s slots, at once or when the requests ahead are done; or a
        new replica's, if the request is moved there while it waits."""
        if loaded.slot_free:
            loaded.running += 1
            return loaded
        waiter = Waiter(asyncio.get_running_loop().create_future(), on_queued)
        loaded.waiting.append(waiter)
        if on_queued is not None:
            on_queued(len(loaded.waiting))
        self._consider_replica(loaded)
        try:
            async with asyncio.timeout(self._queue_timeout):
                return await waiter.turn
        except BaseException as exc:
            if waiter.turn.done() and not waiter.turn.cancelled():  # a slot came as we gave
                served = waiter.turn.result()                          # up: pass it on
                self._free_slot(served)
                if served is not loaded:
                    await self._release(served)
            else:  # cancelled, maybe already passed over by `_free_slot`
                waiter.turn.cancel()
                with contextlib.suppress(ValueError):
                    loaded.waiting.remove(waiter)
                _tell_places(loaded)
            if isinstance(exc, TimeoutError):
                raise QueueTimeoutError(self._queue_timeout or 0) from None
            raise

    def _free_slot(self, loaded: Loaded) -> None:
        """A request is done with its slot: the first one waiting gets it, or, with none
        waiting here, the first one waiting at the sibling replica with the longest queue
        (which then moves here, as to a new replica)."""
        waiter = _next_waiter(loaded.waiting)
        if waiter is not None:
            waiter.turn.set_result(loaded)  # the slot passes on: `running` stays the same
            _tell_places(loaded)
            return
        if not loaded.stopping and loaded.runner.alive:
            siblings = [m for m in self._replicas(loaded.file) if m is not loaded
                        and m.spec == loaded.spec and any(not w.turn.done() for w in m.waiting)]
            if siblings:
                busiest = max(siblings, key=lambda m: len(m.waiting))
                waiter = _next_waiter(busiest.waiting)
                if waiter is not None:
                    loaded.leases += 1  # the request's; it releases its lease on `busiest`
                    waiter.turn.set_result(loaded)
                    _tell_places(busiest)
                    return
        loaded.running -= 1

    async def _acquire(self, key: str, digest: str, spec: LoadSpec, keep_alive: float,
                       size: int, any_spec: bool = False, affinity: str | None = None
                       ) -> Lease:
        replicas = self._replicas(spec.model_path)
        usable = [m for m in replicas if not m.stopping and (any_spec or m.spec == spec)]
        if usable and all(m.runner.alive for m in replicas):  # no load: no wait for one
            return self._lease_loaded(self._route(usable, affinity), key, keep_alive)
        async with self._load_lock:
            while True:
                replicas = self._replicas(spec.model_path)
                dead = [m for m in replicas if not m.runner.alive]
                for gone in dead:
                    if not gone.stopping:  # died idle, or before a stream saw it
                        self.watcher.crashed(gone.key)
                    await self._unload(gone)
                if dead:
                    continue
                usable = [m for m in replicas
                          if not m.stopping and (any_spec or m.spec == spec)]
                if usable:
                    current = self._route(usable, affinity)
                    break
                idle = [m for m in replicas if m.leases == 0]
                for other in idle:  # other load options: reloaded as asked
                    await self._unload(other)
                if idle:
                    continue
                if replicas:  # busy with other load options: wait for them to drain
                    await self._wait_for_change()
                    continue
                if len(self._loaded) >= self._max_loaded and not await self._evict_one():
                    await self._wait_for_change()
                    continue
                started = time.perf_counter()
                placement = await self._place(key, spec, size)
                if isinstance(placement, NeedsRoom):  # memory held by other models first
                    if not await self._evict_for(placement):
                        await self._wait_for_change()
                    continue
                runner, placement = await self._start(key, spec, placement)
                self.watcher.loaded(key, time.perf_counter() - started)
                current = Loaded(key, digest, spec, runner, keep_alive, placement)
                self._loaded.append(current)
                current.leases += 1
                self._touch(current, keep_alive)
                return Lease(current, time.perf_counter() - started)
            return self._lease_loaded(current, key, keep_alive)

    def _lease_loaded(self, current: Loaded, key: str, keep_alive: float) -> Lease:
        current.leases += 1
        current.names.add(key)
        self._touch(current, keep_alive)
        return Lease(current, 0.0)

    def _route(self, replicas: list[Loaded], affinity: str | None) -> Loaded:
        """The replica a request waits least at: the one that last served its prompt's
        prefix if it is among those, else the one used least recently."""
        def ahead(m: Loaded) -> int:  # requests a new one would wait behind
            return max(0, m.running + len(m.waiting) + 1 - m.placement.parallel)
        fewest = min(ahead(m) for m in replicas)
        best = [m for m in replicas if ahead(m) == fewest]
        preferred = self._affinity.get(affinity) if affinity is not None else None
        if preferred is not None and preferred in best:
            return preferred
        return min(best, key=lambda m: m.last_used)

    def _consider_replica(self, loaded: Loaded) -> None:
        """A request waits at `loaded`: add a replica if it still waits `replica_after`
        seconds from now (one replica at a time per model)."""
        if self._max_replicas <= 1 or loaded.file in self._growing:
            return
        if len(self._replicas(loaded.file)) >= self._max_replicas:
            return
        task = asyncio.create_task(self._grow(loaded))
        self._growing[loaded.file] = task

        def done(_: object) -> None:  # requests still waiting after a replica: another?
            if self._growing.get(loaded.file) is task:
                del self._growing[loaded.file]
            if not task.cancelled() and task.exception() is None and task.result() \
                    and loaded.waiting:
                self._consider_replica(loaded)
        task.add_done_callback(done)

    async def _grow(self, loaded: Loaded) -> bool:
        """Start another replica of `loaded` on a node that has none, and move the
        requests waiting longest to it, once the first has waited `replica_after` seconds
        (none waits by then, or no node has room now: nothing). The node is reserved under
        the load lock, the replica started without it: other requests go on meanwhile.
        True if a replica was added."""
        while True:
            oldest = next((w for w in loaded.waiting if not w.turn.done()), None)
            if oldest is None or loaded.stopping:
                return False
            remaining = oldest.since + self._replica_after - time.monotonic()
            if remaining <= 0:
                break
            await asyncio.sleep(remaining)
        async with self._load_lock:
            replicas = [m for m in self._replicas(loaded.file) if not m.stopping]
            if len(replicas) >= self._max_replicas or not loaded.waiting or loaded.stopping:
                return False
            started = time.perf_counter()
            try:
                placement = await asyncio.to_thread(
                    self._planner.place, loaded.spec,  # type: ignore[union-attr, call-arg]
                    self._held(), {m.placement.node for m in replicas})
            except Exception as exc:  # a background task: the queue simply stays as is
                log.info("no replica of %s added: %s", loaded.key, exc)
                return False
            if not placement.fits:
                return False
            reserved = _held(placement)
            self._reserved.append(reserved)  # counted by placements until it is loaded
        try:
            runner, placement = await self._start(loaded.key, loaded.spec, placement)
        except Exception as exc:
            log.info("no replica of %s added: %s", loaded.key, exc)
            return False
        finally:
            self._reserved.remove(reserved)
        if loaded.stopping:  # unloaded while the replica started
            await runner.close()
            return False
        self.watcher.loaded(loaded.key, time.perf_counter() - started)
        replica = Loaded(loaded.key, loaded.digest, loaded.spec, runner,
                         loaded.keep_alive, placement, names=set(loaded.names))
        self._loaded.append(replica)
        replica.leases += 1  # held while requests move over
        moved = 0
        while replica.slot_free and (waiter := _next_waiter(loaded.waiting)) is not None:
            replica.leases += 1
            replica.running += 1
            waiter.turn.set_result(replica)
            moved += 1
        _tell_places(loaded)
        log.info("replica of %s added on node %s: %d waiting requests moved to it",
                 loaded.key, placement.node, moved)
        self._touch(replica, loaded.keep_alive)
        await self._release(replica)
        return True

    def _held(self) -> list[Held]:
        """Memory the loaded models, and the replicas starting, take."""
        return [m.held for m in self._loaded] + self._reserved

    async def _place(self, key: str, spec: LoadSpec, size: int) -> Placement | NeedsRoom:
        """Where `spec` goes now; `NeedsRoom` if it would get less memory than with the
        loaded models gone (then one of them is evicted, or waited for, first)."""
        slots = spec.num_parallel or 1
        if self._planner is None:
            return Placement(spec.num_gpu, None, size, 0, parallel=slots)
        held = self._held()
        try:
            placement = await asyncio.to_thread(self._planner.place, spec, held)
            ideal = await asyncio.to_thread(self._planner.place, spec, []) if held else placement
        except NoRoomError:  # a cluster with no node that could hold it: say so
            raise
        except (PastureError, OSError) as exc:  # unreadable header: let the engine say why
            log.warning("cannot estimate memory for %s (%s): loading on the CPU", key, exc)
            return Placement(0, None, size, 0, "no memory estimate", parallel=slots)
        if placement.gpu_layers < ideal.gpu_layers or (ideal.fits and not placement.fits):
            log.info("%s needs memory held by other models (%s MiB)", key,
                     ideal.size // (1 << 20))
            return NeedsRoom(ideal.node, frozenset(node for node, _ in ideal.lent))
        if not placement.fits:
            log.warning("%s needs %d MiB of system memory, more than is available: loading "
                         "anyway", key, placement.size_system // (1 << 20))
        log.info("placing %s: %s, %d slots", key, placement.describe(), placement.parallel)
        return placement

    async def _start(self, key: str, spec: LoadSpec,
                     placement: Placement) -> tuple[Runner, Placement]:
        """Start the runner with the placement's layers; on running out of memory retry
        with half as many GPU layers, down to none, as Ollama steps down."""
        while True:
            run_spec = replace(spec, num_parallel=placement.parallel) \
                if self._planner is None else replace(
                    spec, num_gpu=placement.gpu_layers, num_parallel=placement.parallel,
                    node=placement.node, rpc_servers=placement.rpc_servers,
                    rpc_layers=placement.rpc_layers)
            try:
                return await self._start_runner(run_spec), placement
            except RunnerOutOfMemory:
                if self._planner is None or placement.gpu_layers <= 0:
                    raise
                fewer = placement.gpu_layers // 2
                log.warning("out of memory loading %s with %d GPU layers: retrying with %d",
                            key, placement.gpu_layers, fewer)
                placement = placement.with_layers(fewer, "retry after running out of memory")

    def _touch(self, loaded: Loaded, keep_alive: float) -> None:
        """A request arrived: cancel the expiry timer and remember its keep_alive."""
        loaded.keep_alive = keep_alive
        loaded.last_used = time.monotonic()
        loaded.expires_at = time.time() + keep_alive if math.isfinite(keep_alive) else math.inf
        if loaded._timer:
            loaded._timer.cancel()
            loaded._timer = None

    async def _release(self, loaded: Loaded) -> None:
        loaded.leases -= 1
        if loaded.leases == 0 and loaded in self._loaded:
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
        if loaded.leases == 0 and loaded in self._loaded:
            log.info("keep_alive expired for %s", loaded.key)
            await self._unload(loaded)

    async def _evict_one(self) -> bool:
        """Unload the idle runner with the shortest keep_alive; False if all are busy."""
        return await self._evict([m for m in self._loaded if m.leases == 0])

    async def _evict_for(self, room: NeedsRoom) -> bool:
        """Make room where `room` says: evict the idle runner that holds memory on its
        node or lenders; if none is idle there but a busy one holds a lender's memory (it
        lends to another split model), False (wait): evicting elsewhere would free nothing
        the split needs. Else any idle runner, as when the node alone is short."""
        def holds(m: Loaded, nodes: Collection[str | None]) -> bool:
            return m.placement.node in nodes or any(n in nodes for n, _ in m.placement.lent)
        there = [m for m in self._loaded if holds(m, {room.node, *room.lenders})]
        if any(m.leases == 0 for m in there):
            return await self._evict([m for m in there if m.leases == 0])
        if room.lenders and any(holds(m, room.lenders) for m in there):
            return False
        return await self._evict_one()

    async def _evict(self, idle: list[Loaded]) -> bool:
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
        if loaded in self._loaded:
            self._loaded.remove(loaded)
        for prefix in [p for p, m in self._affinity.items() if m is loaded]:
            del self._affinity[prefix]
        await loaded.runner.close()

    async def unload(self, key: str, file: str | None = None) -> bool:
        """Unload the runner serving the model named `key` (or running `file`) now if
        idle, or as soon as its current requests finish."""
        found = [m for m in self._loaded if key in m.names or m.file == file]
        for loaded in found:
            if loaded.leases == 0:
                await self._unload(loaded)
            else:
                loaded.keep_alive = 0
                loaded.stopping = True
        return bool(found)

    async def close(self) -> None:
        """Stop every runner (server shutdown)."""
        for task in list(self._growing.values()):
            task.cancel()
        for loaded in list(self._loaded):
            await self._unload(loaded)


def _held(placement: Placement, vram: int | None = None, system: int | None = None) -> Held:
    """What a runner started with `placement` takes: `vram` and `system` bytes, or by
    the estimate."""
    on_gpu = placement.device is not None and placement.gpu_layers > 0
    vram = placement.size_vram if vram is None else vram
    return Held(placement.device, vram + (GPU_RUNTIME_BYTES if on_gpu else 0),
                placement.size_system if system is None else system, placement.node,
                placement.lent)


def _next_waiter(waiting: collections.deque[Waiter]) -> Waiter | None:
    """The first request still waiting in `waiting`, taken off it; those that gave up
    (their turn is done) are dropped on the way."""
    while waiting:
        waiter = waiting.popleft()
        if not waiter.turn.done():
            return waiter
    return None


def _tell_places(loaded: Loaded) -> None:
    """Tell each request still waiting for `loaded` its place, after the queue moved."""
    for place, waiter in enumerate(loaded.waiting, start=1):
        if waiter.on_queued is not None and not waiter.turn.done():
            waiter.on_queued(place)
