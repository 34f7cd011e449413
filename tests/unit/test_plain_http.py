"""The light client's socket transport (`pasture.client.plain_http`) against answers
written byte by byte: each framing HTTP/1.1 allows, answers that arrive in odd pieces,
and answers that are not HTTP, which must fail as an `OSError` saying what was wrong.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator, Sequence

import pytest

from pasture.client import plain_http
from pasture.client.errors import ResponseError
from pasture.client.light import LightClient
from pasture.client.plain_http import ProtocolError


class RawServer:
    """Accepts connections on a loopback port; to each, after reading the request's head
    and body, sends `pieces` (a short pause between them) and closes."""

    def __init__(self, pieces: Sequence[bytes]) -> None:
        self.pieces = pieces
        self.requests: list[bytes] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn, contextlib.suppress(OSError):  # the client may leave first
                self.requests.append(_read_request(conn))
                for piece in self.pieces:
                    conn.sendall(piece)
                    time.sleep(0.005)

    def close(self) -> None:
        self.listener.close()


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        if not (received := conn.recv(65536)):
            return data  # the client gave up before its request was whole
        data += received
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        body += conn.recv(65536)
    return data


def answer(pieces: Sequence[bytes]) -> Iterator[LightClient]:
    server = RawServer(pieces)
    try:
        yield LightClient(f"http://127.0.0.1:{server.port}", timeout=5)
    finally:
        server.close()


@pytest.fixture
def served(request: pytest.FixtureRequest) -> Iterator[LightClient]:
    yield from answer(request.param)


JSON = b'{"models": []}'
OK = [b"HTTP/1.1 200 OK\r\ncontent-length: 14\r\n\r\n" + JSON]
CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize("served", [
    OK,
    [b"HTTP/1.1 200 OK\r\n", b"Content-Length: 14\r\n\r\n", JSON[:5], JSON[5:]],
    [b"HTTP/1.1 100 Continue\r\n\r\n", *OK],  # an interim answer comes first
    [b"HTTP/1.0 200 OK\r\n\r\n" + JSON],  # no length: the body ends with the connection
    [CHUNKED_HEAD + b"5;name=value\r\n" + JSON[:5] + b"\r\n", b"9\r\n" + JSON[5:]
     + b"\r\n0\r\nx-trailer: 1\r\n\r\n"],
], indirect=True)
def test_every_framing_gives_the_body(served: LightClient) -> None:
    assert served.list() == {"models": []}


def test_a_request_carries_host_length_and_close() -> None:
    server = RawServer(OK)
    try:
        LightClient(f"http://127.0.0.1:{server.port}").show("m")
        head, _, body = server.requests[0].partition(b"\r\n\r\n")
    finally:
        server.close()
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /api/show HTTP/1.1"
    assert f"host: 127.0.0.1:{server.port}" in lines and "connection: close" in lines
    assert f"content-length: {len(body)}" in lines and b'"model": "m"' in body


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


FIRST = b'{"message":{"content":"a"},"done":false}\n'
SECOND = b'{"message":{"content":"b"},"done":true}\n'


@pytest.mark.parametrize("served", [[
    CHUNKED_HEAD,
    chunk(FIRST[:10]), chunk(FIRST[10:] + SECOND[:7])[:9],  # a line over two chunks,
    chunk(FIRST[10:] + SECOND[:7])[9:], chunk(SECOND[7:]) + b"0\r\n\r\n",  # a chunk over two sends
]], indirect=True)
def test_stream_lines_are_whole_however_the_bytes_arrive(served: LightClient) -> None:
    parts = list(served.chat_stream("m", [{"role": "user", "content": "hi"}]))
    assert [p["message"]["content"] for p in parts] == ["a", "b"]
    assert [p["done"] for p in parts] == [False, True]


NOT_FOUND = b'{"error": "model not found"}'


@pytest.mark.parametrize("served", [[
    b"HTTP/1.1 404 Not Found\r\ncontent-length: %d\r\n\r\n%s" % (len(NOT_FOUND), NOT_FOUND),
]], indirect=True)
def test_an_error_answer_is_a_response_error(served: LightClient) -> None:
    with pytest.raises(ResponseError) as caught:
        served.list()
    assert caught.value.status_code == 404 and caught.value.error == "model not found"


@pytest.mark.parametrize(("pieces", "message"), [
    ([b"SSH-2.0-OpenSSH_9.6\r\n"], "not an HTTP answer"),
    ([b"HTTP/1.1 200 OK\r\ncontent-length: 99\r\n\r\n" + JSON], "85 bytes early"),
    ([b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n"], "bad content-length"),
    ([CHUNKED_HEAD + b"zz\r\n"], "bad chunk size"),
    ([CHUNKED_HEAD + b"-5\r\n"], "bad chunk size"),
    ([CHUNKED_HEAD + b"2\r\nabc\r\n"], "longer than its size"),
    ([b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n"], "malformed header"),
    ([b"HTTP/1.1 200 OK\r\n" + b"x: y\r\n" * 101 + b"\r\n"], "more than 100 headers"),
    ([b"HTTP/1.1 200 OK\r\nx: " + b"y" * 70000 + b"\r\n\r\n"], "longer than 65536"),
    ([b"HTTP/1.1 200 OK\r\ncontent"], "closed the connection in its headers"),
    ([], "closed the connection in its status line"),
    ([b"HTTP/1.1 100 Continue\r\n\r\n" * 11, *OK], "more than 10 interim answers"),
])
def test_an_answer_that_is_not_http_is_an_oserror_saying_why(pieces: list[bytes],
                                                              message: str) -> None:
    for client in answer(pieces):
        with pytest.raises(ProtocolError, match=message) as caught:
            client.list()
        assert isinstance(caught.value, OSError)


def test_a_header_that_would_split_the_request_is_refused_before_sending() -> None:
    server = RawServer(OK)
    try:
        client = LightClient(f"http://127.0.0.1:{server.port}",
                             headers={"x-evil": "a\r\nx-injected: 1"})
        with pytest.raises(ValueError, match="invalid header"):
            client.list()
        assert server.requests == [] or b"x-injected" not in server.requests[0]
    finally:
        server.close()


def test_a_silent_server_times_out() -> None:
    listener = socket.create_server(("127.0.0.1", 0))  # accepts (backlog), never answers
    try:
        sock = plain_http.connect("127.0.0.1", listener.getsockname()[1], timeout=0.2)
        with pytest.raises(TimeoutError):
            plain_http.request(sock, "GET", "/", "x", {}, None)
        sock.close()
    finally:
        listener.close()
