"""`/api/create` beyond the basics: a `from` model pulled first, `REQUIRES`, `DRAFT`.

The pull runs against the real registry fixture; the Modelfile cases go through the
Python client, as `pasture create` does.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

import pasture
from pasture.client import Client, ResponseError
from pasture.errors import ModelfileError
from tests.integration.conftest import MODEL, start_server, stop_server
from tests.integration.registry import (  # noqa: F401 - the fixture is used by name
    Registry,
    registry_fixture,
)


def test_create_from_a_model_not_local_pulls_it_first(
        api: httpx.Client, registry: Registry, tmp_path: Path) -> None:
    remote = f"{registry.host}/ns/smollm2:135m"
    api.post("/api/copy", json={"source": MODEL, "destination": remote}).raise_for_status()
    second = None
    try:
        pushed = api.post("/api/push", json={"model": remote, "insecure": True,
                                             "stream": False})
        assert pushed.json() == {"status": "success"}

        second = start_server(tmp_path / "models", tmp_path / "server.log")
        with httpx.Client(base_url=second.url, timeout=120) as other:
            missing = other.post("/api/create", json={
                "model": "nothing", "from": f"{registry.host}/ns/nothing:here",
                "insecure": True})
            # as Ollama's, the pull's first status goes out before the registry's answer
            assert (missing.status_code, [json.loads(line) for line in
                                          missing.text.splitlines()]) == (
                200, [{"status": "pulling manifest"},
                      {"error": "pull model manifest: file does not exist"}])
            refused = other.post("/api/create", json={
                "model": "nothing", "from": f"{registry.host}/ns/nothing:here",
                "insecure": True, "stream": False})
            assert (refused.status_code, refused.json()) == (
                404, {"error": "pull model manifest: file does not exist"})

            with other.stream("POST", "/api/create", json={
                    "model": "derived", "from": remote, "insecure": True,
                    "system": "You are terse."}) as response:
                assert response.status_code == 200
                statuses = [json.loads(line)["status"] for line in response.iter_lines()
                            if line]
            pulled = statuses.index("writing manifest")
            assert statuses[0] == "pulling manifest"
            assert "verifying sha256 digest" in statuses[:pulled]
            assert statuses[pulled + 1].startswith("using existing layer sha256:")
            assert statuses.count("success") == 1 and statuses[-1] == "success"

            names = {m["name"] for m in other.get("/api/tags").json()["models"]}
            assert names == {remote, "derived:latest"}
            shown = other.post("/api/show", json={"model": "derived"}).json()
            assert shown["system"] == "You are terse."
            assert shown["details"]["quantization_level"] == "Q4_1"
    finally:
        if second is not None:
            stop_server(second)
        api.request("DELETE", "/api/delete", json={"model": remote})


@pytest.mark.parametrize("stream", [True, False])
def test_create_refuses_a_model_requiring_a_newer_pasture(api: httpx.Client,
                                                          stream: bool) -> None:
    newer = api.post("/api/create", json={"model": "too-new", "from": MODEL,
                                          "requires": "999.1.0", "stream": stream})
    assert (newer.status_code, newer.json()) == (400, {
        "error": "this model requires Ollama 999.1.0 or later (Pasture implements Ollama "
                 f"{pasture.OLLAMA_VERSION})"})
    bad = api.post("/api/create", json={"model": "too-new", "from": MODEL,
                                        "requires": "soon", "stream": stream})
    assert bad.status_code == 400 and "invalid version" in bad.json()["error"]
    names = {m["name"] for m in api.get("/api/tags").json()["models"]}
    assert "too-new:latest" not in names


def test_requires_is_stored_shown_and_inherited(api: httpx.Client) -> None:
    try:
        created = api.post("/api/create", json={"model": "needs-old", "from": MODEL,
                                                "requires": "0.0.1", "stream": False})
        assert created.json() == {"status": "success"}
        shown = api.post("/api/show", json={"model": "needs-old"}).json()
        assert shown["requires"] == "0.0.1"
        assert "\nREQUIRES 0.0.1\n" in shown["modelfile"]
        child = api.post("/api/create", json={"model": "needs-old-child", "from": "needs-old",
                                              "stream": False})
        assert child.json() == {"status": "success"}
        assert api.post("/api/show", json={"model": "needs-old-child"}).json()[
            "requires"] == "0.0.1"
        assert "requires" not in api.post("/api/show", json={"model": MODEL}).json()
    finally:
        for name in ("needs-old", "needs-old-child"):
            api.request("DELETE", "/api/delete", json={"model": name})


def test_modelfile_requires_goes_through_the_client(api: httpx.Client, tmp_path: Path) -> None:
    client = Client(str(api.base_url))
    try:
        current = pasture.OLLAMA_VERSION
        client.create_from_modelfile("mf-requires", f"FROM {MODEL}\nREQUIRES {current}\n",
                                     tmp_path)
        assert client.show("mf-requires").requires == current
        with pytest.raises(ResponseError) as refused:
            client.create_from_modelfile("mf-requires", f"FROM {MODEL}\nREQUIRES 99.0.0\n",
                                         tmp_path)
        assert refused.value.status_code == 400
        assert "requires Ollama 99.0.0 or later" in str(refused.value)
        with pytest.raises(ModelfileError, match=r"line 2.*invalid version"):
            client.create_from_modelfile("mf-requires", f"FROM {MODEL}\nREQUIRES x.y\n",
                                         tmp_path)
    finally:
        client.delete("mf-requires")
