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


def reply_with(api: httpx.Client, model: str, lora: list[dict[str, object]] | None
               ) -> httpx.Response:
    """/api/chat's greedy answer with the `lora` option (None: not sent)."""
    options = {**GREEDY, **({"lora": lora} if lora is not None else {})}
    return api.post("/api/chat", json={
        "model": model, "stream": False, "options": options,
        "messages": [{"role": "user", "content": "Count to ten."}]})


def test_a_request_scales_each_of_two_adapters_without_reloading(
        server: RunningServer, api: httpx.Client, smollm2_gguf: Path, tmp_path: Path) -> None:
    write_lora(tmp_path / "alpha.gguf", smollm2_gguf, seed=1, std=0.2)
    write_lora(tmp_path / "beta.gguf", smollm2_gguf, seed=2, std=0.2)
    client = Client(server.url)
    modelfile = f"FROM {MODEL}\nADAPTER ./alpha.gguf\nADAPTER ./beta.gguf\n"
    try:
        client.create_from_modelfile("duo", modelfile, tmp_path)
        assert len(layer_digests(server, "duo")["adapter"]) == 2
        base = greedy_reply(api, MODEL)

        def answer(lora: list[dict[str, object]] | None) -> str:
            response = reply_with(api, "duo", lora)
            assert response.status_code == 200, response.text
            return response.json()["message"]["content"]

        both = answer(None)  # as loaded: each adapter at scale 1
        runners = set(server.children())
        off = answer([{"id": 0, "scale": 0}, {"name": "beta", "scale": 0.0}])
        alpha = answer([{"name": "alpha", "scale": 1}])  # beta, not listed, gets 0
        beta = answer([{"id": 1, "scale": 1.0}])
        assert answer([{"id": 0, "scale": 1}, {"id": 1, "scale": 1}]) == both
        assert set(server.children()) == runners  # one runner served every mix
        assert off == base
        assert len({base, alpha, beta, both}) == 4, (base, alpha, beta, both)
    finally:
        client.delete("duo")


def test_a_lora_option_naming_no_adapter_of_the_model_is_a_400(
        api: httpx.Client, smollm2_gguf: Path, tmp_path: Path) -> None:
    write_lora(tmp_path / "alpha.gguf", smollm2_gguf, seed=1)
    client = Client(str(api.base_url))
    try:
        client.create_from_modelfile("solo", f"FROM {MODEL}\nADAPTER ./alpha.gguf\n", tmp_path)
        cases = {
            "solo": [([{"id": 1, "scale": 1}], "no LoRA adapter with id 1"),
                     ([{"name": "gamma", "scale": 1}], "no LoRA adapter named 'gamma'"),
                     ([{"id": 0}], '"scale" must be a finite number'),
                     ([{"id": 0, "name": "alpha", "scale": 1}], "must be an array of objects"),
                     ({"id": 0, "scale": 1}, "must be an array of objects")],
            MODEL: [([{"id": 0, "scale": 1}], "has no LoRA adapters")],
        }
        for model, refusals in cases.items():
            for lora, message in refusals:
                response = reply_with(api, model, lora)  # type: ignore[arg-type]
                assert response.status_code == 400, (lora, response.text)
                assert message in response.json()["error"], (lora, response.text)
    finally:
        client.delete("solo")
