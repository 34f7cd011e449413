"""Registry authentication: bearer-token challenges and Ollama's key-signed token requests.

A registry answers 401 with `WWW-Authenticate: Bearer realm=…,service=…,scope=…`; the
client fetches a token from the realm and retries. The realm is chosen by the registry,
so it is only trusted on the registry's own host (CVE-2025-51471: Ollama used to send its
signed request wherever the realm pointed). For Ollama's registry the token request is
signed with an ed25519 key, exactly as Ollama does it (`server/auth.go`, `auth/auth.go`):
the header is `<base64 ssh public key>:<base64 signature>` over
`GET,<token url>,<base64(hex(sha256("")))>`. Other registries get an anonymous request,
so the key never identifies the user to a stranger.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, quote_plus, urlencode, urlsplit, urlunsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pasture.store.registry.errors import RegistryAuthError, UnsafeRegistryError

KEY_NAME = "id_ed25519"
# Hosts run by Ollama, where the token realm expects a signed request.
_OLLAMA_HOSTS = ("registry.ollama.ai", "ollama.com")
_PARAM_RE = re.compile(r'([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))')
_DEFAULT_PORTS = {"http": 80, "https": 443}


def default_key_path() -> Path:
    """`~/.pasture/id_ed25519`: Pasture's home is the parent of the default models dir."""
    return Path.home() / ".pasture" / KEY_NAME


@dataclass(frozen=True)
class Challenge:
    """A parsed `WWW-Authenticate: Bearer …` header."""

    realm: str
    service: str = ""
    scope: str = ""


def parse_challenge(header: str) -> Challenge | None:
    """The Bearer challenge in `header`, or None if it is another scheme (Basic, …)."""
    scheme, _, params = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    values = {
        key.lower(): (quoted.replace('\\"', '"') if quoted is not None else bare)
        for key, quoted, bare in _PARAM_RE.findall(params)
    }
    realm = values.get("realm", "")
    if not realm:
        return None
    return Challenge(realm=realm, service=values.get("service", ""),
                     scope=values.get("scope", ""))


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme, 0)


def check_realm(realm: str, registry_url: str) -> None:
    """Refuse a token realm that is not on the registry's own host and port.

    An https registry must also keep its realm on https: a token fetched over plain http
    could be read on the way.
    """
    realm_scheme, realm_host, realm_port = _origin(realm)
    scheme, host, port = _origin(registry_url)
    if realm_scheme not in ("http", "https") or (realm_host, realm_port) != (host, port):
        raise UnsafeRegistryError(
            f"registry {host} asked for a token from another host ({realm_host or 'none'}); "
            "refusing to send credentials there"
        )
    if scheme == "https" and realm_scheme != "https":
        raise UnsafeRegistryError(f"registry {host} asked for a token over plain http; refused")


def token_url(challenge: Challenge, *, now: float | None = None,
              nonce: str | None = None) -> str:
    """The realm URL with Ollama's query: service, each scope, `ts` and a 16-byte nonce.

    Keys are sorted and escaped as Go's `url.Values.Encode` does, so the signed string is
    byte for byte the URL requested.
    """
    parts = urlsplit(challenge.realm)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query.append(("service", challenge.service))
    query.extend(("scope", scope) for scope in challenge.scope.split(" "))
    query.append(("ts", str(int(time.time() if now is None else now))))
    query.append(("nonce", nonce or base64.urlsafe_b64encode(secrets.token_bytes(16))
                  .rstrip(b"=").decode()))
    query.sort(key=lambda item: item[0])  # stable: values of one key keep their order
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote_plus)))


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The signing key at `path`, generated (OpenSSH format, mode 0600) on first use."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        key = Ed25519PrivateKey.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        private = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.OpenSSH,
                                    serialization.NoEncryption())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(private)
        path.with_name(path.name + ".pub").write_text(public_key_line(key) + "\n")
        return key
    key = serialization.load_ssh_private_key(data, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise RegistryAuthError("the registry signing key is not an ed25519 key")
    return key


def public_key_line(key: Ed25519PrivateKey) -> str:
    """`ssh-ed25519 AAAA…`, the authorized_keys form users register with ollama.com."""
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH).decode()


def sign_request(key: Ed25519PrivateKey, method: str, url: str, body: bytes = b"") -> str:
    """Ollama's `Authorization` value for a request: `<ssh public key b64>:<signature b64>`."""
    body_hash = base64.b64encode(hashlib.sha256(body).hexdigest().encode()).decode()
    signature = key.sign(f"{method},{url},{body_hash}".encode())
    public_blob = public_key_line(key).split()[1]
    return f"{public_blob}:{base64.b64encode(signature).decode()}"


def wants_signature(registry_host: str) -> bool:
    """Whether the registry is Ollama's, whose token realm expects a signed request."""
    host = registry_host.lower().rsplit(":", 1)[0]
    return any(host == h or host.endswith("." + h) for h in _OLLAMA_HOSTS)
