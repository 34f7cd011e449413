"""One model's repository on a registry: URLs, authentication, capped reads, error mapping.

Everything a registry sends is read with a cap (manifests 4 MiB, tokens and error bodies
1 MiB), redirects stop after 10, and the bearer token only ever goes to the registry's
own host: a redirect elsewhere (a CDN) is followed without it.
"""

from __future__ import annotations

import contextlib
import json
import platform
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

from pasture import __version__
from pasture.errors import BadRequestError, NotFoundError, PastureError
from pasture.store.manifests import MAX_MANIFEST_BYTES, MEDIA_TYPE_MANIFEST, InvalidManifestError
from pasture.store.names import ModelName
from pasture.store.registry import auth
from pasture.store.registry.errors import (
    RegistryAuthError,
    RegistryError,
    RegistryUnreachableError,
)
from pasture.store.registry.options import TransferOptions

MAX_SMALL_BODY = 1 << 20  # tokens and error documents
MAX_REDIRECTS = 10
_MANIFEST_TOO_LARGE = "invalid manifest: larger than 4 MiB"
USER_AGENT = f"pasture/{__version__} ({platform.machine()} {platform.system().lower()})"

Body = Callable[[], AsyncIterator[bytes]] | bytes | None


def registry_base(name: ModelName, insecure: bool, mirror: str | None = None) -> str:
    """`scheme://host` for a name: plain http only when the request says `insecure`.

    As in Ollama, `insecure` also downgrades a name without a scheme to http, so
    `pull 127.0.0.1:5000/library/x --insecure` reaches a local registry. A `mirror` the
    server's settings give for the name's host is used as it is, http or https.
    """
    if mirror is not None:
        return mirror
    if name.scheme == "http" and not insecure:
        raise BadRequestError("insecure protocol http")
    return f"{'http' if insecure else name.scheme}://{name.host}"


def describe_status(response: httpx.Response, body: bytes) -> str:
    """`<status>: <registry's first error message>` from a distribution error document."""
    detail = ""
    try:
        errors = json.loads(body).get("errors") or []
        if errors and isinstance(errors[0], dict):
            first = errors[0]
            detail = " ".join(str(first.get(k, "")) for k in ("code", "message")).strip()
    except (ValueError, AttributeError):
        pass
    return f"{response.status_code}: {detail[:200] or response.reason_phrase}"


async def read_capped(response: httpx.Response, limit: int,
                      too_large: PastureError) -> bytes:
    """The body, raising `too_large` rather than reading more than `limit` bytes."""
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    data = bytearray()
    async for chunk in response.aiter_bytes():
        data += chunk
        if len(data) > limit:
            raise too_large
    return bytes(data)


class RegistryClient:
    """Requests to one repository (`namespace/model`) of one registry.

    Use as an async context manager. `clone()` makes a client of its own for a task that
    may outlive the caller (a download shared by several pulls).
    """

    def __init__(self, name: ModelName, *, insecure: bool = False,
                 options: TransferOptions | None = None) -> None:
        self.name = name
        self.insecure = insecure
        self.options = options or TransferOptions()
        self.base = registry_base(name, insecure, self.options.mirror(name.host))
        self.repository = f"{name.namespace}/{name.model}"
        self.token: str | None = None
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(self.options.timeout, connect=10.0),
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            headers={"User-Agent": USER_AGENT},
        )

    def clone(self) -> RegistryClient:
        other = RegistryClient(self.name, insecure=self.insecure, options=self.options)
        other.token = self.token
        return other

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def host(self) -> str:
        return self.name.host

    def url(self, *path: str) -> str:
        """`<base>/v2/<namespace>/<model>/<path…>`."""
        return "/".join([self.base, "v2", self.repository, *path])

    def _same_host(self, url: httpx.URL) -> bool:
        base = httpx.URL(self.base)
        return (url.scheme, url.host, url.port) == (base.scheme, base.host, base.port)

    # ----- requests -------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def request(self, method: str, url: str | httpx.URL, *,
                      headers: dict[str, str] | None = None, body: Body = None,
                      params: dict[str, str] | None = None,
                      ) -> AsyncIterator[httpx.Response]:
        """Send a request (streamed response), authenticating once on a 401 challenge.

        `body` is bytes or a factory of async chunks, so it can be sent again after the
        challenge. Network failures become RegistryError.
        """
        target = httpx.URL(url).copy_merge_params(params) if params else httpx.URL(url)
        for attempt in (0, 1):
            response = await self._send(method, target, headers or {}, body)
            if response.status_code != 401 or attempt == 1:
                break
            header = response.headers.get("www-authenticate", "")
            await response.aclose()
            challenge = auth.parse_challenge(header)
            if challenge is None:
                raise RegistryAuthError(
                    f"unauthorized: registry {self.host} requires a login Pasture cannot do")
            self.token = await self._fetch_token(challenge)
        try:
            if response.status_code == 401:
                await response.aclose()
                raise RegistryAuthError(f"unauthorized: registry {self.host} denied access")
            yield response
        finally:
            await response.aclose()

    async def _send(self, method: str, url: httpx.URL, headers: dict[str, str],
                    body: Body) -> httpx.Response:
        headers = dict(headers)
        if self.token and self._same_host(url):
            headers["Authorization"] = f"Bearer {self.token}"
        content: Any = body() if callable(body) else body
        request = self._http.build_request(method, url, headers=headers, content=content)
        try:
            response = await self._http.send(request, stream=True)
        except httpx.TooManyRedirects:
            raise RegistryError(f"registry {self.host}: too many redirects") from None
        except httpx.TimeoutException:
            raise RegistryUnreachableError(f"registry {self.host} timed out") from None
        except httpx.TransportError as exc:
            raise RegistryUnreachableError(
                f"could not reach registry {self.host}: {type(exc).__name__}") from None
        return response  # httpx drops Authorization itself on a cross-origin redirect

    async def _fetch_token(self, challenge: auth.Challenge) -> str:
        auth.check_realm(challenge.realm, self.base)
        url = auth.token_url(challenge)
        headers = {}
        if auth.wants_signature(self.host):
            key = auth.load_or_create_key(self.options.key_path or auth.default_key_path())
            headers["Authorization"] = auth.sign_request(key, "GET", url)
        try:
            async with self._http.stream("GET", url, headers=headers) as response:
                body = await read_capped(response, MAX_SMALL_BODY,
                                          RegistryError("registry token response too large"))
        except httpx.HTTPError as exc:
            raise RegistryError(
                f"could not reach registry {self.host}: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise RegistryAuthError(f"unauthorized: token request failed with "
                                    f"{describe_status(response, body)}")
        try:
            document = json.loads(body)
            token = document.get("token") or document.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise RegistryAuthError("unauthorized: the registry's token response has no token")
        return token

    async def fail(self, response: httpx.Response, what: str) -> RegistryError:
        """The error for an unexpected answer, with the registry's own message."""
        body = await read_capped(response, MAX_SMALL_BODY,
                                 RegistryError(f"{what}: registry error response too large"))
        return RegistryError(f"{what}: {describe_status(response, body)}")

    # ----- manifests ----------------------------------------------------------------------

    async def get_manifest(self, tag: str) -> tuple[bytes, str | None]:
        """The raw manifest for `tag` and the digest the registry claims for it.

        404 is Ollama's `file does not exist`.
        """
        async with self.request("GET", self.url("manifests", tag),
                                headers={"Accept": MEDIA_TYPE_MANIFEST}) as response:
            if response.status_code == 404:
                raise NotFoundError("pull model manifest: file does not exist")
            if response.status_code != 200:
                raise await self.fail(response, "pull model manifest")
            data = await read_capped(response, MAX_MANIFEST_BYTES,
                                     InvalidManifestError(_MANIFEST_TOO_LARGE))
            return data, response.headers.get("docker-content-digest")

    async def put_manifest(self, tag: str, data: bytes) -> None:
        async with self.request("PUT", self.url("manifests", tag), body=data,
                                headers={"Content-Type": MEDIA_TYPE_MANIFEST}) as response:
            if response.status_code not in (200, 201):
                raise await self.fail(response, "push model manifest")

    # ----- blobs --------------------------------------------------------------------------

    async def blob_exists(self, digest: str) -> bool:
        async with self.request("HEAD", self.url("blobs", digest)) as response:
            if response.status_code == 200:
                return True
            if response.status_code == 404:
                return False
            raise await self.fail(response, f"check blob {digest[7:19]}")
