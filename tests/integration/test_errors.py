"""Bad input gets a clear 4xx in Ollama's error shape and never touches stored models."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.conftest import MODEL


def error_of(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()["error"]


def test_unknown_model_is_404(api: httpx.Client) -> None:
    # The inference routes' 404s, in every family's shape: tests/routes/test_errors.py.
    message = error_of(api.post("/api/show", json={"model": "nosuch:latest"}), 404)
    assert message == "model 'nosuch:latest' not found"


def test_malformed_json_is_400(api: httpx.Client) -> None:
    response = api.post("/api/generate", content=b'{"model": "x",',
                        headers={"content-type": "application/json"})
    assert "invalid JSON" in error_of(response, 400)


def test_missing_body_is_400(api: httpx.Client) -> None:
    assert error_of(api.post("/api/chat"), 400) == "missing request body"


def test_missing_model_field_is_400(api: httpx.Client) -> None:
    assert "model" in error_of(api.post("/api/generate", json={"prompt": "hi"}), 400)


@pytest.mark.parametrize("name", ["../../etc/passwd", "a/b/c/d/e", "bad name", ":tag"])
def test_invalid_model_name_is_400(api: httpx.Client, name: str) -> None:
    assert error_of(api.post("/api/generate", json={"model": name}), 400) == "invalid model name"


def test_wrong_option_type_is_400_naming_the_option(api: httpx.Client) -> None:
    response = api.post("/api/generate", json={
        "model": MODEL, "prompt": "hi", "options": {"temperature": "hot"},
    })
    assert error_of(response, 400) == 'option "temperature" must be of type float'


def test_bad_keep_alive_is_400(api: httpx.Client) -> None:
    response = api.post("/api/generate", json={"model": MODEL, "keep_alive": "10"})
    assert "invalid duration" in error_of(response, 400)


@pytest.mark.parametrize("context", [[970315278], [1, -5], [2**40]])
def test_a_context_outside_the_vocabulary_is_400(api: httpx.Client, context: list[int]) -> None:
    response = api.post("/api/generate", json={
        "model": MODEL, "prompt": "hi", "context": context, "stream": False,
        "options": {"num_predict": 1}})
    assert error_of(response, 400) == \
        "invalid context: token ids outside this model's vocabulary"
    fine = api.post("/api/generate", json={"model": MODEL, "prompt": "hi", "context": [1, 2],
                                           "stream": False, "options": {"num_predict": 1}})
    assert fine.status_code == 200, fine.text


def test_wrong_field_type_is_400(api: httpx.Client) -> None:
    response = api.post("/api/chat", json={"model": MODEL, "messages": "hello"})
    assert "messages" in error_of(response, 400)


@pytest.mark.parametrize("digest", ["sha256:abc", "sha256:" + "G" * 64, "md5:" + "a" * 64])
def test_invalid_blob_digest_is_400(api: httpx.Client, digest: str) -> None:
    assert error_of(api.post(f"/api/blobs/{digest}", content=b"x"), 400) == "invalid digest format"


def test_blob_with_wrong_digest_is_rejected_and_not_kept(api: httpx.Client) -> None:
    digest = "sha256:" + "0" * 64
    assert "digest mismatch" in error_of(api.post(f"/api/blobs/{digest}", content=b"hello"), 400)
    assert api.head(f"/api/blobs/{digest}").status_code == 404


def test_create_from_a_non_gguf_blob_is_400_and_lists_nothing_new(api: httpx.Client) -> None:
    import hashlib

    data = b"GGUF\x03\x00\x00\x00"  # a truncated header
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    assert api.post(f"/api/blobs/{digest}", content=data).status_code == 201
    response = api.post("/api/create", json={"model": "broken", "files": {"m.gguf": digest}})
    assert error_of(response, 400)
    names = [m["name"] for m in api.get("/api/tags").json()["models"]]
    assert "broken:latest" not in names and MODEL in names


def test_create_rejects_paths_outside_the_modelfile_directory(api: httpx.Client) -> None:
    digest = "sha256:" + "1" * 64
    response = api.post("/api/create", json={"model": "x", "files": {"../m.gguf": digest}})
    assert "relative" in error_of(response, 400)


def test_error_bodies_do_not_leak_paths(api: httpx.Client, server) -> None:
    home = str(server.models_dir)
    for response in (
        api.post("/api/generate", json={"model": "nosuch"}),
        api.post("/api/create", json={"model": "x", "files": {"m.gguf": "sha256:" + "2" * 64}}),
        api.post("/api/copy", json={"source": "nosuch", "destination": "y"}),
    ):
        assert home not in response.text and "Traceback" not in response.text


def test_deeply_nested_json_is_a_400_in_ollamas_shape(api: httpx.Client) -> None:
    body = b'{"model":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert error_of(api.post("/api/chat", content=body), 400) == "invalid JSON in request body"


def test_unknown_route_and_wrong_method_use_the_error_shape(api: httpx.Client) -> None:
    assert error_of(api.get("/api/nothing-here"), 404) == "not found"
    assert error_of(api.put("/api/chat"), 405) == "method not allowed"


@pytest.mark.parametrize(("options", "name"), [({"num_ctx": 0}, "num_ctx"),
                                               ({"top_p": 7}, "top_p"),
                                               ({"num_predict": -9}, "num_predict")])
def test_out_of_range_options_are_400_naming_the_field(api: httpx.Client, options: dict,
                                                       name: str) -> None:
    response = api.post("/api/generate", json={"model": MODEL, "prompt": "hi",
                                               "options": options})
    assert error_of(response, 400).startswith(f'option "{name}" must be')
