"""A local stand-in for Hugging Face's Ollama-compatible registry (`hf.co/v2/...`).

The hub serves every GGUF repository as an OCI repository: `GET
/v2/{user}/{repo}/manifests/{quant}` answers a docker schema-2 manifest that it writes on the
fly from the repository's GGUF file for that quantization (`latest`: Q4_K_M, else the only
file), with the GGUF itself as the `model` layer, a `params` layer and a config blob; `GET
/v2/{user}/{repo}/blobs/{digest}` redirects to its content delivery network, another host,
with a signed URL. This stand-in does the same from a folder, `root/{user}/{repo}/*.gguf`,
with its "CDN" on a second loopback port, and records every request, so tests can prove
what was asked and that no credential followed the redirect. Nothing leaves the machine:
the server under test reaches it through `PASTURE_REGISTRY_MIRRORS`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from tests.loopback import LoopbackServer

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
_QUANT = re.compile(r"[-.]((?:I?Q\d\w*)|F16|BF16|F32)\.gguf$", re.IGNORECASE)


@dataclass
class Request:
    host: str  # which of the two servers: "hub" or "cdn"
    method: str
    path: str
    authorization: str | None


@dataclass
class HfHub:
    """The hub and its CDN, serving the GGUF files under `root`."""

    root: Path
    requests: list[Request] = field(default_factory=list)
    _blobs: dict[str, bytes | Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.cdn = LoopbackServer(_handler(self, "cdn"), quiet=True)
        self.hub = LoopbackServer(_handler(self, "hub"), quiet=True)

    def __enter__(self) -> HfHub:
        self.cdn.start()
        self.hub.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.hub.stop()
        self.cdn.stop()

    @property
    def url(self) -> str:
        return self.hub.url

    def manifest(self, user: str, repo: str, tag: str) -> bytes | None:
        """The manifest the hub writes for `tag` of a repository; None if it has none."""
        files = sorted((self.root / user / repo).glob("*.gguf"))
        by_quant = {m.group(1).upper(): f for f in files if (m := _QUANT.search(f.name))}
        wanted = tag.upper()
        if wanted == "LATEST":
            gguf = by_quant.get("Q4_K_M") or (files[0] if len(files) == 1 else None)
        else:
            gguf = by_quant.get(wanted)
        if gguf is None:
            return None
        quant = next((q for q, f in by_quant.items() if f == gguf), "unknown")
        params = json.dumps({"stop": ["<|im_end|>"]}).encode()
        config = json.dumps({"model_format": "gguf", "model_family": "llama",
                             "model_families": ["llama"], "file_type": quant,
                             "architecture": "amd64", "os": "linux",
                             "rootfs": {"type": "layers", "diff_ids": []}}).encode()
        return json.dumps({
            "schemaVersion": 2, "mediaType": MANIFEST_TYPE,
            "config": self._layer("application/vnd.docker.container.image.v1+json", config),
            "layers": [self._layer("application/vnd.ollama.image.model", gguf),
                       self._layer("application/vnd.ollama.image.params", params)],
        }).encode()

    def _layer(self, media_type: str, content: bytes | Path) -> dict[str, Any]:
        data = content.read_bytes() if isinstance(content, Path) else content
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self._blobs[digest] = content
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    def blob(self, digest: str) -> bytes | None:
        content = self._blobs.get(digest)
        return content.read_bytes() if isinstance(content, Path) else content


def _handler(hub: HfHub, which: str) -> type[BaseHTTPRequestHandler]:
    manifest_path = re.compile(r"/v2/([^/]+)/([^/]+)/manifests/([^/]+)")
    blob_path = re.compile(r"/v2/([^/]+)/([^/]+)/blobs/(sha256:[0-9a-f]{64})")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_: Any) -> None:
            pass

        def _send(self, status: int, body: bytes = b"", **headers: str) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key.replace("_", "-"), value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _unknown(self, code: str) -> None:
            self._send(404, json.dumps({"errors": [{"code": code, "message": "not found"}]})
                       .encode(), Content_Type="application/json")

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = self.path.split("?", 1)[0]
            hub.requests.append(Request(which, self.command, self.path,
                                        self.headers.get("Authorization")))
            if which == "cdn":
                self._serve_bytes(hub.blob(path.lstrip("/")))
            elif path == "/v2/":
                self._send(200, b"{}", Content_Type="application/json")
            elif match := manifest_path.fullmatch(path):
                manifest = hub.manifest(*match.groups())
                if manifest is None:
                    self._unknown("MANIFEST_UNKNOWN")
                else:
                    self._send(200, manifest, Content_Type=MANIFEST_TYPE,
                               Docker_Content_Digest="sha256:"
                               + hashlib.sha256(manifest).hexdigest())
            elif (match := blob_path.fullmatch(path)) and hub.blob(match.group(3)) is not None:
                # As the hub does: the bytes come from elsewhere, by a signed URL.
                self._send(307, Location=f"{hub.cdn.url}/{match.group(3)}?X-Signature=abc")
            else:
                self._unknown("BLOB_UNKNOWN")

        do_HEAD = do_GET

        def _serve_bytes(self, data: bytes | None) -> None:
            if data is None:
                self._send(404)
                return
            found = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
            if not found:
                self._send(200, data, Content_Type="application/octet-stream")
                return
            start = int(found.group(1))
            end = int(found.group(2)) if found.group(2) else len(data) - 1
            self._send(206, data[start:end + 1], Content_Type="application/octet-stream",
                       Content_Range=f"bytes {start}-{min(end, len(data) - 1)}/{len(data)}")

    return Handler
