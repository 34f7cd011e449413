"""A runner on another node, as the scheduler sees it: requests go straight to its port.

Everything per token is the same HTTP stream as on one machine (`ServedRunner`), one
network hop longer, authenticated with the runner's own key. Ray only starts, watches and
stops it: `alive` turns false when the node's agent says the process ended, or when Ray
says the agent (or its node) died.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from pasture.runner.base import LoadSpec, MemoryUse
from pasture.runner.served import ServedRunner

log = logging.getLogger(__name__)

STOP_TIMEOUT = 5.0  # seconds to wait for a node to confirm a runner stopped (a lost one never does)


class RemoteRunner(ServedRunner):
    """A runner started by the agent `agent` (a Ray actor handle) on node `node`."""

    def __init__(self, spec: LoadSpec, started: dict[str, Any], agent: Any, node: str) -> None:
        super().__init__(spec, started["address"], started["api_key"], started["engine"],
                         started["media_marker"], started["llguidance"])
        self.node = node
        self._agent = agent
        self._runner_id = started["runner"]
        memory = started.get("memory")
        self._memory = MemoryUse(*memory) if memory else None  # total, on GPU, on workers
        self._alive = True
        self._watch = asyncio.create_task(self._watch_process())

    @property
    def alive(self) -> bool:
        return self._alive

    @property
    def memory(self) -> MemoryUse | None:
        return self._memory

    async def _watch_process(self) -> None:
        """Wait for the process's end, as the agent or Ray reports it."""
        try:
            status = await self._agent.wait.remote(self._runner_id)
            reason = f"exited with status {status}"
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # Ray's errors: the agent, its worker or its node died
            reason = f"lost ({type(exc).__name__})"
        if self._alive:
            log.warning("runner for %s on node %s %s", self.spec.model_path, self.node, reason)
        self._alive = False

    async def close(self) -> None:
        """Stop the runner on its node (a lost node has stopped it already)."""
        self._alive = False
        self._watch.cancel()
        try:
            await asyncio.wait_for(self._agent.stop.remote(self._runner_id), STOP_TIMEOUT)
        except Exception as exc:  # Ray's errors, or a timeout: the node is gone or stuck
            log.warning("could not confirm the runner on node %s stopped (%s)", self.node,
                        type(exc).__name__)
        with contextlib.suppress(asyncio.CancelledError):
            await self._watch
