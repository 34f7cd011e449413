"""The official `ollama` client's structured-output and tool examples against Pasture."""

from __future__ import annotations

from pathlib import Path

import httpx
import ollama
import pytest
from pydantic import BaseModel, Field

from tests.integration.conftest import MODEL, RunningServer

QWEN_TOOLS = (Path(__file__).parents[1] / "unit" / "templates" / "qwen2.5-tools.gotmpl"
              ).read_text()


class Country(BaseModel):
    # Bounded so the 135M model cannot ramble past num_predict.
    name: str = Field(max_length=16)
    capital: str = Field(max_length=16)
    languages: list[str] = Field(max_length=2)


def add_two_numbers(a: int, b: int) -> int:
    """
    Add two numbers

    Args:
      a (int): The first number
      b (int): The second number

    Returns:
      int: The sum of the two numbers
    """
    return a + b


@pytest.fixture
def client(server: RunningServer) -> ollama.Client:
    return ollama.Client(host=server.url)


def test_format_from_a_pydantic_model_json_schema(client: ollama.Client) -> None:
    response = client.chat(
        model=MODEL, messages=[{"role": "user", "content": "Tell me about Canada."}],
        format=Country.model_json_schema(), options={"temperature": 0, "num_predict": 120})
    country = Country.model_validate_json(response.message.content)
    assert country.name and country.capital


def test_tool_calls_round_trip_through_the_client(client: ollama.Client,
                                                  server: RunningServer) -> None:
    client.create(model="client-qwen-tools", from_=MODEL, template=QWEN_TOOLS)
    messages = [{"role": "user", "content": "What is three plus one?"}]
    # SmolLM2 does not call tools unprompted; Pasture's `tool_choice` (which the client
    # cannot send) forces the call, and the client's own types read the answer.
    tools = [ollama._utils.convert_function_to_tool(add_two_numbers).model_dump(
        exclude_none=True)]
    raw = httpx.post(f"{server.url}/api/chat", timeout=300, json={
        "model": "client-qwen-tools", "messages": messages, "tools": tools, "stream": False,
        "tool_choice": "required", "options": {"temperature": 0, "num_predict": 60}})
    response = ollama.ChatResponse.model_validate(raw.json())
    (call,) = response.message.tool_calls or []
    assert call.function.name == "add_two_numbers"
    result = add_two_numbers(**call.function.arguments)
    follow_up = client.chat(
        model="client-qwen-tools", tools=[add_two_numbers], options={"num_predict": 12},
        messages=[*messages, response.message,
                  {"role": "tool", "content": str(result), "tool_name": call.function.name}])
    assert follow_up.done and follow_up.message.role == "assistant"
