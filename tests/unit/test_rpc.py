"""RPC workers: addresses, the layer split, what a split runner reports, and the settings.

The split itself, end to end with real workers and the real engine, is in
tests/integration/test_rpc_split.py.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pasture.api.ollama import ModelDetails, ProcessModel
from pasture.cli import render
from pasture.config import Settings
from pasture.engines.build import plan_build
from pasture.rpc import library, split
from pasture.rpc.endpoints import listen_address, parse_endpoint, parse_endpoints
from pasture.rpc.workers import RpcWorkers
from pasture.runner.base import LoadSpec
from pasture.runner.buffers import BufferSizes
from pasture.scheduler.memory import estimate_spec

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("value", ["10.0.0.2:50052", "node-a:1", "gpu1.lan:65535"])
def test_worker_addresses_are_host_and_port(value: str) -> None:
    assert parse_endpoint(value) == value


@pytest.mark.parametrize("value", ["node-a", "node-a:0", "node-a:65536", "a b:1", ":50052",
                                   "0:50052", "[::1]:50052", "host:port"])
def test_bad_worker_addresses_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="RPC worker"):
        parse_endpoint(value)


def test_a_worker_listed_twice_is_refused() -> None:
    assert parse_endpoints(" a:1, b:2 ,") == ("a:1", "b:2")
    with pytest.raises(ValueError, match="twice"):
        parse_endpoints("a:1,a:1")


def test_worker_binds_only_a_plain_ipv4_address_and_no_wildcard_unless_told() -> None:
    assert listen_address("10.1.2.3") == "10.1.2.3"
    with pytest.raises(ValueError, match="untrusted network"):
        listen_address("0.0.0.0")
    assert listen_address("0.0.0.0", allow_wildcard=True) == "0.0.0.0"
    for spelled_otherwise in ("0", "0x0", "127.1", "::", "localhost"):
        with pytest.raises(ValueError, match="not an IPv4 address"):
            listen_address(spelled_otherwise, allow_wildcard=True)


def test_worker_command_refuses_the_wildcard_before_doing_anything() -> None:
    done = subprocess.run([sys.executable, "-m", "pasture", "worker", "--host", "0.0.0.0"],
                          capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 1
    assert "must never face an untrusted network" in done.stderr


def test_settings_read_workers_and_their_shares() -> None:
    settings = Settings.from_env({"PASTURE_RPC_SERVERS": "10.0.0.2:50052,10.0.0.3:50052",
                                  "PASTURE_RPC_SPLIT": "3,2,1"})
    assert settings.rpc_servers == ("10.0.0.2:50052", "10.0.0.3:50052")
    assert settings.rpc_split == (3.0, 2.0, 1.0)
    assert Settings.from_env({"PASTURE_RPC_SERVERS": "a:1"}).rpc_split == ()  # by memory
    assert Settings.from_env({}).rpc_servers == ()
    with pytest.raises(ValueError, match="needs 2 shares"):
        Settings.from_env({"PASTURE_RPC_SERVERS": "a:1", "PASTURE_RPC_SPLIT": "1"})
    with pytest.raises(ValueError, match="a worker's above 0"):
        Settings.from_env({"PASTURE_RPC_SERVERS": "a:1", "PASTURE_RPC_SPLIT": "0,1"})


@pytest.mark.parametrize(("total", "weights", "layers"), [
    (31, (1, 1, 1), (11, 10, 10)),
    (31, (1, 1), (16, 15)),
    (31, (3, 2, 1), (16, 10, 5)),
    (31, (1, 0), (31, 0)),
    (2, (1, 1, 1), (1, 1, 0)),
])
def test_layers_are_dealt_in_proportion(total: int, weights: tuple[float, ...],
                                        layers: tuple[int, ...]) -> None:
    assert split.plan_layers(total, weights) == layers


def test_each_device_is_estimated_its_share(smollm2_gguf: Path) -> None:
    spec = LoadSpec(str(smollm2_gguf), num_ctx=4096)
    estimate = estimate_spec(spec)
    placed = split.attach(spec, ["a:1", "b:1"], (2, 1, 1), estimate)
    assert placed.rpc_layers == (15, 8, 8) and placed.rpc_servers == ("a:1", "b:1")
    worker_a, worker_b, local = split.device_bytes(placed, estimate)
    assert worker_a > worker_b > 0  # more layers, more bytes (a also holds the output)
    assert local < estimate.total_bytes(0)  # what moved away is not counted here
    everything_here = split.attach(spec, ["a:1"], (1, 0), estimate)
    assert split.device_bytes(everything_here, estimate)[1] < local
    assert split.describe(placed) == "a:1 48% / b:1 26% / local 26%"
    assert split.describe(spec) is None


def test_a_worker_whose_share_rounds_to_nothing_is_not_attached(smollm2_gguf: Path) -> None:
    spec = LoadSpec(str(smollm2_gguf), num_ctx=4096)
    estimate = estimate_spec(spec)
    placed = split.attach(spec, ["a:1", "b:1"], (1, 0.01, 1), estimate)
    assert placed.rpc_servers == ("a:1",) and placed.rpc_layers == (16, 15)
    assert split.attach(spec, ["a:1"], (0.01, 1), estimate) == spec


def test_no_split_fits_workers_without_room(smollm2_gguf: Path) -> None:
    # Nodes already full report no room (or less than none): nothing is dealt to them,
    # and no split is a clear "does not fit", not a division by zero.
    spec = LoadSpec(str(smollm2_gguf), num_ctx=2048)
    estimate = estimate_spec(spec)
    assert split.fit(spec, estimate, ["a:1", "b:1"], [0, 0, 1 << 40]) is None
    assert split.fit(spec, estimate, ["a:1", "b:1"], [0, -5, 1 << 40]) is None
    placed = split.fit(spec, estimate, ["a:1", "b:1"], [0, 1 << 40, 1 << 40])
    assert placed is not None and placed.rpc_servers == ("b:1",)


def test_a_local_gpu_keeps_at_most_the_layers_left_here(smollm2_gguf: Path) -> None:
    spec = LoadSpec(str(smollm2_gguf), num_ctx=4096, num_gpu=31)
    placed = split.attach(spec, ["a:1"], (1, 1), estimate_spec(spec))
    assert placed.rpc_layers == (16, 15) and placed.num_gpu == 15


def test_buffers_on_workers_are_neither_local_nor_gpu_memory() -> None:
    buffers = BufferSizes()
    for line in ["load_tensors: offloaded 31/31 layers to GPU",
                 "load_tensors:   CPU_Mapped model buffer size =    28.00 MiB",
                 "load_tensors: RPC0[127.0.0.1:50152] model buffer size =    34.00 MiB",
                 "load_tensors: RPC0[127.0.0.1:50153] model buffer size =    58.00 MiB",
                 "llama_kv_cache: RPC0[10.0.0.2:50152] KV buffer size =    24.00 MiB"]:
        buffers.feed(line)
    assert buffers.total == (28 + 34 + 58 + 24) << 20
    assert buffers.remote == (34 + 58 + 24) << 20
    assert buffers.on_gpu == 0  # llama.cpp's "to GPU" counts the workers' layers


def test_ps_shows_a_split_column_only_when_a_model_is_split() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    model = ProcessModel(name="m:1", model="m:1", size=1, digest="a" * 64,
                         details=ModelDetails(), expires_at=now + timedelta(minutes=5),
                         size_vram=0, context_length=4096)
    assert "SPLIT" not in render.ps_table([model.wire()], now=now)
    split_model = model.model_copy(update={"split": "10.0.0.2:50052 60% / local 40%"})
    table = render.ps_table([split_model.wire()], now=now)
    assert "SPLIT" in table.splitlines()[0] and "10.0.0.2:50052 60% / local 40%" in table


def test_a_full_build_with_rpc_compiles_the_backend_in() -> None:
    plan = plan_build(cuda=True, cuda_arch="90", rpc=True, x86=True)
    assert {"-DGGML_RPC=ON", "-DGGML_RPC_RDMA=OFF"} <= set(plan.cmake_args)
    assert plan.name == "cuda-sm90-rpc" and "with RPC" in plan.origin
    assert "-DGGML_RPC=ON" not in plan_build(x86=True).cmake_args


@dataclass
class HeldRunner:
    """Only what `RpcWorkers` reads of a runner: its spec and whether it lives."""

    spec: LoadSpec
    alive: bool = True


def test_runners_get_the_free_listening_workers(smollm2_gguf: Path, tmp_path: Path) -> None:
    library_file = library.library_path(tmp_path)  # present: nothing to compile here
    library_file.parent.mkdir(parents=True)
    library_file.touch()
    with socket.socket() as one, socket.socket() as two, socket.socket() as gone:
        for sock in (one, two, gone):
            sock.bind(("127.0.0.1", 0))
        one.listen()
        two.listen()
        endpoints = [f"127.0.0.1:{s.getsockname()[1]}" for s in (one, two, gone)]
        gone.close()  # nothing listens there
        workers = RpcWorkers(endpoints, (1, 1, 1, 1), tmp_path)
        spec = LoadSpec(str(smollm2_gguf), num_ctx=2048)

        first = asyncio.run(workers.attach(spec))
        assert first.rpc_servers == tuple(endpoints[:2])
        assert first.rpc_layers == (11, 10, 10)
        holder = HeldRunner(first)
        workers.started(holder)  # type: ignore[arg-type]

        # Both are held: the next model loads here alone, until the holder stops.
        assert asyncio.run(workers.attach(spec)) == spec
        holder.alive = False
        assert asyncio.run(workers.attach(spec)).rpc_servers == tuple(endpoints[:2])
        # A spec placed with workers already (by a cluster's planner) is left alone.
        chosen = replace(spec, rpc_servers=("10.0.0.9:1",), rpc_layers=(1, 30))
        assert asyncio.run(workers.attach(chosen)) == chosen
