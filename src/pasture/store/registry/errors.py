"""What can go wrong talking to a registry, each kind with its own HTTP status.

A registry is someone else's server: when it is unreachable or answers nonsense the
fault is upstream (502); when it refuses our credentials, 401; when what it sends is
unsafe or corrupt (a manifest too large, a blob that does not match its digest, a token
realm on another host), the request named a bad source (400); a full disk is 507.
"""

from __future__ import annotations

from pasture.errors import BadRequestError, PastureError


class RegistryError(PastureError):
    """The registry could not be reached or answered something unusable (502)."""

    status = 502


class RegistryUnreachableError(RegistryError):
    """The connection failed or timed out: worth retrying (502)."""


class RegistryAuthError(PastureError):
    """The registry refused access even after authenticating (401)."""

    status = 401


class UnsafeRegistryError(BadRequestError):
    """The registry asked for something Pasture refuses to do, such as sending a
    token request to another host (400)."""


class DiskFullError(PastureError):
    """No space left for a download; the partial file is kept for a later resume (507)."""

    status = 507

    def __init__(self, digest: str) -> None:
        super().__init__(f"no space left on device while downloading {digest[7:19]}: "
                         "free some space and pull again to resume")
