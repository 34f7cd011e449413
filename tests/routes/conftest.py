"""The server in-process, with the scripted fake engine: route contracts without a model.

`store` is a models directory filled once per session through the public API, exactly as
a user would (a tiny GGUF uploaded as a blob, then `/api/create`). Each test then runs
`serve(scenario, script)`: a fresh app over that store (`create_app(settings,
start_runner=FakeEngine(script))`) reached through `httpx.ASGITransport`, so nothing
listens on a port and nothing loads a model. ASGITransport runs no lifespan; the only
thing the lifespan does that matters here, stopping the runners, `serve` does itself.

Models in the store:

- `plain` (and its copy `twin`): a GGUF whose Jinja template knows no tools or thinking,
  so the engine applies it (native mode: the fake's `<|role|>content` template) and the
  model only completes; its Modelfile sets `temperature 0.3` and `top_k 7`.
- `native`: a GGUF whose Jinja template teaches `<tool_call>` and `<think>` (native
  mode, with tools and thinking).
- `qwen`: `plain` with a Qwen-style Go TEMPLATE with tools and thinking: the server
  renders the prompt itself and reads tool calls and thoughts out of the engine's text.
- `embedder`: a BERT GGUF with pooling (embedding only).
- `reranker`: a BERT GGUF with rank pooling and a classifier head (reranking only).
- `seer`: `plain`'s kind of GGUF (with a 4,096-token context) and a vision projector:
  native mode, with vision.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx
import pytest
from fastapi import FastAPI

from pasture.config import Settings
from pasture.server.app import create_app
from pasture.server.tracing import Tracer
from tests.embedding_ggufs import write_tiny_bert
from tests.fake_runner import FakeEngine, FakeRunner, Script
from tests.ggufs import CHATML_TEMPLATE, write_projector, write_tiny_llama

T = TypeVar("T")
BASE_URL = "http://127.0.0.1:11434"  # the server checks Host: a loopback name passes
SCENARIO_TIMEOUT = 20  # seconds; each scenario takes well under one

QWEN_TEMPLATE = (
    "{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
    "{{- if .Tools }}<|im_start|>tools\n{{ range .Tools }}{{ . }}\n{{ end }}"
    "Call one as <tool_call>\n{\"name\": <name>, \"arguments\": <args>}\n</tool_call>"
    "<|im_end|>\n{{ end }}"
    "{{- range $i, $_ := .Messages }}{{- $last := eq (len (slice $.Messages $i)) 1 -}}\n"
    "{{- if eq .Role \"assistant\" }}<|im_start|>assistant\n"
    "{{ if .Thinking }}<think>{{ .Thinking }}</think>\n{{ end }}"
    "{{ if .Content }}{{ .Content }}{{ else if .ToolCalls }}<tool_call>\n"
    "{{ range .ToolCalls }}{\"name\": \"{{ .Function.Name }}\", \"arguments\": "
    "{{ .Function.Arguments }}}\n{{ end }}</tool_call>{{ end }}<|im_end|>\n"
    "{{ else }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
    "{{- if and (ne .Role \"assistant\") $last }}<|im_start|>assistant\n{{ end }}"
    "{{- end }}"
)
NATIVE_TEMPLATE = (
    "{%- if tools %}Tools: {{ tools | tojson }}. Call one as <tool_call>\n"
    "{\"name\": <name>, \"arguments\": <args>}\n</tool_call>\n{% endif %}"
    "{%- for message in messages %}<|im_start|>{{ message.role }}\n"
    "{% if message.reasoning_content %}<think>{{ message.reasoning_content }}</think>"
    "{% endif %}{{ message.content }}<|im_end|>\n{% endfor %}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
PLAIN_PARAMETERS = {"temperature": 0.3, "top_k": 7}


@dataclass
class Server:
    """The app, a client for it, and the fake engine behind it."""

    app: FastAPI
    client: httpx.AsyncClient
    engine: FakeEngine

    @property
    def runner(self) -> FakeRunner:
        """The one runner started (most tests load one model)."""
        return self.engine.runner

    async def post(self, path: str, **body: Any) -> httpx.Response:
        return await self.client.post(path, json=body)

    async def lines(self, path: str, **body: Any) -> tuple[httpx.Response, list[dict[str, Any]]]:
        """A streamed NDJSON answer: the response and its lines, parsed."""
        reply = await self.post(path, **body)
        return reply, [json.loads(line) for line in reply.text.splitlines() if line]

    async def events(self, path: str, **body: Any
                     ) -> tuple[httpx.Response, list[tuple[str | None, Any]]]:
        """A server-sent-events answer: the response and its (event name, data) frames,
        data parsed as JSON (but `[DONE]`)."""
        reply = await self.post(path, **body)
        return reply, sse_frames(reply.text)

    async def engine_busy(self) -> None:
        """Wait until the engine has been asked for a generation (a runner started and
        holding a request)."""
        await until(lambda: bool(self.engine.started) and bool(self.runner.requests))

    async def loaded(self) -> list[str]:
        """The models `/api/ps` lists."""
        reply = await self.client.get("/api/ps")
        return [model["name"] for model in reply.json()["models"]]


async def until(condition: Callable[[], bool], timeout: float = 5) -> None:
    """Wait (polling) until `condition()` holds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


def sse_frames(text: str) -> list[tuple[str | None, Any]]:
    """`event:`/`data:` frames of an SSE body, each frame checked to be well formed."""
    frames = []
    assert text.endswith("\n\n"), text[-200:]
    for block in text.split("\n\n")[:-1]:
        name, data = None, None
        for line in block.split("\n"):
            field, _, value = line.partition(": ")
            assert field in ("event", "data"), line
            if field == "event":
                name = value
            else:
                data = value if value == "[DONE]" else json.loads(value)
        frames.append((name, data))
    return frames


Scenario = Callable[[Server], Awaitable[T]]


class Serve(Protocol):
    def __call__(self, scenario: Scenario[T], script: Script | None = None, *,
                 llguidance: bool = True, fail_load: Exception | None = None,
                 **env: str) -> T: ...


def settings_for(models: Path, **env: str) -> Settings:
    # One slot, as Ollama defaults to: these tests script what waits for it.
    return Settings.from_env({"PASTURE_MODELS": str(models), "PASTURE_NUM_PARALLEL": "1",
                              "PASTURE_ENGINES": str(models.parent / "engines"), **env})


async def run_app(settings: Settings, engine: FakeEngine, scenario: Scenario[T],
                  tracer: Tracer | None = None) -> T:
    """Run `scenario` against a fresh app (tracing into `tracer` when given); stop its
    runners afterwards, as its lifespan would (ASGITransport runs no lifespan)."""
    app = create_app(settings, start_runner=engine, tracer=tracer)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client, \
                asyncio.timeout(SCENARIO_TIMEOUT):  # a server that hangs fails the test
            return await scenario(Server(app, client, engine))
    finally:
        await app.state.pasture.scheduler.close()


async def _create_models(server: Server, folder: Path) -> None:
    async def upload(path: Path) -> str:
        digest = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
        reply = await server.client.post(f"/api/blobs/{digest}", content=path.read_bytes())
        assert reply.status_code == 201, reply.text
        return digest

    async def create(name: str, **fields: Any) -> None:
        reply = await server.post("/api/create", model=name, stream=False, **fields)
        assert reply.status_code == 200, reply.text

    plain = write_tiny_llama(folder / "plain.gguf", chat_template=CHATML_TEMPLATE, n_layers=1,
                             n_embd=16, n_ff=32)
    native = write_tiny_llama(folder / "native.gguf", chat_template=NATIVE_TEMPLATE,
                              n_layers=1, n_embd=16, n_ff=32)
    bert = write_tiny_bert(folder / "bert.gguf", n_layers=1, n_embd=16, n_ff=32)
    await create("plain", files={"plain.gguf": await upload(plain)},
                 parameters=PLAIN_PARAMETERS)
    await create("native", files={"native.gguf": await upload(native)})
    await create("embedder", files={"bert.gguf": await upload(bert)})
    ranker = write_tiny_bert(folder / "ranker.gguf", n_layers=1, n_embd=16, n_ff=32,
                             reranker=True)
    await create("reranker", files={"ranker.gguf": await upload(ranker)})
    await create("qwen", **{"from": "plain", "template": QWEN_TEMPLATE})
    seer = write_tiny_llama(folder / "seer.gguf", chat_template=CHATML_TEMPLATE, n_layers=1,
                            n_embd=16, n_ff=32, context_length=4096)
    projector = write_projector(folder / "mmproj.gguf", text_embd=16)
    await create("seer", files={"seer.gguf": await upload(seer),
                                "mmproj.gguf": await upload(projector)})
    copied = await server.post("/api/copy", source="plain", destination="twin")
    assert copied.status_code == 200, copied.text


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models directory with the models above, created through the API."""
    root = tmp_path_factory.mktemp("routes")
    models = root / "models"
    asyncio.run(run_app(settings_for(models), FakeEngine(),
                        lambda server: _create_models(server, root)))
    return models


@pytest.fixture
def serve(store: Path) -> Serve:
    """Run a scenario against a fresh server over `store`, its runners answering from
    `script`; `env` are PASTURE_ settings (`MAX_QUEUE="1"`)."""
    def run(scenario: Scenario[T], script: Script | None = None, *, llguidance: bool = True,
            fail_load: Exception | None = None, **env: str) -> T:
        engine = FakeEngine(script, llguidance=llguidance, fail_load=fail_load)
        settings = settings_for(store, **{f"PASTURE_{name}": value
                                          for name, value in env.items()})
        return asyncio.run(run_app(settings, engine, scenario))
    return run


async def asgi_post(server: Server, path: str, request: dict[str, Any], sent: list[bytes],
                    leave: Callable[[list[bytes]], Awaitable[None]],
                    headers: Sequence[tuple[bytes, bytes]] = ()) -> int:
    """POST `request` to the app as uvicorn does (ASGI spec 2.3), appending the body
    chunks to `sent` as they go out; the client disconnects once `leave(sent)` returns.
    httpx's ASGITransport never tells an app the client left, nor streams: this does.
    Returns the status."""
    status = 0
    received = False

    async def receive() -> dict[str, Any]:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": json.dumps(request).encode(),
                    "more_body": False}
        await leave(sent)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message.get("body"):
            sent.append(message["body"])

    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
             "http_version": "1.1", "method": "POST", "scheme": "http", "path": path,
             "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"127.0.0.1:11434"),
                         (b"content-type", b"application/json"), *headers],
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 11434)}
    await server.app(scope, receive, send)
    return status
