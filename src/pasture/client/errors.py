"""The two ways a call to the server fails, as seen by a client.

`ResponseError` means the server answered and said no (its `error` message and HTTP
status, as the official `ollama` client reports them); `ServerNotRunningError` means
nothing answered at all, which on a desktop almost always means `pasture serve` was
never started, so the message says exactly that; `CertificateError` means an https
server answered with a certificate the client does not trust.
"""

from __future__ import annotations

import json


class ResponseError(Exception):
    """The server refused a request: `error` is its message, `status_code` its HTTP status.

    An error reported inside a stream, after the 200 status was sent, has `status_code` -1,
    as in the official client.
    """

    def __init__(self, error: str, status_code: int = -1) -> None:
        # Accept a raw JSON body too, as the official client does.
        try:
            parsed = json.loads(error)
        except (json.JSONDecodeError, TypeError):
            parsed = None
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
            error = parsed["error"]
        super().__init__(error)
        self.error = error
        self.status_code = status_code

    def __str__(self) -> str:
        return f"{self.error} (status code: {self.status_code})"


class ServerNotRunningError(ConnectionError):
    """Nothing listens at the server's address."""

    def __init__(self, url: str) -> None:
        super().__init__(
            f"could not connect to the Pasture server at {url}: it is not running. "
            "Start it with `pasture serve`"
        )
        self.url = url


class CertificateError(ConnectionError):
    """An https server's certificate could not be verified (self-signed, say)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"could not verify the https certificate of {url}: {reason}. Point "
            "PASTURE_CA_FILE (or the client's `verify`) at the server's certificate or its CA"
        )
        self.url = url
