"""ADAPTER: a real LoRA GGUF (tests/ggufs.py writes it in llama.cpp's format) is stored
with the model, applied by the engine, listed by `show`, and checked at create time."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pytest

from pasture.client import Client, ResponseError
from tests.ggufs import write_gguf, write_lora, write_tiny_llama
from tests.integration.conftest import MODEL, RunningServer

GREEDY = {"temperature": 0, "seed": 7, "num_predict": 8}


def greedy_reply(api: httpx.Client, model: str, keep_alive: int | None = None) -> str:
    """The model's greedy answer through /api/chat (`keep_alive` 0 unloads it after)."""
    response = api.post("/api/chat", json={
        "model": model, "stream": False, "options": GREEDY, "keep_alive": keep_alive,
        "messages": [{"role": "user", "content": "Count to ten."}]})
    assert response.status_code == 200, response.text
    return response.json()["message"]["content"]


def layer_digests(server: RunningServer, name: str) -> dict[str, list[str]]:
    """The digests of a stored model's layers by media type (`model`, `adapter`, …)."""
    path = server.models_dir / f"manifests/registry.ollama.ai/library/{name}/latest"
    by_type: dict[str, list[str]] = {}
    for layer in json.loads(path.read_text())["layers"]:
        by_type.setdefault(layer["mediaType"].rsplit(".", 1)[1], []).append(layer["digest"])
    return by_type


def rebase(modelfile: str, name: str, source: str) -> str:
    """`show --modelfile` output for `name` with its FROM line naming `source` instead."""
    line = f"\nFROM {name}:latest\n"
    assert modelfile.count(line) == 1
    return modelfile.replace(line, f"\nFROM {source}\n")


def test_a_lora_adapter_changes_greedy_output_and_round_trips_through_show(
        server: RunningServer, api: httpx.Client, smollm2_gguf: Path, tmp_path: Path) -> None:
    write_lora(tmp_path / "lora.gguf", smollm2_gguf)
    client = Client(server.url)
    try:
        client.create_from_modelfile("tuned", f"FROM {MODEL}\nADAPTER ./lora.gguf\n", tmp_path)
        base = greedy_reply(api, MODEL)
        tuned = greedy_reply(api, "tuned")
        assert tuned != base and tuned
        assert greedy_reply(api, "tuned", keep_alive=0) == tuned  # deterministic

        (adapter,) = layer_digests(server, "tuned")["adapter"]
        shown = client.show("tuned").modelfile
        blob = server.models_dir / "blobs" / adapter.replace(":", "-")
        assert f"\nADAPTER {blob}\n" in shown

        # The printed Modelfile recreates the model, from its base or from itself (where
        # the adapter it already has is not added twice).
        for source in (MODEL, "tuned:latest"):
            client.create_from_modelfile("tuned-again", rebase(shown, "tuned", source), tmp_path)
            assert layer_digests(server, "tuned-again") == layer_digests(server, "tuned")
    finally:
        client.delete("tuned")
        client.delete("tuned-again")


def _bad_adapters(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Adapter files llama.cpp would refuse, and the 400 each gets at create time."""
    lora = np.zeros((4, 576), dtype=np.float32)
    return {
        "not GGUF": (tmp_path / "text.gguf", "GGUF"),
        "a model": (write_tiny_llama(tmp_path / "model.gguf"), "not a LoRA adapter"),
        "another base": (write_lora(tmp_path / "other.gguf", write_tiny_llama(
            tmp_path / "tiny.gguf")), "does not fit the model"),
        "half a pair": (write_gguf(tmp_path / "half.gguf", {
            "general.type": "adapter", "adapter.type": "lora", "adapter.lora.alpha": 8.0},
            [("blk.0.attn_q.weight.lora_a", lora)]), "missing one component"),
        "another architecture": (write_gguf(tmp_path / "arch.gguf", {
            "general.type": "adapter", "adapter.type": "lora"},
            [("blk.0.attn_q.weight.lora_a", lora)], arch="qwen2"), "'qwen2' architecture"),
    }


def test_a_malformed_adapter_is_a_400_at_create_time(api: httpx.Client, smollm2_gguf: Path,
                                                     tmp_path: Path) -> None:
    (tmp_path / "text.gguf").write_text("not a GGUF file")
    client = Client(str(api.base_url))
    for case, (path, message) in _bad_adapters(tmp_path).items():
        digest = client.create_blob(path)
        response = api.post("/api/create", json={
            "model": "bad-adapter", "from": MODEL, "adapters": {path.name: digest}})
        assert response.status_code == 400, case
        error = response.json()["error"]
        assert message in error and str(tmp_path) not in error, (case, error)
    # The Modelfile way gets the same answer, also for the base model's own weights.
    for adapter in ("./model.gguf", str(smollm2_gguf)):
        with pytest.raises(ResponseError) as refused:
            client.create_from_modelfile("bad-adapter", f"FROM {MODEL}\nADAPTER {adapter}\n",
                                         tmp_path)
        assert refused.value.status_code == 400 and "not a LoRA" in str(refused.value)
    names = {m["name"] for m in api.get("/api/tags").json()["models"]}
    assert "bad-adapter:latest" not in names
