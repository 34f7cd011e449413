"""Pure translations of the compatibility layers: error shapes, vector encodings, inputs."""

from __future__ import annotations

import base64
import struct

import pytest

from pasture.errors import BadRequestError
from pasture.server.error_shapes import shaped_error
from pasture.server.pipeline.embedding import normalize, text_inputs
from pasture.server.routes.openai import encode_base64


def test_errors_take_the_shape_of_the_api_family_by_path() -> None:
    assert shaped_error("/api/chat", 404, "gone") == {"error": "gone"}
    assert shaped_error("/v1/chat/completions", 404, "gone") == {
        "error": {"message": "gone", "type": "not_found_error", "param": None, "code": None}}
    assert shaped_error("/v1/embeddings", 500, "boom")["error"]["type"] == "api_error"
    assert shaped_error("/v1/messages", 400, "bad") == {
        "type": "error", "error": {"type": "invalid_request_error", "message": "bad"}}
    assert shaped_error("/v1/messages", 503, "busy")["error"]["type"] == "overloaded_error"


def test_base64_embedding_is_little_endian_float32() -> None:
    vector = [0.5, -1.25, 3.0]
    raw = base64.b64decode(encode_base64(vector))
    assert struct.unpack("<3f", raw) == (0.5, -1.25, 3.0)


def test_normalize_cuts_to_dimensions_then_rescales() -> None:
    assert normalize([3.0, 4.0, 12.0], 2) == pytest.approx([0.6, 0.8])
    assert normalize([3.0, 4.0]) == pytest.approx([0.6, 0.8])
    assert normalize([0.0, 0.0]) == [0.0, 0.0]  # no division by zero


def test_text_inputs_accepts_strings_and_refuses_other_types() -> None:
    assert text_inputs("a") == ["a"]
    assert text_inputs("") == []
    assert text_inputs(["a", "b"]) == ["a", "b"]
    for bad in ([1], 3, {"a": 1}, ["a", None]):
        with pytest.raises(BadRequestError, match="invalid input type"):
            text_inputs(bad)
