"""The end-to-end tests share the integration tests' server, and the official SDKs
pointed at it."""

from collections.abc import Iterator

import anthropic
import openai
import pytest

from tests.integration.conftest import (  # noqa: F401
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
