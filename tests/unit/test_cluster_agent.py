"""A node's agent stops a runner whose start the front end gave up waiting for (its load
timed out, or its client left), whichever comes first: the start or the giving up. The
runner is a stand-in: what is tested is the agent's bookkeeping, without Ray."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pasture.cluster.agent import NodeAgent
from pasture.runner.base import LoadSpec


class StartedRunner:
    def __init__(self) -> None:
        self.closed = False
        self.address, self.api_key, self.engine = "127.0.0.1:1", "key", "default"
        self.llguidance, self.media_marker, self.memory = True, None, None

    async def close(self) -> None:
        self.closed = True


@pytest.fixture
def agent(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[NodeAgent, StartedRunner]:
    monkeypatch.setenv("PASTURE_MODELS", str(tmp_path / "models"))
    node = NodeAgent("127.0.0.1")
    runner = StartedRunner()

    async def start(spec: LoadSpec) -> StartedRunner:
        return runner

    monkeypatch.setattr(node.launcher, "start", start)
    return node, runner


SPEC = LoadSpec("/models/blobs/sha256-" + "0" * 64, num_ctx=2048).to_json()


def test_a_start_given_up_before_it_is_up_is_stopped_when_it_is(
        agent: tuple[NodeAgent, StartedRunner]) -> None:
    node, runner = agent

    async def main() -> dict[str, object]:
        await node.abandon("r1")
        return await node.start(SPEC, "r1")

    answer = asyncio.run(main())
    assert "error" in answer and runner.closed
    assert node.runners == {} and node.abandoned == set()


def test_a_start_given_up_after_it_is_up_is_stopped_at_once(
        agent: tuple[NodeAgent, StartedRunner]) -> None:
    node, runner = agent

    async def main() -> dict[str, object]:
        answer = await node.start(SPEC, "r2")
        assert not runner.closed and "r2" in node.runners
        await node.abandon("r2")
        return answer

    assert asyncio.run(main())["runner"] == "r2"
    assert runner.closed and node.runners == {}
