"""RPC worker addresses: parsed strictly, and checked for a listener before a load.

ggml's RPC transport speaks IPv4 only: a worker listens on a dotted IPv4 address
(`inet_addr`, which also takes forms such as `0` or `127.1`: only the four-number form is
accepted here, so a wildcard cannot slip through spelled otherwise), and a runner reaches
it by IPv4 address or host name.
"""

from __future__ import annotations

import ipaddress
import re

_HOST_NAME = re.compile(r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                        r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")
DEFAULT_PORT = 50052  # llama.cpp's rpc-server default


def parse_endpoint(value: str) -> str:
    """`host:port` as given (host an IPv4 address or a name); ValueError otherwise."""
    host, sep, port = value.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"RPC worker {value!r} is not host:port")
    if not (_is_ipv4(host) or (_HOST_NAME.fullmatch(host) and not host.isdigit())):
        raise ValueError(f"RPC worker {value!r}: the host must be an IPv4 address or a name")
    return f"{host}:{int(port)}"


def parse_endpoints(value: str | None) -> tuple[str, ...]:
    """A comma-separated list (`PASTURE_RPC_SERVERS`), each at most once, in order."""
    endpoints: list[str] = []
    for part in filter(None, (p.strip() for p in (value or "").split(","))):
        endpoint = parse_endpoint(part)
        if endpoint in endpoints:
            raise ValueError(f"RPC worker {endpoint} is listed twice")
        endpoints.append(endpoint)
    return tuple(endpoints)


def listen_address(host: str, allow_wildcard: bool = False) -> str:
    """The IPv4 address a worker binds, refusing the wildcard unless `allow_wildcard`
    (ggml's RPC server trusts every message: it must face only the cluster's network)."""
    if not _is_ipv4(host):
        raise ValueError(f"{host!r} is not an IPv4 address (ggml's RPC server binds IPv4 "
                         "addresses only, written as four numbers)")
    if ipaddress.IPv4Address(host).is_unspecified and not allow_wildcard:
        raise ValueError(f"refusing to listen on {host}, every network of this machine: "
                         "llama.cpp's RPC server must never face an untrusted network. "
                         "Bind the cluster network's address, or pass --allow-wildcard if "
                         "every network here is trusted")
    return host


def _is_ipv4(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True
