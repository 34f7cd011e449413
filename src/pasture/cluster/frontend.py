"""The front end's side of the cluster: joins Ray as a driver, keeps one agent per node,
and starts runners where the planner placed them.

Reports are asked of every live node's agent at each placement (and for `/api/nodes`),
answered within `REPORT_TIMEOUT`: a node whose agent does not answer in time is left out
of that placement, which is how a node that died a moment ago is avoided before Ray's own
health checks declare it dead. A new node's agent is given `JOIN_TIMEOUT` for its first
report (it starts a Python worker and reads its devices).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import threading
import uuid
from typing import Any

import ray
from ray.exceptions import RayError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from pasture.cluster.agent import NodeAgent
from pasture.cluster.fetch import BlobSource
from pasture.cluster.nodes import NodeView, node_name
from pasture.cluster.planner import ClusterPlanner
from pasture.cluster.remote import RemoteRunner
from pasture.config import Settings
from pasture.engine import Device
from pasture.environment import HostPort
from pasture.errors import RunnerError
from pasture.runner.base import LoadSpec, RunnerCrashed, RunnerOutOfMemory

log = logging.getLogger(__name__)

REPORT_TIMEOUT = 2.0  # seconds for a known node's agent to report
JOIN_TIMEOUT = 60.0  # seconds for a new node's agent to start and report

_Agent = ray.remote(NodeAgent)


class Cluster:
    """A connection to a Ray cluster and Pasture's agents on its nodes."""

    def __init__(self, settings: Settings) -> None:
        assert settings.cluster is not None
        self.address = settings.cluster
        self.settings = settings
        self._agents: dict[str, Any] = {}  # node id -> its agent's actor handle
        self._joining: set[str] = set()  # nodes whose agent has not reported yet
        self._views: dict[str, NodeView] = {}
        self._lock = threading.Lock()
        # Where nodes fetch the blobs they lack (`routes/cluster.py`); set by `connect`.
        self.blob_source = BlobSource("", secrets.token_urlsafe(32))
        self.planner = ClusterPlanner(self.nodes, max_loaded=settings.max_loaded_models,
                                      overhead=settings.gpu_overhead,
                                      gpu_limit=settings.gpu_memory_limit)

    def connect(self) -> None:
        """Join the cluster as a driver (blocking; the server's start-up)."""
        ray.init(address=self.address, namespace="pasture", logging_level=logging.WARNING,
                 configure_logging=False)
        self.blob_source = BlobSource(self._url_for_nodes(), self.blob_source.key)

    def _url_for_nodes(self) -> str:
        """This server's URL as the nodes reach it: its own address, or this machine's
        address in the cluster when it listens on all of them."""
        host = self.settings.host.host
        if host in ("0.0.0.0", "::", ""):
            host = ray.util.get_node_ip_address()
        scheme = "https" if self.settings.tls_cert else "http"
        return HostPort(scheme, host, self.settings.host.port).url

    def nodes(self) -> list[NodeView]:
        """Every live node whose agent reports in time, freshly read (blocking)."""
        with self._lock:
            alive = {n["NodeID"]: n for n in ray.nodes() if n.get("Alive")}
            for node_id in set(self._agents) - set(alive):
                self._forget(node_id)
            for node_id in set(alive) - set(self._agents):
                self._agents[node_id] = self._new_agent(node_id, alive[node_id])
                self._joining.add(node_id)
            asked = {self._agents[node_id].report.remote(): node_id for node_id in alive}
            if not asked:
                self._views = {}
                return []
            timeout = JOIN_TIMEOUT if self._joining & set(alive) else REPORT_TIMEOUT
            ready, _ = ray.wait(list(asked), num_returns=len(asked), timeout=timeout)
            views = []
            for ref in ready:
                node_id = asked[ref]
                try:
                    report = ray.get(ref)
                except RayError as exc:
                    log.warning("node %s did not report (%s)", node_name(node_id),
                                type(exc).__name__)
                    self._forget(node_id)  # a new agent is tried next time, if it lives
                    continue
                self._joining.discard(node_id)
                views.append(_view(node_id, alive[node_id], report))
            missing = set(alive) - {v.id for v in views}
            for node_id in missing - self._joining:
                log.warning("node %s did not answer within %g s: not used now",
                            node_name(node_id), REPORT_TIMEOUT)
            self._views = {v.id: v for v in views}
            return views

    def known(self) -> list[NodeView]:
        """The nodes as last reported (no Ray call)."""
        return list(self._views.values())

    async def start_runner(self, spec: LoadSpec) -> RemoteRunner:
        """Start a runner for `spec` on `spec.node` (the scheduler's `start_runner`)."""
        assert spec.node is not None, "the cluster planner places every model on a node"
        name = node_name(spec.node)
        agent = self._agents.get(spec.node)
        if agent is None:
            raise RunnerCrashed(f"cluster node {name} left before the model could load")
        try:  # no load timeout: a large blob takes what its transfer takes
            files = await agent.fetch.remote(spec.to_json(),
                                             dataclasses.asdict(self.blob_source))
        except RayError as exc:
            raise RunnerCrashed(f"cluster node {name} was lost while fetching the model "
                                f"({type(exc).__name__})") from None
        if "error" in files:
            raise RunnerError(f"{files['error']} (node {name})")
        for fetched in files["fetched"]:
            log.info("node %s fetched blob %s from this server (%d MiB, resumed at %d bytes)",
                     name, fetched["digest"], fetched["size"] >> 20, fetched["resumed_at"])
        runner_id = uuid.uuid4().hex
        try:
            started = await asyncio.wait_for(agent.start.remote(files["spec"], runner_id),
                                             self.settings.load_timeout or None)
        except TimeoutError:
            agent.abandon.remote(runner_id)
            raise RunnerError(f"timed out loading the model on node {name}") from None
        except asyncio.CancelledError:  # the request went away: the load is nobody's
            agent.abandon.remote(runner_id)
            raise
        except RayError as exc:  # lost while loading: the request may be placed again
            raise RunnerCrashed(f"cluster node {name} was lost while loading the model "
                                f"({type(exc).__name__})") from None
        if "error" in started:
            error = RunnerOutOfMemory if started.get("out_of_memory") else RunnerError
            raise error(f"{started['error']} (node {name})")
        log.info("runner for %s on node %s at %s", spec.model_path, name, started["address"])
        return RemoteRunner(spec, started, agent, name)

    def _new_agent(self, node_id: str, node: dict[str, Any]) -> Any:
        """An agent pinned to the node: it takes no CPU from Ray's accounting, and goes
        when this driver does (so do the runners it owns)."""
        strategy = NodeAffinitySchedulingStrategy(node_id, soft=False)
        return _Agent.options(num_cpus=0, max_restarts=0, max_concurrency=64,
                              scheduling_strategy=strategy
                              ).remote(node["NodeManagerAddress"], self.settings.cluster_rpc)

    def _forget(self, node_id: str) -> None:
        agent = self._agents.pop(node_id, None)
        self._joining.discard(node_id)
        if agent is not None:
            try:
                ray.kill(agent)
            except RayError:
                pass


def _view(node_id: str, node: dict[str, Any], report: dict[str, Any]) -> NodeView:
    budget = int(node.get("Resources", {}).get("memory", 0)) or report["memory_available"]
    return NodeView(node_id, report["address"], report["hostname"], budget,
                    report["memory_available"],
                    tuple(Device(**fields) for fields in report["devices"]), report.get("rpc"))
