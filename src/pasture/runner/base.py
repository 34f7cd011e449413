"""The narrow interface between the scheduler and a model runner."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from pasture.errors import RunnerError

CRASH_MESSAGE = (
    "model runner has unexpectedly stopped, this may be due to resource limitations "
    "or an internal error, check pasture server logs for details"
)


class RunnerOutOfMemory(RunnerError):
    """The engine could not allocate the model's buffers: retry with fewer GPU layers."""


class RunnerCrashed(RunnerError):
    """The runner process died or stopped answering while serving a request."""

    def __init__(self, message: str = CRASH_MESSAGE) -> None:
        super().__init__(message)


@dataclass(frozen=True)
class LoadSpec:
    """Everything that decides how a runner is started; two equal specs share a runner."""

    model_path: str
    num_ctx: int
    # Slots: requests served at once. 0 (automatic) only in a request's spec: the
    # scheduler starts the runner with the count it chose.
    num_parallel: int = 1
    num_batch: int = 512
    # Layers to offload (llama.cpp's n_gpu_layers; blocks + output). -1 asks the scheduler
    # to choose from free memory; the runner is always started with the chosen count.
    num_gpu: int = 0
    num_thread: int = 0
    use_mmap: bool | None = None
    adapters: tuple[str, ...] = field(default_factory=tuple)
    # DRAFT model for speculative decoding (llama.cpp's draft-simple); None: no draft.
    draft_model: str | None = None
    # Tokens the draft proposes per step (Ollama's `draft_num_predict`, 4 with a draft).
    draft_num_predict: int = 4
    # Draftless speculation (llama.cpp's ngram kinds: "ngram_simple", "ngram_mod",
    # "ngram_map_k"); None: none. Ignored when a draft model is set.
    speculative: str | None = None
    # Vision PROJECTOR (llama.cpp's mmproj GGUF); None: the model takes text only.
    projector: str | None = None
    flash_attention: bool | None = None  # None: the engine decides (llama.cpp's auto)
    # KV cache element type for K and V (`PASTURE_KV_CACHE_TYPE`): f16, q8_0 or q4_0.
    kv_cache_type: str = "f16"
    # Serve embeddings next to completions: llama.cpp does both from one context, so a
    # model switching between /api/chat and /api/embed keeps one runner (measured: same
    # output, speed and prompt cache with it on).
    embedding: bool = True
    # Pooling for embeddings: None = the model's own (`<arch>.pooling_type`), "last" = the
    # final token's hidden state, which is what Ollama returns for decoder-only models.
    pooling: str | None = None
    # The cluster node (Ray node id) that runs it; None: this machine. Like num_gpu, set
    # by the scheduler on the spec a runner is started with, never by a request.
    node: str | None = None
    # RPC workers (`pasture worker`, host:port) holding some of its layers, and the layers
    # on each, then on this machine (`pasture.rpc.split`); set like num_gpu, on the spec a
    # runner is started with.
    rpc_servers: tuple[str, ...] = ()
    rpc_layers: tuple[int, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, fields: dict[str, Any]) -> LoadSpec:
        """The spec `to_json` gave (a JSON or Ray round trip brings tuples back as lists)."""
        return cls(**{**fields, **{name: tuple(fields[name]) for name in
                                   ("adapters", "rpc_servers", "rpc_layers") if name in fields}})


@dataclass
class Embeddings:
    """Raw (un-normalised) pooled vectors, one per input, and the tokens they cost."""

    vectors: list[list[float]]
    prompt_tokens: int


@dataclass
class Ranking:
    """A reranker's relevance score for each document (in the order given: higher is more
    relevant; a raw logit, unbounded), and the tokens the query–document pairs cost."""

    scores: list[float]
    prompt_tokens: int


@dataclass(frozen=True)
class MemoryUse:
    """What a loaded model really takes, as the engine reported allocating it."""

    total: int  # bytes, wherever they are
    on_gpu: int  # of those, bytes in a GPU's memory
    remote: int = 0  # of those, bytes on RPC workers (other machines)


@dataclass
class CompletionRequest:
    """One generation, as the engine should run it.

    `prompt` is text, or the token ids of that text when they are known already (the
    engine then need not tokenize again); `images` (base64) are what its `[img-N]` tags
    show the model. `options` are merged Ollama options: only the sampling ones are read.
    At most one of `json_schema` and `grammar` (GBNF, or Lark for a build with
    llguidance) constrains the answer.
    """

    prompt: str | list[int]
    options: dict[str, Any]
    images: Sequence[str] = ()
    json_schema: dict[str, Any] | None = None
    grammar: str | None = None
    # Tags that are control tokens (Qwen's <think>, [TOOL_CALLS]) must appear as text.
    preserved_tokens: tuple[str, ...] = ()
    top_logprobs: int | None = None  # alternatives per token (0–20); None: no logprobs
    # The scale of each LoRA adapter (`LoadSpec.adapters` order) for this request alone;
    # None: each at the scale it was loaded with.
    lora: tuple[float, ...] | None = None


@dataclass(frozen=True)
class TokenLogprob:
    """One token's log probability, with its likeliest alternatives (best first)."""

    token: str
    logprob: float
    bytes: list[int]
    top: tuple[TokenLogprob, ...] = ()


@dataclass
class EngineChunk:
    """Text the engine generated and the token ids behind it."""

    text: str
    tokens: list[int] = field(default_factory=list)
    logprobs: list[TokenLogprob] = field(default_factory=list)


@dataclass(frozen=True)
class EngineDone:
    """The end of a generation: why it stopped and what it cost (durations in ns)."""

    done_reason: str  # "stop", or "length" when num_predict or the context ran out
    prompt_eval_count: int  # the prompt's tokens, cached ones included (as Ollama counts)
    prompt_eval_duration: int
    eval_count: int
    eval_duration: int
    stop_word: str | None = None  # the stop sequence that ended it, if one did
    cached_tokens: int = 0  # prompt tokens reused from the engine's cache, not processed
    draft_tokens: int = 0  # tokens a draft proposed (speculative decoding)
    draft_accepted: int = 0  # of those, tokens the model accepted


class Runner(Protocol):
    """A loaded model that can complete prompts. Implementations must be safe to share
    between concurrent requests (the engine batches them across its slots)."""

    spec: LoadSpec
    engine: str  # name of the engine build it runs on ("default": the installed wheel)
    llguidance: bool  # whether that build runs llguidance grammars (else GBNF only)
    # The engine's image placeholder in a prompt (random per runner, so user text cannot
    # forge one); None unless a projector is loaded.
    media_marker: str | None

    @property
    def alive(self) -> bool:
        """False once the runner has exited or was closed."""
        ...

    @property
    def memory(self) -> MemoryUse | None:
        """What the engine allocated for this model; None until it has said."""
        ...

    def complete(self, request: CompletionRequest
                 ) -> AsyncIterator[EngineChunk | EngineDone]:
        """Generate: `EngineChunk`s as text comes, then exactly one `EngineDone`.
        Closing the iterator early cancels the generation in the engine."""
        ...

    async def apply_template(self, messages: list[dict[str, Any]],
                             tools: list[dict[str, Any]] | None = None,
                             thinking: bool = False, effort: str | None = None) -> str:
        """Render chat messages (Ollama's shape) with the model's own (GGUF) chat template,
        offering `tools`; `thinking` and `effort` reach the template as the variables
        thinking-aware templates read."""
        ...

    async def embed(self, inputs: list[str] | list[list[int]]) -> Embeddings:
        """Pooled embeddings of texts or token lists, computed together in one batch."""
        ...

    async def rerank(self, query: str, documents: list[str]) -> Ranking:
        """Score each document's relevance to `query` (a reranker model, loaded with
        rank pooling), all pairs in one batch."""
        ...

    async def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        """The tokens the engine makes of a text prompt (BOS added if the model wants it
        and `add_special`, special tokens recognised)."""

        ...

    async def detokenize(self, tokens: list[int]) -> str:
        """The text of token ids (400 for ids outside the vocabulary)."""
        ...

    async def close(self) -> None:
        """Stop the runner and free its memory."""
        ...
