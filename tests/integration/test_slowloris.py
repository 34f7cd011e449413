"""Slow clients on a live server: a request head trickled a byte at a time, or a body that
stops, is dropped after PASTURE_HEADER_TIMEOUT / PASTURE_BODY_TIMEOUT while other clients
keep being served; a body that trickles on is cut at PASTURE_BODY_DEADLINE; a long
streamed answer is not cut. Connections past PASTURE_MAX_CONNECTIONS are refused at once,
and running out of file descriptors is one log line, not one a second."""

from __future__ import annotations

import json
import select
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.integration.conftest import RunningServer, import_model, start_server, stop_server
from tests.loop_probe import STALL_LIMIT, HTTPProbe

TIMEOUT = 2  # seconds, both clocks
DEADLINE = 5  # seconds for a whole request body (the trickle below earns nothing more)
GIVE_UP = 30  # a socket still open after this long was never going to be closed


@pytest.fixture(scope="module")
def timed_server(tmp_path_factory: pytest.TempPathFactory,
                 smollm2_gguf: Path) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("slowloris")
    server = start_server(root / "models", root / "log", PASTURE_HEADER_TIMEOUT=str(TIMEOUT),
                          PASTURE_BODY_TIMEOUT=str(TIMEOUT), PASTURE_BODY_DEADLINE=str(DEADLINE))
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


def trickle(sockets: list[socket.socket], data: bytes, stop: threading.Event,
            every: float = 0.2, sent: dict[socket.socket, int] | None = None) -> None:
    """Send `data` to every socket a byte at a time, `every` s apart, until each is
    answered; `sent` counts the bytes each socket took."""
    for byte in data:
        if stop.is_set():
            return
        for sock in sockets:
            if not is_answered(sock):
                try:
                    sock.send(bytes([byte]))
                    if sent is not None:
                        sent[sock] = sent.get(sock, 0) + 1
                except OSError:
                    pass  # closed under us: what the test waits for
        stop.wait(every)


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


def test_bodies_trickling_forever_are_cut_at_the_deadline_while_others_are_served(
        timed_server: RunningServer) -> None:
    """The attack of issue 15: each client declares a large body and sends a byte just
    often enough never to go silent. All are dropped at the deadline, with one log line."""
    head = (b"POST /api/show HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Length: 100000\r\n\r\n")
    slow = [connect(timed_server) for _ in range(50)]
    for sock in slow:
        sock.sendall(head)
    stop, sent = threading.Event(), {}  # a byte a second for three deadlines, then no more
    trickled = b"{" * 3 * DEADLINE
    sender = threading.Thread(target=trickle, args=(slow, trickled, stop, 1.0, sent))
    try:
        with HTTPProbe(timed_server.url) as probe:
            sender.start()
            replies = [read_all(sock) for sock in slow]
        assert all(reply.startswith(b"HTTP/1.1 408 ") for reply in replies), replies[0][:200]
        # Cut while still sending (not for going silent once the trickle ends).
        assert max(sent.values()) < len(trickled)
        assert probe.answers > 10 and probe.worst < STALL_LIMIT
    finally:
        stop.set()
        sender.join()
        for sock in slow:
            sock.close()
    assert timed_server.log().count("request body too slow") == 1  # the others held back


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


FD_LIMIT = 160  # the capped server's open-file limit: a flood of sockets exhausts it
CAP = 20


@pytest.fixture(scope="module")
def capped_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("capped")
    command = ["sh", "-c", f"ulimit -n {FD_LIMIT} && exec {sys.executable} -m pasture serve"]
    server = start_server(root / "models", root / "log", command=command,
                          PASTURE_MAX_CONNECTIONS=str(CAP), PASTURE_HEADER_TIMEOUT="5")
    yield server
    stop_server(server)


def get_version(sock: socket.socket) -> bytes:
    sock.sendall(b"GET /api/version HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    return read_all(sock)


def test_a_connection_over_the_cap_is_refused_at_once_with_503(
        capped_server: RunningServer) -> None:
    held = [connect(capped_server) for _ in range(CAP)]
    try:
        time.sleep(0.5)  # all accepted
        with connect(capped_server) as extra:
            reply = get_version(extra)
        assert reply.startswith(b"HTTP/1.1 503 "), reply[:200]
        assert json.loads(reply.split(b"\r\n\r\n", 1)[1]) == {
            "error": f"server busy: too many open connections (limit {CAP}), try again later"}
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + GIVE_UP
    while time.monotonic() < deadline:  # the held ones close, and room is made
        with connect(capped_server) as sock:
            if get_version(sock).startswith(b"HTTP/1.1 200 "):
                break
        time.sleep(0.1)
    else:
        pytest.fail("the server did not take connections again")
    assert "refusing a connection" in capped_server.log()


def test_running_out_of_file_descriptors_is_one_log_line(capped_server: RunningServer) -> None:
    flood: list[socket.socket] = []
    try:
        for _ in range(2 * FD_LIMIT):  # far more than the server's descriptors
            flood.append(connect(capped_server))
        time.sleep(3)  # asyncio retries a failed accept every second
    finally:
        for sock in flood:
            sock.close()
    deadline = time.monotonic() + GIVE_UP
    while time.monotonic() < deadline:
        try:
            if httpx.get(capped_server.url + "/api/version", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    log = capped_server.log()
    about_fds = [line for line in log.splitlines()
                 if "Too many open files" in line or "out of file descriptors" in line]
    assert len(about_fds) == 1, about_fds[:5]
    assert len(log.splitlines()) < 100  # asyncio's repeated errors are held back too
    assert log.count("refusing a connection") == 1
