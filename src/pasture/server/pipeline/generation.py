"""The generation pipeline: a `Turn` in, typed `Piece`s and one `Finish` out.

`Generation.open` does everything that can refuse a request before a model loads, each
step once: resolve the model (off the loop), merge and check options, check the
constraint (compiling a schema, off the loop), capabilities, images, `think` and
`tool_choice`. `Generation.events` then leases a runner, builds the prompt, plans how
the answer is read and constrained, and runs the engine, splitting its text into
content, thinking and tool calls. Every inference route runs exactly this; routes only
translate a request into a `Turn` and the pieces into their wire format.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from pasture import options as opts
from pasture.api.ollama import Stats
from pasture.errors import BadRequestError
from pasture.isolated import isolated
from pasture.prompt.fit import IMAGE_TOKENS, Truncation
from pasture.prompt.render import PromptTemplate, Think, parse_template
from pasture.prompt.reply import Split
from pasture.prompt.tools import ToolChoice
from pasture.runner.base import (
    CompletionRequest,
    EngineChunk,
    EngineDone,
    Runner,
    RunnerCrashed,
    TokenLogprob,
)
from pasture.scheduler.scheduler import Lease, OnQueued
from pasture.server.edge.requests import current_request, note_generation
from pasture.server.metrics import UNWATCHED
from pasture.server.pipeline import images, prompt
from pasture.server.pipeline.model import ResolvedModel
from pasture.server.pipeline.reply import ReplyPlan, offered_tools, plan_reply
from pasture.server.pipeline.turn import Constraint, Turn
from pasture.server.state import ServerState
from pasture.server.tracing import GenerationTrace, NoTrace

log = logging.getLogger(__name__)

MAX_TOP_LOGPROBS = 20
PARSE_SECONDS = 10  # a request's TEMPLATE (64 KiB at most) parses in well under a second


@dataclass
class Piece:
    """Text the model produced, with the tokens behind it.

    `text` is the answer's content only; the thought and the tool calls parsed out of the
    output come in `thinking` and `tool_calls` (Ollama's shape). `logprobs` has one entry
    per token of this piece when asked for.
    """

    text: str
    tokens: list[int] = field(default_factory=list)
    thinking: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    logprobs: list[TokenLogprob] = field(default_factory=list)


@dataclass
class Finish:
    """The end of a generation: why it stopped and what it cost (durations in ns).

    `done_reason` is `stop` or `length`, or `load` / `unload` for a turn without
    messages; `context` is prompt + answer token ids when the turn asked for them.
    """

    done_reason: str
    load_duration: int = 0
    total_duration: int = 0
    prompt_eval_count: int = 0
    prompt_eval_duration: int = 0
    eval_count: int = 0
    eval_duration: int = 0
    stop_word: str | None = None
    cached_tokens: int = 0
    context: list[int] | None = None
    truncation: Truncation | None = None  # what fitting the prompt into the context cut
    time_to_first_token: int = 0  # from the request's arrival to the first answer token

    def stats(self) -> Stats:
        """The speeds a user asks of a run (LM Studio's `stats`, llama-server's
        `timings`), from the durations above; a rate without a duration is left out."""
        def rate(count: int, duration: int) -> float | None:
            return round(count / (duration / 1e9), 2) if duration > 0 else None
        return Stats(
            tokens_per_second=rate(self.eval_count, self.eval_duration),
            prompt_tokens_per_second=rate(self.prompt_eval_count, self.prompt_eval_duration),
            time_to_first_token_seconds=round(self.time_to_first_token / 1e9, 4))


def check_top_logprobs(logprobs: bool, top_logprobs: int | None) -> int | None:
    """How many alternatives per token to return (None: no logprobs); 400 outside 0–20."""
    if top_logprobs is not None and not 0 <= top_logprobs <= MAX_TOP_LOGPROBS:
        raise BadRequestError(f"top_logprobs must be between 0 and {MAX_TOP_LOGPROBS}")
    return (top_logprobs or 0) if logprobs else None


class Generation:
    """One turn, checked and ready to run on the model it names."""

    def __init__(self, state: ServerState, turn: Turn, model: ResolvedModel,
                 options: dict[str, Any], keep_alive: float, constraint: Constraint,
                 template: PromptTemplate | None, think: Think, choice: ToolChoice,
                 top_logprobs: int | None, started: float) -> None:
        self.state = state
        self.turn = turn
        self.model = model
        self.options = options
        self.keep_alive = keep_alive
        self.spec = model.load_spec(options, state.settings)
        self.lora = model.adapter_scales(options.get(opts.LORA))  # per request, no reload
        self.constraint = constraint
        self.template = template  # the Go TEMPLATE to render with; None: native mode
        self.think = think
        self.choice = choice
        self.top_logprobs = top_logprobs
        self.started = started
        self.fitting = prompt.Fitting.of(self.spec.num_ctx, turn.truncate, turn.shift,
                                         options)
        self.truncation: Truncation | None = None  # what fitting the prompt cut
        self.asked_at = 0.0  # when the last lease was asked for (perf_counter)
        self.leased_at = 0.0  # when it came: a load, then a wait for a slot, in between

    @property
    def display(self) -> str:
        return self.model.display

    @classmethod
    async def open(cls, state: ServerState, turn: Turn) -> Generation:
        """Everything that can refuse `turn` before a model loads, checked once: 404 for
        an unknown model, 400 for what the request or the model cannot do."""
        started = time.perf_counter()
        model = await state.models.resolve(turn.model)
        options = opts.merge(model.local.params, *(opts.validate(o) for o in turn.options))
        keep_alive = state.keep_alive(turn.keep_alive)
        choice = ToolChoice.of(turn.tool_choice, turn.tools)
        constraint = Constraint()  # compiling a schema or grammar is CPU work: off the loop
        if turn.format or turn.grammar is not None or choice.forced:
            constraint = await asyncio.to_thread(Constraint.of, turn.format, turn.grammar,
                                                 choice.forced)
        top_logprobs = check_top_logprobs(turn.logprobs, turn.top_logprobs)
        if turn.messages or keep_alive != 0:
            model.require("completion", turn.action)  # unloading works for every model
        if turn.raw and (turn.template or turn.system or turn.context):
            raise BadRequestError("raw mode does not support template, system, or context")
        pictures = turn.images
        await images.check(pictures, state.settings.max_image_bytes)
        if turn.tools:  # [] is fine
            model.require("tools", "tools")
        if turn.suffix:
            model.require("insert", "insert")
        if pictures:
            model.require("vision", "vision")
        think = turn.think
        if turn.relax_think and "thinking" not in model.capabilities:
            think = None
        template = model.template
        if turn.template:  # an untrusted template is parsed in a child process
            template = await isolated(parse_template, turn.template, timeout=PARSE_SECONDS)
        return cls(state, turn, model, options, keep_alive, constraint, template,
                   think_for(think, model.capabilities, model.requested,
                             model.local.config.parser), choice, top_logprobs, started)

    @property
    def rendered(self) -> bool:
        """Whether Pasture renders the prompt itself (no runner needed to build it)."""
        return self.turn.raw or self.template is not None

    @contextlib.asynccontextmanager
    async def lease(self, on_queued: OnQueued | None = None, *, slot: bool = True
                    ) -> AsyncIterator[Lease]:
        """A runner for this turn's model and load options, and one of its slots (unless
        `slot` is false: the prompt alone), held while in use; `on_queued` hears the
        turn's place while it waits for a slot."""
        self.asked_at = time.perf_counter()
        async with self.state.lease(self.model, self.spec, self.keep_alive, on_queued,
                                    slot=slot, affinity=self.turn.prefix_key if slot
                                    else None) as lease:
            self.leased_at = time.perf_counter()
            yield lease

    async def events(self, on_queued: OnQueued | None = None
                     ) -> AsyncIterator[Piece | Finish]:
        """Run the turn: `Piece`s as the answer comes, then exactly one `Finish`. A turn
        without messages only loads the model (or, with keep_alive 0, unloads it)."""
        if not self.turn.messages:
            yield await self._load_or_unload()
            return
        info = current_request()
        trace = self.state.tracer.generation(self.display, self.started,
                                             info.request_id if info else None)
        try:
            for attempt in itertools.count():
                output = False
                try:
                    async with self.lease(on_queued) as lease:
                        trace.leased(self.asked_at, lease.load_duration, self.leased_at)
                        request, plan, tokens = await self._prepare(lease.runner)
                        trace.phase("prompt_render", self.leased_at, time.perf_counter())
                        async with contextlib.aclosing(self._run(lease, request, plan, tokens,
                                                                 trace)) as events:
                            async for event in events:
                                output = True
                                yield event
                    return
                except RunnerCrashed as exc:
                    if output or attempt >= self.state.retries_before_output:
                        raise
                    log.warning("runner for %s lost before any output (%s): trying again",
                                self.display, exc.message)
        finally:
            trace.ended()

    async def _prepare(self, runner: Runner
                       ) -> tuple[CompletionRequest, ReplyPlan, list[int] | None]:
        """The engine request for this turn, how its answer is read, and the prompt's
        token ids when they were counted."""
        built = await self.prompt(runner)
        self.truncation = built.truncation
        tokens = built.tokens
        text = built.text
        if self.turn.context:  # deprecated, but still sent: prepended as text
            text = await _context_text(runner, self.turn.context) + text
            tokens = None
        if self.turn.return_context and tokens is None:
            tokens = await runner.tokenize(text)
        plan = await self._plan(text)
        options = self.options
        if not self.turn.shift:  # the answer ends where the context does
            count = len(tokens) if tokens is not None else len(await runner.tokenize(text))
            options = within_context(options, self.spec.num_ctx - count)
        request = await self._request(runner, plan, text, tokens, built.images, options)
        return request, plan, tokens

    async def _run(self, lease: Lease, request: CompletionRequest, plan: ReplyPlan,
                   tokens: list[int] | None, trace: GenerationTrace | NoTrace
                   ) -> AsyncIterator[Piece | Finish]:
        """The engine's answer to `request` as `Piece`s, then its `Finish`."""
        produced: list[int] = []
        metrics = self.state.metrics
        watch = metrics.generation(self.display, self.started) if metrics else UNWATCHED
        watch.queued(self.leased_at - self.asked_at - lease.load_duration)  # slot wait
        sent, first = time.perf_counter(), None  # prefill: from sent to the first output
        try:
            async with contextlib.aclosing(lease.runner.complete(request)) as chunks:
                async for chunk in chunks:
                    if isinstance(chunk, EngineChunk):
                        now = time.perf_counter()
                        first = first or now
                        watch.piece(now)
                        produced.extend(chunk.tokens)
                        split = plan.parser.feed(chunk.text) if plan.parser is not None \
                            else Split(chunk.text)
                        yield Piece(split.content, chunk.tokens, split.thinking,
                                    split.tool_calls, chunk.logprobs)
                        continue
                    if plan.parser is not None and (rest := plan.parser.finish()):
                        yield Piece(rest.content, [], rest.thinking, rest.tool_calls)
                    context = tokens + produced if self.turn.return_context and tokens \
                        is not None else None
                    note_generation(self.display, chunk.prompt_eval_count,
                                    chunk.eval_count)
                    now = time.perf_counter()
                    watch.finished(chunk, now)
                    trace.finished(chunk, sent, first, now)
                    yield self._finish(chunk, lease.load_duration, context, first or now)
                    return
        finally:
            watch.ended()

    async def prompt(self, runner: Runner | None) -> prompt.Prompt:
        """The prompt: as given when raw, fill-in-the-middle with a suffix, else the
        conversation in the model's prompt mode, truncated to the runner's context (not
        without a runner: debug rendering of a Go template)."""
        turn = self.turn
        if turn.raw:  # the prompt's own `[img-N]` tags place the images
            text = turn.messages[-1].content
            if runner is None or turn.images or not self.fitting.truncate:
                return prompt.Prompt(text, turn.images)
            return await prompt.fit_text(text, runner, self.fitting)
        if turn.suffix:  # the insert capability was checked: there is a Go template
            assert self.template is not None
            return await prompt.insert_prompt(self.template, turn.messages[-1].content,
                                              turn.suffix, self.think, turn.images)
        messages = prompt.conversation(self.model.local, [m.wire() for m in turn.messages],
                                       turn.system)
        tools = offered_tools(turn.tools, self.choice)
        render = prompt.renderer(self.template, runner, tools, self.think)
        return await prompt.chat_prompt(messages, render, runner, self.fitting)

    async def render_only(self) -> prompt.Prompt:
        """The prompt without running the model (`_debug_render_only`); a Go template
        needs no runner, the GGUF's own template needs the engine to apply it (beside
        its generations: no slot)."""
        if self.rendered:
            return await self.prompt(None)
        async with self.lease(slot=False) as lease:
            return await self.prompt(lease.runner)

    async def prompt_tokens(self) -> int:
        """How many tokens the prompt holds as the model would read it, built as a
        generation builds it (Anthropic's count_tokens). An image counts as the tokens
        fitting a prompt reserves for it (`fit.IMAGE_TOKENS`)."""
        async with self.lease(slot=False) as lease:
            built = await self.prompt(lease.runner)
            tokens = built.tokens if built.tokens is not None else \
                await lease.runner.tokenize(built.text)
        return len(tokens) + IMAGE_TOKENS * built.image_count

    async def _plan(self, text: str) -> ReplyPlan:
        """How the answer to `text` is read and constrained; composing a grammar is CPU
        work, done off the loop (a plain answer needs none)."""
        capabilities = () if self.turn.raw else self.model.capabilities
        plan = functools.partial(
            plan_reply, self.model, self.template, text, capabilities=capabilities,
            think=self.think, constraint=self.constraint, tools=self.turn.tools,
            choice=self.choice)
        if self.turn.tools or "thinking" in capabilities or self.choice.forced:
            return await asyncio.to_thread(plan)
        return plan()

    async def _request(self, runner: Runner, plan: ReplyPlan, text: str,
                       tokens: list[int] | None, pictures: list[str],
                       options: dict[str, Any]) -> CompletionRequest:
        """The engine request: token ids when counted (so the engine does not tokenize
        again), text when images go with it."""
        schema, grammar = plan.engine_constraint(runner) if plan.composed is None else \
            await asyncio.to_thread(plan.engine_constraint, runner)  # GBNF written off-loop
        return CompletionRequest(
            prompt=text if pictures or tokens is None else tokens,
            options=options, images=pictures, json_schema=schema, grammar=grammar,
            preserved_tokens=plan.preserved_tokens, top_logprobs=self.top_logprobs,
            lora=self.lora)

    async def _load_or_unload(self) -> Finish:
        if self.keep_alive == 0:
            await self.state.scheduler.unload(self.display, self.spec.model_path)
            return Finish("unload")
        async with self.lease() as lease:
            return Finish("load", load_duration=int(lease.load_duration * 1e9))

    def _finish(self, done: EngineDone, load_duration: float, context: list[int] | None,
                first_token_at: float) -> Finish:
        return Finish(
            done_reason=done.done_reason,
            load_duration=int(load_duration * 1e9),
            total_duration=int((time.perf_counter() - self.started) * 1e9),
            prompt_eval_count=done.prompt_eval_count,
            prompt_eval_duration=done.prompt_eval_duration,
            eval_count=done.eval_count,
            eval_duration=done.eval_duration,
            stop_word=done.stop_word,
            cached_tokens=done.cached_tokens,
            context=context,
            truncation=self.truncation,
            time_to_first_token=int((first_token_at - self.started) * 1e9),
        )


def within_context(options: dict[str, Any], room: int) -> dict[str, Any]:
    """`options` with `num_predict` no longer than the `room` the prompt leaves in the
    context (Ollama's `shift: false`: the answer stops there, done_reason `length`)."""
    wanted = options.get("num_predict")
    limit = max(1, room - 1)
    return {**options, "num_predict": limit if wanted is None or wanted < 0
            else min(wanted, limit)}


def think_for(value: bool | str | None, capabilities: tuple[str, ...], model_name: str,
              parser: str | None = None) -> Think:
    """Ollama's `think` rules: on by default for thinking models, refused for the others.
    Harmony's `Reasoning:` knows low, medium and high: `max` is `high` there, as Ollama
    maps it (`server/routes.go`)."""
    if parser == "harmony" and value == "max":
        value = "high"
    if "thinking" in capabilities:
        return Think.of(True if value is None else value)
    if value is not None and Think.of(value).enabled:
        raise BadRequestError(f'"{model_name}" does not support thinking')
    return Think.of(value)


async def _context_text(runner: Runner, context: list[int]) -> str:
    """The text of a `context` (the token ids an earlier answer returned); 400 for ids
    no vocabulary holds (the engine reads them as 32-bit, so larger ones would wrap)."""
    outside = BadRequestError("invalid context: token ids outside this model's vocabulary")
    if any(not 0 <= token < 2**31 for token in context):
        raise outside
    try:
        return await runner.detokenize(context)
    except BadRequestError:
        raise outside from None


@dataclass(frozen=True)
class Queued:
    """The turn waits for a slot: `position` 1 is next."""

    position: int


async def reporting_queue(generation: Generation) -> AsyncIterator[Queued | Piece | Finish]:
    """`generation.events()`, preceded while it waits for a slot by its place in the
    queue (`Queued`, each time it moves up); a turn that need not wait reports nothing."""
    places: asyncio.Queue[int] = asyncio.Queue()
    events = generation.events(places.put_nowait)
    first = asyncio.ensure_future(anext(events))
    try:
        while not first.done():
            place = asyncio.ensure_future(places.get())
            await asyncio.wait({first, place}, return_when=asyncio.FIRST_COMPLETED)
            if place.done():
                yield Queued(place.result())
            else:
                place.cancel()
        yield first.result()
        async for item in events:
            yield item
    finally:
        if not first.done():  # the client left while waiting: leave the queue
            first.cancel()
            with contextlib.suppress(BaseException):
                await first
        await events.aclose()


async def prepend(first: Piece | Finish, rest: AsyncIterator[Piece | Finish]
                  ) -> AsyncIterator[Piece | Finish]:
    """`first` followed by the rest of a generation: a stream waits for its first event
    (the model loaded, the prompt accepted) before it sends anything."""
    yield first
    async for item in rest:
        yield item


@dataclass
class Collected:
    """A whole generation, for answers that are not streamed."""

    text: str
    finish: Finish
    thinking: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    logprobs: list[TokenLogprob] = field(default_factory=list)

    def piece(self) -> Piece:
        """Everything generated as one `Piece`: thought, text, then calls."""
        return Piece(self.text, thinking=self.thinking, tool_calls=self.tool_calls,
                     logprobs=self.logprobs)


async def collect(events: AsyncIterator[Piece | Finish]) -> Collected:
    """Everything a generation produced and its `Finish`, the iterator closed whatever
    happens (so the runner's lease is released before this returns)."""
    parts: list[str] = []
    thoughts: list[str] = []
    calls: list[dict[str, Any]] = []
    logprobs: list[TokenLogprob] = []
    finish: Finish | None = None
    async with contextlib.aclosing(events) as items:  # type: ignore[type-var]
        async for event in items:
            if isinstance(event, Piece):
                parts.append(event.text)
                thoughts.append(event.thinking)
                calls.extend(event.tool_calls)
                logprobs.extend(event.logprobs)
            else:
                finish = event
    if finish is None:  # a generation always finishes; a bare end means the engine broke off
        raise RunnerCrashed()
    return Collected("".join(parts), finish, "".join(thoughts), calls, logprobs)
