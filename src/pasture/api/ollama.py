"""Ollama's native REST API (`/api/*`), as pydantic models.

Field names and defaults follow Ollama's `api/types.go`. Requests ignore unknown
fields, as Ollama does; responses leave out fields that are unset (`exclude_none`).
Every model supports attribute and dict-style access (`resp.message.content` or
`resp["message"]["content"]`), like the official `ollama` Python client.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class WireModel(BaseModel):
    """Base for every wire type: dict-style access, unknown fields ignored.

    Validators are built on a type's first use (`defer_build`), not at import: building
    all of them took about a tenth of a second of every `pasture serve` start.
    """

    model_config = ConfigDict(protected_namespaces=(), populate_by_name=True, extra="ignore",
                              defer_build=True)

    def __getitem__(self, key: str) -> Any:
        if key in type(self).model_fields:
            return getattr(self, key)
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and getattr(self, key, None) is not None

    def get(self, key: str, default: Any = None) -> Any:
        value = getattr(self, key, None) if key in type(self).model_fields else None
        return default if value is None else value

    def wire(self) -> dict[str, Any]:
        """The JSON object sent on the wire (unset fields left out, aliases used)."""
        return self.model_dump(mode="json", exclude_none=True, by_alias=True)


KeepAlive = float | str | None
Think = bool | Literal["low", "medium", "high", "max"] | None
Format = Literal["", "json"] | dict[str, Any] | None


# ----- messages and tools -----------------------------------------------------------------


class ToolCallFunction(WireModel):
    index: int | None = None
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class ToolCall(WireModel):
    id: str | None = None
    function: ToolCallFunction


class Message(WireModel):
    role: str
    content: str = ""
    thinking: str | None = None
    images: list[str] | None = None
    tool_calls: list[ToolCall] | None = None
    tool_name: str | None = None
    tool_call_id: str | None = None

    @field_validator("role")
    @classmethod
    def _lower_role(cls, role: str) -> str:
        """Ollama's `Message.UnmarshalJSON` lower-cases the role (`System` → `system`), and
        templates compare it with lower-case literals. Every API family's messages are
        decoded this way in Ollama (its OpenAI and Anthropic middleware re-encode the
        request for the one chat handler), and so every family's are built here."""
        return role.lower()


class Tool(WireModel):
    model_config = ConfigDict(extra="allow")

    type: str = "function"
    function: dict[str, Any]


class TopLogprob(WireModel):
    token: str
    logprob: float
    bytes: list[int] | None = None


class Logprob(TopLogprob):
    """One generated token's log probability, with the most likely alternatives."""

    top_logprobs: list[TopLogprob] = Field(default_factory=list)


# ----- inference --------------------------------------------------------------------------


class Truncated(WireModel):
    """The prompt did not fit the context and was cut (beyond Ollama): its tokens before
    and after."""

    prompt_tokens: int
    kept: int


class Stats(WireModel):
    """A generation's speeds (beyond Ollama; LM Studio's names), from the durations beside
    them: answer and prompt tokens a second, and the seconds from the request's arrival
    to the first answer token (loading, queueing and the prompt included)."""

    tokens_per_second: float | None = None
    prompt_tokens_per_second: float | None = None
    time_to_first_token_seconds: float | None = None


class Metrics(WireModel):
    total_duration: int | None = None
    load_duration: int | None = None
    prompt_eval_count: int | None = None
    prompt_eval_duration: int | None = None
    eval_count: int | None = None
    eval_duration: int | None = None
    truncated: Truncated | None = None
    stats: Stats | None = None


class _InferenceRequest(WireModel):
    model: str
    stream: bool = True
    format: Format = None
    options: dict[str, Any] | None = None
    keep_alive: KeepAlive = None
    think: Think = None
    truncate: bool | None = None
    shift: bool | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    debug_render_only: bool | None = Field(default=None, alias="_debug_render_only")
    # Beyond Ollama: a GBNF (or llguidance Lark) grammar constraining the answer.
    grammar: str | None = None


class GenerateRequest(_InferenceRequest):
    prompt: str = ""
    suffix: str | None = None
    system: str | None = None
    template: str | None = None
    context: list[int] | None = None
    raw: bool = False
    images: list[str] | None = None


class ChatRequest(_InferenceRequest):
    messages: list[Message] = Field(default_factory=list)
    tools: list[Tool] | None = None
    # Beyond Ollama (which ignores it): OpenAI's `auto`, `none`, `required` or
    # `{"type": "function", "function": {"name": …}}`, enforced with a grammar.
    tool_choice: str | dict[str, Any] | None = None


class DebugInfo(WireModel):
    """What `_debug_render_only` returns: the prompt the model would have been given."""

    rendered_template: str
    image_count: int = 0


class GenerateResponse(Metrics):
    model: str
    created_at: datetime
    response: str = ""
    thinking: str | None = None
    done: bool
    done_reason: str | None = None
    context: list[int] | None = None
    logprobs: list[Logprob] | None = None
    debug_info: DebugInfo | None = Field(default=None, alias="_debug_info")


class ChatResponse(Metrics):
    model: str
    created_at: datetime
    message: Message
    done: bool
    done_reason: str | None = None
    logprobs: list[Logprob] | None = None
    debug_info: DebugInfo | None = Field(default=None, alias="_debug_info")


class QueueStatus(WireModel):
    """A progress line for a client that sent `X-Pasture-Queue: report`: its request
    waits for a slot, `position` 1 being next (beyond Ollama)."""

    status: str = "queued"
    position: int


# ----- model management -------------------------------------------------------------------


class ModelDetails(WireModel):
    parent_model: str = ""
    format: str = ""
    family: str = ""
    families: list[str] | None = None
    parameter_size: str = ""
    quantization_level: str = ""


class ListModel(WireModel):
    name: str
    model: str
    modified_at: datetime
    size: int
    digest: str
    details: ModelDetails


class ListResponse(WireModel):
    models: list[ListModel] = Field(default_factory=list)


class ProcessModel(WireModel):
    name: str
    model: str
    size: int
    digest: str
    details: ModelDetails
    expires_at: datetime
    size_vram: int
    context_length: int
    engine: str | None = None  # beyond Ollama: the engine build running it (`pasture engine`)
    # Beyond Ollama: requests holding one of its slots, and requests queued for one.
    running: int | None = None
    waiting: int | None = None
    node: str | None = None  # beyond Ollama: the cluster node running it (PASTURE_CLUSTER)
    # Beyond Ollama: its layers' split over RPC workers and this machine
    # (`10.0.0.2:50052 60% / local 40%`); None when not split.
    split: str | None = None


class ProcessResponse(WireModel):
    models: list[ProcessModel] = Field(default_factory=list)


class NodeGPU(WireModel):
    name: str
    description: str = ""
    memory_total: int = 0
    memory_free: int = 0


class NodeModel(WireModel):
    name: str
    size: int
    running: int = 0
    waiting: int = 0


class NodeInfo(WireModel):
    """One machine serving models (beyond Ollama: `GET /api/nodes`)."""

    id: str
    name: str
    address: str
    hostname: str = ""
    memory_total: int = 0  # system memory the node offers for models
    memory_available: int = 0  # of which free now
    rpc: str | None = None  # its RPC worker (host:port), lending its memory for a split
    gpus: list[NodeGPU] = Field(default_factory=list)
    models: list[NodeModel] = Field(default_factory=list)
    running: int = 0  # requests holding a slot on the node's models
    waiting: int = 0  # requests queued for one


class NodesResponse(WireModel):
    nodes: list[NodeInfo] = Field(default_factory=list)


class ShowRequest(WireModel):
    model: str | None = None
    name: str | None = None  # older clients
    verbose: bool = False
    system: str | None = None
    options: dict[str, Any] | None = None


class Tensor(WireModel):
    name: str
    type: str  # ggml's name for it: F32, Q4_K, …
    shape: list[int]


class ShowResponse(WireModel):
    license: str | None = None
    modelfile: str = ""
    parameters: str | None = None
    template: str | None = None
    system: str | None = None
    details: ModelDetails
    messages: list[Message] | None = None
    model_info: dict[str, Any] = Field(default_factory=dict)
    projector_info: dict[str, Any] | None = None
    tensors: list[Tensor] | None = None
    capabilities: list[str] = Field(default_factory=list)
    modified_at: datetime | None = None
    requires: str | None = None
    parser: str | None = None


class CopyRequest(WireModel):
    source: str
    destination: str


class DeleteRequest(WireModel):
    model: str | None = None
    name: str | None = None  # ollama-js sends `name`


class CreateRequest(WireModel):
    model: str | None = None
    name: str | None = None
    from_: str | None = Field(default=None, alias="from")
    files: dict[str, str] | None = None
    adapters: dict[str, str] | None = None
    template: str | None = None
    license: str | list[str] | None = None
    system: str | None = None
    parameters: dict[str, Any] | None = None
    messages: list[Message] | None = None
    quantize: str | None = None
    requires: str | None = None  # the minimum server version, semver
    parser: str | None = None  # a built-in output parser by name (`harmony`)
    draft_files: dict[str, str] | None = None  # speculative-decoding draft model blobs
    # Beyond Ollama: plain-http registry allowed when `from` must be pulled first.
    insecure: bool | None = None
    stream: bool = True


class ProgressResponse(WireModel):
    status: str
    digest: str | None = None
    total: int | None = None
    completed: int | None = None


class VersionResponse(WireModel):
    version: str  # the Ollama release whose API the server implements
    pasture: str | None = None  # Pasture's own version (beyond Ollama)


class StatusResponse(WireModel):
    """What the client reports for calls whose reply has no body (copy, delete)."""

    status: str | None = None


class PullRequest(WireModel):
    model: str | None = None
    name: str | None = None  # ollama-js sends `name`
    insecure: bool | None = None
    stream: bool = True


class PushRequest(PullRequest):
    pass


class VerifyRequest(WireModel):
    """`POST /api/verify`, beyond Ollama: hash stored blobs against their digests."""

    models: list[str] | None = None  # none or empty: every local model
    repair: bool = False  # fetch damaged blobs again from the model's registry
    insecure: bool | None = None  # plain-http registry allowed for repairs
    stream: bool = True


BlobState = Literal["corrupt", "missing"]


class ModelCheck(WireModel):
    """One model's verdict: `ok`, `corrupt`, `missing` (a blob is gone) or `repaired`."""

    model: str
    state: Literal["ok", "corrupt", "missing", "repaired"]
    damaged: dict[str, BlobState] | None = None  # the bad blobs as found, by digest
    note: str | None = None  # why it is damaged beyond its blobs, or was not repaired


class VerifyResponse(ProgressResponse):
    """A progress line (`verifying <digest12>`, or a repair's `pulling <digest12>`), or
    the last line: `success` or `damaged`, with every model's verdict in `models`."""

    models: list[ModelCheck] | None = None


# ----- embeddings -------------------------------------------------------------------------


class EmbedRequest(WireModel):
    model: str
    input: str | list[str] = Field(default_factory=list)
    truncate: bool | None = None
    dimensions: int | None = None
    options: dict[str, Any] | None = None
    keep_alive: KeepAlive = None


class EmbedResponse(WireModel):
    model: str | None = None
    embeddings: list[list[float]]
    total_duration: int | None = None
    load_duration: int | None = None
    prompt_eval_count: int | None = None


class RerankRequest(WireModel):
    """Pasture's `/api/rerank` (Ollama has none: ollama/ollama#3368)."""

    model: str
    query: Any = None  # a non-empty string, checked by the route
    documents: Any = None  # a non-empty list of strings, checked by the route
    top_n: int | None = None  # keep the best n (default: all)
    return_documents: bool | None = None  # echo each document's text (default: no)
    options: dict[str, Any] | None = None
    keep_alive: KeepAlive = None


class RerankResult(WireModel):
    index: int  # the document's position in the request
    relevance_score: float  # the model's raw score: higher is more relevant
    document: str | None = None


class RerankResponse(WireModel):
    model: str | None = None
    results: list[RerankResult]  # best first
    total_duration: int | None = None
    load_duration: int | None = None
    prompt_eval_count: int | None = None


class EmbeddingsRequest(WireModel):
    model: str
    prompt: str = ""
    options: dict[str, Any] | None = None
    keep_alive: KeepAlive = None


class EmbeddingsResponse(WireModel):
    embedding: list[float]


# ----- tokens (beyond Ollama: ollama/ollama#3582) ------------------------------------------


class TokenizeRequest(WireModel):
    model: str
    content: str | None = None
    prompt: str | None = None  # `content` under generate's name
    # Add the BOS/EOS tokens the model puts around a prompt (off, as in llama-server's
    # /tokenize); special tokens written in the text are recognised either way.
    add_special: bool = False
    keep_alive: KeepAlive = None


class TokenizeResponse(WireModel):
    tokens: list[int]


class DetokenizeRequest(WireModel):
    model: str
    tokens: list[int]
    keep_alive: KeepAlive = None


class DetokenizeResponse(WireModel):
    content: str
