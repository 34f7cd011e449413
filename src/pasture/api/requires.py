"""`REQUIRES`: the minimum server version a model declares, checked at create.

Ollama stores a semver in the config blob; models made for Ollama declare an *Ollama*
release. Pasture compares it with the Ollama release whose behaviour it implements
(`pasture.OLLAMA_VERSION`, what `/api/version` reports), not with Pasture's own
numbering, which is unrelated: a model that needs a newer Ollama is refused at create
rather than misbehaving later.

What a valid version is belongs to the contract: the client checks it while it reads a
Modelfile (to name the line), the server again in `create` (`check_requires`).
"""

from __future__ import annotations

import re

import pasture
from pasture.errors import BadRequestError

# Semver 2.0 core with optional pre-release and build; a leading `v` is tolerated (Ollama
# itself prefixes one before calling golang.org/x/mod/semver). Short forms `1` and `1.2`
# are accepted as Go's semver does.
_SEMVER = re.compile(r"v?(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?(?:\.(0|[1-9]\d*))?"
                     r"(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?")


def parse_version(text: str) -> tuple[int, int, int, str]:
    """(major, minor, patch, pre-release); BadRequestError if `text` is not a semver."""
    match = _SEMVER.fullmatch(text.strip())
    if match is None:
        raise BadRequestError(f"invalid version {text!r} in 'requires': expected a semver "
                              "such as 0.5.0")
    major, minor, patch, pre = match.groups()
    return int(major), int(minor or 0), int(patch or 0), pre or ""


def _key(version: tuple[int, int, int, str]) -> tuple[int, int, int, int, str]:
    """Order key: a pre-release sorts before its release (1.0.0-rc1 < 1.0.0)."""
    major, minor, patch, pre = version
    return major, minor, patch, 0 if pre else 1, pre


def check_requires(requires: str | None, current: str | None = None) -> None:
    """400 `this model requires Ollama x.y.z or later` if `requires` is newer than the
    Ollama release Pasture implements."""
    if not requires:
        return
    wanted = parse_version(requires)
    have = parse_version(current or pasture.OLLAMA_VERSION)
    if _key(wanted) > _key(have):
        raise BadRequestError(
            f"this model requires Ollama {requires.strip().removeprefix('v')} or later "
            f"(Pasture implements Ollama {current or pasture.OLLAMA_VERSION})")
