"""Replicas (a cluster's `PASTURE_MAX_REPLICAS`): added under queue pressure on another
node, requests routed to the least busy one or the one that served their prompt's prefix.
The nodes are a planner's answers; the runners are the scripted fake."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Sequence

from pasture.errors import NoRoomError
from pasture.runner.base import LoadSpec
from pasture.scheduler import Scheduler
from pasture.scheduler.placement import Held, Placement
from tests.fake_runner import FakeEngine, FakeRunner

SPEC = LoadSpec(model_path="m.gguf", num_ctx=2048)


class TwoNodes:
    """Places each model on the first node not avoided that holds fewer than one model."""

    nodes = ("n1", "n2")

    def place(self, spec: LoadSpec, held: Sequence[Held] = (),
              avoid: Collection[str] = ()) -> Placement:
        for node in self.nodes:
            if node not in avoid and not any(h.node == node for h in held):
                return Placement(0, None, 1, 0, node=node)
        raise NoRoomError("no node has room")


def replicating(engine: FakeEngine, planner: TwoNodes | None = None, max_replicas: int = 2,
                after: float = 0.01) -> Scheduler:
    """A scheduler that adds replicas (on `planner`'s nodes, two by default) quickly."""
    return Scheduler(engine, max_loaded=8, max_queue=16, planner=planner or TwoNodes(),
                     max_replicas=max_replicas, replica_after=after)


def make(max_replicas: int = 2, after: float = 0.01) -> tuple[Scheduler, FakeEngine]:
    engine = FakeEngine()
    return replicating(engine, max_replicas=max_replicas, after=after), engine


async def hold(scheduler: Scheduler, release: asyncio.Event, served: list[str | None],
               affinity: str | None = None) -> None:
    async with scheduler.lease("m", "d", SPEC, 60, 1, affinity=affinity) as lease:
        served.append(lease.loaded.placement.node)
        await release.wait()


def test_a_replica_is_added_on_another_node_when_requests_wait() -> None:
    async def scenario() -> None:
        scheduler, engine = make()
        release, served = asyncio.Event(), []
        tasks = [asyncio.create_task(hold(scheduler, release, served)) for _ in range(3)]
        for _ in range(100):
            await asyncio.sleep(0.01)
            if len(served) == 2:
                break
        assert served == ["n1", "n2"]  # the waiting request moved to the new replica
        assert sorted(m.placement.node for m in scheduler.loaded()) == ["n1", "n2"]
        release.set()
        await asyncio.gather(*tasks)
        assert sorted(served) == ["n1", "n1", "n2"]
        assert len(engine.started) == 2  # no third replica: at most two
        await scheduler.close()

    asyncio.run(scenario())


def test_no_replica_beyond_the_limit_of_one() -> None:
    async def scenario() -> None:
        scheduler, engine = make(max_replicas=1)
        release, served = asyncio.Event(), []
        tasks = [asyncio.create_task(hold(scheduler, release, served)) for _ in range(2)]
        await asyncio.sleep(0.1)
        assert served == ["n1"] and len(engine.started) == 1
        release.set()
        await asyncio.gather(*tasks)
        await scheduler.close()

    asyncio.run(scenario())


def test_a_request_served_before_the_threshold_adds_no_replica() -> None:
    async def scenario() -> None:
        scheduler, engine = make(after=0.3)
        release, served = asyncio.Event(), []
        tasks = [asyncio.create_task(hold(scheduler, release, served)) for _ in range(2)]
        await asyncio.sleep(0.1)
        release.set()  # the waiting request gets its slot after 0.1 s of the 0.3
        await asyncio.gather(*tasks)
        await asyncio.sleep(0.4)
        assert served == ["n1", "n1"] and len(engine.started) == 1
        await scheduler.close()

    asyncio.run(scenario())


def test_requests_go_to_the_replica_that_served_their_prefix() -> None:
    async def scenario() -> None:
        scheduler, _ = make()
        release, served = asyncio.Event(), []
        tasks = [asyncio.create_task(hold(scheduler, release, served, "warm"))
                 for _ in range(2)]
        while len(served) < 2:
            await asyncio.sleep(0.01)
        release.set()
        await asyncio.gather(*tasks)
        served.clear()
        # Both idle now: without affinity they would alternate (least recently used).
        for _ in range(3):
            await hold(scheduler, release, served, "warm")
        assert len(set(served)) == 1, served
        for _ in range(2):
            await hold(scheduler, release, served, None)
        assert set(served[3:]) == {"n1", "n2"}, served  # no prefix: spread
        await scheduler.close()

    asyncio.run(scenario())


class RoomForOneEach(TwoNodes):
    """Each node holds one model; `big.gguf` fits on n2 alone."""

    def place(self, spec: LoadSpec, held: Sequence[Held] = (),
              avoid: Collection[str] = ()) -> Placement:
        if spec.model_path != "big.gguf":
            return super().place(spec, held, avoid)
        return Placement(0, None, 1, 0, node="n2",
                         fits=not any(h.node == "n2" for h in held))


def test_eviction_frees_the_node_the_new_model_needs() -> None:
    async def scenario() -> None:
        engine = FakeEngine()
        scheduler = Scheduler(engine, max_loaded=8, max_queue=16, planner=RoomForOneEach())
        for name, keep_alive in (("a", 10.0), ("b", 600.0)):  # a on n1, b on n2
            async with scheduler.lease(name, "d", LoadSpec(f"{name}.gguf", 2048),
                                       keep_alive, 1):
                pass
        async with scheduler.lease("big", "d", LoadSpec("big.gguf", 2048), 60, 1):
            pass
        # b goes, though a has the shorter keep_alive: only n2 can take the big model.
        assert sorted((m.key, m.placement.node) for m in scheduler.loaded()) == \
            [("a", "n1"), ("big", "n2")]
        await scheduler.close()

    asyncio.run(scenario())


class GatedEngine(FakeEngine):
    """Starts runners after the first `free` ones only once `gate` is set; its runners'
    `close` waits for `closing` (set: at once)."""

    def __init__(self, free: int) -> None:
        super().__init__()
        self.free = free
        self.gate = asyncio.Event()
        self.closing = asyncio.Event()
        self.closing.set()
        self.calls = 0  # starts asked for, done or not

    async def __call__(self, spec: LoadSpec) -> FakeRunner:
        self.calls += 1
        if self.calls > self.free:
            await self.gate.wait()
        runner = await super().__call__(spec)
        closing, close = self.closing, runner.close

        async def gated_close() -> None:
            await closing.wait()
            await close()
        runner.close = gated_close  # type: ignore[method-assign]
        return runner


class ThreeNodes(TwoNodes):
    nodes = ("n1", "n2", "n3")


async def settle(done: Callable[[], bool]) -> bool:
    """Let the other tasks run until `done()` (a bounded number of turns, not a time)."""
    for _ in range(200):
        if done():
            return True
        await asyncio.sleep(0.001)
    return done()


def counts(scheduler: Scheduler) -> list[tuple[str | None, int, int, int]]:
    return sorted((m.placement.node, m.leases, m.running, len(m.waiting))
                  for m in scheduler.loaded())


def test_a_freed_slot_on_a_replica_takes_from_its_siblings_queue() -> None:
    async def scenario() -> None:
        scheduler, _ = make()
        releases = [asyncio.Event() for _ in range(5)]
        served: list[str | None] = []
        tasks = [asyncio.create_task(hold(scheduler, r, served)) for r in releases]
        assert await settle(lambda: len(served) == 2)
        assert counts(scheduler) == [("n1", 4, 1, 3), ("n2", 1, 1, 0)]
        releases[served.index("n2")].set()  # n2's request ends: n2 takes n1's next one
        assert await settle(lambda: len(served) == 3)
        assert served[2] == "n2"
        assert counts(scheduler) == [("n1", 3, 1, 2), ("n2", 1, 1, 0)]
        for r in releases:
            r.set()
        await asyncio.gather(*tasks)
        assert len(served) == 5
        assert all(m.leases == 0 and m.running == 0 for m in scheduler.loaded())
        await scheduler.close()

    asyncio.run(scenario())


def test_other_requests_go_on_while_a_replica_starts() -> None:
    async def scenario() -> None:
        engine = GatedEngine(free=2)
        scheduler = replicating(engine, ThreeNodes())
        async with scheduler.lease("o", "d", LoadSpec("o.gguf", 2048), 60, 1):
            pass  # another model, loaded on n1
        release, served = asyncio.Event(), []
        tasks = [asyncio.create_task(hold(scheduler, release, served)) for _ in range(2)]
        assert await settle(lambda: engine.calls == 3)  # m's replica is starting, held

        async def other() -> None:
            async with scheduler.lease("o", "d", LoadSpec("o.gguf", 2048), 60, 1):
                pass

        async def no_slot() -> None:
            async with scheduler.lease("m", "d", SPEC, 60, 1, slot=False):
                pass
        quick = [asyncio.create_task(other()), asyncio.create_task(no_slot())]
        assert await settle(lambda: all(t.done() for t in quick))
        assert not engine.gate.is_set() and served == ["n2"]
        engine.gate.set()
        assert await settle(lambda: len(served) == 2)
        assert served == ["n2", "n3"]  # the replica took the node left free
        release.set()
        await asyncio.gather(*tasks, *quick)
        await scheduler.close()

    asyncio.run(scenario())


def test_a_model_unloaded_while_its_replica_starts_gets_none() -> None:
    async def scenario() -> None:
        engine = GatedEngine(free=1)
        scheduler = replicating(engine)
        release, served = asyncio.Event(), []
        tasks = [asyncio.create_task(hold(scheduler, release, served)) for _ in range(2)]
        assert await settle(lambda: engine.calls == 2)
        assert await scheduler.unload("m")
        engine.gate.set()
        assert await settle(lambda: engine.started[-1].closed)  # the replica, closed at once
        assert [m.placement.node for m in scheduler.loaded()] == ["n1"]
        release.set()
        await asyncio.gather(*tasks)
        assert served == ["n1", "n1"] and scheduler.loaded() == []
        await scheduler.close()

    asyncio.run(scenario())


def test_a_request_cancelled_as_it_moves_returns_the_new_replicas_slot() -> None:
    async def scenario() -> None:
        engine = GatedEngine(free=1)
        scheduler, releases = replicating(engine), [asyncio.Event(), asyncio.Event()]
        served: list[str | None] = []

        async def hold_once(release: asyncio.Event) -> None:
            async with scheduler.lease("m", "d", SPEC, 0, 1) as lease:  # keep_alive 0
                served.append(lease.loaded.placement.node)
                await release.wait()
        first = asyncio.create_task(hold_once(releases[0]))
        assert await settle(lambda: served == ["n1"])
        moving = asyncio.create_task(hold_once(releases[1]))
        assert await settle(lambda: engine.calls == 2)  # n2 starting for the waiting one
        engine.closing.clear()
        engine.gate.set()  # n2 is added and takes the waiting request, then first ends:
        releases[0].set()  # n1 closes (keep_alive 0) as the moved request lets go of it
        n1 = engine.started[0]
        assert await settle(lambda: first.done() and
                            [m.placement.node for m in scheduler.loaded()] == ["n2"])
        assert not n1.closed and not moving.done()  # the moved request waits for n1 to close
        moving.cancel()  # the client leaves then
        engine.closing.set()
        await asyncio.gather(first, moving, return_exceptions=True)
        assert counts(scheduler) == []  # n2's lease and slot returned: unloaded (keep_alive 0)
        assert moving.cancelled() and n1.closed and served == ["n1"]
        await scheduler.close()

    asyncio.run(scenario())


class SharedLender(TwoNodes):
    """`s1.gguf` runs on n1 and `s2.gguf` on n4, each with layers lent by n2, which can
    lend to one of them at a time; anything else goes to n3."""

    def place(self, spec: LoadSpec, held: Sequence[Held] = (),
              avoid: Collection[str] = ()) -> Placement:
        host = {"s1.gguf": "n1", "s2.gguf": "n4"}.get(spec.model_path)
        if host is None:
            return Placement(0, None, 1, 0, node="n3")
        lending = any(node == "n2" for h in held for node, _ in h.lent)
        return Placement(0, None, 1, 0, node=host, fits=not lending, lent=(("n2", 1),))


def test_a_split_waits_for_its_busy_lender_rather_than_evicting_elsewhere() -> None:
    async def scenario() -> None:
        scheduler = Scheduler(FakeEngine(), max_loaded=8, max_queue=16,
                              planner=SharedLender())
        async with scheduler.lease("other", "d", LoadSpec("other.gguf", 2048), 600, 1):
            pass  # idle on n3, which the split models do not use
        release = asyncio.Event()

        async def split(name: str) -> None:
            async with scheduler.lease(name, "d", LoadSpec(f"{name}.gguf", 2048), 600, 1):
                await release.wait()
        first = asyncio.create_task(split("s1"))
        assert await settle(lambda: len(scheduler.loaded()) == 2)
        second = asyncio.create_task(split("s2"))
        assert not await settle(lambda: second.done() or len(scheduler.loaded()) != 2)
        release.set()  # s1 done: idle, it is the one evicted for s2
        await asyncio.gather(first, second)
        assert sorted(m.key for m in scheduler.loaded()) == ["other", "s2"]
        await scheduler.close()

    asyncio.run(scenario())
