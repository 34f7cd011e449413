"""OpenAI's API (`/v1/chat/completions`, `/v1/completions`, `/v1/embeddings`,
`/v1/models`, `/v1/responses`), and the Jina/Cohere-style `/v1/rerank` that llama-server
and vLLM serve beside it, as pydantic models.

Requests accept what the official `openai` SDK sends and ignore the rest. Beyond OpenAI,
chat, completion and responses requests take an `options` object of Ollama options
(`num_ctx`, `top_k`, …), and chat and responses requests a `grammar` (GBNF, as on
`/api/chat`), sent with the SDK's `extra_body`. Responses are dumped with their null
fields (`finish_reason: null`, `logprobs: null`), as OpenAI writes them; Ollama's
`reasoning` (the model's thought) appears only when there is one.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer

from pasture.api.ollama import Stats, WireModel


class _WithReasoning(WireModel):
    """An object with Ollama's `reasoning` field, left out when unset, as Ollama does."""

    reasoning: str | None = None

    @model_serializer(mode="wrap")
    def _omit_no_reasoning(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        if data.get("reasoning") is None:
            data.pop("reasoning", None)
        return data


# ----- chat completions -------------------------------------------------------------------


class ImageURL(WireModel):
    url: str
    detail: str | None = None


class ContentPart(WireModel):
    type: str
    text: str | None = None
    image_url: ImageURL | str | None = None


class ChatMessage(WireModel):
    role: str
    content: str | list[ContentPart] | None = None
    reasoning: str | None = None  # Ollama: an earlier turn's thought, fed back
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None


class JSONSchemaFormat(WireModel):
    name: str | None = None
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormat(WireModel):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchemaFormat | None = None


class StreamOptions(WireModel):
    include_usage: bool = False


class Reasoning(WireModel):
    effort: str | None = None
    summary: str | None = None


class _SamplingRequest(WireModel):
    """Fields shared by chat and legacy completions."""

    model: str
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    n: int | None = None
    user: str | None = None
    options: dict[str, Any] | None = None  # Pasture: Ollama options, e.g. {"num_ctx": 8192}


class ChatCompletionRequest(_SamplingRequest):
    messages: list[ChatMessage]
    max_completion_tokens: int | None = None
    response_format: ResponseFormat | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None  # enforced with a grammar
    parallel_tool_calls: bool | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    reasoning_effort: str | None = None  # thinking: none, minimal, low, … (Ollama's `think`)
    reasoning: Reasoning | None = None  # {"effort": …}, which wins over reasoning_effort
    grammar: str | None = None  # Pasture: as on /api/chat


class PromptTokensDetails(WireModel):
    cached_tokens: int = 0  # prompt tokens the engine reused from its cache


class Usage(WireModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails | None = None
    # Beyond OpenAI: the prompt did not fit the context and was cut (tokens before, after);
    # left out when it fitted.
    truncated: dict[str, int] | None = None
    stats: Stats | None = None  # beyond OpenAI: tokens a second and time to first token

    @model_serializer(mode="wrap")
    def _omit_unset_extras(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        for extra in ("truncated", "stats"):
            if data.get(extra) is None:
                data.pop(extra, None)
        return data


class AssistantMessage(_WithReasoning):
    role: str = "assistant"
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[dict[str, Any]] | None = None


class ChatChoice(WireModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: str | None
    logprobs: dict[str, Any] | None = None


class ChatCompletion(WireModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    system_fingerprint: str = "fp_pasture"
    choices: list[ChatChoice]
    usage: Usage


class Delta(_WithReasoning):
    role: str | None = None
    content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None


class ChunkChoice(WireModel):
    index: int = 0
    delta: Delta
    finish_reason: str | None = None
    logprobs: dict[str, Any] | None = None


class ChatCompletionChunk(WireModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    system_fingerprint: str = "fp_pasture"
    choices: list[ChunkChoice]
    usage: Usage | None = None


# ----- legacy completions -----------------------------------------------------------------


class CompletionRequest(_SamplingRequest):
    prompt: str
    suffix: str | None = None
    echo: bool | None = None
    logprobs: int | None = None  # how many alternatives per token (legacy shape)


class CompletionChoice(WireModel):
    index: int = 0
    text: str
    finish_reason: str | None
    logprobs: dict[str, Any] | None = None


class Completion(WireModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    system_fingerprint: str = "fp_pasture"
    choices: list[CompletionChoice]
    usage: Usage | None = None


# ----- embeddings -------------------------------------------------------------------------


class EmbeddingRequest(WireModel):
    model: str
    input: Any = None  # string or list of strings, checked by the route
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None
    user: str | None = None
    options: dict[str, Any] | None = None


class Embedding(WireModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str  # base64 of little-endian float32 when asked for


class EmbeddingUsage(WireModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(WireModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage


# ----- rerank (Jina's and Cohere's shape, as llama-server and vLLM serve it) -------------


class RerankRequest(WireModel):
    model: str
    query: Any = None  # a string; Cohere's and Jina's SDKs send no other type
    documents: Any = None  # strings, or objects with "text", checked by the route
    top_n: int | None = None
    return_documents: bool = True  # Jina's default; vLLM always returns them
    options: dict[str, Any] | None = None


class RerankDocument(WireModel):
    text: str


class RerankResult(WireModel):
    index: int
    relevance_score: float
    document: RerankDocument | None = None


class RerankList(WireModel):
    id: str
    object: Literal["list"] = "list"
    model: str
    results: list[RerankResult]
    usage: EmbeddingUsage


# ----- models -----------------------------------------------------------------------------


class Model(WireModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(WireModel):
    object: Literal["list"] = "list"
    data: list[Model]


# ----- responses --------------------------------------------------------------------------


class ResponsesRequest(WireModel):
    model: str
    input: str | list[dict[str, Any]]
    instructions: str | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    text: dict[str, Any] | None = None
    stream: bool = False
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    reasoning: Reasoning | None = None
    store: bool | None = None
    metadata: dict[str, Any] | None = None
    options: dict[str, Any] | None = None  # Pasture: Ollama options
    grammar: str | None = None  # Pasture: as on /api/chat


class OutputText(WireModel):
    type: Literal["output_text"] = "output_text"
    text: str
    annotations: list[Any] = Field(default_factory=list)
    logprobs: list[Any] = Field(default_factory=list)


class OutputMessage(WireModel):
    type: Literal["message"] = "message"
    id: str
    status: Literal["in_progress", "completed", "incomplete"]
    role: Literal["assistant"] = "assistant"
    content: list[OutputText]


class FunctionCall(WireModel):
    type: Literal["function_call"] = "function_call"
    id: str
    call_id: str
    name: str
    arguments: str  # a JSON object, as text
    status: Literal["in_progress", "completed", "incomplete"] = "completed"


class SummaryText(WireModel):
    type: Literal["summary_text"] = "summary_text"
    text: str


class ReasoningItem(WireModel):
    """The model's thought. As in Ollama, its text is also the `encrypted_content`, so a
    client that feeds the item back (as the SDK does) gives the model its thought again."""

    type: Literal["reasoning"] = "reasoning"
    id: str
    summary: list[SummaryText]
    encrypted_content: str | None = None


OutputItem = OutputMessage | FunctionCall | ReasoningItem


class ResponseUsage(WireModel):
    input_tokens: int
    output_tokens: int
    total_tokens: int
    input_tokens_details: dict[str, int] = Field(default_factory=lambda: {"cached_tokens": 0})
    output_tokens_details: dict[str, int] = Field(
        default_factory=lambda: {"reasoning_tokens": 0}
    )
    stats: Stats | None = None  # beyond OpenAI: tokens a second and time to first token


class Response(WireModel):
    id: str
    object: Literal["response"] = "response"
    created_at: int
    status: Literal["in_progress", "completed", "incomplete", "failed"]
    model: str
    output: list[OutputItem]
    instructions: str | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    incomplete_details: dict[str, str] | None = None
    error: dict[str, Any] | None = None
    parallel_tool_calls: bool = False
    tool_choice: str | dict[str, Any] = "auto"
    tools: list[dict[str, Any]] = Field(default_factory=list)
    text: dict[str, Any] = Field(default_factory=lambda: {"format": {"type": "text"}})
    reasoning: Reasoning | None = None
    usage: ResponseUsage | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


# ----- errors -----------------------------------------------------------------------------


class ErrorDetail(WireModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(WireModel):
    error: ErrorDetail
