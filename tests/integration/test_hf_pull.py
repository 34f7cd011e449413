"""Pulling GGUF models by Hugging Face name (`hf.co/{user}/{repo}:{quant}`, and
`huggingface.co/...`), as Ollama does: such a name is an ordinary registry name whose host
is the hub, whose namespace and model are the repository and whose tag picks the GGUF by
its quantization. The hub is not reachable here, so a stand-in serving the same endpoints
from files (`tests/hf_hub.py`) takes its place through `PASTURE_REGISTRY_MIRRORS`: the
name, its place in the store and every request path are what the real hub gets."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pasture.client import Client, ResponseError
from tests.ggufs import write_tiny_llama
from tests.hf_hub import HfHub
from tests.integration.conftest import RunningServer, start_server, stop_server

REPO = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, smollm2_gguf: Path) -> Iterator[HfHub]:
    root = tmp_path_factory.mktemp("hub")
    (root / REPO).mkdir(parents=True)
    os.symlink(smollm2_gguf, root / REPO / "SmolLM2-135M-Instruct.Q4_1.gguf")
    (root / "tests" / "tiny-GGUF").mkdir(parents=True)
    for quant in ("F16", "Q8_0"):  # two files: `latest` names neither (no Q4_K_M)
        write_tiny_llama(root / "tests" / "tiny-GGUF" / f"tiny-{quant}.gguf", f16=True,
                         name=f"tiny-{quant}")
    with HfHub(root) as running:
        yield running


@pytest.fixture(scope="module")
def hf_server(hub: HfHub, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("hf-server")
    running = start_server(root / "models", root / "server.log",
                           PASTURE_REGISTRY_MIRRORS=f"hf.co={hub.url},huggingface.co={hub.url}")
    try:
        yield running
    finally:
        stop_server(running)


def test_an_hf_co_name_pulls_the_repositorys_gguf_for_that_quantization(
        hub: HfHub, hf_server: RunningServer) -> None:
    client = Client(hf_server.url)
    name = f"hf.co/{REPO}:Q4_1"
    assert client.pull(name).status == "success"
    assert f"hf.co/{REPO}:Q4_1" in {m.model for m in client.list().models}
    manifest = hf_server.models_dir / "manifests" / "hf.co" / REPO / "Q4_1"
    assert manifest.is_file()
    asked = [(r.host, r.path) for r in hub.requests if r.host == "hub"]
    assert ("hub", f"/v2/{REPO}/manifests/Q4_1") in asked
    fetched = [r for r in hub.requests if r.host == "cdn"]
    assert fetched and all(r.authorization is None for r in fetched)  # nothing followed

    reply = client.chat(name, [{"role": "user", "content": "Say hi."}],
                        options={"num_predict": 4, "temperature": 0})
    assert reply.message.content and reply.done

    # huggingface.co is the same hub; no tag is `latest`, the repository's only GGUF here.
    # Every blob is the one already stored: only the manifest is asked for.
    cdn_before = len(fetched)
    assert client.pull(f"huggingface.co/{REPO}").status == "success"
    assert f"huggingface.co/{REPO}:latest" in {m.model for m in client.list().models}
    assert ("hub", f"/v2/{REPO}/manifests/latest") in [
        (r.host, r.path) for r in hub.requests]
    assert len([r for r in hub.requests if r.host == "cdn"]) == cdn_before
    shown = client.show(f"huggingface.co/{REPO}")
    assert shown.details.quantization_level == "Q4_1"


def test_a_quantization_the_repository_lacks_is_not_found(hf_server: RunningServer) -> None:
    client = Client(hf_server.url)
    for name in (f"hf.co/{REPO}:Q2_K", "hf.co/tests/tiny-GGUF", "hf.co/nobody/nothing:Q4_K_M"):
        with pytest.raises(ResponseError) as missing:
            client.pull(name)
        assert missing.value.status_code == 404, name
        assert "file does not exist" in str(missing.value)
    assert client.pull("hf.co/tests/tiny-GGUF:q8_0").status == "success"  # any case
    models = httpx.get(hf_server.url + "/api/tags").json()["models"]
    assert {m["name"] for m in models} >= {"hf.co/tests/tiny-GGUF:q8_0"}
