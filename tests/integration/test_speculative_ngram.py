"""Speculative decoding with no draft model: the engine drafts from the text so far.

An echo task (copy a passage) is where ngram lookup drafts well: the runner must report
accepted draft tokens, and greedy output must be exactly what the model alone produces.
Through the server the option is off by default, `ngram` turns it on, and the counts
show in /metrics as vLLM names them.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx

from pasture.runner.base import LoadSpec
from tests.integration.conftest import MODEL, complete_alone

PASSAGE = ("The keeper climbed the one hundred and twelve steps to the lamp room, trimmed "
           "the wick, polished the great lens and wound the clockwork that turned the light.")
ECHO = (f"<|im_start|>user\nRepeat this sentence exactly: {PASSAGE}<|im_end|>\n"
        f"<|im_start|>assistant\n")
GREEDY = {"num_predict": 40, "temperature": 0}


def test_ngram_speculation_accepts_drafts_on_an_echo_without_changing_the_answer(
        smollm2_gguf: Path) -> None:
    plain = LoadSpec(str(smollm2_gguf), num_ctx=512, num_thread=2, pooling="last")
    ngram = LoadSpec(str(smollm2_gguf), num_ctx=512, num_thread=2, pooling="last",
                     speculative="ngram_simple")
    alone, unspeculated = asyncio.run(complete_alone(plain, ECHO, GREEDY))
    together, done = asyncio.run(complete_alone(ngram, ECHO, GREEDY))
    assert PASSAGE[:40] in alone  # the model did echo, so there was something to draft
    assert together == alone
    assert unspeculated.draft_tokens == 0
    assert done.draft_accepted > 0 and done.draft_tokens >= done.draft_accepted


def _spec_counts(api: httpx.Client) -> tuple[float, float]:
    text = api.get("/metrics").text
    counts = []
    for name in ("draft", "accepted"):
        found = re.search(rf'^pasture:spec_decode_num_{name}_tokens_total'
                          rf'\{{model_name="{re.escape(MODEL)}"\}} (\S+)$', text, re.MULTILINE)
        counts.append(float(found.group(1)) if found else 0.0)
    return counts[0], counts[1]


def _echo(api: httpx.Client, **options: object) -> str:
    reply = api.post("/api/generate", json={
        "model": MODEL, "prompt": ECHO, "raw": True, "stream": False,
        "options": {**GREEDY, **options}})
    assert reply.status_code == 200, reply.text
    return reply.json()["response"]


def test_the_option_turns_speculation_on_and_it_is_off_by_default(api: httpx.Client) -> None:
    before = _spec_counts(api)
    default = _echo(api)
    assert _spec_counts(api) == before  # a runner without speculation
    speculated = _echo(api, speculative="ngram")
    after = _spec_counts(api)
    assert after[1] > before[1]  # accepted drafts
    assert speculated == default

    bad = api.post("/api/generate", json={"model": MODEL, "prompt": "Hi",
                                          "options": {"speculative": "eagle"}})
    assert bad.status_code == 400
    assert bad.json()["error"] == ('option "speculative" must be one of off, ngram, '
                                   'ngram_simple, ngram_map_k, ngram_mod')
    wrong_type = api.post("/api/generate", json={"model": MODEL, "prompt": "Hi",
                                                 "options": {"speculative": 1}})
    assert wrong_type.status_code == 400
    assert "must be of type string" in wrong_type.json()["error"]


def test_modelfile_parameter_speculative_is_stored_and_shown(api: httpx.Client) -> None:
    created = api.post("/api/create", json={
        "model": "ngram-mod", "from": MODEL, "stream": False,
        "parameters": {"speculative": "ngram_mod"}})
    assert created.status_code == 200, created.text
    try:
        shown = api.post("/api/show", json={"model": "ngram-mod"}).json()
        assert "\nPARAMETER speculative ngram_mod\n" in shown["modelfile"]
        assert re.search(r"^speculative\s+\"ngram_mod\"$", shown["parameters"], re.MULTILINE)
    finally:
        api.request("DELETE", "/api/delete", json={"model": "ngram-mod"})
