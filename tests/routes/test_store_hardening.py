"""The store against hostile contents (issue #15, items 4, 6 and 10).

- `create` parses each distinct uploaded blob once, stops at a second model file, and
  stops when its client leaves;
- a model whose settings layer is broken (params not a JSON object, a template or
  license that is not UTF-8) is skipped by `/api/tags` and is a 400 naming the layer
  everywhere else;
- a symbolic link inside the models directory is never followed, to read or to write.

Each test works on its own copy of the session's store, changed on disk the way a bad
pull or another local user would leave it, and drives the server through its HTTP API.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any, TypeVar

import pytest

from pasture.isolated import isolated
from pasture.store import create
from tests.fake_runner import FakeEngine
from tests.ggufs import write_many_tensors, write_tiny_llama
from tests.loop_probe import STALL_LIMIT, LoopProbe
from tests.processes import alive
from tests.routes.conftest import Scenario, Server, run_app, settings_for
from tests.routes.test_disconnect_and_queue import leave, until

T = TypeVar("T")
LIBRARY = ("manifests", "registry.ollama.ai", "library")
TEMPLATE = "application/vnd.ollama.image.template"
PARAMS = "application/vnd.ollama.image.params"
LICENSE = "application/vnd.ollama.image.license"
SYSTEM = "application/vnd.ollama.image.system"


@pytest.fixture
def models(store: Path, tmp_path: Path) -> Path:
    """A private copy of the session's models directory, free to damage."""
    return Path(shutil.copytree(store, tmp_path / "models", symlinks=True))


def run(models: Path, scenario: Scenario[T]) -> T:
    return asyncio.run(run_app(settings_for(models), FakeEngine(), scenario))


def manifest_path(models: Path, model: str, tag: str = "latest") -> Path:
    return models.joinpath(*LIBRARY, model, tag)


def put_blob(models: Path, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    (models / "blobs" / digest.replace(":", "-")).write_bytes(data)
    return digest


def add_model(models: Path, name: str, media_type: str, data: bytes) -> str:
    """`plain` with one more settings layer, stored as `name` (as a pull would leave it,
    before pulls checked their layers); returns the new layer's digest."""
    manifest = json.loads(manifest_path(models, "plain").read_bytes())
    digest = put_blob(models, data)
    manifest["layers"] = [layer for layer in manifest["layers"]
                          if layer["mediaType"] != media_type]
    manifest["layers"].append({"mediaType": media_type, "digest": digest, "size": len(data)})
    target = manifest_path(models, name)
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps(manifest))
    return digest


def layer_digest(models: Path, model: str, media_type: str) -> str:
    manifest = json.loads(manifest_path(models, model).read_bytes())
    return next(layer["digest"] for layer in manifest["layers"]
                if layer["mediaType"] == media_type)


BROKEN = {
    "params that are not JSON": (PARAMS, b'{"temperature": ', "not valid JSON"),
    "params that are a JSON list": (PARAMS, b"[1, 2]", "not a JSON object"),
    "a template that is not UTF-8": (TEMPLATE, b"\xff\xfe{{ .Prompt }}", "not UTF-8"),
    "a license that is not UTF-8": (LICENSE, b"\xc3(", "not UTF-8"),
    "a system prompt that is not UTF-8": (SYSTEM, b"\x80", "not UTF-8"),
}


@pytest.mark.parametrize("case", BROKEN)
def test_a_model_with_a_broken_layer_is_skipped_by_tags_and_a_400_naming_it_elsewhere(
        models: Path, case: str, caplog: pytest.LogCaptureFixture) -> None:
    media_type, data, problem = BROKEN[case]
    digest = add_model(models, "broken", media_type, data)

    async def scenario(server: Server) -> None:
        tags = await server.client.get("/api/tags")
        assert tags.status_code == 200, tags.text
        names = {model["name"] for model in tags.json()["models"]}
        assert "broken:latest" not in names and {"plain:latest", "qwen:latest"} <= names
        replies = [
            await server.post("/api/show", model="broken"),
            await server.post("/api/chat", model="broken", stream=False,
                              messages=[{"role": "user", "content": "hi"}]),
            await server.post("/api/create", model="heir", stream=False, **{"from": "broken"}),
        ]
        for reply in replies:
            assert reply.status_code == 400, reply.text
            message = reply.json()["error"]
            assert media_type in message and digest in message and problem in message
        assert not manifest_path(models, "heir").exists()

    with caplog.at_level(logging.WARNING, logger="pasture.server.routes.models"):
        run(models, scenario)
    skipped = [r for r in caplog.records if r.name == "pasture.server.routes.models"
               and "broken:latest" in r.getMessage()]
    assert len(skipped) == 1  # the listing's own warning, once


# -- create: each blob parsed once, no further than a second model file --------------


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every GGUF parse create starts (each in a child process, the parsing real)."""
    seen: list[Any] = []

    async def counted(fn: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(args[0])
        return await isolated(fn, *args, **kwargs)

    monkeypatch.setattr(create, "isolated", counted)
    return seen


def slow_facts(path: Path, marks: Path) -> create.FileFacts:
    """In the child: a parse that takes 30 s (as a hostile header may), leaving its pid
    in `marks`/pid, and `marks`/done if it ever finishes."""
    (marks / "pid").write_text(str(os.getpid()))
    time.sleep(30)
    (marks / "done").write_text("")
    return create.FileFacts.read(path)


def upload_ggufs(models: Path, tmp_path: Path, count: int) -> list[str]:
    """`count` distinct small model GGUFs, stored as blobs (as `/api/blobs` would)."""
    return [put_blob(models, write_tiny_llama(tmp_path / f"m{seed}.gguf", n_layers=1,
                                              n_embd=16, n_ff=32, seed=seed).read_bytes())
            for seed in range(count)]


def test_create_parses_a_blob_named_under_several_files_once(
        models: Path, tmp_path: Path, parses: list[Path]) -> None:
    (digest,) = upload_ggufs(models, tmp_path, 1)

    async def scenario(server: Server) -> None:
        files = {f"copy{i}.gguf": digest for i in range(3)}
        reply = await server.post("/api/create", model="thrice", files=files, stream=False)
        assert reply.status_code == 200, reply.text
        manifest = json.loads(manifest_path(models, "thrice").read_bytes())
        assert [layer["digest"] for layer in manifest["layers"]] == [digest]

    run(models, scenario)
    assert len(parses) == 1


def test_create_stops_parsing_at_a_second_model_file(
        models: Path, tmp_path: Path, parses: list[Path]) -> None:
    digests = upload_ggufs(models, tmp_path, 3)

    async def scenario(server: Server) -> None:
        files = {f"part{i}.gguf": digest for i, digest in enumerate(digests)}
        reply = await server.post("/api/create", model="many", files=files, stream=False)
        assert reply.status_code == 400
        assert "exactly one GGUF model file" in reply.json()["error"]

    run(models, scenario)
    assert len(parses) == 2
    assert not manifest_path(models, "many").exists()


@pytest.mark.parametrize("stream", [False, True])
def test_a_client_leaving_a_create_kills_its_parse(
        models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stream: bool) -> None:
    digests = upload_ggufs(models, tmp_path, 1)
    marks = tmp_path / "marks"
    marks.mkdir()
    calls: list[Any] = []

    async def slow_first(fn: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(fn)
        if len(calls) == 1:
            return await isolated(slow_facts, args[0], marks, **kwargs)
        return await isolated(fn, *args, **kwargs)

    monkeypatch.setattr(create, "isolated", slow_first)

    async def scenario(server: Server) -> None:
        async def parsing(_: list[bytes]) -> None:  # a child's start may take seconds
            await until(lambda: (marks / "pid").exists() and bool((marks / "pid").read_text()),
                        timeout=60)

        request = {"model": "left", "files": {"m.gguf": digests[0]}, "stream": stream,
                   "adapters": {"a.gguf": digests[0]}}
        status, _ = await leave(server, "/api/create", request, parsing)
        assert status == 499
        # the child parsing for the request that left is killed, not left to finish
        pid = int((marks / "pid").read_text())
        await until(lambda: not alive(pid), timeout=30)
        # A create still running would go on to the adapter's check: give it every chance.
        with contextlib.suppress(TimeoutError):
            await until(lambda: len(calls) > 1, timeout=0.5)

    run(models, scenario)
    assert len(calls) == 1 and not (marks / "done").exists()
    assert not manifest_path(models, "left").exists()



# -- links inside the store are never followed ------------------------------------------


def test_a_blob_that_is_a_link_out_of_the_store_is_refused_not_read(
        models: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    blob = models / "blobs" / layer_digest(models, "qwen", TEMPLATE).replace(":", "-")
    blob.unlink()
    blob.symlink_to(secret)

    async def scenario(server: Server) -> None:
        for reply in [await server.post("/api/show", model="qwen"),
                      await server.post("/api/chat", model="qwen", stream=False,
                                        messages=[{"role": "user", "content": "hi"}])]:
            assert reply.status_code == 400, reply.text
            assert "symbolic link" in reply.text and "TOP SECRET" not in reply.text
            assert str(tmp_path) not in reply.text  # no server paths in error bodies

    run(models, scenario)


def test_a_manifest_that_is_a_link_is_refused(models: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside-manifest"
    outside.write_bytes(manifest_path(models, "plain").read_bytes())
    link = manifest_path(models, "twin")
    link.unlink()
    link.symlink_to(outside)

    async def scenario(server: Server) -> None:
        shown = await server.post("/api/show", model="twin")
        assert shown.status_code == 400 and "symbolic link" in shown.text, shown.text
        deleted = await server.client.request("DELETE", "/api/delete", json={"model": "twin"})
        assert deleted.status_code == 400, deleted.text

    run(models, scenario)
    assert outside.exists()


def test_copy_and_delete_do_not_write_through_a_linked_namespace_directory(
        models: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "victim").mkdir(parents=True)
    (outside / "victim" / "latest").write_text("precious")
    models.joinpath(*LIBRARY[:2], "evil").symlink_to(outside)

    async def scenario(server: Server) -> None:
        copied = await server.post("/api/copy", source="plain", destination="evil/planted")
        assert copied.status_code == 400 and "symbolic link" in copied.text, copied.text
        deleted = await server.client.request("DELETE", "/api/delete",
                                              json={"model": "evil/victim"})
        assert deleted.status_code == 400, deleted.text

    run(models, scenario)
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]
    assert (outside / "victim" / "latest").read_text() == "precious"


def test_a_hostile_gguf_is_parsed_away_from_the_server_and_never_stalls_it(
        models: Path, tmp_path: Path) -> None:
    """Seconds of parsing a header of 50,000 tensors happen in a child process: the event
    loop answers throughout, and the file, no language model, is a 400."""
    digest = put_blob(models, write_many_tensors(tmp_path / "many.gguf", 50_000).read_bytes())

    async def scenario(server: Server) -> None:
        async with LoopProbe() as probe:
            reply = await server.post("/api/create", model="many", stream=False,
                                      files={"many.gguf": digest})
        assert reply.status_code == 400
        assert reply.json()["error"] == "the GGUF file does not describe a language model"
        assert probe.wakeups > 0 and probe.worst < STALL_LIMIT

    run(models, scenario)
