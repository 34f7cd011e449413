"""What the front end knows of a cluster node: its last report, and names for people."""

from __future__ import annotations

from dataclasses import dataclass, field

from pasture.engine import Device


def node_name(node_id: str) -> str:
    """A node's short name (as `ray status` abbreviates ids): shown by `pasture ps`."""
    return node_id[:8]


@dataclass(frozen=True)
class NodeView:
    """One node as its agent last reported it."""

    id: str  # Ray's node id
    address: str  # the node's IP address, where its runners listen
    hostname: str
    memory_budget: int  # Ray's `memory` resource: what the node offers (`ray start --memory`)
    memory_available: int  # MemAvailable on the node at the report
    devices: tuple[Device, ...] = field(default_factory=tuple)
    rpc: str | None = None  # its RPC worker's host:port when it lends its memory

    @property
    def name(self) -> str:
        return node_name(self.id)

    @property
    def system_memory(self) -> int:
        """Memory models may use there: what is free, within what the node offers."""
        return min(self.memory_budget, self.memory_available)

    @property
    def gpus(self) -> list[Device]:
        return [d for d in self.devices if d.kind in ("gpu", "igpu")]
