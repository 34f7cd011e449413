"""DRAFT: a model stored with a draft layer, and the engine decoding speculatively with it.

SmolLM2 is its own draft here: every proposed token is accepted, and greedy output must be
exactly what the model alone produces (speculative decoding never changes the answer).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from pasture.client import Client
from pasture.errors import ModelfileError
from pasture.runner.base import LoadSpec
from tests.integration.conftest import MODEL, RunningServer, complete_alone
from tests.integration.test_adapter import greedy_reply, layer_digests, rebase

PROMPT = "<|im_start|>user\nCount to ten.<|im_end|>\n<|im_start|>assistant\n"
SHORT = {"num_predict": 16, "temperature": 0}


def test_a_draft_model_speeds_decoding_without_changing_greedy_output(
        smollm2_gguf: Path) -> None:
    plain = LoadSpec(str(smollm2_gguf), num_ctx=512, num_thread=2, pooling="last")
    drafted = LoadSpec(str(smollm2_gguf), num_ctx=512, num_thread=2, pooling="last",
                       draft_model=str(smollm2_gguf), draft_num_predict=1)
    alone, _ = asyncio.run(complete_alone(plain, PROMPT, SHORT))
    together, done = asyncio.run(complete_alone(drafted, PROMPT, SHORT))
    assert together == alone and alone
    assert done.draft_tokens > 0 and done.draft_accepted == done.draft_tokens
    # One draft token per step (draft_num_predict 1): each step also samples one token.
    assert done.draft_tokens <= done.eval_count // 2


def test_modelfile_draft_is_stored_as_a_draft_layer(server: RunningServer, api: httpx.Client,
                                                     smollm2_gguf: Path, tmp_path: Path) -> None:
    client = Client(server.url)
    try:
        client.create_from_modelfile("drafted", f"FROM {MODEL}\nDRAFT {smollm2_gguf}\n",
                                     tmp_path)
        path = server.models_dir / "manifests/registry.ollama.ai/library/drafted/latest"
        layers = json.loads(path.read_text())["layers"]
        by_type = {layer["mediaType"].rsplit(".", 1)[1]: layer for layer in layers}
        draft, weights = by_type["draft"], by_type["model"]
        assert draft["digest"] == weights["digest"]
        assert draft["size"] == smollm2_gguf.stat().st_size
        with pytest.raises(ModelfileError, match=r"line 2.*no such draft model file"):
            client.create_from_modelfile("drafted", f"FROM {MODEL}\nDRAFT ./none.gguf\n",
                                         tmp_path)
        not_a_model = api.post("/api/create", json={
            "model": "drafted", "from": MODEL, "stream": False,
            "draft_files": {"d.gguf": "sha256:" + "0" * 64}})
        assert not_a_model.status_code == 400 and "not found" in not_a_model.json()["error"]
        escaping = api.post("/api/create", json={
            "model": "drafted", "from": MODEL, "stream": False,
            "draft_files": {"../d.gguf": weights["digest"]}})
        assert escaping.status_code == 400 and "relative path" in escaping.json()["error"]
    finally:
        client.delete("drafted")


def test_chat_through_a_drafted_model_gives_the_model_s_own_greedy_answer(
        server: RunningServer, api: httpx.Client, smollm2_gguf: Path, tmp_path: Path) -> None:
    client = Client(server.url)
    try:
        client.create_from_modelfile(
            "drafted-chat",
            f"FROM {MODEL}\nDRAFT {smollm2_gguf}\nPARAMETER draft_num_predict 2\n", tmp_path)
        assert greedy_reply(api, "drafted-chat", keep_alive=0) == greedy_reply(api, MODEL)

        (draft,) = layer_digests(server, "drafted-chat")["draft"]
        shown = client.show("drafted-chat").modelfile
        blob = server.models_dir / "blobs" / draft.replace(":", "-")
        assert f"\nDRAFT {blob}\n" in shown and "\nPARAMETER draft_num_predict 2\n" in shown
        client.create_from_modelfile("drafted-again", rebase(shown, "drafted-chat", MODEL),
                                     tmp_path)
        assert layer_digests(server, "drafted-again") == layer_digests(server, "drafted-chat")

        too_many = api.post("/api/chat", json={
            "model": "drafted-chat", "options": {"draft_num_predict": 1000},
            "messages": [{"role": "user", "content": "Hi"}]})
        assert too_many.status_code == 400
        assert "draft_num_predict" in too_many.json()["error"]
    finally:
        client.delete("drafted-chat")
        client.delete("drafted-again")
