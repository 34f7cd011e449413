"""One builder per endpoint: the public arguments in, a `Call` out.

Both clients forward their (identical, typed) public arguments here by keyword, so
argument clean-up and defaults are written once. `None` means "not given" and is left
off the wire, letting the server apply Ollama's defaults.
"""

from __future__ import annotations

from typing import Any

from pasture.api.ollama import (
    ChatRequest,
    ChatResponse,
    CopyRequest,
    CreateRequest,
    DeleteRequest,
    DetokenizeRequest,
    DetokenizeResponse,
    EmbeddingsRequest,
    EmbeddingsResponse,
    EmbedRequest,
    EmbedResponse,
    GenerateRequest,
    GenerateResponse,
    ListResponse,
    NodesResponse,
    ProcessResponse,
    ProgressResponse,
    PullRequest,
    PushRequest,
    RerankRequest,
    RerankResponse,
    ShowRequest,
    ShowResponse,
    StatusResponse,
    TokenizeRequest,
    TokenizeResponse,
    VerifyRequest,
    VerifyResponse,
    VersionResponse,
)
from pasture.client._inputs import encode_images, to_messages, to_options, to_tools
from pasture.client._protocol import Call, post, status_call
from pasture.client._wire import given


def generate(**fields: Any) -> Call[GenerateResponse]:
    fields["images"] = encode_images(fields.get("images"))
    fields["options"] = to_options(fields.get("options"))
    request = GenerateRequest.model_validate(given(fields))
    return post("/api/generate", GenerateResponse, request, request.stream)


def chat(**fields: Any) -> Call[ChatResponse]:
    fields["messages"] = to_messages(fields.get("messages"))
    fields["tools"] = to_tools(fields.get("tools")) or None
    fields["options"] = to_options(fields.get("options"))
    request = ChatRequest.model_validate(given(fields))
    return post("/api/chat", ChatResponse, request, request.stream)


def embed(**fields: Any) -> Call[EmbedResponse]:
    fields["options"] = to_options(fields.get("options"))
    if fields.get("input") is not None and not isinstance(fields["input"], str):
        fields["input"] = list(fields["input"])
    return post("/api/embed", EmbedResponse, EmbedRequest.model_validate(given(fields)))


def embeddings(**fields: Any) -> Call[EmbeddingsResponse]:
    fields["options"] = to_options(fields.get("options"))
    request = EmbeddingsRequest.model_validate(given(fields))
    return post("/api/embeddings", EmbeddingsResponse, request)


def tokenize(**fields: Any) -> Call[TokenizeResponse]:
    return post("/api/tokenize", TokenizeResponse, TokenizeRequest.model_validate(given(fields)))


def detokenize(**fields: Any) -> Call[DetokenizeResponse]:
    fields["tokens"] = list(fields["tokens"])
    request = DetokenizeRequest.model_validate(given(fields))
    return post("/api/detokenize", DetokenizeResponse, request)


def rerank(**fields: Any) -> Call[RerankResponse]:
    fields["options"] = to_options(fields.get("options"))
    if fields.get("documents") is not None:
        fields["documents"] = list(fields["documents"])
    return post("/api/rerank", RerankResponse, RerankRequest.model_validate(given(fields)))


def pull(**fields: Any) -> Call[ProgressResponse]:
    request = PullRequest.model_validate(given(fields))
    return post("/api/pull", ProgressResponse, request, request.stream)


def push(**fields: Any) -> Call[ProgressResponse]:
    request = PushRequest.model_validate(given(fields))
    return post("/api/push", ProgressResponse, request, request.stream)


def verify(**fields: Any) -> Call[VerifyResponse]:
    request = VerifyRequest.model_validate(given(fields))
    return post("/api/verify", VerifyResponse, request, request.stream)


def create(**fields: Any) -> Call[ProgressResponse]:
    fields["parameters"] = to_options(fields.get("parameters"))
    if fields.get("messages") is not None:
        fields["messages"] = to_messages(fields["messages"])
    if "from_" in fields:
        fields["from"] = fields.pop("from_")
    request = CreateRequest.model_validate(given(fields))
    return post("/api/create", ProgressResponse, request, request.stream)


def show(model: str, verbose: bool | None = None) -> Call[ShowResponse]:
    return post("/api/show", ShowResponse, ShowRequest(model=model, verbose=bool(verbose)))


def copy(source: str, destination: str) -> Call[StatusResponse]:
    return status_call("POST", "/api/copy", CopyRequest(source=source, destination=destination))


def delete(model: str) -> Call[StatusResponse]:
    return status_call("DELETE", "/api/delete", DeleteRequest(model=model))


def list_models() -> Call[ListResponse]:
    return Call("GET", "/api/tags", ListResponse)


def ps() -> Call[ProcessResponse]:
    return Call("GET", "/api/ps", ProcessResponse)


def nodes() -> Call[NodesResponse]:
    return Call("GET", "/api/nodes", NodesResponse)


def version() -> Call[VersionResponse]:
    return Call("GET", "/api/version", VersionResponse)
