"""Structured outputs on the real engine: every answer to a `format` schema parses and
validates (streamed or not), a schema the engine cannot enforce is a 400 naming the
construct, and a `grammar` constrains the answer (a bad one is a 400)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest

from tests.integration.conftest import MODEL, RunningServer

# Strings are bounded so a 135M model cannot ramble past num_predict.
NAME = {"type": "string", "maxLength": 12}
SCHEMAS: list[dict[str, Any]] = [
    {"type": "object", "properties": {"name": NAME, "age": {
        "type": "integer", "minimum": 0, "maximum": 120}},
     "required": ["name", "age"], "additionalProperties": False},
    {"type": "object", "properties": {"colors": {
        "type": "array", "items": {"enum": ["red", "green", "blue"]},
        "minItems": 2, "maxItems": 3}}, "required": ["colors"], "additionalProperties": False},
    {"type": "object", "properties": {"owner": {
        "type": "object", "properties": {"name": NAME, "admin": {"type": "boolean"}},
        "required": ["name", "admin"], "additionalProperties": False},
        "score": {"type": "number", "minimum": 0.5, "maximum": 9.5}},
     "required": ["owner", "score"], "additionalProperties": False},
    {"$defs": {"point": {"type": "object", "properties": {
        "x": {"type": "integer", "minimum": -9, "maximum": 9},
        "y": {"type": "integer", "minimum": -9, "maximum": 9}},
        "required": ["x", "y"], "additionalProperties": False}},
     "type": "object", "properties": {"start": {"$ref": "#/$defs/point"},
                                      "end": {"$ref": "#/$defs/point"}},
     "required": ["start", "end"], "additionalProperties": False},
    {"type": "object", "properties": {"answer": {"anyOf": [
        {"type": "integer", "minimum": 0, "maximum": 9}, {"enum": ["unknown"]}]}},
     "required": ["answer"], "additionalProperties": False},
    {"type": "array", "items": {"type": "string", "enum": ["yes", "no"]},
     "minItems": 1, "maxItems": 2},
]


@pytest.fixture(scope="module")
def api(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=300) as client:
        yield client


def answer(api: httpx.Client, schema: dict[str, Any] | str, stream: bool) -> str:
    body = {"model": MODEL, "prompt": "Describe a person as JSON.", "format": schema,
            "stream": stream, "options": {"temperature": 0, "num_predict": 80}}
    if not stream:
        reply = api.post("/api/generate", json=body)
        assert reply.status_code == 200, reply.text
        assert reply.json()["done_reason"] == "stop"
        return reply.json()["response"]
    with api.stream("POST", "/api/generate", json=body) as reply:
        assert reply.status_code == 200
        chunks = [json.loads(line) for line in reply.iter_lines() if line]
    assert chunks[-1]["done_reason"] == "stop"
    return "".join(c["response"] for c in chunks)


@pytest.mark.parametrize("index", range(len(SCHEMAS)))
def test_every_answer_parses_and_validates_against_its_schema(api: httpx.Client,
                                                              index: int) -> None:
    schema = SCHEMAS[index]
    text = answer(api, schema, stream=index % 2 == 0)
    jsonschema.validate(json.loads(text), schema)


def test_format_json_gives_a_json_object(api: httpx.Client) -> None:
    reply = api.post("/api/chat", json={
        "model": MODEL, "stream": False, "format": "json",
        "messages": [{"role": "user", "content": "Give a JSON object with a key a."}],
        "options": {"temperature": 0, "num_predict": 60}})
    assert reply.status_code == 200, reply.text
    if reply.json()["done_reason"] == "stop":
        assert isinstance(json.loads(reply.json()["message"]["content"]), dict)
    else:  # cut by num_predict: still the start of an object
        assert reply.json()["message"]["content"].lstrip().startswith("{")


@pytest.mark.parametrize(("schema", "construct"), [
    ({"type": "object", "properties": {"a": {"not": {"type": "string"}}}}, '["not"]'),
    ({"type": "string", "pattern": "(?<=x)y"}, "look-around"),
])
def test_a_schema_the_engine_cannot_enforce_is_a_400_naming_the_construct(
        api: httpx.Client, schema: dict[str, Any], construct: str) -> None:
    for path, extra in [("/api/generate", {"prompt": "x"}),
                        ("/api/chat", {"messages": [{"role": "user", "content": "x"}]})]:
        reply = api.post(path, json={"model": MODEL, "format": schema, **extra})
        assert reply.status_code == 400
        assert "unsupported JSON schema" in reply.json()["error"]
        assert construct in reply.json()["error"]


def test_a_grammar_constrains_generate_and_chat(api: httpx.Client) -> None:
    grammar = 'root ::= ("yes" | "no") "." '
    reply = api.post("/api/generate", json={
        "model": MODEL, "prompt": "Is the sky blue?", "grammar": grammar, "stream": False,
        "options": {"num_predict": 10}})
    assert reply.status_code == 200, reply.text
    assert reply.json()["response"] in ("yes.", "no.")
    lark = '%llguidance {}\nstart: "Answer: " /[0-9]{2}/'
    with api.stream("POST", "/api/chat", json={
            "model": MODEL, "grammar": lark, "options": {"num_predict": 10},
            "messages": [{"role": "user", "content": "Pick a number."}]}) as streamed:
        chunks = [json.loads(line) for line in streamed.iter_lines() if line]
    text = "".join(c["message"]["content"] for c in chunks)
    assert text.startswith("Answer: ") and text[8:].isdigit() and len(text) == 10


@pytest.mark.parametrize("grammar", ['root ::= "abc" [', "%llguidance {}\nstart: nowhere"])
def test_a_bad_grammar_is_a_400(api: httpx.Client, grammar: str) -> None:
    reply = api.post("/api/generate", json={"model": MODEL, "prompt": "x", "grammar": grammar,
                                            "stream": True})
    assert reply.status_code == 400
    assert "grammar" in reply.json()["error"]
