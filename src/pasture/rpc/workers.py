"""The RPC workers this server may place layers on, and which of them are free.

A worker serves one runner at a time (ggml's RPC server handles its connections one
after another: a second runner would wait in its accept queue until the first unloads),
so a runner is given only the workers no live runner holds. A worker that does not accept
a connection is left out with a warning: after a worker dies, the next load goes ahead
on the others and this machine, and picks the worker up again once it is back.

The shares are the operator's (`PASTURE_RPC_SPLIT`), else the memory free on each side at
the load: each worker's devices as it reports them over ggml's protocol (`memory`), this
machine's MemAvailable. ggml's CPU device reports the machine's whole RAM as free, so
for a CPU worker that share is its RAM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path

from pasture.rpc import library, split
from pasture.rpc.memory import WorkerUnanswered, device_memory
from pasture.runner.base import LoadSpec, Runner
from pasture.scheduler.memory import estimate_spec
from pasture.scheduler.placement import read_available_memory

log = logging.getLogger(__name__)

MiB = 1 << 20


class RpcWorkers:
    """Splits each new runner's layers between the free, listening workers and here."""

    def __init__(self, endpoints: Sequence[str], weights: Sequence[float],
                 engines: Path) -> None:
        if weights and len(weights) != len(endpoints) + 1:
            raise ValueError("one share per RPC worker, then this machine's")
        self.endpoints = tuple(endpoints)
        # Fixed shares; none: by free memory at each load.
        self.weights = dict(zip(endpoints, weights[:-1], strict=True)) if weights else None
        self.local_weight = weights[-1] if weights else 0.0
        self.engines = engines
        self._runners: list[Runner] = []

    def busy(self) -> set[str]:
        """Workers held by a live runner."""
        self._runners = [r for r in self._runners if r.alive]
        return {endpoint for r in self._runners for endpoint in r.spec.rpc_servers}

    async def attach(self, spec: LoadSpec) -> LoadSpec:
        """`spec` with layers on the workers that are free and listening (unchanged when
        the scheduler already chose workers, or none is available)."""
        if spec.rpc_servers:
            return spec
        busy = self.busy()
        free = [e for e in self.endpoints if e not in busy]
        shares = await (self._fixed(free) if self.weights is not None else self._by_memory(free))
        ready = [e for e in free if shares.get(e, 0) > 0]  # a share of 0: given nothing
        if busy & set(self.endpoints):
            log.info("RPC workers %s serve another model", ", ".join(sorted(busy)))
        if not ready:
            log.warning("no RPC worker available: %s loads on this machine alone",
                        spec.model_path)
            return spec
        await asyncio.to_thread(library.build, self.engines)
        estimate = await asyncio.to_thread(estimate_spec, spec)
        local = self.local_weight if self.weights is not None else \
            await asyncio.to_thread(read_available_memory) or 0
        placed = split.attach(spec, ready, [shares[e] for e in ready] + [local], estimate)
        sizes = split.device_bytes(placed, estimate)
        log.info("%s split by layers: %s (estimated %s MiB)", spec.model_path,
                 split.describe(placed), " / ".join(str(b // MiB) for b in sizes))
        return placed

    async def _fixed(self, endpoints: Sequence[str]) -> dict[str, float]:
        """The configured share of each worker that accepts a connection."""
        assert self.weights is not None
        reasons = await asyncio.gather(*(listening(e) for e in endpoints))
        shares = {}
        for endpoint, reason in zip(endpoints, reasons, strict=True):
            if reason is not None:
                log.warning("RPC worker %s left out: %s", endpoint, reason)
            else:
                shares[endpoint] = self.weights[endpoint]
        return shares

    async def _by_memory(self, endpoints: Sequence[str]) -> dict[str, float]:
        """The free memory of each worker that answers ggml's protocol: its devices'."""
        answers = await asyncio.gather(*(device_memory(e) for e in endpoints),
                                       return_exceptions=True)
        shares = {}
        for endpoint, answer in zip(endpoints, answers, strict=True):
            if isinstance(answer, WorkerUnanswered):
                log.warning("RPC worker %s left out: %s", endpoint, answer)
            elif isinstance(answer, BaseException):
                raise answer
            else:
                shares[endpoint] = float(sum(device.free for device in answer))
        return shares

    def started(self, runner: Runner) -> None:
        """Remember a runner that holds workers, until it stops."""
        if runner.spec.rpc_servers:
            self._runners.append(runner)


async def listening(endpoint: str, timeout: float = 3.0) -> str | None:
    """None when something accepts connections at `endpoint`, else why not. The
    connection is closed at once: the worker drops a client that sends nothing."""
    host, _, port = endpoint.rpartition(":")
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), timeout)
    except TimeoutError:
        return "no answer"
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return None
