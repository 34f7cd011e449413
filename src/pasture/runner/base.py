"""The narrow interface between the scheduler and a model runner."""

from __future__ import annotations

from collections.abc import AsyncIterator
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

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Embeddings:
    """Raw (un-normalised) pooled vectors, one per input, and the tokens they cost."""

    vectors: list[list[float]]
    prompt_tokens: int


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

    def completion(self, payload: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Stream llama-server `/completion` chunks for a prompt; the last has `stop: true`."""
        ...

    async def apply_template(self, messages: list[dict[str, Any]],
                             tools: list[dict[str, Any]] | None = None,
                             template_kwargs: dict[str, Any] | None = None) -> str:
        """Render chat messages (OpenAI-style: tool-call arguments as JSON strings) with
        the model's own (GGUF) chat template, offering `tools`; `template_kwargs` reach
        the template as variables (`enable_thinking`, `reasoning_effort`)."""
        ...

    async def embed(self, inputs: list[str] | list[list[int]]) -> Embeddings:
        """Pooled embeddings of texts or token lists, computed together in one batch."""
        ...

    async def tokenize(self, text: str) -> list[int]: ...

    async def detokenize(self, tokens: list[int]) -> str: ...

    async def close(self) -> None:
        """Stop the runner and free its memory."""
        ...
