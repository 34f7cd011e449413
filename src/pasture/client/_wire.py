"""What both clients put on the wire and read back, in the standard library only.

The httpx clients (`_protocol`) and the CLI's light client (`light`) build their URL and
headers, and turn error answers and stream lines into results, here, so they fail with
the same messages; nothing here imports httpx or pydantic, which is what keeps
`pasture list` quick.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pasture import __version__
from pasture.client.errors import CertificateError, ResponseError, ServerNotRunningError
from pasture.environment import env, parse_host, pasture_only

if TYPE_CHECKING:
    import ssl

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


def tls_context(ca_file: str | os.PathLike[str] | None = None) -> ssl.SSLContext:
    """How every client checks an https server: against `ca_file`, else PASTURE_CA_FILE
    (a server's self-signed certificate, say), else SSL_CERT_FILE or SSL_CERT_DIR, else
    certifi's bundle, as httpx does. Called only for https: `ssl` is slow to import."""
    import ssl

    cafile = ca_file or pasture_only("CA_FILE") or os.environ.get("SSL_CERT_FILE")
    capath = None if cafile else os.environ.get("SSL_CERT_DIR")
    if not cafile and not capath:
        import certifi

        cafile = certifi.where()
    try:
        return ssl.create_default_context(cafile=cafile, capath=capath)
    except OSError as exc:  # missing, unreadable or not PEM
        raise OSError(f"cannot use the CA certificates in {cafile or capath}: "
                      f"{exc.strerror or exc}") from None


def connect_failure(url: str, error: BaseException) -> ConnectionError:
    """Why no exchange with `url` could start: its certificate was not trusted (an
    `ssl.SSLCertVerificationError` somewhere in the chain), else nothing listens there."""
    seen: BaseException | None = error
    for _ in range(6):
        if seen is None:
            break
        if type(seen).__name__ == "SSLCertVerificationError":  # without importing ssl
            return CertificateError(url, getattr(seen, "verify_message", "") or str(seen))
        seen = seen.__cause__ or seen.__context__
    return ServerNotRunningError(url)


def given(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The fields the caller set: `None` means "not given" and stays off the wire."""
    return {key: value for key, value in fields.items() if value is not None}


def response_error(status: int, reason: str, text: str) -> ResponseError:
    """The server's `{"error": ...}` message, else its raw body, else the HTTP reason."""
    message = text.strip() or reason or f"HTTP {status}"
    return ResponseError(message, status)


def decode_reply(body: str, status: int) -> dict[str, Any]:
    """A whole answer as JSON. Anything but a JSON object (a proxy's HTML page, another
    program on the port) is a `ResponseError` quoting it, as a bad stream line is."""
    try:
        reply = json.loads(body)
    except json.JSONDecodeError:
        raise ResponseError(f"invalid JSON in server answer: {body[:200]!r}", status) from None
    if not isinstance(reply, dict):
        raise ResponseError(f"unexpected answer from the server: {body[:200]!r}", status)
    return reply


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
