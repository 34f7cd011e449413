"""HTTPS (ollama/ollama#701): `PASTURE_TLS_CERT` / `PASTURE_TLS_KEY` make the server speak
TLS itself, and the CLI, the Python clients and the JavaScript client reach it with the
one setting `PASTURE_CA_FILE` (or a `verify` / `ca` argument). The certificate is a
self-signed one made here; a client that does not trust it says so, not "not running"."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pasture.client import AsyncClient, CertificateError, Client
from tests.integration.conftest import REPO, RunningServer, start_server, stop_server
from tests.integration.js import JS, client_env, node

MODEL = "tls-smollm2"
CLI_MODEL = "tls-cli"


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, signed by its own key: (cert, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pasture test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, Path]]:
    """A server of its own, serving https with a self-signed certificate: (server, cert)."""
    root = tmp_path_factory.mktemp("tls")
    cert, key = self_signed(root)
    server = start_server(root / "models", root / "server.log", ca=cert,
                          PASTURE_TLS_CERT=str(cert), PASTURE_TLS_KEY=str(key))
    try:
        yield server, cert
    finally:
        stop_server(server)


@pytest.fixture(scope="module")
def tls_model(tls_server: tuple[RunningServer, Path], smollm2_gguf: Path) -> str:
    """SmolLM2 on the https server, short answers, created through the Python client."""
    server, cert = tls_server
    with Client(server.url, verify=str(cert)) as client:
        digest = client.create_blob(smollm2_gguf)
        client.create(MODEL, files={smollm2_gguf.name: digest},
                      parameters={"num_predict": 4, "temperature": 0})
    return MODEL


def pasture(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "PYTHONPATH": str(REPO / "src"), **env}
    environ.pop("PASTURE_API_KEY", None)
    return subprocess.run([sys.executable, "-m", "pasture", *args], env=environ,
                          capture_output=True, text=True, timeout=300)


def test_the_cli_creates_runs_and_lists_over_https(tls_server: tuple[RunningServer, Path],
                                                   smollm2_gguf: Path, tmp_path: Path) -> None:
    server, cert = tls_server
    assert server.url.startswith("https://")
    assert f"listening on {server.url}" in server.log()
    modelfile = tmp_path / "Modelfile"
    modelfile.write_text(f"FROM {smollm2_gguf}\nPARAMETER num_predict 4\n"
                         "PARAMETER temperature 0\n")
    env = {"PASTURE_HOST": server.url, "PASTURE_CA_FILE": str(cert)}
    created = pasture("create", CLI_MODEL, "-f", str(modelfile), **env)  # uploads over TLS
    assert created.returncode == 0, created.stderr
    ran = pasture("run", CLI_MODEL, "Say hi", **env)  # the light client, streaming
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip()
    listed = pasture("list", **env)
    assert listed.returncode == 0 and CLI_MODEL in listed.stdout
    untrusted = pasture("list", PASTURE_HOST=server.url)
    assert untrusted.returncode == 1
    assert "could not verify the https certificate" in untrusted.stderr
    assert "PASTURE_CA_FILE" in untrusted.stderr


def test_the_python_clients_take_a_ca_file(tls_server: tuple[RunningServer, Path],
                                           tls_model: str,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    server, cert = tls_server
    with Client(server.url, verify=str(cert)) as client:
        assert client.version().version
    with Client(server.url) as untrusting, pytest.raises(CertificateError):
        untrusting.version()
    monkeypatch.setenv("PASTURE_CA_FILE", str(cert))
    with Client(server.url) as client:
        assert client.tokenize(tls_model, "Hello").tokens

    async def run() -> None:
        async with AsyncClient(server.url) as client:
            assert (await client.version()).version

    asyncio.run(run())


JS_SCRIPT = """
import { readFileSync } from 'node:fs'
import { Pasture } from '%s'
const [url, cert, model] = process.argv.slice(2)
const fromEnv = new Pasture({ host: url })
const version = (await fromEnv.version()).version
const reply = await fromEnv.generate({ model, prompt: 'Hi', options: { num_predict: 2 } })
const parts = []
const hi = [{ role: 'user', content: 'Hi' }]
for await (const part of await fromEnv.chat({
  model, messages: hi, stream: true, options: { num_predict: 2 } })) {
  parts.push(part)
}
const withCa = new Pasture({ host: url, ca: readFileSync(cert) })
const tokens = (await withCa.tokenize({ model, content: 'Hello' })).tokens
let refused = ''
try {
  await new Pasture({ host: url, ca: '' }).version()
} catch (error) {
  refused = String(error.cause?.code ?? error)
}
console.log(JSON.stringify({ version, done: reply.done, streamed: parts.at(-1).done,
                             tokens: tokens.length, refused }))
"""


def test_the_js_client_takes_pasture_ca_file_or_ca(tls_server: tuple[RunningServer, Path],
                                                   tls_model: str, tmp_path: Path) -> None:
    server, cert = tls_server
    script = tmp_path / "tls.mjs"
    script.write_text(JS_SCRIPT % (JS / "dist" / "node.js").as_uri())
    env = client_env(PASTURE_CA_FILE=str(cert))
    done = subprocess.run([node(), str(script), server.url, str(cert), tls_model], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["version"] and result["done"] and result["streamed"]
    assert result["tokens"] > 0
    assert "SELF_SIGNED" in result["refused"]  # an empty `ca` trusts only Node's roots
