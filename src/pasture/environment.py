"""Reading `PASTURE_*` / `OLLAMA_*` variables, and the server's address.

Every `pasture` process needs these, the quick commands (`pasture list`, `ps`) among them,
so they live apart from `pasture.config`'s `Settings`: that dataclass, with the
`dataclasses` and `inspect` imports it brings, is the server's, and costs a command that
only needs an address about a tenth of its time (issue 23).
"""

from __future__ import annotations

import os
from typing import NamedTuple

DEFAULT_PORT = 11434


def env(name: str, environ: dict[str, str] | None = None) -> str | None:
    """Value of `PASTURE_<name>`, else `OLLAMA_<name>`, trimmed of spaces and quotes."""
    source = os.environ if environ is None else environ
    for prefix in ("PASTURE_", "OLLAMA_"):
        value = source.get(prefix + name)
        if value is not None:
            value = value.strip().strip("\"'")
            if value:
                return value
    return None


def pasture_only(name: str, environ: dict[str, str] | None = None) -> str | None:
    """Value of `PASTURE_<name>` for a setting Ollama does not have (no OLLAMA_ fallback)."""
    value = (os.environ if environ is None else environ).get("PASTURE_" + name, "").strip()
    return value or None


class HostPort(NamedTuple):
    """Where the server listens or the client connects."""

    scheme: str
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def parse_host(value: str | None) -> HostPort:
    """Parse `OLLAMA_HOST`-style values: `host`, `host:port`, `:port`, `http://host:port`."""
    if not value:
        return HostPort("http", "127.0.0.1", DEFAULT_PORT)
    scheme = "http"
    if "://" in value:
        scheme, value = value.split("://", 1)
    value = value.rstrip("/")
    default_port = {"http": DEFAULT_PORT, "https": 443}.get(scheme, DEFAULT_PORT)
    if value.startswith("["):  # [::1]:port
        host, _, rest = value[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") and rest[1:] else default_port
    elif value.count(":") == 1:
        host, port_text = value.split(":")
        port = int(port_text) if port_text else default_port
    else:
        host, port = value, default_port
    return HostPort(scheme, host or "127.0.0.1", port)
