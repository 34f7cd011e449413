"""The CLI's light client sends what `Client` sends and fails as `Client` fails.

`pasture list` / `ps` / `show` / `run` go through `LightClient` (standard library only,
issue 23), the library's users through `Client` (httpx); a server, a proxy or a script
reading error lines must not be able to tell them apart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pasture.client import Client, ResponseError, ServerNotRunningError
from pasture.client.light import LightClient
from tests.unit.canned_server import CannedServer, Reply

CREATED = "2026-01-01T00:00:00Z"
CHAT = [{"model": "m", "created_at": CREATED, "done": False,
         "message": {"role": "assistant", "content": "Hi"}},
        {"model": "m", "created_at": CREATED, "done": True,
         "message": {"role": "assistant", "content": ""}}]
# Headers each HTTP stack sets for itself; everything else must match.
TRANSPORT_HEADERS = {"host", "accept-encoding", "connection", "content-length"}


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[CannedServer]:
    monkeypatch.setenv("PASTURE_API_KEY", "secret")
    canned = CannedServer().start()
    canned.routes[("GET", "/api/tags")] = Reply(body={"models": []})
    canned.routes[("GET", "/api/ps")] = Reply(body={"models": []})
    canned.routes[("GET", "/api/version")] = Reply(body={"version": "1.2.3"})
    canned.routes[("POST", "/api/show")] = Reply(body={"details": {}, "modelfile": "FROM x\n"})
    canned.routes[("POST", "/api/chat")] = Reply(lines=CHAT)
    yield canned
    canned.stop()


def sent(server: CannedServer, call: Callable[[Any], Any], client: Any) -> list[Any]:
    """What the server saw for `call(client)`: method, path, JSON body, headers."""
    server.seen.clear()
    call(client)
    return [(s.method, s.path, s.json() if s.body else None,
             {k: v for k, v in s.headers.items() if k not in TRANSPORT_HEADERS})
            for s in server.seen]


CALLS: dict[str, Callable[[Any], Any]] = {
    "list": lambda c: c.list(),
    "ps": lambda c: c.ps(),
    "version": lambda c: c.version(),
    "show": lambda c: c.show("m", verbose=True),
    "chat": lambda c: c.chat("m", [{"role": "user", "content": "hi"}], keep_alive="1m"),
    "chat stream": lambda c: list(
        c.chat_stream("m", [{"role": "user", "content": "hi"}], think=True)
        if isinstance(c, LightClient)
        else c.chat("m", [{"role": "user", "content": "hi"}], think=True, stream=True)),
}


@pytest.mark.parametrize("name", CALLS)
def test_requests_match_the_full_clients(name: str, server: CannedServer) -> None:
    if name == "chat":
        server.routes[("POST", "/api/chat")] = Reply(body=CHAT[1])
    light = sent(server, CALLS[name], LightClient(server.url))
    full = sent(server, CALLS[name], Client(server.url))
    assert light == full
    assert light[0][3]["authorization"] == "Bearer secret"


def test_answers_are_the_servers_json(server: CannedServer) -> None:
    client = LightClient(server.url)
    assert client.version() == {"version": "1.2.3"}
    assert list(client.chat_stream("m", [])) == CHAT


@pytest.mark.parametrize("reply", [
    Reply(404, {"error": "model 'm' not found"}),
    Reply(500, raw=b"plain text failure", content_type="text/plain"),
    Reply(502, raw=b""),
])
def test_errors_match_the_full_clients(reply: Reply, server: CannedServer) -> None:
    server.routes[("POST", "/api/show")] = reply
    with pytest.raises(ResponseError) as light:
        LightClient(server.url).show("m")
    with pytest.raises(ResponseError) as full:
        Client(server.url).show("m")
    assert (light.value.error, light.value.status_code) == (
        full.value.error, full.value.status_code)


def test_an_error_line_in_a_stream_raises(server: CannedServer) -> None:
    server.routes[("POST", "/api/chat")] = Reply(lines=[CHAT[0], {"error": "boom"}])
    with pytest.raises(ResponseError, match="boom"):
        list(LightClient(server.url).chat_stream("m", []))


def test_nothing_listening_says_how_to_start_the_server(server: CannedServer) -> None:
    url = server.url
    server.stop()
    with pytest.raises(ServerNotRunningError) as light:
        LightClient(url).list()
    with pytest.raises(ServerNotRunningError) as full:
        Client(url).list()
    assert str(light.value) == str(full.value)


def test_redirects_are_followed_and_post_stays_post_on_307(server: CannedServer) -> None:
    server.routes[("POST", "/api/show")] = Reply(307, raw=b"",
                                                 headers={"location": "/moved/api/show"})
    server.routes[("POST", "/moved/api/show")] = Reply(body={"details": {}, "modelfile": "x"})
    assert LightClient(server.url).show("m")["modelfile"] == "x"
    assert Client(server.url).show("m").modelfile == "x"
    light, full = server.requests("POST", "/moved/api/show")
    assert light.json() == full.json() == {"model": "m", "verbose": False}


def test_a_proxy_from_the_environment_is_used_unless_no_proxy_names_the_host(
    server: CannedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The canned server plays the proxy: a plain-http proxy gets the absolute URL.
    target = "http://pasture.invalid:11434/api/tags"
    server.routes[("GET", target)] = Reply(body={"models": [{"name": "via proxy"}]})
    monkeypatch.setenv("HTTP_PROXY", server.url)
    assert LightClient("http://pasture.invalid:11434").list()["models"][0]["name"] == "via proxy"
    monkeypatch.setenv("NO_PROXY", "pasture.invalid")
    with pytest.raises(ServerNotRunningError):
        LightClient("http://pasture.invalid:11434").list()


@pytest.mark.parametrize(("reply", "message"), [
    (Reply(raw=b"<html>a proxy's page</html>"), "invalid JSON in server answer"),
    (Reply(body=["not", "an", "object"]), "unexpected answer from the server"),
])
def test_an_answer_that_is_not_a_json_object_is_a_response_error(
    reply: Reply, message: str, server: CannedServer
) -> None:
    server.routes[("GET", "/api/tags")] = reply
    with pytest.raises(ResponseError, match=message) as raised:
        LightClient(server.url).list()
    assert raised.value.status_code == 200
