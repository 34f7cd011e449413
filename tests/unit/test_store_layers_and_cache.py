"""A pull refuses a model whose settings layers cannot be read (issue #15 item 6), and
the GGUF header cache behind `/api/show` and every request is bounded by bytes (item 10).

The registry is tests/fake_registry.py, a real HTTP server on 127.0.0.1; the headers are
real GGUF files written by tests/ggufs.py and parsed by the real reader.
"""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from pasture import gguf
from pasture.errors import PastureError
from pasture.store import ModelName, Store
from pasture.store.registry import TransferOptions, UnsafeRegistryError
from pasture.store.registry.pull import pull_model
from pasture.store.show import GGUFCache, estimated_bytes
from tests.fake_registry import FakeRegistry, manifest_for, sha256
from tests.ggufs import write_gguf

CONFIG = b'{"model_format":"gguf","architecture":"amd64","os":"linux"}'
WEIGHTS = b"GGUF" + bytes(2000)
TEMPLATE = "application/vnd.ollama.image.template"
PARAMS = "application/vnd.ollama.image.params"
MESSAGES = "application/vnd.ollama.image.messages"


@pytest.fixture
def registry() -> Iterator[FakeRegistry]:
    with FakeRegistry() as fake:
        yield fake


def serve(registry: FakeRegistry, media_type: str, data: bytes, size: int | None = None
          ) -> str:
    """A model whose manifest lists one settings layer (declared `size`, default its
    length) besides config and weights; returns that layer's digest."""
    manifest = manifest_for(CONFIG, WEIGHTS)
    digest = sha256(data)
    manifest["layers"].append({"mediaType": media_type, "digest": digest,
                               "size": len(data) if size is None else size})
    registry.serve_model("library/m", "latest", manifest,
                         {sha256(CONFIG): CONFIG, sha256(WEIGHTS): WEIGHTS, digest: data})
    return digest


def pull(store: Store, registry: FakeRegistry) -> list[str]:
    name = ModelName.parse(f"{registry.host}/library/m:latest")

    async def run() -> list[str]:
        return [p.status async for p in pull_model(store, name, insecure=True,
                                                   options=TransferOptions(retries=1))]

    return asyncio.run(run())


@pytest.mark.parametrize(("media_type", "data", "problem"), [
    (PARAMS, b"{oops", "not valid JSON"),
    (PARAMS, b'["temperature", 1]', "not a JSON object"),
    (MESSAGES, b'{"role": "user"}', "not a JSON list of messages"),
    (TEMPLATE, b"\xff{{ .Prompt }}", "not UTF-8"),
])
def test_a_pull_with_an_unreadable_settings_layer_is_refused_and_stores_no_manifest(
        tmp_path: Path, registry: FakeRegistry, media_type: str, data: bytes,
        problem: str) -> None:
    digest = serve(registry, media_type, data)
    store = Store(tmp_path)
    with pytest.raises(PastureError) as refused:
        pull(store, registry)
    assert refused.value.status == 400
    assert media_type in refused.value.message and digest in refused.value.message
    assert problem in refused.value.message
    assert store.manifests.list() == []


def test_a_pull_whose_settings_layer_claims_megabytes_is_refused_before_downloading(
        tmp_path: Path, registry: FakeRegistry) -> None:
    serve(registry, TEMPLATE, b"{{ .Prompt }}", size=64 << 20)
    with pytest.raises(UnsafeRegistryError, match="larger than 4 MiB"):
        pull(Store(tmp_path), registry)
    assert not [r for r in registry.requests if "/blobs/" in r.path]


def test_a_pull_with_good_settings_layers_succeeds(tmp_path: Path,
                                                   registry: FakeRegistry) -> None:
    serve(registry, PARAMS, b'{"temperature": 0.5}')
    assert pull(Store(tmp_path), registry)[-1] == "success"


# -- the GGUF header cache ---------------------------------------------------------------


def many_tensors(path: Path, count: int, seed: int = 0) -> Path:
    """A header of `count` tiny tensors: the shape of the hostile 70 MB file, whose
    parsed form is many times its size."""
    rng = np.random.default_rng(seed)
    tensors = [(f"t{i}.weight", rng.random(1, dtype=np.float32)) for i in range(count)]
    return write_gguf(path, {"general.name": f"n{seed}"}, tensors)


def test_the_estimate_of_a_parsed_header_is_not_below_what_it_holds(tmp_path: Path) -> None:
    path = many_tensors(tmp_path / "many.gguf", 3000)
    tracemalloc.start()
    try:
        info = gguf.read_gguf(path)
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert held <= estimated_bytes(info) <= 4 * held


def test_the_gguf_cache_holds_no_more_bytes_than_its_budget(tmp_path: Path) -> None:
    paths = [many_tensors(tmp_path / f"g{i}.gguf", 300, seed=i) for i in range(6)]
    one = estimated_bytes(gguf.read_gguf(paths[0]))
    cache = GGUFCache(budget=3 * one + one // 2)
    for path in paths:
        cache.get(path)
        assert cache.held_bytes <= cache.budget
    assert len(cache) == 3
    assert cache.get(paths[-1]) is cache.get(paths[-1])  # the newest are kept

    huge = many_tensors(tmp_path / "huge.gguf", 3000)
    assert cache.get(huge).tensors and len(cache) == 3  # larger than the budget: not kept
