"""`LightClient`: the calls `pasture` makes on every run, with the standard library only.

People call `pasture list` / `ps` / `show` / `run` from shell prompts, editors and scripts
many times a minute (issue 23), and importing httpx and the pydantic wire types takes
longer than the whole command should. This client sends the same requests as `Client`
(URL, headers and API key, errors and stream lines from `_wire`) and returns the server's
JSON as dicts, which is what the CLI prints from. `Client` stays the library's API and
what the CLI uses for everything that uploads or shows progress.

A plain `http://` server with no proxy in the way is spoken to over a socket
(`plain_http`); https and proxies go through `http.client`, which is slower to import.
Like httpx, it honours HTTP(S)_PROXY / ALL_PROXY / NO_PROXY, verifies https as `Client`
does (PASTURE_CA_FILE, SSL_CERT_FILE, SSL_CERT_DIR or certifi's bundle), and follows
redirects. Whatever goes wrong on the way is an `OSError` (`ServerNotRunningError` when
nothing listens), and an error answer a `ResponseError`.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import SplitResult, urljoin, urlsplit

from pasture.client import plain_http
from pasture.client._wire import (
    base_url,
    connect_failure,
    decode_line,
    decode_reply,
    default_headers,
    given,
    response_error,
    tls_context,
)

if TYPE_CHECKING:
    import http.client
    import ssl

Json = dict[str, Any]
_T = TypeVar("_T")
_REDIRECTS = (301, 302, 303, 307, 308)
_MAX_REDIRECTS = 20  # httpx's limit


class Response(Protocol):
    """What the light client reads of an answer: `plain_http.PlainResponse`, or
    `http.client.HTTPResponse` (https, proxies)."""

    status: int
    reason: str

    def getheader(self, name: str, default: str | None = None) -> str | None: ...
    def read(self) -> bytes: ...
    def __iter__(self) -> Iterator[bytes]: ...
    def close(self) -> None: ...


class LightClient:
    """Blocking calls answering plain JSON: the server's reply, as `json.loads` reads it.

    >>> LightClient().list()["models"]

    Failures raise `ResponseError` (the server said no) or `ServerNotRunningError`
    (nothing listens at the address), as `Client` does.
    """

    def __init__(
        self, host: str | None = None, *, headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> None:
        self.url = base_url(host)
        self.headers = default_headers(headers)
        self.timeout = timeout

    # ----- the calls ----------------------------------------------------------------------

    def list(self) -> Json:
        return self._call("GET", "/api/tags")

    def ps(self) -> Json:
        return self._call("GET", "/api/ps")

    def nodes(self) -> Json:
        return self._call("GET", "/api/nodes")

    def version(self) -> Json:
        return self._call("GET", "/api/version")

    def show(self, model: str, *, verbose: bool | None = None) -> Json:
        return self._call("POST", "/api/show", {"model": model, "verbose": bool(verbose)})

    def embed(self, model: str, input: str | Sequence[str], *,
              keep_alive: float | str | None = None) -> Json:
        body = {"model": model, "input": input, "keep_alive": keep_alive}
        return self._call("POST", "/api/embed", given(body))

    def chat(self, model: str, messages: Sequence[Json], **fields: Any) -> Json:
        """One whole answer; `fields` are the request's other keys (`keep_alive`, `think`...)."""
        return self._call("POST", "/api/chat", _chat(model, messages, False, fields))

    def chat_stream(
        self, model: str, messages: Sequence[Json], **fields: Any
    ) -> Generator[Json, None, None]:
        """The answer's parts as they come; closing the generator stops the answer."""
        return self._stream("/api/chat", _chat(model, messages, True, fields))

    # ----- transport ----------------------------------------------------------------------

    def _call(self, method: str, path: str, body: Json | None = None) -> Json:
        with self._exchange(method, path, body) as response:
            return decode_reply(response.read().decode("utf-8", "replace"), response.status)

    def _stream(self, path: str, body: Json) -> Generator[Json, None, None]:
        # A generator, as in `Client`: the request goes out on the first `next()`.
        with self._exchange("POST", path, body) as response:
            for line in response:
                if (part := decode_line(line.decode("utf-8", "replace"))) is not None:
                    yield part

    @contextmanager
    def _exchange(self, method: str, path: str, body: Json | None) -> Iterator[Response]:
        """Send one request, following redirects; yield a 2xx response, else raise."""
        url = urlsplit(self.url + path)
        data = None if body is None else json.dumps(body).encode()
        headers = dict(self.headers)
        for _ in range(_MAX_REDIRECTS + 1):
            with ExitStack() as opened:
                try:
                    response = self._send(method, url, headers, data, opened)
                    location = response.getheader("location")
                    if response.status in _REDIRECTS and location:
                        following = urlsplit(urljoin(url.geturl(), location))
                        method, data = _redirected(method, data, response.status)
                        if (following.scheme, following.netloc) != (url.scheme, url.netloc):
                            headers.pop("authorization", None)  # httpx's rule: not elsewhere
                        url = following
                        continue
                    if response.status >= 400:
                        text = response.read().decode("utf-8", "replace")
                        raise response_error(response.status, response.reason, text)
                    yield response
                    return
                except _http_client_errors() as exc:  # an answer that is not HTTP
                    raise plain_http.ProtocolError(str(exc) or type(exc).__name__) from None
        raise plain_http.ProtocolError(f"Exceeded maximum allowed redirects ({_MAX_REDIRECTS})")

    def _send(self, method: str, url: SplitResult, headers: dict[str, str],
              data: bytes | None, opened: ExitStack) -> Response:
        """Send one request to `url`; the answer with its head read. What it opens is
        closed with `opened`."""
        host, port = _host_port(url)
        target = url.path + (f"?{url.query}" if url.query else "")
        proxy = _proxy_for(url)
        if url.scheme == "http" and proxy is None:
            sock = self._connected(lambda: plain_http.connect(host, port, self.timeout))
            opened.callback(sock.close)
            response = plain_http.request(sock, method, target, url.netloc, headers, data)
            opened.callback(response.close)
            return response
        connection, target, proxy_headers = self._through_http_client(url, host, port, proxy,
                                                                      target)
        opened.callback(connection.close)
        connection.request(method, target, body=data, headers={**headers, **proxy_headers})
        return connection.getresponse()

    def _connected(self, connect: Callable[[], _T]) -> _T:
        """`connect()`'s result; nothing listening is `ServerNotRunningError`."""
        try:
            return connect()
        except TimeoutError:
            raise
        except OSError as exc:
            raise connect_failure(self.url, exc) from None

    def _through_http_client(
        self, url: SplitResult, host: str, port: int, proxy: SplitResult | None, target: str,
    ) -> tuple[http.client.HTTPConnection, str, dict[str, str]]:
        """An open `http.client` connection for `url` (https, or through a proxy), the
        request target, and the headers the proxy needs on each request."""
        proxy_headers: dict[str, str] = {}
        tls = tls_context() if url.scheme == "https" else None
        if proxy is None:
            connection = _connection(host, port, tls, self.timeout)
        else:
            via = tls_context() if proxy.scheme == "https" else None
            connection = _connection(*_host_port(proxy), tls or via, self.timeout)
            auth = _proxy_authorization(proxy)
            if tls is not None:  # https through the proxy: a CONNECT tunnel
                connection.set_tunnel(host, port, headers=auth)
            else:  # plain http: the proxy takes the absolute URL
                target, proxy_headers = url.geturl(), auth
        self._connected(connection.connect)
        return connection, target, proxy_headers


def _chat(model: str, messages: Sequence[Json], stream: bool, fields: Mapping[str, Any]) -> Json:
    return given({"model": model, "messages": list(messages), "stream": stream, **fields})


def _host_port(url: SplitResult) -> tuple[str, int]:
    """Where `url` connects: its host, and its port or its scheme's."""
    return url.hostname or "", url.port or (443 if url.scheme == "https" else 80)


def _http_client_errors() -> tuple[type[Exception], ...]:
    """`http.client`'s exceptions, if it was used (only https and proxies load it)."""
    loaded = sys.modules.get("http.client")
    return (loaded.HTTPException,) if loaded is not None else ()


def _connection(host: str, port: int, tls: ssl.SSLContext | None,
                timeout: float | None) -> http.client.HTTPConnection:
    import http.client

    if tls is None:
        return http.client.HTTPConnection(host, port, timeout=timeout)
    return http.client.HTTPSConnection(host, port, timeout=timeout, context=tls)


def _redirected(method: str, data: bytes | None, status: int) -> tuple[str, bytes | None]:
    """What a redirect asks for: GET without a body after a 303 (and a POST's 301/302)."""
    if status == 303 and method != "HEAD" or status in (301, 302) and method == "POST":
        return "GET", None
    return method, data


def _proxy_for(url: SplitResult) -> SplitResult | None:
    """The proxy the environment names for `url`, unless NO_PROXY exempts its host."""
    if not any(name.lower().endswith("_proxy") for name in os.environ):
        return None
    import urllib.request  # only when a proxy is configured: it is slow to import

    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(url.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass_environment(url.hostname or "", proxies):
        return None
    return urlsplit(proxy if "://" in proxy else f"http://{proxy}")


def _proxy_authorization(proxy: SplitResult) -> dict[str, str]:
    if proxy.username is None:
        return {}
    import base64
    from urllib.parse import unquote

    user = f"{unquote(proxy.username)}:{unquote(proxy.password or '')}"
    return {"proxy-authorization": "Basic " + base64.b64encode(user.encode()).decode()}
