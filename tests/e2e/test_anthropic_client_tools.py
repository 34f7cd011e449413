"""The official `anthropic` SDK's tool-use example against Pasture's `/v1/messages`.

SmolLM2 does not call tools unprompted, so `tool_choice` (enforced with a grammar by
Pasture) forces the call; the model has a Qwen 2.5-style Go template.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anthropic
import pytest

from tests.e2e.conftest import template_variant
from tests.integration.conftest import RunningServer

QWEN_TOOLS = (Path(__file__).parents[1] / "unit" / "templates" / "qwen2.5-tools.gotmpl"
              ).read_text()
TOOLS = [{"name": "get_weather", "description": "Get the current weather in a given location",
          "input_schema": {"type": "object", "required": ["location"], "properties": {
              "location": {"type": "string", "maxLength": 24}}}}]
ASK = [{"role": "user", "content": "What's the weather like in San Francisco?"}]
GREEDY = {"temperature": 0}



@pytest.fixture(scope="module")
def tools_model(server: RunningServer) -> Iterator[str]:
    with template_variant(server, "anthropic-qwen-tools", QWEN_TOOLS) as name:
        yield name


def test_forced_tool_use_block_and_its_result(claude: anthropic.Anthropic,
                                              tools_model: str) -> None:
    reply = claude.messages.create(model=tools_model, max_tokens=60, messages=ASK, tools=TOOLS,
                                   tool_choice={"type": "any"}, extra_body=GREEDY)
    assert reply.stop_reason == "tool_use"
    (use,) = [block for block in reply.content if block.type == "tool_use"]
    assert use.name == "get_weather" and isinstance(use.input["location"], str)
    follow_up = claude.messages.create(model=tools_model, max_tokens=8, tools=TOOLS, messages=[
        *ASK, {"role": "assistant", "content": reply.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id,
                                      "content": "15 degrees"}]}])
    assert follow_up.content[0].type == "text"


def test_streamed_tool_use_arrives_as_input_json_deltas(claude: anthropic.Anthropic,
                                                        tools_model: str) -> None:
    with claude.messages.stream(model=tools_model, max_tokens=60, messages=ASK, tools=TOOLS,
                                tool_choice={"type": "tool", "name": "get_weather"},
                                extra_body=GREEDY) as stream:
        final = stream.get_final_message()
    uses = [block for block in final.content if block.type == "tool_use"]
    assert len(uses) == 1 and uses[0].name == "get_weather"
    assert isinstance(uses[0].input["location"], str)
    assert final.stop_reason == "tool_use"
