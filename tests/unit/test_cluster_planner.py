"""Choosing a cluster node for a model (no Ray: nodes are simulated reports)."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest

from pasture.cluster.blobs import NodeBlobs
from pasture.cluster.nodes import NodeView
from pasture.cluster.planner import ClusterPlanner
from pasture.engine import Device
from pasture.errors import NoRoomError, RunnerError
from pasture.runner.base import LoadSpec
from pasture.scheduler.placement import Held
from tests.unit.test_placement import model, sized_estimate

MiB = 1 << 20
GiB = 1 << 30
SIZE = model().total_bytes(0)  # about 1.4 GiB on the CPU


def node(node_id: str, memory: int, *gpus: Device, free: int | None = None) -> NodeView:
    return NodeView(node_id, "10.0.0.1", "host", memory, free if free is not None else memory,
                    tuple(gpus))


def planner(*nodes: NodeView, max_loaded: int = 3) -> ClusterPlanner:
    est = model()
    return ClusterPlanner(lambda: list(nodes), max_loaded=max_loaded,
                          estimator=lambda spec: est)


SPEC = LoadSpec("m.gguf", num_ctx=4096, num_gpu=-1)


def test_the_node_with_the_most_room_left_gets_the_model() -> None:
    chosen = planner(node("a", 2 * GiB), node("b", 8 * GiB), node("c", 4 * GiB)).place(SPEC)
    assert (chosen.node, chosen.fits) == ("b", True)


def test_a_node_holding_models_counts_what_they_hold() -> None:
    held = [Held(None, 0, 7 * GiB, "b")]
    chosen = planner(node("a", 4 * GiB), node("b", 8 * GiB)).place(SPEC, held)
    assert chosen.node == "a"


def test_a_gpu_node_wins_over_more_system_memory() -> None:
    h100 = Device("CUDA0", "NVIDIA H100", "gpu", 80 * GiB, 80 * GiB)
    chosen = planner(node("cpu", 64 * GiB), node("gpu", 8 * GiB, h100)).place(SPEC)
    assert (chosen.node, chosen.device) == ("gpu", "CUDA0")
    assert chosen.gpu_layers == model().max_gpu_layers


def test_free_memory_below_what_the_node_offers_is_the_limit() -> None:
    chosen = planner(node("a", 8 * GiB, free=SIZE - 1), node("b", 2 * GiB)).place(SPEC)
    assert chosen.node == "b"


def test_a_full_node_is_skipped_at_the_loaded_model_limit() -> None:
    held = [Held(None, 0, MiB, "a")]
    chosen = planner(node("a", 8 * GiB), node("b", 2 * GiB), max_loaded=1).place(SPEC, held)
    assert chosen.node == "b"


def test_room_taken_by_other_models_asks_for_an_eviction() -> None:
    held = [Held(None, 0, 7 * GiB, "a")]
    chosen = planner(node("a", 8 * GiB)).place(SPEC, held)
    assert (chosen.node, chosen.fits) == ("a", False)  # the scheduler evicts, asks again


def test_a_model_no_node_could_hold_is_refused_naming_the_nodes() -> None:
    with pytest.raises(NoRoomError) as refused:
        planner(node("aaaaaaaa11", GiB), node("bbbbbbbb22", GiB)).place(SPEC)
    assert "model requires more memory" in refused.value.message
    assert "aaaaaaaa (10.0.0.1) 1024 MiB" in refused.value.message
    assert "bbbbbbbb" in refused.value.message


def lender(node_id: str, memory: int) -> NodeView:
    return replace(node(node_id, memory), rpc=f"10.0.0.1:{5000 + len(node_id)}")


def test_a_model_no_node_holds_is_split_over_the_lending_nodes() -> None:
    a, b = lender("a", SIZE * 2 // 3), lender("bb", SIZE * 2 // 3)
    chosen = planner(a, b).place(SPEC)
    assert chosen.fits and chosen.node in ("a", "bb") and chosen.gpu_layers == 0
    other = b if chosen.node == "a" else a
    assert chosen.rpc_servers == (other.rpc,)
    assert [node for node, _ in chosen.lent] == [other.id]
    assert all(size <= SIZE * 2 // 3 for _, size in chosen.lent)
    assert chosen.size - sum(size for _, size in chosen.lent) <= SIZE * 2 // 3
    assert sum(chosen.rpc_layers) == model().max_gpu_layers


def test_a_lender_serves_one_split_model_and_its_share_counts_on_its_node() -> None:
    a, b = lender("a", SIZE * 2 // 3), lender("bb", SIZE * 2 // 3)
    first = planner(a, b).place(SPEC)
    held = [Held(None, 0, first.size - first.lent[0][1], first.node, first.lent)]
    second = planner(a, b).place(SPEC, held)  # each node holds a share of the first
    assert (second.fits, bool(second.lent)) == (False, True)  # the scheduler evicts first


def test_nodes_that_lend_nothing_are_not_split_over() -> None:
    with pytest.raises(NoRoomError):
        planner(node("a", SIZE * 2 // 3), node("bb", SIZE * 2 // 3)).place(SPEC)


def test_no_reachable_node_is_refused() -> None:
    with pytest.raises(NoRoomError, match="no cluster node is reachable"):
        planner().place(SPEC)


def _blob(directory: Path, data: bytes) -> Path:
    path = directory / "blobs" / f"sha256-{hashlib.sha256(data).hexdigest()}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_a_node_uses_its_own_verified_copy_of_a_blob(tmp_path: Path) -> None:
    front = _blob(tmp_path / "front", b"weights")
    own = _blob(tmp_path / "node", b"weights")
    spec, fetched = NodeBlobs(tmp_path / "node").local_spec(LoadSpec(str(front), num_ctx=8))
    assert spec.model_path == str(own) and fetched == []


def test_a_node_reads_the_shared_path_when_its_store_lacks_the_blob(tmp_path: Path) -> None:
    front = _blob(tmp_path / "front", b"weights")
    assert NodeBlobs(tmp_path / "node").local(str(front)) == str(front)


def test_a_tampered_blob_is_refused(tmp_path: Path) -> None:
    front = _blob(tmp_path / "front", b"weights")
    front.write_bytes(b"tampered")
    with pytest.raises(RunnerError, match="does not match its digest"):
        NodeBlobs(tmp_path / "node").local(str(front))


def test_a_missing_blob_says_how_to_share_it(tmp_path: Path) -> None:
    missing = tmp_path / "blobs" / ("sha256-" + "0" * 64)
    with pytest.raises(RunnerError, match="shared models directory"):
        NodeBlobs(tmp_path / "node").local(str(missing))


def test_ps_shows_a_node_column_only_in_a_cluster() -> None:
    from pasture.cli.render import nodes_table, ps_table

    loaded = {"name": "m", "digest": "sha256:" + "a" * 64, "size": GiB, "size_vram": 0,
              "context_length": 4096, "expires_at": "2099-01-01T00:00:00Z"}
    assert "NODE" not in ps_table([loaded])
    table = ps_table([{**loaded, "node": "4f1f4ecd"}]).splitlines()
    assert table[0].split()[-1] == "NODE" and table[1].endswith("4f1f4ecd")
    listed = nodes_table([{"name": "4f1f4ecd", "address": "10.0.0.2", "memory_total": GiB,
                           "memory_available": GiB // 2, "gpus": [],
                           "models": [{"name": "m"}], "running": 1, "waiting": 2}])
    assert listed.splitlines()[1].split() == ["4f1f4ecd", "10.0.0.2", "536", "MB", "/",
                                              "1.1", "GB", "-", "m", "1", "2"]


def test_slots_chosen_for_the_machine_are_chosen_for_each_nodes_memory() -> None:
    auto = replace(SPEC, num_parallel=0)
    one, two, four = (sized_estimate(replace(SPEC, num_parallel=n)).total_bytes(0)
                      for n in (1, 2, 4))
    roomy = ClusterPlanner(lambda: [node("a", 64 * GiB)], max_loaded=3,
                           estimator=sized_estimate)
    assert roomy.place(auto).parallel == 4
    assert roomy.place(replace(SPEC, num_parallel=3)).parallel == 3  # the user's, kept
    # Room for two slots' KV cache on "b", for one on "c": each node gets what it holds.
    tight = ClusterPlanner(lambda: [node("c", (one + two) // 2)], max_loaded=3,
                           estimator=sized_estimate)
    assert (tight.place(auto).parallel, tight.place(auto).fits) == (1, True)
    middling = ClusterPlanner(lambda: [node("b", (two + four) // 2)], max_loaded=3,
                              estimator=sized_estimate)
    chosen = middling.place(auto)
    assert (chosen.parallel, chosen.fits, chosen.node) == (2, True, "b")
