"""Asking a real `pasture worker` for its devices' free memory over ggml's RPC protocol,
and splitting a model's layers by it when no shares are configured."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pasture.cluster.lender import Lender
from pasture.rpc import library
from pasture.rpc.memory import WorkerUnanswered, device_memory
from pasture.rpc.workers import RpcWorkers
from pasture.runner.base import LoadSpec

REPO = Path(__file__).resolve().parents[2]
CACHE = Path.home() / ".cache" / "pasture"  # the RPC library, built once per machine


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("rpc-memory") / "engines"
    target = library.library_path(folder)
    target.parent.mkdir(parents=True)
    shutil.copyfile(library.build(CACHE), target)
    return folder


@pytest.fixture(scope="module")
def worker(engines: Path) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "pasture", "worker", "--port", str(port), "--threads", "1",
         "--no-cache"], env={**os.environ, "PASTURE_ENGINES": str(engines),
                             "PYTHONPATH": str(REPO / "src")},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None and time.monotonic() < deadline, "no worker"
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait()


def test_a_worker_reports_its_cpu_memory_and_serves_the_next_client(worker: str) -> None:
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for _ in range(2):  # the first client left cleanly: the worker answers the next one
        [cpu] = asyncio.run(device_memory(worker))
        # ggml's CPU device on Linux reports the whole RAM as free.
        assert (cpu.free, cpu.total) == (ram, ram)


def test_a_worker_holding_another_client_is_reported_busy(worker: str) -> None:
    async def ask_while_held() -> None:
        _, held = await asyncio.open_connection(*worker.split(":"))
        try:
            with pytest.raises(WorkerUnanswered, match="serves one runner at a time"):
                await device_memory(worker, timeout=0.5)
        finally:
            held.close()
        assert len(await device_memory(worker)) == 1  # free again once it left

    asyncio.run(ask_while_held())


def test_layers_go_by_free_memory_without_configured_shares(
        worker: str, engines: Path, smollm2_gguf: Path) -> None:
    with socket.socket() as mute:  # accepts connections, never answers: no worker
        mute.bind(("127.0.0.1", 0))
        mute.listen()
        endpoints = [worker, f"127.0.0.1:{mute.getsockname()[1]}"]
        workers = RpcWorkers(endpoints, (), engines)
        spec = LoadSpec(str(smollm2_gguf), num_ctx=2048)
        placed = asyncio.run(workers.attach(spec))
    assert placed.rpc_servers == (worker,)
    # This machine's MemAvailable is below the RAM the worker reports, both most of it.
    remote, local = placed.rpc_layers
    assert remote + local == 31 and remote >= local > 0, placed.rpc_layers


def test_a_peer_claiming_absurdly_many_devices_is_no_worker() -> None:
    async def main() -> None:
        async def claim(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readexactly(9 + 24)  # HELLO with its capabilities
            writer.write(struct.pack("<Q", 28) + bytes([8, 0, 0]) + bytes(25))
            await reader.readexactly(9)  # DEVICE_COUNT
            writer.write(struct.pack("<QI", 4, 1 << 31))
            await writer.drain()

        server = await asyncio.start_server(claim, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            with pytest.raises(WorkerUnanswered, match="claims 2147483648 devices"):
                await device_memory(f"127.0.0.1:{port}")

    asyncio.run(main())


def _ready(lender: Lender, deadline: float = 60) -> str:
    """The lender's endpoint once its worker answers (the restarts `ready` makes)."""
    until = time.monotonic() + deadline
    while (endpoint := asyncio.run(lender.ready())) is None:
        assert time.monotonic() < until, "the lender's worker never answered"
        time.sleep(0.2)
    return endpoint


def test_a_lender_whose_worker_died_starts_it_on_a_fresh_port_a_few_times(
        engines: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # How a worker that lost its port (found free, then taken before it bound) ends: it
    # exits. Killing it is that ending, made on purpose.
    monkeypatch.setenv("PASTURE_ENGINES", str(engines))
    monkeypatch.setenv("PYTHONPATH", str(REPO / "src"))
    lender = Lender("127.0.0.1", tmp_path / "cache")
    try:
        first = _ready(lender)
        lender.process.kill()
        lender.process.wait()
        assert asyncio.run(lender.ready()) is None  # noticed, and started again
        second = _ready(lender)
        assert second != first and lender.restarts == 1
        [cpu] = asyncio.run(device_memory(second))  # a real worker answers there
        assert cpu.total > 0
        for _ in range(Lender.RESTARTS):  # each death after that, until the limit
            lender.process.kill()
            lender.process.wait()
            asyncio.run(lender.ready())
        assert lender.restarts == Lender.RESTARTS
        dead = lender.process.pid
        lender.process.kill()
        lender.process.wait()
        assert asyncio.run(lender.ready()) is None
        assert lender.process.pid == dead  # left dead: no restart past the limit
    finally:
        lender.process.kill()
        lender.process.wait()
