"""`pasture create` from a Safetensors model directory and a PEFT LoRA adapter: a tiny
llama written by the tests (tests/hf_models.py) is converted by llama.cpp's own
converter, of the engine's release, stored as a GGUF, loaded and answering, in F32 and
BF16, in one file or sharded with an index, and a tiny Qwen2 in F16; the LoRA changes
what it says; `--quantize` works on import; hostile uploads (headers, shard indexes) are
refused with a 400 before anything reads them."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from safetensors import safe_open

from pasture import gguf
from pasture.engines import converter
from pasture.store.prune import GRACE_PERIOD
from pasture.store.safetensors import MAX_SIDE_FILE
from tests.hf_models import (
    write_safetensors,
    write_tiny_hf_llama,
    write_tiny_hf_qwen2,
    write_tiny_lora,
)
from tests.integration.conftest import REPO, RunningServer, start_server, stop_server, wait_for
from tests.processes import alive, stat

CACHE = Path.home() / ".cache" / "pasture"
GREEDY = {"temperature": 0, "seed": 7, "num_predict": 8}


@pytest.fixture(scope="module")
def converters() -> Path:
    """llama.cpp's converters, unpacked once per machine (the engine's source archive,
    from PyPI the first time)."""
    return converter.prepare(CACHE, lambda *_: None)


def give_converters(converters: Path, models_dir: Path) -> None:
    """The converters handed to the engines folder of the server storing `models_dir`."""
    target = converter.source_path(models_dir.parent / "engines")
    if not target.is_dir():
        shutil.copytree(converters, target)


@pytest.fixture(scope="module")
def pasture(server: RunningServer, converters: Path):
    """The `pasture` command against the test server, which has the converters."""
    give_converters(converters, server.models_dir)

    def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PASTURE_HOST": server.url.removeprefix("http://"),
               "PYTHONPATH": str(REPO / "src")}
        return subprocess.run([sys.executable, "-m", "pasture", *args], env=env, text=True,
                              capture_output=True, timeout=300, cwd=cwd)

    return run


@pytest.fixture(scope="module")
def fine_tune(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a Safetensors fine-tune (`tiny`, F32), a LoRA for it (`lora`), the
    same model as training leaves it, in BF16 in two shards (`sharded`), and a Qwen2 in
    F16 with a SentencePiece tokenizer (`qwen2`)."""
    folder = tmp_path_factory.mktemp("hf")
    write_tiny_hf_llama(folder / "tiny")
    write_tiny_lora(folder / "lora")
    write_tiny_hf_llama(folder / "sharded", dtype="BF16", shards=2)
    write_tiny_hf_qwen2(folder / "qwen2", dtype="F16")
    return folder


@pytest.fixture(scope="module")
def tiny_hf(pasture, fine_tune: Path) -> str:
    (fine_tune / "Modelfile").write_text("FROM ./tiny\n")
    result = pasture("create", "tiny-hf", "-f", "Modelfile", cwd=fine_tune)
    assert result.returncode == 0, result.stderr
    assert "converting model" in result.stderr and "success" in result.stderr
    return "tiny-hf"


def greedy(api: httpx.Client, model: str) -> str:
    response = api.post("/api/generate", json={
        "model": model, "prompt": "hello world", "raw": True, "stream": False,
        "options": GREEDY, "keep_alive": 0})
    assert response.status_code == 200, response.text
    assert response.json()["eval_count"] > 0
    return response.json()["response"]


def model_blob(server: RunningServer, name: str, kind: str = "model") -> Path:
    path = server.models_dir / f"manifests/registry.ollama.ai/library/{name}/latest"
    (layer,) = [layer for layer in json.loads(path.read_text())["layers"]
                if layer["mediaType"].endswith("." + kind)]
    return server.models_dir / "blobs" / layer["digest"].replace(":", "-")


def test_a_safetensors_directory_becomes_a_model_that_runs(
        server: RunningServer, api: httpx.Client, pasture, fine_tune: Path,
        tiny_hf: str) -> None:
    info = gguf.read_gguf(model_blob(server, tiny_hf))
    assert info.architecture == "llama" and info.file_type == "F16"
    assert info.block_count == 2 and info.chat_template  # the tokenizer_config's template
    shown = api.post("/api/show", json={"model": tiny_hf}).json()
    assert shown["details"]["family"] == "llama"
    assert greedy(api, tiny_hf)
    result = pasture("run", tiny_hf, "hello", cwd=fine_tune)
    assert result.returncode == 0, result.stderr


def test_a_peft_lora_adapter_changes_the_output(
        server: RunningServer, api: httpx.Client, pasture, fine_tune: Path,
        tiny_hf: str) -> None:
    # The fine-tune and its adapter in one create; the model converts to the very same
    # GGUF as before (the conversion is deterministic), and the adapter is added to it.
    (fine_tune / "Modelfile.lora").write_text("FROM ./tiny\nADAPTER ./lora\n")
    result = pasture("create", "tiny-hf-lora", "-f", "Modelfile.lora", cwd=fine_tune)
    assert result.returncode == 0, result.stderr
    assert "converting model" in result.stderr and "converting adapter" in result.stderr
    assert model_blob(server, "tiny-hf-lora") == model_blob(server, tiny_hf)
    adapter = gguf.read_gguf(model_blob(server, "tiny-hf-lora", "adapter"))
    assert adapter.metadata["general.type"] == "adapter"
    assert adapter.metadata["adapter.type"] == "lora"
    assert greedy(api, "tiny-hf-lora") != greedy(api, tiny_hf)


def test_quantize_on_import(server: RunningServer, api: httpx.Client, pasture,
                            fine_tune: Path, tiny_hf: str) -> None:
    result = pasture("create", "tiny-hf-q8", "-f", "Modelfile", "--quantize", "q8_0",
                     cwd=fine_tune)
    assert result.returncode == 0, result.stderr
    assert "quantizing F16 model to Q8_0" in result.stderr
    assert gguf.read_gguf(model_blob(server, "tiny-hf-q8")).file_type == "Q8_0"
    assert greedy(api, "tiny-hf-q8")


@pytest.mark.parametrize(("folder", "dtype", "architecture"), [
    ("sharded", "BF16", "llama"), ("qwen2", "F16", "qwen2")])
def test_half_precision_sharded_and_qwen2_fine_tunes_convert(
        server: RunningServer, api: httpx.Client, pasture, fine_tune: Path, folder: str,
        dtype: str, architecture: str) -> None:
    # What training leaves: BF16 or F16, sharded with model.safetensors.index.json; and a
    # second architecture (Qwen2: attention biases, tied embeddings, tokenizer.model).
    # The GGUF keeps the weights' type (no loss, no growth) and every shard's tensors.
    (fine_tune / f"Modelfile.{folder}").write_text(f"FROM ./{folder}\n")
    result = pasture("create", f"tiny-{folder}", "-f", f"Modelfile.{folder}", cwd=fine_tune)
    assert result.returncode == 0, result.stderr
    info = gguf.read_gguf(model_blob(server, f"tiny-{folder}"))
    assert info.architecture == architecture and info.file_type == dtype
    tensors = set()
    for weights in (fine_tune / folder).glob("*.safetensors"):
        with safe_open(weights, "numpy") as f:
            tensors |= set(f.keys())
    assert len(info.tensors) == len(tensors)
    assert greedy(api, f"tiny-{folder}")


def test_a_server_killed_mid_conversion_leaves_nothing_running_or_piling_up(
        converters: Path, fine_tune: Path, tmp_path: Path) -> None:
    # The converter dies with the server (its limits are the server's to enforce), and
    # its scratch folder of links, in the store, goes with the start-up prune once stale.
    models = tmp_path / "models"
    give_converters(converters, models)
    server = start_server(models, tmp_path / "server.log")
    try:
        with httpx.Client(base_url=server.url, timeout=60) as api:
            files = {path.name: upload(api, path)
                     for path in sorted((fine_tune / "sharded").iterdir())}
            with api.stream("POST", "/api/create", json={"model": "killed", "files": files}):
                wait_for(lambda: server.children(b"pasture.engines.convert_main"),
                         "the converter to start")
                (child,) = server.children(b"pasture.engines.convert_main")
                wait_for(lambda: nice(child) > nice(server.process.pid),
                         "the converter to set its limits (priority last)")
                (scratch,) = [path for path in (models / "blobs").glob(".tmp-*")
                              if path.is_dir()]
                assert (scratch / "model" / "model.safetensors.index.json").is_symlink()
                # Stopped, it cannot die of writing to the dead server's pipe: only of
                # the signal it asked for at its parent's death.
                os.kill(child, signal.SIGSTOP)
                server.process.kill()
                server.process.wait()
    finally:
        stop_server(server)
    try:
        wait_for(lambda: not alive(child), "the converter to die with the server", 10)
    finally:
        if alive(child):
            os.kill(child, signal.SIGKILL)
    old = time.time() - GRACE_PERIOD - 60
    os.utime(scratch, (old, old))
    server = start_server(models, tmp_path / "restarted.log")
    try:
        wait_for(lambda: not scratch.exists(), "the start-up prune")
        for digest in files.values():  # the links are gone, not what they named
            assert (models / "blobs" / digest.replace(":", "-")).is_file()
    finally:
        stop_server(server)


def test_the_converter_is_stopped_past_the_runners_memory_cap(
        converters: Path, fine_tune: Path, tmp_path: Path) -> None:
    # 64 MiB: less than importing torch takes, so the watchdog stops it early.
    models = tmp_path / "models"
    give_converters(converters, models)
    server = start_server(models, tmp_path / "server.log", PASTURE_RUNNER_MEMORY_LIMIT="64MiB")
    try:
        with httpx.Client(base_url=server.url, timeout=60) as api:
            files = {path.name: upload(api, path) for path in (fine_tune / "tiny").iterdir()}
            reply = api.post("/api/create", json={"model": "big", "files": files,
                                                  "stream": False})
            assert reply.status_code == 500, reply.text
            assert reply.json()["error"] == "converting used more than its memory limit " \
                "(64 MiB) and was stopped"
            assert not server.children(b"pasture.engines.convert_main")
            assert not [path for path in (models / "blobs").iterdir()
                        if path.name.startswith(".tmp-")]  # no scratch, no partial GGUF
    finally:
        stop_server(server)


def test_a_side_file_over_64_mib_is_refused_before_it_is_read(
        api: httpx.Client, tmp_path: Path, fine_tune: Path) -> None:
    tokenizer = tmp_path / "tokenizer.json"
    with open(tokenizer, "wb") as f:
        f.truncate(MAX_SIDE_FILE + 1)
    files = {name: upload(api, fine_tune / "tiny" / name)
             for name in ("config.json", "model.safetensors")}
    reply = api.post("/api/create", json={"model": "hostile", "stream": False,
                                          "files": {**files, "tokenizer.json": upload(
                                              api, tokenizer)}})
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"] == f"tokenizer.json: {MAX_SIDE_FILE + 1} bytes is too large " \
        f"for a model's configuration or tokenizer file (at most {MAX_SIDE_FILE})"


def nice(pid: int) -> int:
    return int(stat(pid)[16])


def upload(api: httpx.Client, path: Path) -> str:
    data = path.read_bytes()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    api.post(f"/api/blobs/{digest}", content=data).raise_for_status()
    return digest


F32_4 = {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}
HOSTILE = {
    "offsets past the data": ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 1 << 40]}},
                              "spans bytes"),
    "shape bigger than its bytes": ({"w": {"dtype": "F32", "shape": [1 << 30, 1 << 30],
                                           "data_offsets": [0, 16]}}, "does not fill"),
    "overlapping tensors": ({"a": F32_4, "b": F32_4}, "without gaps or overlaps"),
    "unknown dtype": ({"w": {**F32_4, "dtype": "PICKLE"}}, "unknown dtype"),
    "negative dimension": ({"w": {**F32_4, "shape": [-4]}}, "invalid shape"),
    "not an object": ([1, 2], "not a JSON object"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_safetensors_headers_are_refused(
        api: httpx.Client, tmp_path: Path, fine_tune: Path, case: str) -> None:
    header, message = HOSTILE[case]
    weights = write_safetensors(tmp_path / "model.safetensors", header, bytes(16))  # type: ignore[arg-type]
    files = {"config.json": upload(api, fine_tune / "tiny" / "config.json"),
             "model.safetensors": upload(api, weights)}
    reply = api.post("/api/create", json={"model": "hostile", "files": files})
    assert reply.status_code == 400, reply.text
    assert "model.safetensors: invalid Safetensors file" in reply.json()["error"]
    assert message in reply.json()["error"]
    assert api.post("/api/show", json={"model": "hostile"}).status_code == 404


HOSTILE_SHARDS = {  # what a shard index's weight_map names instead of an uploaded shard
    "a path out of the folder": "../../../../../etc/passwd",
    "an absolute path": "/etc/passwd",
    "a file that is not weights": "tokenizer.json",
    "a shard not uploaded": "model-00003-of-00003.safetensors",
}


@pytest.mark.parametrize("case", list(HOSTILE_SHARDS))
def test_a_shard_index_may_only_name_the_uploaded_weights(
        api: httpx.Client, pasture, tmp_path: Path, fine_tune: Path, case: str) -> None:
    # Through the CLI, which uploads the index with the shards: the converter opens each
    # file the index names, so one it has not had checked is a 400 before it runs.
    shutil.copytree(fine_tune / "sharded", tmp_path / "model")
    index_file = tmp_path / "model" / "model.safetensors.index.json"
    index = json.loads(index_file.read_text())
    index["weight_map"]["lm_head.weight"] = HOSTILE_SHARDS[case]
    index_file.write_text(json.dumps(index))
    (tmp_path / "Modelfile").write_text("FROM ./model\n")
    result = pasture("create", "hostile", "-f", "Modelfile", cwd=tmp_path)
    assert result.returncode != 0
    assert "model.safetensors.index.json: invalid Safetensors index: weight_map names " \
        f"{HOSTILE_SHARDS[case]!r}, which is not one of the uploaded" in result.stderr
    assert "converting" not in result.stderr
    assert api.post("/api/show", json={"model": "hostile"}).status_code == 404


def test_a_header_longer_than_its_file_is_refused(api: httpx.Client, tmp_path: Path,
                                                  fine_tune: Path) -> None:
    weights = tmp_path / "model.safetensors"
    weights.write_bytes((1 << 20).to_bytes(8, "little") + b"{}")
    files = {"config.json": upload(api, fine_tune / "tiny" / "config.json"),
             "model.safetensors": upload(api, weights)}
    reply = api.post("/api/create", json={"model": "hostile", "files": files})
    assert reply.status_code == 400 and "header of 1048576 bytes" in reply.json()["error"]


@pytest.mark.parametrize(("name", "message"), [
    ("pytorch_model.bin", "pickle files are not accepted"),
    ("consolidated.00.pth", "pickle files are not accepted"),
    ("modeling_evil.py", "Python files are not accepted"),
])
def test_pickles_and_code_are_refused(api: httpx.Client, tmp_path: Path, fine_tune: Path,
                                      name: str, message: str) -> None:
    (tmp_path / name).write_bytes(b"\x80\x04K\x01.")  # a pickle of 1
    files = {"config.json": upload(api, fine_tune / "tiny" / "config.json"),
             "model.safetensors": upload(api, fine_tune / "tiny" / "model.safetensors"),
             name: upload(api, tmp_path / name)}
    reply = api.post("/api/create", json={"model": "hostile", "files": files})
    assert reply.status_code == 400 and message in reply.json()["error"], reply.text


def test_an_architecture_the_converter_does_not_know_is_a_clear_error(
        api: httpx.Client, pasture, tmp_path: Path, fine_tune: Path) -> None:
    config = json.loads((fine_tune / "tiny" / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config,
                                                      "architectures": ["NopeForCausalLM"]}))
    files = {"config.json": upload(api, tmp_path / "config.json"),
             "model.safetensors": upload(api, fine_tune / "tiny" / "model.safetensors")}
    reply = api.post("/api/create", json={"model": "nope", "files": files, "stream": False})
    assert reply.status_code == 400, reply.text
    assert "Model NopeForCausalLM is not supported" in reply.json()["error"]


def test_a_lora_for_an_architecture_it_cannot_convert_for_is_refused_up_front(
        api: httpx.Client, fine_tune: Path, gemma3: str) -> None:
    adapters = {name: upload(api, fine_tune / "lora" / name)
                for name in ("adapter_config.json", "adapter_model.safetensors")}
    reply = api.post("/api/create", json={"model": "nope", "from": gemma3,
                                          "adapters": adapters})
    assert reply.status_code == 400, reply.text
    assert "LoRA adapter for the 'gemma3' architecture is not supported" in reply.json()["error"]
