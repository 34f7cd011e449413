"""A threaded HTTP server on a free loopback port: the base of the tests' stand-in
servers (canned client replies, a fake registry, a recording proxy)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    quiet = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not self.quiet:
            super().handle_error(request, client_address)


class LoopbackServer:
    """Serves `handler` on 127.0.0.1 from a daemon thread, between `start()` and `stop()`
    or in a `with` block. `quiet` drops the traceback of a handler that failed (a client
    closing a stream early, where that is expected)."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], quiet: bool = False) -> None:
        self.httpd = _Server(("127.0.0.1", 0), handler)
        self.httpd.quiet = quiet
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,),
                                        daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
