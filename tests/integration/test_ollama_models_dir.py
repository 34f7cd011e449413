"""A models directory written exactly as Ollama writes it is served as is.

The directory is built byte for byte in Ollama's format (manifest, ConfigV2 blob with its
`rootfs`, `sha256-<hex>` blob names, a Go template, a params layer, a license) without
any Pasture code, then a server is pointed at it with `PASTURE_MODELS`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import httpx

from tests.integration.conftest import start_server, stop_server

CHATML = ("{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n"
          "{{ end }}<|im_start|>assistant\n")


def _blob(blobs: Path, data: bytes) -> dict[str, object]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    (blobs / digest.replace(":", "-")).write_bytes(data)
    return {"digest": digest, "size": len(data)}


def _gguf_blob(blobs: Path, gguf: Path) -> dict[str, object]:
    sha = hashlib.sha256()
    with gguf.open("rb") as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
    target = blobs / f"sha256-{sha.hexdigest()}"
    try:  # a hard link keeps the test from copying 100 MB where it can
        os.link(gguf, target)
    except OSError:
        shutil.copyfile(gguf, target)
    return {"digest": f"sha256:{sha.hexdigest()}", "size": gguf.stat().st_size}


def write_ollama_models_dir(root: Path, gguf: Path) -> str:
    """Ollama's layout for `smollm2:135m`; returns the manifest's sha256 (the model ID)."""
    blobs = root / "blobs"
    blobs.mkdir(parents=True)
    model = _gguf_blob(blobs, gguf)
    template = _blob(blobs, CHATML.encode())
    params = _blob(blobs, b'{"stop":["<|im_end|>"]}')
    license_ = _blob(blobs, b"Apache License 2.0")
    config = _blob(blobs, json.dumps({  # ConfigV2 as Ollama marshals it (field order too)
        "model_format": "gguf", "model_family": "llama", "model_families": ["llama"],
        "model_type": "134.52M", "file_type": "Q4_1", "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [
            layer["digest"] for layer in (model, template, params, license_)]},
    }, separators=(",", ":")).encode())
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", **config},
        "layers": [
            {"mediaType": "application/vnd.ollama.image.model", **model},
            {"mediaType": "application/vnd.ollama.image.template", **template},
            {"mediaType": "application/vnd.ollama.image.params", **params},
            {"mediaType": "application/vnd.ollama.image.license", **license_},
        ],
    }, separators=(",", ":")).encode()
    path = root / "manifests" / "registry.ollama.ai" / "library" / "smollm2" / "135m"
    path.parent.mkdir(parents=True)
    path.write_bytes(manifest)
    return hashlib.sha256(manifest).hexdigest()


def test_an_ollama_models_dir_is_listed_shown_and_run(tmp_path: Path,
                                                      smollm2_gguf: Path) -> None:
    root = tmp_path / "ollama-models"
    model_id = write_ollama_models_dir(root, smollm2_gguf)
    before = sorted(p.name for p in (root / "blobs").iterdir())
    server = start_server(root, tmp_path / "server.log")
    try:
        with httpx.Client(base_url=server.url, timeout=120) as api:
            (entry,) = api.get("/api/tags").json()["models"]
            assert (entry["name"], entry["digest"]) == ("smollm2:135m", model_id)
            assert entry["details"]["family"] == "llama"
            assert entry["details"]["parameter_size"] == "134.52M"
            assert entry["details"]["quantization_level"] == "Q4_1"

            shown = api.post("/api/show", json={"model": "smollm2:135m"}).json()
            assert shown["template"] == CHATML
            assert shown["license"] == "Apache License 2.0"
            assert shown["parameters"] == 'stop                           "<|im_end|>"'
            assert shown["model_info"]["general.architecture"] == "llama"

            chat = api.post("/api/chat", json={
                "model": "smollm2:135m", "stream": False, "options": {"num_predict": 4},
                "messages": [{"role": "user", "content": "Say hi."}]}).json()
            assert chat["done"] is True and chat["eval_count"] <= 4
            assert chat["message"]["role"] == "assistant" and chat["message"]["content"]
            rendered = api.post("/api/generate", json={
                "model": "smollm2:135m", "prompt": "Hi", "_debug_render_only": True}).json()
            assert rendered["_debug_info"]["rendered_template"] == (
                "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    finally:
        stop_server(server)
    # Serving it changed nothing Ollama would notice: every blob is still there.
    assert sorted(p.name for p in (root / "blobs").iterdir()) == before
