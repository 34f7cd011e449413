"""One HTTP/1.1 exchange over a plain socket: the light client's way to a server at an
`http://` address reached without a proxy, which is how `pasture` is nearly always run.

`http.client` imports the `email` package (to parse headers) and `ssl`: about a quarter
of what `pasture list` may take in all (issue 23). This speaks the part of HTTP/1.1 a
client of Pasture's API needs: one request per connection (`Connection: close`), the
status line and headers, and a body framed by `Content-Length`, by chunks, or by the end
of the connection. https and proxies keep going through `http.client` (`light`).

Anything that is not HTTP as that part describes raises `ProtocolError`, an `OSError`
like the other ways a connection fails, with a message saying what was wrong.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator, Mapping

MAX_LINE = 65536  # bytes in a status, header or chunk-size line (as http.client)
MAX_HEADERS = 100
MAX_INTERIM = 10  # 1xx answers before the real one
_CHUNK = 65536
_HEX = b"0123456789abcdefABCDEF"


class ProtocolError(OSError):
    """The other end did not answer in HTTP/1.x."""


def connect(host: str, port: int, timeout: float | None) -> socket.socket:
    """A connected socket (`OSError` if nothing listens there)."""
    # An ASCII name goes as bytes: given a str, the socket module loads the idna codec
    # (and stringprep) to encode it, a tenth of what `pasture list` may take.
    name: str | bytes = host.encode("ascii") if host.isascii() else host
    return socket.create_connection((name, port), timeout=timeout)


def request(sock: socket.socket, method: str, target: str, authority: str,
            headers: Mapping[str, str], body: bytes | None) -> PlainResponse:
    """Send one request on `sock` and read the answer's head: the returned response
    reads the body and owns the socket from then on."""
    lines = [f"{method} {target} HTTP/1.1", f"host: {authority}"]
    for name, value in {**headers, "connection": "close"}.items():
        if any(c in name + value for c in "\r\n\0") or not name or ":" in name:
            raise ValueError(f"invalid header {name!r}")
        lines.append(f"{name}: {value}")
    if body is not None:
        lines.append(f"content-length: {len(body)}")
    if any(c in target for c in " \r\n\0"):
        raise ValueError(f"invalid request target {target!r}")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b""))
    return PlainResponse(sock, method)


class PlainResponse:
    """An answer as `http.client.HTTPResponse` offers it to the light client: `status`,
    `reason`, `getheader`, `read()`, iteration over lines, and `close()`."""

    def __init__(self, sock: socket.socket, method: str) -> None:
        self._sock = sock
        self._file = sock.makefile("rb")
        for _ in range(MAX_INTERIM + 1):  # interim answers (`100 Continue`) come first
            self.status, self.reason = self._status_line()
            self._headers = self._header_lines()
            if not 100 <= self.status < 200:
                break
        else:
            raise ProtocolError(f"more than {MAX_INTERIM} interim answers")
        self._body = self._framed(method)

    def getheader(self, name: str, default: str | None = None) -> str | None:
        return self._headers.get(name.lower(), default)

    def read(self) -> bytes:
        return b"".join(self._body)

    def __iter__(self) -> Iterator[bytes]:
        """The body's lines, each with its `\\n`, as they arrive."""
        pending = b""
        for piece in self._body:
            pending += piece
            *lines, pending = pending.split(b"\n")
            yield from (line + b"\n" for line in lines)
        if pending:
            yield pending

    def close(self) -> None:
        self._file.close()
        self._sock.close()

    # ----- reading ------------------------------------------------------------------------

    def _line(self, what: str) -> bytes:
        line = self._file.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise ProtocolError(f"the server's {what} is longer than {MAX_LINE} bytes")
        if not line.endswith(b"\n"):
            raise ProtocolError(f"the server closed the connection in its {what}")
        return line.rstrip(b"\r\n")

    def _status_line(self) -> tuple[int, str]:
        line = self._line("status line")
        version, _, rest = line.decode("latin-1").partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
            raise ProtocolError(f"not an HTTP answer: {line[:80]!r}")
        return int(code), reason

    def _header_lines(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        for _ in range(MAX_HEADERS + 1):
            line = self._line("headers").decode("latin-1")
            if not line:
                return headers
            name, colon, value = line.partition(":")
            if not colon or not name or name != name.strip():
                raise ProtocolError(f"malformed header line {line[:80]!r}")
            key, value = name.lower(), value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        raise ProtocolError(f"more than {MAX_HEADERS} headers")

    def _framed(self, method: str) -> Iterator[bytes]:
        """The body's bytes as the headers frame them (RFC 9112 §6.3)."""
        if method == "HEAD" or self.status in (204, 304):
            return iter(())
        if "chunked" in (self.getheader("transfer-encoding") or "").lower():
            return self._chunks()
        length = self.getheader("content-length")
        if length is None:
            return self._until_closed()
        if not length.isdigit():
            raise ProtocolError(f"bad content-length {length[:40]!r}")
        return self._exactly(int(length))

    def _exactly(self, size: int) -> Iterator[bytes]:
        while size > 0:
            piece = self._file.read1(min(size, _CHUNK))
            if not piece:
                raise ProtocolError(f"the server closed the connection {size} bytes early")
            size -= len(piece)
            yield piece

    def _until_closed(self) -> Iterator[bytes]:
        while piece := self._file.read1(_CHUNK):
            yield piece

    def _chunks(self) -> Iterator[bytes]:
        while True:
            size_text = self._line("chunk size").split(b";")[0].strip()
            if not size_text or size_text.strip(_HEX):
                raise ProtocolError(f"bad chunk size {size_text[:40]!r}")
            size = int(size_text, 16)
            if size == 0:
                self._header_lines()  # the trailer, ending with an empty line
                return
            yield from self._exactly(size)
            if self._line("chunk end"):
                raise ProtocolError("a chunk is longer than its size says")
