"""Local model management through the API: create, list, show, copy, delete."""

from __future__ import annotations

import httpx

import pasture
from tests.integration.conftest import MODEL


def names(api: httpx.Client) -> list[str]:
    return [m["name"] for m in api.get("/api/tags").json()["models"]]


def test_tags_lists_the_imported_model_with_details(api: httpx.Client) -> None:
    (entry,) = [m for m in api.get("/api/tags").json()["models"] if m["name"] == MODEL]
    assert entry["model"] == MODEL
    assert len(entry["digest"]) == 64
    assert entry["size"] > 98_000_000
    details = entry["details"]
    assert details["format"] == "gguf" and details["family"] == "llama"
    assert details["quantization_level"] == "Q4_1"
    assert details["parameter_size"].endswith("M")


def test_show_describes_the_model(api: httpx.Client) -> None:
    body = api.post("/api/show", json={"model": MODEL}).json()
    assert body["capabilities"] == ["completion"]
    assert "<|im_start|>" in body["template"]  # the GGUF's own chat template
    assert body["model_info"]["general.architecture"] == "llama"
    assert body["model_info"]["llama.context_length"] == 8192
    assert body["model_info"]["tokenizer.ggml.tokens"] is None  # arrays left out
    assert f"FROM {MODEL}" in body["modelfile"]
    assert {"name": "token_embd.weight", "type": "Q8_0", "shape": [576, 49152]} in body["tensors"]


def test_show_verbose_has_the_whole_vocabulary(api: httpx.Client) -> None:
    info = api.post("/api/show", json={"model": MODEL, "verbose": True}).json()["model_info"]
    tokens = info["tokenizer.ggml.tokens"]
    assert len(tokens) == len(info["tokenizer.ggml.token_type"]) == 49152
    assert tokens[:2] == ["<|endoftext|>", "<|im_start|>"]
    assert len(info["tokenizer.ggml.merges"]) == 48900
    assert "tokenizer.chat_template" not in info


def test_create_from_existing_model_with_settings(api: httpx.Client) -> None:
    response = api.post("/api/create", json={
        "model": "pirate", "from": MODEL, "system": "You are a pirate.",
        "parameters": {"temperature": 0.2, "stop": ["<|im_end|>", "Arr"]},
        "messages": [{"role": "user", "content": "Who are you?"},
                     {"role": "assistant", "content": "A pirate!"}],
        "license": ["MIT"], "stream": False,
    })
    assert response.status_code == 200 and response.json()["status"] == "success"
    shown = api.post("/api/show", json={"model": "pirate"}).json()
    assert shown["system"] == "You are a pirate."
    assert shown["license"] == "MIT"
    assert 'temperature                    0.2' in shown["parameters"]
    assert shown["parameters"].count("stop") == 2
    assert shown["messages"][1] == {"role": "assistant", "content": "A pirate!"}
    assert "SYSTEM You are a pirate." in shown["modelfile"] or '"""You are a pirate."""' in \
        shown["modelfile"]
    # The new model shares the weights blob with its base.
    tags = {m["name"]: m for m in api.get("/api/tags").json()["models"]}
    assert tags["pirate:latest"]["size"] > 98_000_000
    chat = api.post("/api/chat", json={
        "model": "pirate", "stream": False, "options": {"num_predict": 8},
        "messages": [{"role": "user", "content": "Hello"}],
    })
    assert chat.status_code == 200
    api.request("DELETE", "/api/delete", json={"model": "pirate"})


def test_create_streams_progress_ending_in_success(api: httpx.Client) -> None:
    with api.stream("POST", "/api/create", json={"model": "streamed", "from": MODEL,
                                                  "system": "Be brief."}) as response:
        statuses = [line for line in response.iter_lines() if line]
    assert '"writing manifest"' in statuses[-2] and '"success"' in statuses[-1]
    assert any("creating new layer sha256:" in s for s in statuses)
    api.request("DELETE", "/api/delete", json={"model": "streamed"})


def test_copy_then_delete_keeps_shared_blobs(api: httpx.Client) -> None:
    assert api.post("/api/copy", json={"source": MODEL, "destination": "twin"}).status_code == 200
    assert "twin:latest" in names(api)
    assert api.request("DELETE", "/api/delete", json={"model": "twin"}).status_code == 200
    assert "twin:latest" not in names(api)
    # The original still works: the weights blob it shared with the copy survived.
    reply = api.post("/api/generate", json={"model": MODEL, "prompt": "Hi", "stream": False,
                                            "options": {"num_predict": 3}})
    assert reply.status_code == 200


def test_delete_unknown_model_is_404(api: httpx.Client) -> None:
    response = api.request("DELETE", "/api/delete", json={"model": "ghost"})
    assert response.status_code == 404
    assert response.json()["error"] == "model 'ghost:latest' not found" or \
        response.json()["error"] == "model 'ghost' not found"


def test_copy_unknown_model_is_404(api: httpx.Client) -> None:
    assert api.post("/api/copy", json={"source": "ghost", "destination": "x"}).status_code == 404


def test_version_and_root(api: httpx.Client) -> None:
    root = api.get("/")
    assert root.text == "Ollama is running"  # what health checks written for Ollama test
    assert root.headers["server"] == f"Pasture/{pasture.__version__}"
    assert api.head("/").status_code == 200
    assert api.get("/api/version").json() == {"version": pasture.OLLAMA_VERSION,
                                              "pasture": pasture.__version__}
    assert pasture.OLLAMA_VERSION == "0.33.0"  # shared/reference/ollama.md's release


def test_recreating_a_model_is_seen_at_once(api: httpx.Client) -> None:
    for system in ("First system prompt.", "Second system prompt."):
        created = api.post("/api/create", json={"model": "recreated", "from": MODEL,
                                                "system": system, "stream": False})
        assert created.status_code == 200
        assert api.post("/api/show", json={"model": "recreated"}).json()["system"] == system
    api.request("DELETE", "/api/delete", json={"model": "recreated"})
    assert api.post("/api/show", json={"model": "recreated"}).status_code == 404
