"""`create --quantize` on the real engine: an F16 model written by the tests is quantized
by llama.cpp's own quantizer (`pasture.engines.quantizer`) to Ollama's levels, stored as a
new blob, then loaded and asked for an answer; input Ollama would refuse is refused with
Ollama's words, before any output."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from pasture import gguf
from pasture.engines import quantizer
from pasture.store.quantize import PROGRESS_DIGEST
from tests.ggufs import write_tiny_llama
from tests.integration.conftest import MODEL, REPO, RunningServer, import_model

CACHE = Path.home() / ".cache" / "pasture"


@pytest.fixture(scope="module")
def f16_model(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    """`tiny-f16`: a random llama in F16 (rows of 256, as K-quants want), with the
    quantizer built once per machine and handed to the server's engines folder."""
    built = quantizer.build(CACHE)  # ~35 s the first time on this machine, then cached
    target = quantizer.library_path(server.models_dir.parent / "engines")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(built, target)
    path = write_tiny_llama(tmp_path_factory.mktemp("f16") / "tiny-f16.gguf", f16=True,
                            n_embd=256, n_ff=512, n_head=4, n_head_kv=2)
    import_model(server.url, path, "tiny-f16")
    return "tiny-f16"


def model_layer(server: RunningServer, name: str) -> dict[str, object]:
    path = server.models_dir / f"manifests/registry.ollama.ai/library/{name}/latest"
    layers = json.loads(path.read_text())["layers"]
    return next(layer for layer in layers if layer["mediaType"].endswith(".model"))


def test_quantizing_an_f16_model_makes_a_smaller_model_that_answers(
        server: RunningServer, api: httpx.Client, f16_model: str) -> None:
    source = model_layer(server, f16_model)
    lines = []
    with api.stream("POST", "/api/create", json={
            "model": "tiny-q4", "from": f16_model, "quantize": "q4_K_M"}) as response:
        assert response.status_code == 200
        lines = [json.loads(line) for line in response.iter_lines() if line]
    statuses = [line.get("status") for line in lines]
    assert "error" not in lines[-1] and statuses[-1] == "success", lines[-3:]
    progress = [line for line in lines if line.get("status") == "quantizing F16 model to Q4_K_M"]
    assert len(progress) >= 2 and progress[-1]["completed"] == progress[-1]["total"]
    assert all(line["digest"] == PROGRESS_DIGEST for line in progress)
    assert "verifying conversion" in statuses

    quantized = model_layer(server, "tiny-q4")
    assert quantized["digest"] != source["digest"]
    assert int(quantized["size"]) < int(source["size"]) // 2  # type: ignore[call-overload]
    blob = server.models_dir / "blobs" / str(quantized["digest"]).replace(":", "-")
    info = gguf.read_gguf(blob)
    assert info.file_type == "Q4_K_M" and blob.stat().st_size == quantized["size"]
    shown = api.post("/api/show", json={"model": "tiny-q4"}).json()
    assert shown["details"]["quantization_level"] == "Q4_K_M"

    reply = api.post("/api/generate", json={
        "model": "tiny-q4", "prompt": "hello", "stream": False, "keep_alive": 0,
        "options": {"num_predict": 4, "temperature": 0}})
    assert reply.status_code == 200, reply.text
    assert reply.json()["eval_count"] > 0

    # Q8_0, spelled as Ollama accepts it, from the same F16 weights; the F16 level itself
    # is a no-op that keeps the very same blob.
    eight = api.post("/api/create", json={"model": "tiny-q8", "from": f16_model,
                                          "quantize": "Q8_0", "stream": False})
    assert eight.status_code == 200, eight.text
    assert gguf.read_gguf(server.models_dir / "blobs" / str(
        model_layer(server, "tiny-q8")["digest"]).replace(":", "-")).file_type == "Q8_0"
    same = api.post("/api/create", json={"model": "tiny-same", "from": f16_model,
                                         "quantize": "f16", "stream": False})
    assert same.status_code == 200, same.text
    assert model_layer(server, "tiny-same")["digest"] == source["digest"]
    for name in ("tiny-q4", "tiny-q8", "tiny-same"):
        api.request("DELETE", "/api/delete", json={"model": name})


@pytest.mark.parametrize(("model", "level", "error"), [
    (MODEL, "q4_K_M", "quantization is only supported for F16, BF16 and F32 models"),
    ("tiny-f16", "q3_K_L", "unsupported quantization type Q3_K_L - supported types are "
                           "F32, F16, Q4_K_S, Q4_K_M, Q8_0"),
])
def test_what_ollama_refuses_to_quantize_is_a_400(api: httpx.Client, f16_model: str,
                                                  model: str, level: str, error: str) -> None:
    for stream in (False, True):  # refused before any progress line, streaming or not
        reply = api.post("/api/create", json={"model": "refused", "from": model,
                                              "quantize": level, "stream": stream})
        assert (reply.status_code, reply.json()) == (400, {"error": error})
    assert "refused:latest" not in {m["name"] for m in api.get("/api/tags").json()["models"]}


def test_the_cli_quantizes_with_q(server: RunningServer, f16_model: str, tmp_path: Path) -> None:
    (tmp_path / "Modelfile").write_text(f"FROM {f16_model}\n")
    env = {**os.environ, "PASTURE_HOST": server.url.removeprefix("http://"),
           "PYTHONPATH": str(REPO / "src")}
    result = subprocess.run(
        [sys.executable, "-m", "pasture", "create", "tiny-cli", "-q", "q4_K_S",
         "-f", str(tmp_path / "Modelfile")],
        env=env, text=True, capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "quantizing F16 model to Q4_K_S" in result.stdout + result.stderr
    shown = httpx.post(server.url + "/api/show", json={"model": "tiny-cli"}).json()
    assert shown["details"]["quantization_level"] == "Q4_K_S"
    httpx.request("DELETE", server.url + "/api/delete", json={"model": "tiny-cli"})
