"""`GET /api/nodes` on one machine: the server itself is the one node, with its models
and queue; `/api/ps` names no node (only a cluster has them)."""

from __future__ import annotations

from pathlib import Path

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


def test_the_cluster_blob_endpoint_is_absent_on_one_machine_even_past_api_keys(
        serve: Serve, store: Path) -> None:
    """The edge lets `/api/cluster/` past the API keys (nodes hold the cluster's own key,
    not those): without a cluster there is nothing there, and no blob comes out."""
    blob = next((store / "blobs").iterdir()).name.replace("-", ":", 1)

    async def scenario(server: Server) -> None:
        reply = await server.client.get(f"/api/cluster/blobs/{blob}")
        assert reply.status_code == 404, reply.text
        assert reply.json() == {"error": "not found"}
        assert (await server.client.get("/api/tags")).status_code == 401  # keys still apply

    serve(scenario, API_KEYS="secret")
