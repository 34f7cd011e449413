"""What both clients put on the wire and read back, in the standard library only.

The httpx clients (`_protocol`) and the CLI's light client (`light`) build their URL and
headers, and turn error answers and stream lines into results, here, so they fail with
the same messages; nothing here imports httpx or pydantic, which is what keeps
`pasture list` quick.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Mapping
from typing import Any

from pasture import __version__
from pasture.client.errors import ResponseError
from pasture.config import env, parse_host

USER_AGENT = (
    f"pasture-python/{__version__} ({platform.machine()} {platform.system().lower()}) "
    f"Python/{platform.python_version()}"
)


def base_url(host: str | None) -> str:
    """The server URL: the argument, else `PASTURE_HOST`/`OLLAMA_HOST`, else the default."""
    return parse_host(host or env("HOST")).url


def default_headers(extra: Mapping[str, str] | None) -> dict[str, str]:
    """Caller's headers over the JSON defaults, plus `PASTURE_API_KEY` as a bearer token."""
    headers = {
        "content-type": "application/json",
        "accept": "application/json",
        "user-agent": USER_AGENT,
    }
    headers.update({key.lower(): value for key, value in (extra or {}).items()})
    api_key = env("API_KEY")
    if api_key and "authorization" not in headers:
        headers["authorization"] = f"Bearer {api_key}"
    return headers


def given(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The fields the caller set: `None` means "not given" and stays off the wire."""
    return {key: value for key, value in fields.items() if value is not None}


def response_error(status: int, reason: str, text: str) -> ResponseError:
    """The server's `{"error": ...}` message, else its raw body, else the HTTP reason."""
    message = text.strip() or reason or f"HTTP {status}"
    return ResponseError(message, status)


def decode_line(line: str) -> dict[str, Any] | None:
    """One NDJSON line of a stream as JSON; None for a blank line. An `error` line raises."""
    if not line.strip():
        return None
    try:
        part = json.loads(line)
    except json.JSONDecodeError:
        raise ResponseError(f"invalid JSON in server stream: {line[:200]!r}") from None
    if not isinstance(part, dict):
        raise ResponseError(f"unexpected line in server stream: {line[:200]!r}")
    if error := part.get("error"):
        raise ResponseError(str(error))
    return part
