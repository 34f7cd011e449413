"""`GET /api/nodes` on one machine: the server itself is the one node, with its models
and queue; `/api/ps` names no node (only a cluster has them)."""

from __future__ import annotations

from tests.routes.conftest import Serve, Server


def test_one_machine_is_one_node_with_its_loaded_models(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        reply = await server.post("/api/generate", model="plain", prompt="hi", stream=False)
        assert reply.status_code == 200, reply.text
        (node,) = (await server.client.get("/api/nodes")).json()["nodes"]
        assert (node["id"], node["address"]) == ("local", "127.0.0.1")
        assert 0 < node["memory_available"] <= node["memory_total"]
        assert [m["name"] for m in node["models"]] == ["plain:latest"]
        assert (node["running"], node["waiting"]) == (0, 0)
        (model,) = (await server.client.get("/api/ps")).json()["models"]
        assert "node" not in model or model["node"] is None

    serve(scenario)
