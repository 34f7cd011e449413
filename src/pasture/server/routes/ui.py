"""`/ui`: the chat page, served from the files shipped in the package (`static/ui`).

The files are built from `clients/ui` (index.html, plus a script and a stylesheet named
by a hash of their content) and committed. They are read once into memory, so a
request can only ever name one of them: a path that is not one of those names, `..` and
encoded slashes included, is a 404 and never reaches the file system.

Every answer carries a strict Content-Security-Policy: scripts and styles from this
origin only (no inline code, so model output that slips past the sanitiser cannot run),
requests to this origin only (nothing leaves the machine), images from this origin or
`data:`/`blob:` URLs (attached images). Hashed assets are cached for a year; the page is
revalidated on every load (`no-cache` with an ETag), so a new build shows at once.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from pasture.errors import NotFoundError

router = APIRouter(include_in_schema=False)

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
PAGE = "index.html"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


@dataclass(frozen=True)
class Asset:
    """One file of the page, with its headers and a gzip copy worked out once."""

    body: bytes
    gzipped: bytes
    content_type: str
    etag: str
    cache_control: str


@cache
def assets() -> dict[str, Asset]:
    """The page's files by name: the only names `/ui/…` answers for."""
    folder = resources.files("pasture.server").joinpath("static", "ui")
    found: dict[str, Asset] = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if not entry.is_file() or suffix not in CONTENT_TYPES:
            continue
        body = entry.read_bytes()
        found[entry.name] = Asset(
            body=body,
            gzipped=gzip.compress(body, compresslevel=9, mtime=0),
            content_type=CONTENT_TYPES[suffix],
            etag='"' + hashlib.sha256(body).hexdigest()[:32] + '"',
            cache_control=REVALIDATE if entry.name == PAGE else IMMUTABLE,
        )
    return found


@router.api_route("/ui", methods=["GET", "HEAD"])
async def page_without_slash() -> RedirectResponse:
    """The page's relative asset and API URLs need the trailing slash; a relative
    Location keeps a reverse proxy's path prefix."""
    return RedirectResponse("ui/", status_code=308, headers=SECURITY_HEADERS)


@router.api_route("/ui/", methods=["GET", "HEAD"])
async def page(request: Request) -> Response:
    return _answer(request, PAGE)


@router.api_route("/ui/{name:path}", methods=["GET", "HEAD"])
async def asset(request: Request, name: str) -> Response:
    return _answer(request, name)


def _answer(request: Request, name: str) -> Response:
    found = assets().get(name)
    if found is None:
        raise NotFoundError(f"no such file in the UI: {name[:100]!r}")
    headers = {**SECURITY_HEADERS, "ETag": found.etag, "Cache-Control": found.cache_control,
               "Vary": "Accept-Encoding"}
    if found.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    body = found.body
    if "gzip" in request.headers.get("accept-encoding", ""):
        body = found.gzipped
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type=found.content_type, headers=headers)
