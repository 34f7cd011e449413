"""Everything about talking to the server that does not depend on sync or async I/O.

A public client method builds a `Call` (what to send, how to read the answer); the
sync and async clients only differ in how they move the bytes. Status codes, error
bodies and NDJSON lines are read here once (with `_wire`, which the CLI's light client
shares), so every client fails the same way.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx

from pasture.api.ollama import StatusResponse, WireModel
from pasture.client._wire import connect_failure, decode_line, response_error, tls_context
from pasture.client.errors import ResponseError

T = TypeVar("T", bound=WireModel)

@dataclass(frozen=True)
class Call(Generic[T]):
    """One API request and the type its answer (or each streamed line) is parsed into."""

    method: str
    path: str
    response: type[T]
    body: dict[str, Any] | None = None
    stream: bool = False
    # For replies without a body (copy, delete): build the result from the status alone.
    from_status: Callable[[int], T] | None = field(default=None)

    @property
    def request_kwargs(self) -> dict[str, Any]:
        return {"json": self.body} if self.body is not None else {}


def post(path: str, response: type[T], request: WireModel, stream: bool = False) -> Call[T]:
    return Call("POST", path, response, request.wire(), stream)


def status_call(method: str, path: str, request: WireModel) -> Call[StatusResponse]:
    return Call(
        method,
        path,
        StatusResponse,
        request.wire(),
        from_status=lambda code: StatusResponse(status="success" if code == 200 else "error"),
    )


def verify_option(url: str, verify: Any) -> Any:
    """httpx's `verify` for a client of `url`: a CA file (given, or for an https server
    PASTURE_CA_FILE and the rest of `tls_context`'s order) as an SSL context, so the
    CLI's light client and these check certificates alike; a context or a bool as given."""
    if isinstance(verify, str | os.PathLike) or (verify is None and url.startswith("https:")):
        return tls_context(verify)
    return True if verify is None else verify


@contextmanager
def connection_errors(url: str) -> Iterator[None]:
    """Report "nothing listens there" as `ServerNotRunningError`, an untrusted certificate
    as `CertificateError` (works around awaits too)."""
    try:
        yield
    except httpx.ConnectError as exc:
        raise connect_failure(url, exc) from None


def error_from(response: httpx.Response) -> ResponseError:
    return response_error(response.status_code, response.reason_phrase, response.text)


def raise_for_status(response: httpx.Response) -> None:
    """Raise `ResponseError` for a non-2xx answer; its body must already be read."""
    if response.is_error:
        raise error_from(response)


def parse_reply(call: Call[T], response: httpx.Response) -> T:
    """The typed answer of a non-streaming call."""
    raise_for_status(response)
    if call.from_status is not None:
        return call.from_status(response.status_code)
    return call.response.model_validate(response.json())


def parse_line(call: Call[T], line: str) -> T | None:
    """One NDJSON line of a stream; None for a blank line. An `error` line raises."""
    part = decode_line(line)
    return None if part is None else call.response.model_validate(part)


def blob_path(digest: str) -> str:
    return f"/api/blobs/{digest}"


def blob_exists(response: httpx.Response) -> bool:
    """Whether `HEAD /api/blobs/<digest>` found the blob (200) or not (404)."""
    if response.status_code == 404:
        return False
    raise_for_status(response)
    return True
