"""The scheduler's lifetime rules, with the scripted fake runner in place of a real process."""

from __future__ import annotations

import asyncio
import math

import pytest

from pasture.errors import ServerBusyError
from pasture.runner.base import LoadSpec
from pasture.scheduler import Scheduler
from tests.fake_runner import FakeEngine


def spec(path: str = "a.gguf", ctx: int = 2048) -> LoadSpec:
    return LoadSpec(model_path=path, num_ctx=ctx)


def make(max_loaded: int = 3, max_queue: int = 512) -> tuple[Scheduler, FakeEngine]:
    factory = FakeEngine()
    return Scheduler(factory, max_loaded=max_loaded, max_queue=max_queue), factory


async def use(scheduler: Scheduler, key: str, keep_alive: float, s: LoadSpec | None = None) -> None:
    async with scheduler.lease(key, "digest", s or spec(key), keep_alive, 1):
        pass


def test_runner_is_reused_while_kept_alive() -> None:
    async def scenario() -> None:
        scheduler, factory = make()
        await use(scheduler, "m", 60)
        await use(scheduler, "m", 60)
        assert len(factory.started) == 1
        assert [m.key for m in scheduler.loaded()] == ["m"]

    asyncio.run(scenario())


def test_keep_alive_zero_unloads_after_the_request() -> None:
    async def scenario() -> None:
        scheduler, factory = make()
        await use(scheduler, "m", 0)
        assert scheduler.loaded() == []
        assert factory.started[0].closed

    asyncio.run(scenario())


def test_keep_alive_timer_expires_an_idle_model() -> None:
    async def scenario() -> None:
        scheduler, factory = make()
        await use(scheduler, "m", 0.05)
        assert scheduler.loaded()
        await asyncio.sleep(0.2)
        assert scheduler.loaded() == []
        assert factory.started[0].closed

    asyncio.run(scenario())


def test_negative_keep_alive_means_forever() -> None:
    async def scenario() -> None:
        scheduler, _ = make()
        await use(scheduler, "m", math.inf)
        (loaded,) = scheduler.loaded()
        assert math.isinf(loaded.expires_at)

    asyncio.run(scenario())


def test_model_in_use_is_not_unloaded_until_its_request_ends() -> None:
    async def scenario() -> None:
        scheduler, factory = make()
        async with scheduler.lease("m", "d", spec("m"), 0, 1):
            assert await scheduler.unload("m")
            assert not factory.started[0].closed
        assert factory.started[0].closed
        assert scheduler.loaded() == []

    asyncio.run(scenario())


def test_at_the_limit_the_idle_model_with_shortest_keep_alive_is_evicted() -> None:
    async def scenario() -> None:
        scheduler, factory = make(max_loaded=2)
        await use(scheduler, "long", 600)
        await use(scheduler, "short", 60)
        await use(scheduler, "new", 300)
        assert sorted(m.key for m in scheduler.loaded()) == ["long", "new"]
        assert factory.started[1].closed and not factory.started[0].closed

    asyncio.run(scenario())


def test_new_model_waits_for_a_busy_one_at_the_limit() -> None:
    async def scenario() -> None:
        scheduler, factory = make(max_loaded=1)
        order: list[str] = []

        async def busy() -> None:
            async with scheduler.lease("a", "d", spec("a"), 60, 1):
                await asyncio.sleep(0.1)
                order.append("a done")

        async def waiting() -> None:
            await asyncio.sleep(0.01)
            await use(scheduler, "b", 60)
            order.append("b done")

        await asyncio.gather(busy(), waiting())
        assert order == ["a done", "b done"]
        assert [m.key for m in scheduler.loaded()] == ["b"]

    asyncio.run(scenario())


def test_changed_load_options_restart_the_runner() -> None:
    async def scenario() -> None:
        scheduler, factory = make()
        await use(scheduler, "m", 60, spec("m", 2048))
        await use(scheduler, "m", 60, spec("m", 8192))
        assert len(factory.started) == 2
        assert factory.started[0].closed
        assert scheduler.loaded()[0].spec.num_ctx == 8192

    asyncio.run(scenario())


def test_dead_runner_is_replaced_on_the_next_request() -> None:
    async def scenario() -> None:
        scheduler, factory = make()
        await use(scheduler, "m", 60)
        factory.started[0].closed = True  # the process died
        await use(scheduler, "m", 60)
        assert len(factory.started) == 2
        assert scheduler.loaded()[0].runner is factory.started[1]

    asyncio.run(scenario())


def test_full_queue_answers_server_busy() -> None:
    async def scenario() -> None:
        scheduler, _ = make(max_loaded=1, max_queue=1)
        hold = asyncio.Event()

        async def holder() -> None:
            async with scheduler.lease("a", "d", spec("a"), 60, 1):
                await hold.wait()

        task = asyncio.create_task(holder())
        await asyncio.sleep(0.01)
        waiter = asyncio.create_task(use(scheduler, "b", 60))  # queued: fills the queue
        await asyncio.sleep(0.01)
        with pytest.raises(ServerBusyError):
            await use(scheduler, "c", 60)
        hold.set()
        await asyncio.gather(task, waiter)

    asyncio.run(scenario())


def test_crash_during_a_request_retires_the_runner_at_once() -> None:
    async def scenario() -> None:
        from pasture.runner.base import RunnerCrashed

        scheduler, factory = make()
        with pytest.raises(RunnerCrashed):
            async with scheduler.lease("m", "d", spec("m"), 60, 1):
                raise RunnerCrashed()
        assert scheduler.loaded() == []
        assert factory.started[0].closed

    asyncio.run(scenario())
