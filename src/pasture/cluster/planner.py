"""Which node a model goes to: each node is placed on as one machine is, and the best
placement wins.

Each node gets the single-machine `Planner`, fed with its agent's reports: its GPUs, and
its system memory as the smaller of what is free there and what the node offers Ray
(`ray start --memory`, so an operator can keep memory for other work). A node qualifies
when the model fits there beside the models already on it and it holds fewer than
`PASTURE_MAX_LOADED_MODELS`; among those the most GPU layers win, then the most memory
left over (spreading models over the nodes). When no node qualifies but one would with
its models gone, the scheduler evicts and asks again; when no node could hold the model
even empty but the nodes that lend their memory (PASTURE_CLUSTER_RPC) could together, it is
split (after evictions, where they are needed): on the CPU of the node with the most room,
layers on the others' RPC workers, each share within what its node has
(`pasture.rpc.split.fit`), and each lender serving one split model at a time (ggml's RPC
server takes one client at a time). Otherwise the request fails with `NoRoomError` instead
of overcommitting a node.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import replace

from pasture.cluster.nodes import NodeView
from pasture.errors import NoRoomError
from pasture.rpc import split
from pasture.runner.base import LoadSpec
from pasture.scheduler.memory import MemoryEstimate, estimate_spec
from pasture.scheduler.placement import Held, Placement, Planner, choose, most_slots

MiB = 1 << 20


class ClusterPlanner:
    """Places models on the nodes `nodes` reports (blocking: it asks the agents)."""

    def __init__(self, nodes: Callable[[], Sequence[NodeView]], *, max_loaded: int,
                 overhead: int = 0, gpu_limit: int | None = None,
                 estimator: Callable[[LoadSpec], MemoryEstimate] = estimate_spec) -> None:
        self._nodes = nodes
        self._max_loaded = max_loaded  # per node
        self._overhead = overhead
        self._gpu_limit = gpu_limit
        self._estimator = estimator
        self._planners: dict[str, Planner] = {}
        self._latest: dict[str, NodeView] = {}

    def place(self, spec: LoadSpec, held: Iterable[Held] = (),
              avoid: Collection[str] = ()) -> Placement:
        """Where `spec` goes, on a node not in `avoid` (those with a replica already)."""
        # Slots chosen for the machine (num_parallel 0) are chosen for each node's own
        # memory, as one machine chooses them (`most_slots`); an empty node's fit and a
        # split are judged with one slot.
        automatic = spec.num_parallel == 0
        spec = replace(spec, num_parallel=spec.num_parallel or 1)
        held = list(held)
        views = [view for view in self._nodes() if view.id not in avoid]
        if not views:
            raise NoRoomError("no cluster node is reachable")
        sized = functools.cache(
            lambda parallel: self._estimator(replace(spec, num_parallel=parallel)))
        estimate = sized(spec.num_parallel)

        fitting: list[tuple[Placement, int]] = []
        ideal: list[Placement] = []
        memory = _memory_by_node(held)
        for view in views:
            planner = self._planner_for(view)
            on_node = [h for h in held if h.node == view.id]
            empty = choose(estimate, spec.num_gpu, planner.gpu_available([]),
                           planner.system_available([]))
            if empty.fits:
                ideal.append(replace(empty, node=view.id, parallel=spec.num_parallel))
            if len(on_node) >= self._max_loaded:
                continue
            system = planner.system_available(memory[view.id])
            gpus = planner.gpu_available(on_node)
            slots = functools.partial(_on_node, view.id, gpus, system, spec.num_gpu, sized)
            placement = most_slots(slots) if automatic else slots(spec.num_parallel)
            if placement.fits:
                fitting.append((placement, system - placement.size_system))
        if fitting:
            return max(fitting, key=lambda option: (option[0].gpu_layers, option[1]))[0]
        if not ideal:
            placed = self._split(spec, estimate, views, held, memory)
            if placed is not None:
                return placed
            placed = self._split(spec, estimate, views, [], _memory_by_node([]))
            if placed is None:
                raise NoRoomError(self._no_room(estimate, spec, views))
            return replace(placed, fits=False)  # split once other models leave
        # Fits once other models leave: the scheduler evicts one and asks again.
        return replace(max(ideal, key=lambda p: p.gpu_layers), fits=False)

    def _split(self, spec: LoadSpec, estimate: MemoryEstimate, views: Sequence[NodeView],
               held: Sequence[Held], memory: dict[str, list[Held]]) -> Placement | None:
        """The model on the CPU of one node with layers on other nodes' free RPC
        workers, the node with the most room first; None when no such split fits."""
        lending = {node for h in held for node, _ in h.lent}
        lenders = [v for v in views if v.rpc and v.id not in lending]
        room = {v.id: self._planner_for(v).system_available(memory[v.id]) for v in views}
        hosts = [v for v in views if sum(h.node == v.id for h in held) < self._max_loaded]
        for host in sorted(hosts, key=lambda v: room[v.id], reverse=True):
            # The last worker also gets the output layer: the one with the most room.
            others = sorted((v for v in lenders if v.id != host.id), key=lambda v: room[v.id])
            endpoints = [v.rpc or "" for v in others]
            placed = split.fit(spec, estimate, endpoints,
                               [*(room[v.id] for v in others), room[host.id]])
            if placed is None:
                continue
            shares = split.device_bytes(placed, estimate)
            node_of = {v.rpc: v.id for v in others}
            return Placement(
                0, None, sum(shares), 0, f"{estimate.total_bytes(0) // MiB} MiB fit on no "
                "single node", estimate=estimate, node=host.id, parallel=spec.num_parallel,
                rpc_servers=placed.rpc_servers, rpc_layers=placed.rpc_layers,
                lent=tuple((node_of[e], size) for e, size in
                           zip(placed.rpc_servers, shares, strict=False)))
        return None

    def _planner_for(self, view: NodeView) -> Planner:
        """The node's planner, kept across reports: like one machine's, it counts from the
        memory free when it first saw the node, less what Pasture's models there hold."""
        self._latest[view.id] = view
        planner = self._planners.get(view.id)
        if planner is None:
            planner = Planner(view.devices, overhead=self._overhead, gpu_limit=self._gpu_limit,
                              refresh=lambda: self._latest[view.id].gpus,
                              system_memory=lambda: self._latest[view.id].system_memory,
                              estimator=self._estimator)
            self._planners[view.id] = planner
        return planner

    def _no_room(self, estimate: MemoryEstimate, spec: LoadSpec,
                 views: Sequence[NodeView]) -> str:
        need = estimate.total_bytes(0) // MiB
        offers = ", ".join(f"{v.name} ({v.address}) {v.system_memory // MiB} MiB"
                           + (f" + {len(v.gpus)} GPU" if v.gpus else "") for v in views)
        return (f"model requires more memory ({need} MiB) than any cluster node has "
                f"available: {offers}")


def _memory_by_node(held: Iterable[Held]) -> defaultdict[str, list[Held]]:
    """What each node's memory holds: its own models, and the shares its RPC worker
    holds for a model split from another node."""
    memory: defaultdict[str, list[Held]] = defaultdict(list)
    for h in held:
        if h.node is not None:
            memory[h.node].append(h)
        for node, size in h.lent:
            memory[node].append(Held(None, 0, size, node))
    return memory


def _on_node(node: str, gpus: dict[str, int], system: int, num_gpu: int,
             sized: Callable[[int], MemoryEstimate], parallel: int) -> Placement:
    """The model with `parallel` slots on `node`, which has this much room."""
    return replace(choose(sized(parallel), num_gpu, gpus, system), node=node,
                   parallel=parallel)
