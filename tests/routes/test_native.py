"""`/api/chat` and `/api/generate` against the fake engine: Ollama's streaming and
aggregated answers, metrics, `context`, raw and debug rendering, load and unload, and
what the engine is asked (options, constraints, logprobs, prompt tokens)."""

from __future__ import annotations

import json

from pasture.prompt.render import MAX_TEMPLATE_BYTES
from tests.fake_runner import Script
from tests.routes.conftest import PLAIN_PARAMETERS, Serve, Server

HI = [{"role": "user", "content": "Hi"}]
PLAIN_PROMPT = "<|user|>Hi\n<|assistant|>"  # the fake engine's template, applied to HI


def test_chat_streams_chunks_then_done_with_the_engines_metrics(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        reply, lines = await server.lines("/api/chat", model="plain", messages=HI)
        assert reply.status_code == 200
        assert reply.headers["content-type"] == "application/x-ndjson"
        *chunks, final = lines
        assert [c["message"]["content"] for c in chunks] == ["Hello", " there", "!"]
        assert all(c["done"] is False and c["message"]["role"] == "assistant" for c in chunks)
        assert final["done"] is True and final["done_reason"] == "stop"
        assert final["message"] == {"role": "assistant", "content": ""}
        assert final["prompt_eval_count"] == len(PLAIN_PROMPT)
        assert final["eval_count"] == len("Hello there!")
        assert final["model"] == "plain:latest"
        for metric in ("total_duration", "load_duration", "prompt_eval_duration",
                       "eval_duration"):
            assert final[metric] > 0, metric

    serve(scenario)


def test_generate_streams_responses_then_done_with_context(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        reply, lines = await server.lines("/api/generate", model="plain", prompt="Hi")
        assert reply.status_code == 200
        *chunks, final = lines
        assert "".join(c["response"] for c in chunks) == "Hello there!"
        assert final["done"] is True and final["response"] == ""
        assert final["prompt_eval_count"] == len(PLAIN_PROMPT)
        assert final["eval_count"] == len("Hello there!")
        assert final["context"] == [ord(c) for c in PLAIN_PROMPT + "Hello there!"]

    serve(scenario)


def test_non_streaming_chat_aggregates_content_thinking_and_logprobs(serve: Serve) -> None:
    script = Script(reply=["<think>", "Let me", " see.", "</think>", "The ", "answer."])

    async def scenario(server: Server) -> None:
        reply = await server.post("/api/chat", model="qwen", messages=HI, stream=False,
                                  logprobs=True, top_logprobs=2)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["message"]["content"] == "The answer."
        assert body["message"]["thinking"] == "Let me see."
        assert body["done"] is True and body["eval_count"] == sum(map(len, script.reply))
        tokens = [entry["token"] for entry in body["logprobs"]]
        assert "".join(tokens) == "".join(script.reply)  # every token, thought included
        assert all(len(entry["top_logprobs"]) == 2 for entry in body["logprobs"])
        assert server.runner.requests[0].top_logprobs == 2

    serve(scenario, script)


def test_non_streaming_generate_aggregates_the_response(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        reply = await server.post("/api/generate", model="plain", prompt="Hi", stream=False)
        body = reply.json()
        assert reply.status_code == 200
        assert body["response"] == "Hello there!" and body["done"] is True
        assert body["context"] == [ord(c) for c in PLAIN_PROMPT + "Hello there!"]

    serve(scenario)


def test_generate_accepts_its_context_back_before_the_next_prompt(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        first = await server.post("/api/generate", model="plain", prompt="Hi", stream=False)
        context = first.json()["context"]
        second = await server.post("/api/generate", model="plain", prompt="More",
                                   context=context, stream=False)
        assert second.status_code == 200, second.text
        sent = server.runner.requests[1].prompt
        text = sent if isinstance(sent, str) else "".join(map(chr, sent))
        assert text == PLAIN_PROMPT + "Hello there!" + "<|user|>More\n<|assistant|>"
        assert second.json()["context"] == [ord(c) for c in text + "Hello there!"]

    serve(scenario)


def test_raw_generate_sends_the_prompt_untemplated_and_returns_no_context(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        reply = await server.post("/api/generate", model="plain", prompt="<s>as is",
                                  raw=True, stream=False)
        assert reply.status_code == 200
        assert "context" not in reply.json()
        # counted to see that it fits, it goes as its tokens: the fake's are characters
        assert server.runner.requests[0].prompt == [ord(c) for c in "<s>as is"]
        assert server.runner.templated == []

    serve(scenario)


def test_raw_mode_refuses_a_system_template_or_context(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        for extra in ({"system": "x"}, {"template": "{{ .Prompt }}"}, {"context": [1, 2]}):
            reply = await server.post("/api/generate", model="plain", prompt="hi", raw=True,
                                      **extra)
            assert reply.status_code == 400
            assert reply.json() == {"error": "raw mode does not support template, system, "
                                             "or context"}
        assert server.engine.started == []

    serve(scenario)


def test_debug_render_only_returns_the_prompt_without_generating(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        native = await server.post("/api/chat", model="plain", messages=HI,
                                   _debug_render_only=True, stream=False)
        assert native.status_code == 200, native.text
        assert native.json()["_debug_info"]["rendered_template"] == PLAIN_PROMPT
        assert server.runner.requests == []  # the engine applied its template, no more
        rendered = await server.post("/api/generate", model="qwen", prompt="Hi",
                                     _debug_render_only=True)
        (line,) = [json.loads(line) for line in rendered.text.splitlines() if line]
        assert line["done"] is True
        assert line["_debug_info"]["rendered_template"] == \
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        assert len(server.engine.started) == 1  # a Go template needs no runner

    serve(scenario)


def test_an_empty_request_loads_and_keep_alive_zero_unloads(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        loaded = await server.post("/api/generate", model="plain", stream=False)
        assert loaded.json()["done_reason"] == "load" and loaded.json()["done"] is True
        assert await server.loaded() == ["plain:latest"]
        chat = await server.post("/api/chat", model="plain", messages=[], stream=False)
        assert chat.json()["done_reason"] == "load"
        unloaded = await server.post("/api/chat", model="plain", messages=[], keep_alive=0,
                                     stream=False)
        assert unloaded.json()["done_reason"] == "unload"
        assert await server.loaded() == []
        assert server.runner.closed and server.runner.requests == []

    serve(scenario)


def test_request_options_win_over_the_modelfiles_parameters(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        reply = await server.post("/api/chat", model="plain", messages=HI, stream=False,
                                  options={"top_k": 3, "seed": 42, "stop": ["x"]})
        assert reply.status_code == 200
        options = server.runner.requests[0].options
        assert options["top_k"] == 3 and options["seed"] == 42 and options["stop"] == ["x"]
        assert options["temperature"] == PLAIN_PARAMETERS["temperature"]

    serve(scenario)


def test_format_reaches_the_engine_as_a_json_schema(serve: Serve) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}

    async def scenario(server: Server) -> None:
        await server.post("/api/chat", model="plain", messages=HI, stream=False, format=schema)
        await server.post("/api/generate", model="plain", prompt="Hi", stream=False,
                          format="json")
        first, second = server.runner.requests
        assert first.json_schema is not None and first.grammar is None
        assert first.json_schema["properties"] == schema["properties"]
        assert second.json_schema == {"type": "object"}

    serve(scenario)


def test_the_prompt_goes_as_the_tokens_counted_once(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        await server.post("/api/chat", model="plain", messages=HI, stream=False)
        runner = server.runner
        assert runner.requests[0].prompt == [ord(c) for c in PLAIN_PROMPT]
        assert (runner.tokenized, len(runner.templated)) == (1, 1)

    serve(scenario)


def test_history_is_truncated_to_the_context_and_sent_as_the_tokens_that_fit(
        serve: Serve) -> None:
    history = [{"role": "system", "content": "Be brief."},
               {"role": "user", "content": "A" * 60}, {"role": "assistant", "content": "B" * 60},
               *HI]

    async def scenario(server: Server) -> None:
        reply = await server.post("/api/chat", model="plain", messages=history, stream=False,
                                  options={"num_ctx": 64})
        assert reply.status_code == 200
        runner = server.runner
        assert runner.spec.num_ctx == 64
        sent = runner.requests[0].prompt
        assert isinstance(sent, list)
        assert "".join(map(chr, sent)) == "<|system|>Be brief.\n" + PLAIN_PROMPT
        assert runner.tokenized == len(runner.templated)  # one count per render tried

    serve(scenario)


def test_think_false_is_accepted_and_think_true_refused_for_a_model_that_cannot_think(
        serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        off = await server.post("/api/chat", model="plain", messages=HI, think=False,
                                stream=False)
        assert off.status_code == 200, off.text
        on = await server.post("/api/chat", model="plain", messages=HI, think=True)
        assert on.status_code == 400
        assert on.json() == {"error": '"plain" does not support thinking'}

    serve(scenario)


def test_embed_returns_normalised_vectors_from_the_engine(serve: Serve) -> None:
    async def scenario(server: Server) -> None:
        reply = await server.post("/api/embed", model="embedder", input=["abc", "de"])
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert len(body["embeddings"]) == 2 and body["prompt_eval_count"] == 5
        for vector in body["embeddings"]:
            assert abs(sum(v * v for v in vector) - 1) < 1e-6
        openai = await server.post("/v1/embeddings", model="embedder", input="abc")
        assert openai.status_code == 200
        assert openai.json()["usage"] == {"prompt_tokens": 3, "total_tokens": 3}

    serve(scenario)



FIM = "<PRE> {{ .Prompt }} <SUF>{{ .Suffix }} <MID>"


def test_a_suffix_fills_in_the_middle_on_generate_and_openai_completions(
        serve: Serve) -> None:
    """`suffix` renders the template's insert form, on /api/generate and, as in Ollama,
    on /v1/completions too; a model whose template has no `.Suffix` refuses it."""
    async def scenario(server: Server) -> None:
        created = await server.post("/api/create", model="fim", stream=False, template=FIM,
                                    **{"from": "plain"})
        assert created.status_code == 200, created.text
        native = await server.post("/api/generate", model="fim", prompt="def add(a, b):",
                                   suffix="return c", stream=False)
        assert native.status_code == 200, native.text
        assert native.json()["response"] == "Hello there!"
        openai = await server.post("/v1/completions", model="fim", prompt="def add(a, b):",
                                   suffix="return c")
        assert openai.status_code == 200, openai.text
        assert openai.json()["choices"][0]["text"] == "Hello there!"
        fim = "<PRE> def add(a, b): <SUF>return c <MID>"
        # generate sends the token ids it returns as `context`; completions sends the text
        sent = [r.prompt if isinstance(r.prompt, str) else "".join(map(chr, r.prompt))
                for r in server.runner.requests]
        assert sent == [fim, fim]
        for path in ("/api/generate", "/v1/completions"):
            refused = await server.post(path, model="plain", prompt="x", suffix="y",
                                        stream=False)
            assert refused.status_code == 400
            assert "does not support insert" in refused.text

    serve(scenario)


def test_a_request_template_over_the_size_budget_is_a_400_on_generate_and_create(
        serve: Serve) -> None:
    """A TEMPLATE is untrusted input parsed in a worker: one larger than the budget is
    refused before anything parses it, where a request sends one."""
    huge = "{{ . }}" * (MAX_TEMPLATE_BYTES // 7 + 1)

    async def scenario(server: Server) -> None:
        for path, body in (("/api/generate", {"model": "plain", "prompt": "x"}),
                           ("/api/create", {"model": "huge", "from": "plain"})):
            reply = await server.post(path, template=huge, stream=False, **body)
            assert reply.status_code == 400, reply.text
            assert reply.json()["error"] == "template is larger than 64 KiB"
        assert server.engine.started == []  # nothing loaded for a refused request
        fits = await server.post("/api/generate", model="plain", prompt="x", stream=False,
                                 template="{{ .Prompt }}" * 100)
        assert fits.status_code == 200, fits.text

    serve(scenario)


def test_create_refuses_text_settings_that_utf8_cannot_hold(serve: Serve) -> None:
    """JSON's `"\\ud800"` decodes to a lone surrogate: a TEMPLATE, SYSTEM or LICENSE made
    of one is a 400 naming the field, not a 500, and no model is written."""
    async def scenario(server: Server) -> None:
        for field in ("template", "system", "license"):
            body = b'{"model": "lone", "from": "plain", "stream": false, "%s": "a\\ud800"}' \
                % field.encode()
            reply = await server.client.post("/api/create", content=body)
            assert reply.status_code == 400, reply.text
            assert reply.json()["error"] == (f"invalid {field}: not valid Unicode text "
                                             "(a lone surrogate)")
        shown = await server.post("/api/show", model="lone")
        assert shown.status_code == 404

    serve(scenario)


def test_names_for_one_model_file_share_a_runner_and_stop_together(serve: Serve) -> None:
    """`qwen` (plain's GGUF with another template) and `twin` (a copy) run on plain's
    runner, each with its own template; other load options for the file reload it."""
    async def scenario(server: Server) -> None:
        for model in ("plain", "qwen", "twin"):
            reply = await server.post("/api/chat", model=model, messages=HI, stream=False,
                                      think=False)
            assert reply.status_code == 200, reply.text
        assert len(server.engine.started) == 1 and await server.loaded() == ["plain:latest"]
        prompts = ["".join(map(chr, r.prompt)) for r in server.runner.requests]
        assert prompts[0] == PLAIN_PROMPT and prompts[1].startswith("<|im_start|>user\nHi")
        stopped = await server.post("/api/generate", model="qwen", keep_alive=0)
        assert stopped.json()["done_reason"] == "unload" and await server.loaded() == []
        await server.post("/api/chat", model="twin", messages=HI, stream=False)
        narrower = await server.post("/api/chat", model="qwen", messages=HI, stream=False,
                                  think=False, options={"num_ctx": 256})
        assert narrower.status_code == 200
        assert len(server.engine.started) == 3 and await server.loaded() == ["qwen:latest"]

    serve(scenario)
