"""LangChain (langchain-ollama) and LiteLLM (its `ollama_chat` provider), unchanged,
against Pasture: chat, streaming, embeddings and a tool round trip each.

Ollama's clients have no `tool_choice` argument, so the round trip forces the call
through Pasture's extensions: `options.tool_choice` for LangChain (which passes options
through), a top-level `tool_choice` in LiteLLM's `extra_body`. SmolLM2 with a Qwen
2.5-style template lists the tools in its prompt.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

# LiteLLM fetches its model price list from the internet at import unless told not to.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import langchain_ollama  # noqa: E402
import litellm  # noqa: E402
import pytest  # noqa: E402
from langchain_core.messages import HumanMessage, ToolMessage  # noqa: E402
from langchain_core.tools import tool  # noqa: E402

from tests.e2e.conftest import template_variant  # noqa: E402
from tests.integration.conftest import MODEL, RunningServer  # noqa: E402

QWEN_TOOLS = (Path(__file__).parents[1] / "unit" / "templates" / "qwen2.5-tools.gotmpl"
              ).read_text()
FEW = {"temperature": 0, "num_predict": 24}
ADD = {"type": "function", "function": {
    "name": "add", "description": "Add two integers.",
    "parameters": {"type": "object", "properties": {"a": {"type": "integer"},
                                                    "b": {"type": "integer"}},
                   "required": ["a", "b"]}}}


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@pytest.fixture
def tooled(server: RunningServer) -> Iterator[str]:
    with template_variant(server, "smollm2-qwen-tools", QWEN_TOOLS) as name:
        yield name


def test_langchain_chat_stream_and_embeddings(server: RunningServer) -> None:
    chat = langchain_ollama.ChatOllama(model=MODEL, base_url=server.url, **FEW)
    answer = chat.invoke([HumanMessage("Say hello.")])
    assert isinstance(answer.content, str) and answer.content
    assert answer.usage_metadata["output_tokens"] > 0
    pieces = [chunk.content for chunk in chat.stream("Say hello.")]
    assert len(pieces) > 2 and "".join(pieces)
    vector = langchain_ollama.OllamaEmbeddings(model=MODEL, base_url=server.url
                                               ).embed_query("hello")
    assert len(vector) == 576 and any(vector)


def test_langchain_tool_round_trip(server: RunningServer, tooled: str) -> None:
    chat = langchain_ollama.ChatOllama(model=tooled, base_url=server.url).bind_tools([add])
    messages = [HumanMessage("What is 2 + 3? Use the add tool.")]
    forced = {**FEW, "num_predict": 64, "tool_choice": "required"}
    call = chat.invoke(messages, options=forced)
    (request,) = call.tool_calls
    assert request["name"] == "add" and set(request["args"]) == {"a", "b"}
    messages += [call, ToolMessage(str(add.invoke(request["args"])),
                                   tool_call_id=request["id"])]
    final = chat.invoke(messages, options=FEW)
    assert not final.tool_calls and isinstance(final.content, str) and final.content


def test_litellm_chat_stream_and_embeddings(server: RunningServer) -> None:
    ask = [{"role": "user", "content": "Say hello."}]
    reply = litellm.completion(model=f"ollama_chat/{MODEL}", api_base=server.url,
                               messages=ask, temperature=0, max_tokens=24)
    assert reply.choices[0].message.content and reply.usage.completion_tokens > 0
    stream = litellm.completion(model=f"ollama_chat/{MODEL}", api_base=server.url,
                                messages=ask, temperature=0, max_tokens=24, stream=True)
    pieces = [chunk.choices[0].delta.content or "" for chunk in stream]
    assert len(pieces) > 2 and "".join(pieces)
    embedded = litellm.embedding(model=f"ollama/{MODEL}", api_base=server.url,
                                 input=["hello", "world"])
    assert [len(item["embedding"]) for item in embedded.data] == [576, 576]


def test_litellm_tool_round_trip(server: RunningServer, tooled: str) -> None:
    messages: list[dict] = [{"role": "user", "content": "What is 2 + 3? Use the add tool."}]
    call = litellm.completion(model=f"ollama_chat/{tooled}", api_base=server.url,
                              messages=messages, tools=[ADD], temperature=0, max_tokens=64,
                              extra_body={"tool_choice": "required"})
    (request,) = call.choices[0].message.tool_calls
    assert request.function.name == "add"
    arguments = json.loads(request.function.arguments)
    messages += [call.choices[0].message.model_dump(),
                 {"role": "tool", "tool_call_id": request.id,
                  "content": str(arguments["a"] + arguments["b"])}]
    final = litellm.completion(model=f"ollama_chat/{tooled}", api_base=server.url,
                               messages=messages, tools=[ADD], temperature=0, max_tokens=24)
    assert final.choices[0].message.content and not final.choices[0].message.tool_calls
