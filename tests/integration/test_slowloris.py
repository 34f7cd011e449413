"""Slow clients on a live server: a request head trickled a byte at a time, or a body that
stops, is dropped after PASTURE_HEADER_TIMEOUT / PASTURE_BODY_TIMEOUT while other clients
keep being served; a body that keeps trickling and a long streamed answer are not cut."""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.integration.conftest import RunningServer, import_model, start_server, stop_server

TIMEOUT = 2  # seconds, both clocks
GIVE_UP = 30  # a socket still open after this long was never going to be closed


@pytest.fixture(scope="module")
def timed_server(tmp_path_factory: pytest.TempPathFactory,
                 smollm2_gguf: Path) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("slowloris")
    server = start_server(root / "models", root / "log", PASTURE_HEADER_TIMEOUT=str(TIMEOUT),
                          PASTURE_BODY_TIMEOUT=str(TIMEOUT))
    import_model(server.url, smollm2_gguf, "smol")
    yield server
    stop_server(server)


def connect(server: RunningServer) -> socket.socket:
    address = urlsplit(server.url)
    return socket.create_connection((address.hostname, address.port), timeout=GIVE_UP)


def is_answered(sock: socket.socket) -> bool:
    """True once the server has written to or closed the socket."""
    return bool(select.select([sock], [], [], 0)[0])


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def assert_dropped(reply: bytes) -> None:
    """Closed with a 408 or with nothing at all, never another answer."""
    assert reply == b"" or reply.startswith(b"HTTP/1.1 408 "), reply[:200]


def trickle(sockets: list[socket.socket], data: bytes, stop: threading.Event) -> None:
    """Send `data` to every socket a byte at a time, 0.2 s apart, until each is answered."""
    for byte in data:
        if stop.is_set():
            return
        for sock in sockets:
            if not is_answered(sock):
                try:
                    sock.send(bytes([byte]))
                except OSError:
                    pass  # closed under us: what the test waits for
        time.sleep(0.2)


def test_trickled_headers_are_dropped_while_others_are_served(
        timed_server: RunningServer) -> None:
    slow = [connect(timed_server) for _ in range(20)]
    silent = connect(timed_server)  # connects and never sends a byte
    endless_head = b"GET /api/version HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Pad: a\r\n" * 200
    stop = threading.Event()
    sender = threading.Thread(target=trickle, args=(slow, endless_head, stop))
    sender.start()
    try:
        time.sleep(0.5)
        version = httpx.get(timed_server.url + "/api/version", timeout=GIVE_UP)
        assert version.status_code == 200
        still_open = [s for s in slow if not is_answered(s)]
        assert still_open, "the normal request should be served while the slow ones wait"
        for sock in slow:
            assert_dropped(read_all(sock))
        assert read_all(silent) == b""  # nothing was asked, so nothing is answered
        assert httpx.get(timed_server.url + "/api/version", timeout=GIVE_UP).status_code == 200
    finally:
        stop.set()
        sender.join()
        for sock in [*slow, silent]:
            sock.close()
    assert "no complete request head" in timed_server.log()


def test_a_stalled_body_is_dropped_with_408(timed_server: RunningServer) -> None:
    with connect(timed_server) as sock:
        sock.sendall(b"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
                     b'{"model": "smol", ')
        assert httpx.get(timed_server.url + "/api/tags", timeout=GIVE_UP).status_code == 200
        reply = read_all(sock)
    assert reply.startswith(b"HTTP/1.1 408 "), reply[:200]
    assert b"connection: close" in reply.lower()
    assert "request body stalled" in timed_server.log()


def test_a_stalled_blob_upload_leaves_no_temporary_file(timed_server: RunningServer) -> None:
    blobs = timed_server.models_dir / "blobs"
    before = set(blobs.iterdir())
    with connect(timed_server) as sock:
        sock.sendall(f"POST /api/blobs/sha256:{'ab' * 32} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     f"Content-Length: {8 << 20}\r\n\r\n".encode() + b"x" * (1 << 20))
        assert_dropped(read_all(sock))
    deadline = time.monotonic() + GIVE_UP
    while set(blobs.iterdir()) != before and time.monotonic() < deadline:
        time.sleep(0.1)  # the handler removes its temporary file as it unwinds
    assert set(blobs.iterdir()) == before


def test_a_body_that_keeps_trickling_is_not_cut(timed_server: RunningServer) -> None:
    """The body clock measures silence, not the whole upload."""
    body = b'{"model":"nope"}'  # longer, at 0.2 s a byte, than TIMEOUT
    with connect(timed_server) as sock:
        sock.sendall(b"POST /api/show HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body))
        trickle([sock], body, threading.Event())
        reply = read_all(sock)
    assert reply.startswith(b"HTTP/1.1 404 "), reply[:200]


def test_a_streamed_answer_outlives_both_timeouts(timed_server: RunningServer) -> None:
    request = {"model": "smol", "raw": True, "options": {"num_predict": 3000, "temperature": 0},
               "prompt": "Once upon a time, in an old lighthouse by a stormy sea,"}
    chunks, outlived = 0, False
    with httpx.stream("POST", timed_server.url + "/api/generate", json=request,
                      timeout=GIVE_UP) as reply:
        assert reply.status_code == 200
        started = time.monotonic()
        for line in reply.iter_lines():
            chunk = json.loads(line)
            assert "error" not in chunk and not chunk["done"], chunk
            chunks += 1
            if time.monotonic() - started > 2 * TIMEOUT:
                outlived = True  # well past both clocks and still streaming
                break
    assert outlived and chunks > 1
