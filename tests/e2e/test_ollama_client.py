"""The official `ollama` Python client, unchanged, against Pasture."""

from __future__ import annotations

import ollama
import pytest

from tests.integration.conftest import MODEL, RunningServer


@pytest.fixture
def client(server: RunningServer) -> ollama.Client:
    return ollama.Client(host=server.url)


def test_list_shows_the_model(client: ollama.Client) -> None:
    models = client.list().models
    assert MODEL in [m.model for m in models]
    (entry,) = [m for m in models if m.model == MODEL]
    assert entry.size and entry.details.family == "llama"


def test_show_returns_details_and_template(client: ollama.Client) -> None:
    shown = client.show(MODEL)
    assert shown.details.quantization_level == "Q4_1"
    assert "<|im_start|>" in shown.template
    assert shown.modelinfo["general.architecture"] == "llama"
    assert "completion" in shown.capabilities


def test_generate(client: ollama.Client) -> None:
    reply = client.generate(model=MODEL, prompt="Why is the sky blue?",
                            options={"num_predict": 16, "seed": 7})
    assert reply.done and reply.response.strip()
    assert reply.eval_count == 16 and reply.done_reason == "length"


def test_generate_streaming(client: ollama.Client) -> None:
    parts = list(client.generate(model=MODEL, prompt="Hello", stream=True,
                                 options={"num_predict": 8}))
    assert parts[-1].done and not parts[0].done
    assert "".join(p.response for p in parts).strip()


def test_chat(client: ollama.Client) -> None:
    reply = client.chat(model=MODEL, messages=[{"role": "user", "content": "Say hi"}],
                        options={"num_predict": 10})
    assert reply.message.role == "assistant" and reply.message.content.strip()
    assert reply.done


def test_chat_streaming(client: ollama.Client) -> None:
    parts = list(client.chat(model=MODEL, stream=True, options={"num_predict": 10},
                             messages=[{"role": "user", "content": "Name a color."}]))
    assert parts[-1].done and all(p.message.role == "assistant" for p in parts)
    assert "".join(p.message.content for p in parts).strip()


def test_unknown_model_raises_response_error_404(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        client.chat(model="nosuch:latest", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 404
    assert "not found" in caught.value.error


def test_ps_and_copy_delete(client: ollama.Client) -> None:
    client.generate(model=MODEL, prompt="")
    assert MODEL in [m.model for m in client.ps().models]
    client.copy(MODEL, "client-copy")
    assert "client-copy:latest" in [m.model for m in client.list().models]
    client.delete("client-copy")
    assert "client-copy:latest" not in [m.model for m in client.list().models]
