"""`GET /api/nodes` (beyond Ollama): the machines serving models, with their memory, GPUs,
loaded models and queues; one machine without PASTURE_CLUSTER, each Ray node with it."""

from __future__ import annotations

import asyncio
import os
import socket

from fastapi import APIRouter, Request
from fastapi.responses import Response

from pasture.api.ollama import NodeGPU, NodeInfo, NodeModel, NodesResponse
from pasture.cluster.nodes import NodeView
from pasture.scheduler.placement import read_available_memory
from pasture.server.state import ServerState, state_of
from pasture.server.streaming import json_response

router = APIRouter()

LOCAL = "local"  # the node id of a server without a cluster


@router.get("/api/nodes")
async def nodes(request: Request) -> Response:
    state = state_of(request)
    views = await asyncio.to_thread(state.cluster.nodes) if state.cluster is not None \
        else [await asyncio.to_thread(_this_machine, state)]
    return json_response(NodesResponse(nodes=[_info(view, state) for view in views]))


def _this_machine(state: ServerState) -> NodeView:
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return NodeView(LOCAL, state.settings.host.host, socket.gethostname(), total,
                    read_available_memory() or 0, tuple(state.engine_info.devices))


def _info(view: NodeView, state: ServerState) -> NodeInfo:
    node_id = None if view.id == LOCAL else view.id
    here = [m for m in state.scheduler.loaded() if m.placement.node == node_id]
    models = [NodeModel(name=m.key, size=m.size, running=m.running, waiting=len(m.waiting))
              for m in here]
    return NodeInfo(
        id=view.id, name=view.name, address=view.address, hostname=view.hostname,
        memory_total=view.memory_budget, memory_available=view.system_memory, rpc=view.rpc,
        gpus=[NodeGPU(name=g.name, description=g.description, memory_total=g.memory_total,
                      memory_free=g.memory_free) for g in view.gpus],
        models=models, running=sum(m.running for m in models),
        waiting=sum(m.waiting for m in models))
