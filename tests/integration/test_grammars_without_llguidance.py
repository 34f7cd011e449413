"""Pasture's composed grammars on an engine build without llguidance, run by llama.cpp.

A build compiled offline (`pasture engine build`) or the CUDA build from the shared folder
has no llguidance, so a forced tool call or a `format` after a thought must reach it as
GBNF (`pasture.prompt.gbnf`). Here the PyPI wheel, installed a second time with its
record saying it has no llguidance, stands in for such a build: the engine runs whatever
grammar it is sent, so what runs is real — the GBNF Pasture writes, enforced by
llama.cpp's own grammar sampler. The thinking-and-constraints tests run again against
it, unchanged.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration import test_thinking_constraints as constraints
from tests.integration.conftest import (
    MODEL,
    RunningServer,
    import_model,
    start_server,
    stop_server,
)
from tests.integration.test_engine_builds import pasture
from tests.integration.test_tool_calling import ASK, WEATHER

BUILD = "no-llguidance"

# The thinking-and-constraints tests and their models, collected here again.
thinks, opens = constraints.thinks, constraints.opens
test_a_format_follows_a_thought_the_model_chose_to_write = \
    constraints.test_a_format_follows_a_thought_the_model_chose_to_write
test_a_format_follows_a_thought_the_prompt_opened = \
    constraints.test_a_format_follows_a_thought_the_prompt_opened
test_without_thinking_the_format_alone_is_written = \
    constraints.test_without_thinking_the_format_alone_is_written
test_a_forced_tool_call_follows_the_thought = \
    constraints.test_a_forced_tool_call_follows_the_thought


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory, default_wheel: Path) -> Path:
    root = tmp_path_factory.mktemp("engines-gbnf")
    installed = pasture(root, "engine", "install", str(default_wheel), "--name", BUILD)
    assert installed.returncode == 0, installed.stderr
    record = root / BUILD / "build.json"
    record.write_text(json.dumps({**json.loads(record.read_text()), "llguidance": False}))
    return root


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, engines: Path,
           smollm2_gguf: Path) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("gbnf-server")
    running = start_server(root / "models", root / "server.log", PASTURE_ENGINES=str(engines),
                           PASTURE_ENGINE=BUILD)
    try:
        import_model(running.url, smollm2_gguf, MODEL)
        yield running
    finally:
        stop_server(running)


@pytest.fixture(scope="module")
def api(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=300) as client:
        yield client


def forced_call(api: httpx.Client, model: str, tool: dict[str, Any]) -> httpx.Response:
    """`tool_choice: required` with one tool, no thought, greedy."""
    return api.post("/api/chat", json={"model": model, "messages": ASK, "tools": [tool],
                                       "tool_choice": "required", "stream": False,
                                       "think": False,
                                       "options": {"temperature": 0, "num_predict": 60}})


def test_the_model_runs_on_the_build_without_llguidance(api: httpx.Client, engines: Path,
                                                        opens: str) -> None:
    listing = pasture(engines, "engine", "list", PASTURE_ENGINE=BUILD)
    assert f"CPU placements use: {BUILD}" in listing.stdout
    assert "no llguidance" in listing.stdout
    reply = forced_call(api, opens, WEATHER)
    assert reply.status_code == 200, reply.text
    (call,) = reply.json()["message"]["tool_calls"]
    assert call["function"]["name"] == "get_weather"
    assert set(call["function"]["arguments"]) == {"city"}
    running = api.get("/api/ps").json()["models"]
    assert {model["engine"] for model in running} == {BUILD}


def test_a_lark_grammar_is_refused_naming_the_build(api: httpx.Client) -> None:
    reply = api.post("/api/generate", json={
        "model": MODEL, "prompt": "Yes or no?", "stream": False,
        "grammar": '%llguidance {}\nstart: "yes" | "no"'})
    assert reply.status_code == 400
    assert reply.json()["error"] == (
        f"invalid grammar: this model runs on engine build '{BUILD}', built without "
        "llguidance: write the grammar in GBNF")
    gbnf = api.post("/api/generate", json={
        "model": MODEL, "prompt": "Yes or no?", "stream": False,
        "grammar": 'root ::= "yes" | "no"', "options": {"num_predict": 4}})
    assert gbnf.status_code == 200, gbnf.text
    assert gbnf.json()["response"] in ("yes", "no")


def test_a_tool_schema_gbnf_cannot_enforce_is_a_400(api: httpx.Client, opens: str) -> None:
    bounded = {"type": "function", "function": {"name": "lookup", "parameters": {
        "type": "object", "required": ["ratio"],
        "properties": {"ratio": {"type": "number", "minimum": -1, "maximum": 1}}}}}
    reply = forced_call(api, opens, bounded)
    assert reply.status_code == 400
    assert "has no llguidance" in reply.json()["error"]
    assert "a number's bounds" in reply.json()["error"]


def test_a_pattern_is_enforced_in_gbnf(api: httpx.Client, opens: str) -> None:
    coded = {"type": "function", "function": {"name": "airport", "parameters": {
        "type": "object", "required": ["code"],
        "properties": {"code": {"type": "string", "pattern": "^[A-Z]{3}$"}}}}}
    reply = forced_call(api, opens, coded)
    assert reply.status_code == 200, reply.text
    (call,) = reply.json()["message"]["tool_calls"]
    assert re.fullmatch("[A-Z]{3}", call["function"]["arguments"]["code"])
