"""The end-to-end tests share the integration tests' server, and the official SDKs
pointed at it."""

import contextlib
from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest

from tests.integration.conftest import (  # noqa: F401
    MODEL,
    RunningServer,
    api,
    server,
    unload_other_models,
    vision,
)


@pytest.fixture
def oai(server: RunningServer) -> Iterator[openai.OpenAI]:  # noqa: F811
    """The official `openai` client on Pasture's /v1."""
    with openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0) as sdk:
        yield sdk


@pytest.fixture
def claude(server: RunningServer) -> Iterator[anthropic.Anthropic]:  # noqa: F811
    """The official `anthropic` client on Pasture's /v1/messages."""
    with anthropic.Anthropic(base_url=server.url, api_key="unused", max_retries=0) as sdk:
        yield sdk


@contextlib.contextmanager
def template_variant(server: RunningServer, name: str,  # noqa: F811
                     template: str) -> Iterator[str]:
    """SmolLM2 as `name` with another TEMPLATE; unloaded afterwards, so later tests of the
    shared server see only the models they load."""
    reply = httpx.post(f"{server.url}/api/create", timeout=120, json={
        "model": name, "from": MODEL, "template": template, "stream": False})
    assert reply.status_code == 200, reply.text
    try:
        yield name
    finally:
        httpx.post(f"{server.url}/api/generate", timeout=120,
                   json={"model": name, "keep_alive": 0})
