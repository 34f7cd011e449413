"""Client-side behaviour of `pasture.client` against a canned HTTP server.

The server here only replays Ollama-shaped bytes, to pin down what the client does with
them: NDJSON streaming, error mapping, headers, and skipping uploads of blobs the server
already has. The real server is covered by the integration tests.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from pasture.client import AsyncClient, Client, ResponseError, ServerNotRunningError
from pasture.client.modelfile import plan_create
from pasture.errors import ModelfileError
from tests.unit.canned_server import CannedServer, Reply

CREATED = "2026-01-01T00:00:00Z"


def chat_line(content: str, done: bool = False, **extra: object) -> dict[str, object]:
    return {"model": "m", "created_at": CREATED,
            "message": {"role": "assistant", "content": content}, "done": done, **extra}


@pytest.fixture
def server() -> Iterator[CannedServer]:
    canned = CannedServer().start()
    yield canned
    canned.stop()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PASTURE_HOST", "OLLAMA_HOST", "PASTURE_API_KEY", "OLLAMA_API_KEY"):
        monkeypatch.delenv(name, raising=False)


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# ----- streaming --------------------------------------------------------------------------


def test_chat_stream_yields_typed_chunks_and_skips_blank_lines(server: CannedServer) -> None:
    server.routes[("POST", "/api/chat")] = Reply(lines=[
        chat_line("Hel"), "", chat_line("lo"),
        chat_line("", done=True, done_reason="stop", eval_count=2, eval_duration=10**9),
    ])
    parts = list(Client(server.url).chat("m", [{"role": "user", "content": "hi"}], stream=True))
    assert "".join(p.message.content for p in parts) == "Hello"
    assert parts[-1].done and parts[-1].eval_count == 2
    assert parts[0]["message"]["content"] == "Hel"  # dict-style access, like the official client
    sent = server.requests("POST", "/api/chat")[0].json()
    assert sent["stream"] is True
    assert sent["messages"] == [{"role": "user", "content": "hi"}]


def test_an_error_line_in_a_stream_raises(server: CannedServer) -> None:
    server.routes[("POST", "/api/generate")] = Reply(lines=[
        {"model": "m", "created_at": CREATED, "response": "a", "done": False},
        {"error": "model runner has unexpectedly stopped"},
    ])
    stream = Client(server.url).generate("m", "hi", stream=True)
    assert next(stream).response == "a"
    with pytest.raises(ResponseError) as caught:
        next(stream)
    assert caught.value.error == "model runner has unexpectedly stopped"


def test_non_streaming_calls_send_stream_false_and_parse_one_object(server: CannedServer) -> None:
    server.routes[("POST", "/api/generate")] = Reply(body={
        "model": "m", "created_at": CREATED, "response": "42", "done": True,
    })
    reply = Client(server.url).generate("m", "question", options={"temperature": 0})
    assert reply.response == "42"
    sent = server.requests("POST", "/api/generate")[0].json()
    assert sent["stream"] is False
    assert sent["options"] == {"temperature": 0}


# ----- errors -----------------------------------------------------------------------------


def test_http_errors_carry_the_servers_message_and_status(server: CannedServer) -> None:
    server.routes[("POST", "/api/show")] = Reply(404, {"error": "model 'nope' not found"})
    with pytest.raises(ResponseError) as caught:
        Client(server.url).show("nope")
    assert caught.value.error == "model 'nope' not found"
    assert caught.value.status_code == 404


def test_http_errors_on_a_stream_are_raised_before_any_chunk(server: CannedServer) -> None:
    server.routes[("POST", "/api/pull")] = Reply(400, {"error": "invalid model name"})
    with pytest.raises(ResponseError) as caught:
        list(Client(server.url).pull("Bad Name", stream=True))
    assert (caught.value.error, caught.value.status_code) == ("invalid model name", 400)


def test_an_error_body_that_is_not_json_is_kept_as_is(server: CannedServer) -> None:
    server.routes[("GET", "/api/tags")] = Reply(502, raw=b"bad gateway", content_type="text/plain")
    with pytest.raises(ResponseError) as caught:
        Client(server.url).list()
    assert caught.value.error == "bad gateway"
    assert caught.value.status_code == 502


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_connection_refused_says_the_server_is_not_running() -> None:
    client = Client(f"127.0.0.1:{free_port()}")
    with pytest.raises(ServerNotRunningError) as caught:
        client.list()
    assert isinstance(caught.value, ConnectionError)
    assert "pasture serve" in str(caught.value)
    with pytest.raises(ServerNotRunningError):
        list(client.chat("m", [], stream=True))


# ----- host and headers -------------------------------------------------------------------


def test_host_comes_from_pasture_host_then_ollama_host(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Client().url == "http://127.0.0.1:11434"
    monkeypatch.setenv("OLLAMA_HOST", "0.0.0.0:1234")
    assert Client().url == "http://0.0.0.0:1234"
    monkeypatch.setenv("PASTURE_HOST", "example.com:99")
    assert Client().url == "http://example.com:99"
    assert Client("https://other:443").url == "https://other:443"


def test_api_key_and_extra_headers_are_sent(
    server: CannedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PASTURE_API_KEY", "secret")
    server.routes[("GET", "/api/version")] = Reply(body={"version": "0.1.0"})
    assert Client(server.url, headers={"X-Trace": "1"}).version().version == "0.1.0"
    headers = server.requests("GET", "/api/version")[0].headers
    assert headers["authorization"] == "Bearer secret"
    assert headers["x-trace"] == "1"
    assert headers["user-agent"].startswith("pasture-python/")


# ----- model management -------------------------------------------------------------------


def test_list_ps_show_copy_delete_are_typed(server: CannedServer) -> None:
    details = {"format": "gguf", "family": "llama", "parameter_size": "135M",
               "quantization_level": "Q4_1"}
    server.routes[("GET", "/api/tags")] = Reply(body={"models": [{
        "name": "smol:latest", "model": "smol:latest", "modified_at": CREATED,
        "size": 98_000_000, "digest": "ab" * 32, "details": details}]})
    server.routes[("GET", "/api/ps")] = Reply(body={"models": []})
    server.routes[("POST", "/api/show")] = Reply(body={
        "modelfile": "FROM x", "details": details, "model_info": {"general.architecture": "llama"},
        "capabilities": ["completion"]})
    server.routes[("POST", "/api/copy")] = Reply(body=None, raw=b"")
    server.routes[("DELETE", "/api/delete")] = Reply(body=None, raw=b"")
    client = Client(server.url)
    assert client.list().models[0].details.family == "llama"
    assert client.ps().models == []
    assert client.show("smol").capabilities == ["completion"]
    assert client.copy("smol", "copy").status == "success"
    assert client.delete("copy").status == "success"
    assert server.requests("POST", "/api/copy")[0].json() == {
        "source": "smol", "destination": "copy"}
    assert server.requests("DELETE", "/api/delete")[0].json() == {"model": "copy"}


def test_images_are_sent_as_base64_and_functions_become_tools(
    server: CannedServer, tmp_path: Path
) -> None:
    server.routes[("POST", "/api/chat")] = Reply(body=chat_line("ok", done=True))
    image = tmp_path / "cat.png"
    image.write_bytes(b"\x89PNG fake")

    def get_weather(city: str, days: int = 1) -> str:
        """Get the weather.

        Args:
            city: The city to look up
            days: How many days ahead
        """
        return "sunny"

    Client(server.url).chat(
        "m", [{"role": "user", "content": "look", "images": [image, b"raw"]}], tools=[get_weather]
    )
    sent = server.requests("POST", "/api/chat")[0].json()
    assert sent["messages"][0]["images"] == [
        base64.b64encode(b"\x89PNG fake").decode(), base64.b64encode(b"raw").decode()]
    function = sent["tools"][0]["function"]
    assert function["name"] == "get_weather"
    assert function["description"] == "Get the weather."
    assert function["parameters"]["required"] == ["city"]
    assert function["parameters"]["properties"]["days"] == {
        "type": "integer", "description": "How many days ahead"}


# ----- blobs and create -------------------------------------------------------------------


def test_create_blob_uploads_a_missing_file_with_its_length(
    server: CannedServer, tmp_path: Path
) -> None:
    data = b"GGUF" + bytes(range(256)) * 5000
    path = tmp_path / "model.gguf"
    path.write_bytes(data)
    events = []
    digest = Client(server.url).create_blob(path, progress=events.append)
    assert digest == sha(data)
    assert server.blobs == {digest: len(data)}
    upload = server.requests("POST", f"/api/blobs/{digest}")[0]
    assert upload.headers["content-length"] == str(len(data))
    assert "transfer-encoding" not in upload.headers
    assert [e.status for e in events][0] == "hashing"
    assert events[-1].status == "uploaded" and events[-1].completed == len(data)


def test_create_blob_skips_the_upload_when_the_server_has_it(
    server: CannedServer, tmp_path: Path
) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"already there")
    server.blobs[sha(b"already there")] = 13
    assert Client(server.url).create_blob(path) == sha(b"already there")
    assert [s.method for s in server.seen] == ["HEAD"]


def test_create_from_modelfile_uploads_files_and_sends_typed_fields(
    server: CannedServer, tmp_path: Path
) -> None:
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "model.gguf").write_bytes(b"model bytes")
    (tmp_path / "lora.gguf").write_bytes(b"adapter bytes")
    server.blobs[sha(b"adapter bytes")] = 13  # already on the server: not uploaded again
    server.routes[("POST", "/api/create")] = Reply(lines=[
        {"status": "parsing GGUF"}, {"status": "writing manifest"}, {"status": "success"}])
    modelfile = '''
FROM ./weights/model.gguf
ADAPTER lora.gguf
PARAMETER temperature 0.2
PARAMETER stop <|im_end|>
PARAMETER stop "<|im_start|>"
PARAMETER num_ctx 2048
SYSTEM """You are terse."""
MESSAGE user Hi
MESSAGE assistant Hello
LICENSE MIT
LICENSE Apache
'''
    stream = Client(server.url).create_from_modelfile("mine", modelfile, tmp_path, stream=True)
    assert [p.status for p in stream][-1] == "success"
    assert [s.path for s in server.requests("POST", f"/api/blobs/{sha(b'model bytes')}")]
    assert not server.requests("POST", f"/api/blobs/{sha(b'adapter bytes')}")
    sent = server.requests("POST", "/api/create")[0].json()
    assert sent["model"] == "mine"
    assert sent["files"] == {"model.gguf": sha(b"model bytes")}
    assert sent["adapters"] == {"lora.gguf": sha(b"adapter bytes")}
    assert sent["parameters"] == {
        "temperature": 0.2, "stop": ["<|im_end|>", "<|im_start|>"], "num_ctx": 2048}
    assert sent["system"] == "You are terse."
    assert sent["messages"] == [{"role": "user", "content": "Hi"},
                                {"role": "assistant", "content": "Hello"}]
    assert sent["license"] == ["MIT", "Apache"]
    assert "from" not in sent


def test_create_from_a_model_name_sends_from(server: CannedServer, tmp_path: Path) -> None:
    server.routes[("POST", "/api/create")] = Reply(body={"status": "success"})
    reply = Client(server.url).create_from_modelfile("mine", "FROM smollm2:135m", tmp_path)
    assert reply.status == "success"
    sent = server.requests("POST", "/api/create")[0].json()
    assert sent["from"] == "smollm2:135m" and "files" not in sent


def test_modelfile_problems_name_their_line_before_any_upload(tmp_path: Path) -> None:
    with pytest.raises(ModelfileError, match=r"line 2.*temperature"):
        plan_create("FROM x\nPARAMETER temperature warm\n", tmp_path)
    with pytest.raises(ModelfileError, match=r"line 3.*unknown parameter"):
        plan_create("FROM x\n\nPARAMETER nope 1\n", tmp_path)
    with pytest.raises(ModelfileError, match="no such file"):
        plan_create("FROM ./missing.gguf\n", tmp_path)
    with pytest.raises(ModelfileError, match="no FROM line"):
        plan_create("SYSTEM hi\n", tmp_path)


def test_from_paths_are_relative_to_the_modelfile_directory(tmp_path: Path) -> None:
    (tmp_path / "a.gguf").write_bytes(b"a")
    plan = plan_create("FROM a.gguf\n", tmp_path)
    assert plan.files == [("a.gguf", tmp_path / "a.gguf")]
    assert plan.from_ is None


# ----- async ------------------------------------------------------------------------------


def test_async_client_streams_and_uploads(server: CannedServer, tmp_path: Path) -> None:
    server.routes[("POST", "/api/chat")] = Reply(lines=[chat_line("a"), chat_line("b", True)])
    server.routes[("POST", "/api/create")] = Reply(body={"status": "success"})
    (tmp_path / "m.gguf").write_bytes(b"weights")

    async def scenario() -> tuple[str, str]:
        async with AsyncClient(server.url) as client:
            stream = await client.chat("m", [{"role": "user", "content": "hi"}], stream=True)
            text = "".join([part.message.content async for part in stream])
            reply = await client.create_from_modelfile("m2", "FROM m.gguf", tmp_path)
            return text, reply.status

    assert asyncio.run(scenario()) == ("ab", "success")
    assert server.blobs == {sha(b"weights"): 7}


def test_async_client_maps_errors(server: CannedServer) -> None:
    server.routes[("POST", "/api/show")] = Reply(404, {"error": "model 'x' not found"})

    async def scenario() -> None:
        async with AsyncClient(server.url) as client:
            await client.show("x")

    with pytest.raises(ResponseError, match="not found"):
        asyncio.run(scenario())

    async def refused() -> None:
        await AsyncClient(f"127.0.0.1:{free_port()}").list()

    with pytest.raises(ServerNotRunningError):
        asyncio.run(refused())
