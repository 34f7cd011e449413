"""Registry auth: Bearer challenges, the same-host rule for token realms, and Ollama's
key-signed token request (checked for its exact format, since registry.ollama.ai cannot be
reached from here)."""

from __future__ import annotations

import base64
import hashlib
import shutil
import stat
import struct
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_ssh_public_key

from pasture.store.registry import UnsafeRegistryError
from pasture.store.registry.auth import (
    Challenge,
    check_realm,
    load_or_create_key,
    parse_challenge,
    public_key_line,
    sign_request,
    token_url,
    wants_signature,
)


def test_parse_challenge_reads_quoted_parameters_with_commas() -> None:
    header = ('Bearer realm="https://registry.ollama.ai/v2/token",service="ollama.com",'
              'scope="repository:library/smollm2:pull,push"')
    assert parse_challenge(header) == Challenge(
        realm="https://registry.ollama.ai/v2/token", service="ollama.com",
        scope="repository:library/smollm2:pull,push")


def test_parse_challenge_ignores_other_schemes() -> None:
    assert parse_challenge('Basic realm="registry"') is None
    assert parse_challenge("Bearer service=x") is None  # no realm


@pytest.mark.parametrize("realm", [
    "https://registry.example:5000/token",
    "https://REGISTRY.example:5000/v2/token?x=1",
])
def test_realm_on_the_registry_host_is_accepted(realm: str) -> None:
    check_realm(realm, "https://registry.example:5000")


@pytest.mark.parametrize("realm", [
    "https://evil.example/token",  # another host (CVE-2025-51471)
    "https://registry.example:6000/token",  # same host, another port
    "http://registry.example:5000/token",  # downgrade to plain http
    "file:///etc/passwd",
    "/relative/token",
])
def test_realm_elsewhere_is_refused(realm: str) -> None:
    with pytest.raises(UnsafeRegistryError):
        check_realm(realm, "https://registry.example:5000")


def test_token_url_has_ollamas_sorted_query() -> None:
    url = token_url(Challenge("https://registry.ollama.ai/v2/token?account=me", "ollama.com",
                              "repository:library/a:pull repository:library/b:pull"),
                    now=1700000000, nonce="n0nce")
    assert url == ("https://registry.ollama.ai/v2/token?account=me&nonce=n0nce"
                   "&scope=repository%3Alibrary%2Fa%3Apull&scope=repository%3Alibrary%2Fb%3Apull"
                   "&service=ollama.com&ts=1700000000")
    fresh = parse_qs(urlsplit(token_url(Challenge("https://h/t", "s", "x"))).query)
    assert len(base64.urlsafe_b64decode(fresh["nonce"][0] + "==")) == 16


def test_key_is_created_once_private_and_in_openssh_format(tmp_path: Path) -> None:
    path = tmp_path / ".pasture" / "id_ed25519"
    key = load_or_create_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----")
    pub_line = path.with_name("id_ed25519.pub").read_text().strip()
    assert pub_line == public_key_line(key) and pub_line.startswith("ssh-ed25519 ")
    again = load_or_create_key(path)
    assert public_key_line(again) == public_key_line(key)
    if shutil.which("ssh-keygen"):  # OpenSSH itself reads the key Ollama-compatibly
        derived = subprocess.run(["ssh-keygen", "-y", "-f", str(path)], capture_output=True,
                                 text=True, check=True).stdout.split()[:2]
        assert derived == pub_line.split()[:2]


def test_signature_is_ollamas_pubkey_colon_signature_over_method_url_body_hash(
        tmp_path: Path) -> None:
    key = load_or_create_key(tmp_path / "id_ed25519")
    url = "https://registry.ollama.ai/v2/token?nonce=abc&scope=x&service=ollama.com&ts=1"
    header = sign_request(key, "GET", url)
    public_b64, signature_b64 = header.split(":")
    blob = base64.b64decode(public_b64)
    # SSH wire format: string "ssh-ed25519", string <32-byte key>
    (name_len,) = struct.unpack(">I", blob[:4])
    assert blob[4:4 + name_len] == b"ssh-ed25519"
    raw_key = blob[4 + name_len + 4:]
    assert len(raw_key) == 32
    assert public_b64 == public_key_line(key).split()[1]
    empty_hash = base64.b64encode(hashlib.sha256(b"").hexdigest().encode()).decode()
    assert empty_hash == ("ZTNiMGM0NDI5OGZjMWMxNDlhZmJmNGM4OTk2ZmI5MjQyN2FlNDFlNDY0OWI5MzRjYT"
                          "Q5NTk5MWI3ODUyYjg1NQ==")
    signed = f"GET,{url},{empty_hash}".encode()
    Ed25519PublicKey.from_public_bytes(raw_key).verify(base64.b64decode(signature_b64), signed)
    public = load_ssh_public_key(public_key_line(key).encode())
    assert isinstance(public, Ed25519PublicKey)


def test_only_ollamas_registry_gets_signed_requests() -> None:
    assert wants_signature("registry.ollama.ai")
    assert wants_signature("ollama.com:443")
    assert not wants_signature("127.0.0.1:5000")
    assert not wants_signature("notollama.com")
