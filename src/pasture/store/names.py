"""Ollama model names: `[scheme://][host/][namespace/]model[:tag]`.

Follows Ollama's `types/model/name.go`: the string is cut from the right (tag at the last `:`
after the last `/`, then model, namespace, host), missing parts are filled with the defaults,
and each part must match its character class. A name is also a path below `manifests/`, so
the grammar is the store's only defence against traversal: no part may contain a separator,
start with a dot, or contain `..`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pasture.errors import InvalidNameError

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
DEFAULT_SCHEME = "https"

# First character alphanumeric or `_`; lengths as in name.go's isValidLen, except the host:
# Ollama allows 350 characters, but the host is a directory below `manifests/` and a path
# component holds 255 bytes, so a longer one failed at write time (ENAMETOOLONG, a 500).
# No real host is longer: DNS names stop at 253 characters.
MAX_HOST = 255
_HOST_RE = re.compile(rf"[A-Za-z0-9_][A-Za-z0-9_.:-]{{0,{MAX_HOST - 1}}}")
_NAMESPACE_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,79}")
_MODEL_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}")
_TAG_RE = _MODEL_RE
_DIGEST_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_:-]{0,79}")
_SCHEMES = ("http", "https")


def _valid(pattern: re.Pattern[str], part: str) -> bool:
    return pattern.fullmatch(part) is not None and ".." not in part


@dataclass(frozen=True)
class ModelName:
    """A fully qualified model name; build one with `ModelName.parse`."""

    host: str
    namespace: str
    model: str
    tag: str
    scheme: str = DEFAULT_SCHEME

    def __post_init__(self) -> None:
        if not (
            _valid(_HOST_RE, self.host)
            and _valid(_NAMESPACE_RE, self.namespace)
            and _valid(_MODEL_RE, self.model)
            and _valid(_TAG_RE, self.tag)
            and self.scheme in _SCHEMES
        ):
            raise InvalidNameError()

    @classmethod
    def parse(cls, text: str) -> ModelName:
        """Parse a user-supplied name, filling in Ollama's defaults.

        >>> ModelName.parse("smollm2:135m").full
        'registry.ollama.ai/library/smollm2:135m'
        """
        if not isinstance(text, str) or not text:
            raise InvalidNameError()
        rest = text
        at = rest.rfind("@")
        if at >= 0:  # `@digest` pins a version; accepted but not used for storage
            rest, digest = rest[:at], rest[at + 1 :]
            if not _valid(_DIGEST_RE, digest) or not rest:
                raise InvalidNameError()

        tag = namespace = host = ""
        scheme = DEFAULT_SCHEME
        if rest.rfind(":") > rest.rfind("/"):
            rest, _, tag = rest.rpartition(":")
            if not tag or not rest:
                raise InvalidNameError()
        rest, slash, model = rest.rpartition("/")
        if slash:
            if not rest or not model:
                raise InvalidNameError()
            rest, slash, namespace = rest.rpartition("/")
            if slash:
                if not rest or not namespace:
                    raise InvalidNameError()
                scheme_part, sep, host = rest.partition("://")
                if sep:
                    scheme = scheme_part
                else:
                    host = scheme_part
        return cls(
            host=host or DEFAULT_HOST,
            namespace=namespace or DEFAULT_NAMESPACE,
            model=model,
            tag=tag or DEFAULT_TAG,
            scheme=scheme,
        )

    @classmethod
    def from_manifest_parts(cls, host: str, namespace: str, model: str, tag: str) -> ModelName:
        """The name stored at `manifests/<host>/<namespace>/<model>/<tag>`."""
        return cls(host=host, namespace=namespace, model=model, tag=tag)

    @property
    def display(self) -> str:
        """Ollama's shortest form: default host and namespace dropped, tag always kept."""
        if self.host.lower() != DEFAULT_HOST:
            prefix = f"{self.host}/{self.namespace}/"
        elif self.namespace.lower() != DEFAULT_NAMESPACE:
            prefix = f"{self.namespace}/"
        else:
            prefix = ""
        return f"{prefix}{self.model}:{self.tag}"

    @property
    def full(self) -> str:
        """`host/namespace/model:tag`, every part present."""
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"

    @property
    def key(self) -> str:
        """Lower-cased full name: Ollama compares names case-insensitively."""
        return self.full.lower()

    @property
    def manifest_parts(self) -> tuple[str, str, str, str]:
        """The four directory levels of this name's manifest path."""
        return (self.host, self.namespace, self.model, self.tag)

    @property
    def base_url(self) -> str:
        """Where this name's registry lives, e.g. `https://registry.ollama.ai`."""
        return f"{self.scheme}://{self.host}"

    def __str__(self) -> str:
        return self.display
