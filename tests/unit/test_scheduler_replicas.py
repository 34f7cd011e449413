"""Replicas (a cluster's `PASTURE_MAX_REPLICAS`): added under queue pressure on another
node, requests routed to the least busy one or the one that served their prompt's prefix.
The nodes are a planner's answers; the runners are the scripted fake."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence

from pasture.errors import NoRoomError
from pasture.runner.base import LoadSpec
from pasture.scheduler import Scheduler
from pasture.scheduler.placement import Held, Placement
from tests.fake_runner import FakeEngine

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


def make(max_replicas: int = 2, after: float = 0.01) -> tuple[Scheduler, FakeEngine]:
    engine = FakeEngine()
    return Scheduler(engine, max_loaded=8, max_queue=16, planner=TwoNodes(),
                     max_replicas=max_replicas, replica_after=after), engine


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
