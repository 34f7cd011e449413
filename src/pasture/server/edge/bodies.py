"""Request bodies as the API takes them."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


class JSONBodies:
    """Treat every API body as JSON whatever its Content-Type, as Ollama does (`curl -d`
    sends form encoding); blob uploads are raw bytes and keep theirs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path.startswith(("/api/", "/v1/")) and \
                not path.startswith("/api/blobs/"):
            headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
            # in place: the middleware outside reads the matched route from this scope
            scope["headers"] = [*headers, (b"content-type", b"application/json")]
        await self.app(scope, receive, send)
