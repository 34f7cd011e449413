"""Pasture's actor on each Ray node: reports the node, and owns its runner processes.

The front end starts one per node (pinned there with Ray's node affinity) and, through
it, starts runners with the placement it chose: the same `pasture.runner` child as on one
machine, listening on the node's address with its own random key, started by the node's
own engine builds and settings (`PASTURE_MODELS`, `PASTURE_ENGINES`, the load timeout and
the runner memory cap, from the environment `ray start` ran in). When this actor's worker
or its node dies, Ray tells the front end (`wait` fails) and the runners go with it: they
exit when their stdin, held by this process, closes. With PASTURE_CLUSTER_RPC on the front
end, the agent also runs the node's RPC worker (`lender`), and a runner it starts for a
model split over nodes attaches the other nodes' workers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
from typing import Any

from pasture.cluster.blobs import NodeBlobs
from pasture.cluster.fetch import BlobSource
from pasture.cluster.lender import Lender
from pasture.config import Settings
from pasture.engine import Device
from pasture.engines.launch import process_launcher
from pasture.errors import PastureError
from pasture.rpc import library
from pasture.runner.base import LoadSpec, RunnerOutOfMemory
from pasture.runner.process import ProcessRunner
from pasture.scheduler.placement import read_available_memory

log = logging.getLogger(__name__)


class NodeAgent:
    """The per-node actor's behaviour (made a Ray actor by `pasture.cluster.frontend`)."""

    def __init__(self, address: str, lend: bool = False) -> None:
        self.address = address  # the node's IP, where runners listen for the front end
        self.settings = Settings.from_env()
        self.lender = _lender(address, self.settings) if lend else None
        self.blobs = NodeBlobs(self.settings.models_dir)
        self.launcher = process_launcher(self.settings, host=address)
        self.info = self.launcher.machine()  # loads the engine's backends: once
        self.runners: dict[str, ProcessRunner] = {}
        self.abandoned: set[str] = set()  # starts the front end gave up waiting for

    async def report(self) -> dict[str, Any]:
        """The node's free memory and devices now (GPU memory read afresh)."""
        devices: list[Device] = list(self.info.devices)
        if self.info.gpus:
            fresh = {d.name: d for d in await asyncio.to_thread(self.launcher.refresh_gpus)}
            devices = [fresh.get(d.name, d) for d in devices]
        cpu_free = max((d.memory_free for d in devices if d.kind == "cpu"), default=0)
        return {"address": self.address, "hostname": socket.gethostname(),
                "memory_available": read_available_memory() or cpu_free,
                "devices": [dataclasses.asdict(d) for d in devices],
                "runners": len(self.runners),
                "rpc": await self.lender.ready() if self.lender else None}

    async def fetch(self, spec_fields: dict[str, Any],
                    source: dict[str, str] | None = None) -> dict[str, Any]:
        """The load spec with this node's paths, once the node has every file: blobs it
        lacks fetched from `source` (the front end's `BlobSource`) and checked, and the
        RPC library built where the spec attaches other nodes' workers. Apart from
        `start`, so that the load timeout does not count a large blob's transfer;
        `{"error": …}` when the files cannot be had (errors travel as values: Pasture's
        exceptions are not Ray's to rebuild)."""
        spec = LoadSpec.from_json(spec_fields)
        try:
            if spec.rpc_servers:  # the runner loads it to attach the other nodes' workers
                await asyncio.to_thread(library.build, self.settings.engines_dir)
            local, fetched = await asyncio.to_thread(
                self.blobs.local_spec, spec, BlobSource(**source) if source else None)
        except PastureError as exc:
            return {"error": exc.message}
        except OSError as exc:  # this node's disk: full, or not writable
            return {"error": f"cannot store the model's files on this node: {exc}"}
        return {"spec": local.to_json(),
                "fetched": [dataclasses.asdict(done) for done in fetched]}

    async def start(self, spec_fields: dict[str, Any], runner_id: str) -> dict[str, Any]:
        """Start runner `runner_id` for a load spec with this node's paths (`fetch`), and
        say where it listens and with which key; `{"error": …}` when it cannot start. A
        start the front end gave up on (`abandon`) is stopped as soon as it is up."""
        try:
            runner = await self.launcher.start(LoadSpec.from_json(spec_fields))
        except RunnerOutOfMemory as exc:
            return {"error": exc.message, "out_of_memory": True}
        except PastureError as exc:
            return {"error": exc.message}
        except OSError as exc:
            return {"error": f"cannot start the runner on this node: {exc}"}
        if runner_id in self.abandoned:
            self.abandoned.discard(runner_id)
            await runner.close()
            return {"error": "the front end stopped waiting for this load"}
        self.runners[runner_id] = runner  # type: ignore[assignment]
        memory = runner.memory
        return {"runner": runner_id, "address": runner.address, "api_key": runner.api_key,
                "engine": runner.engine, "llguidance": runner.llguidance,
                "media_marker": runner.media_marker,
                "memory": [memory.total, memory.on_gpu, memory.remote] if memory else None}

    async def abandon(self, runner_id: str) -> None:
        """The front end stopped waiting for `start(…, runner_id)` (its load timed out,
        or its client left): stop that runner now, or once it is up, so that nothing the
        scheduler cannot see holds the node's memory."""
        runner = self.runners.pop(runner_id, None)
        if runner is not None:
            await runner.close()
        else:
            self.abandoned.add(runner_id)

    async def wait(self, runner_id: str) -> int | None:
        """Return when the runner's process has ended (its exit status)."""
        runner = self.runners.get(runner_id)
        if runner is None:
            return None
        return await runner.process.wait()

    async def stop(self, runner_id: str) -> None:
        """Stop a runner (the front end unloads it)."""
        runner = self.runners.pop(runner_id, None)
        if runner is not None:
            await runner.close()


def _lender(address: str, settings: Settings) -> Lender | None:
    """The node's RPC worker, its tensor cache beside the node's models; None (with a
    warning) where the node's address is not one ggml's RPC server can bind."""
    try:
        return Lender(address, settings.models_dir.parent / "rpc-cache")
    except ValueError as exc:
        log.warning("this node lends no memory to split models: %s", exc)
        return None
