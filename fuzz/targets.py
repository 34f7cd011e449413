"""One fuzz target per parser of untrusted input, shared by the atheris harnesses and the
hypothesis property tests so that both check exactly the same contract.

Each target takes arbitrary bytes, feeds them to a parser and returns quietly when the
parser accepted them or refused them with its own 4xx error; any other exception escapes
(that is the finding), and an `AssertionError` marks a broken invariant (a name whose
manifest path leaves the store, a template that ran past its caps, a Modelfile that does
not survive a render and re-parse).
"""

from __future__ import annotations

import time
from pathlib import Path, PurePosixPath
from typing import Any

from pasture.api.modelfile import parse, render
from pasture.errors import (
    GGUFError,
    InvalidDigestError,
    InvalidNameError,
    ModelfileError,
    TemplateError,
)
from pasture.gguf import parse_gguf
from pasture.prompt.gotemplate import GoStruct, Template
from pasture.store.blobs import DIGEST_RE, BlobStore, validate_digest
from pasture.store.names import ModelName

# Small caps so one input costs milliseconds; the invariant is that they hold, not their size.
TEMPLATE_LIMITS: dict[str, Any] = {"max_output": 1 << 14, "max_steps": 20_000,
                                   "max_seconds": 0.25}
GGUF_SECONDS = 0.5  # one hostile header may cost this much, at most
STORE = PurePosixPath("/store/models")


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def gguf(data: bytes) -> None:
    """GGUF bytes: a GGUFInfo or GGUFError, quickly, whatever the bytes claim."""
    start = time.perf_counter()
    try:
        info = parse_gguf(data)
    except GGUFError:
        info = None
    assert time.perf_counter() - start < GGUF_SECONDS, "GGUF parse too slow"
    if info is not None:  # what the rest of Pasture reads from it must not raise either
        _ = (info.architecture, info.file_type, info.parameter_size, info.context_length,
             info.chat_template, info.block_count, info.embedding_length, info.pooling_type)
        for tensor in info.tensors:
            assert info.data_offset + tensor.offset + tensor.n_bytes <= len(data)


def _commands(text: str) -> list[tuple[str, str, str]]:
    return [(c.name, c.key, c.args) for c in parse(text).commands]


def modelfile(data: bytes) -> None:
    """Modelfile text: a Modelfile or ModelfileError; what parses renders back to itself."""
    try:
        first = parse(data)
    except ModelfileError:
        return
    rendered = render(first)
    assert _commands(rendered) == [(c.name, c.key, c.args) for c in first.commands], rendered


TEMPLATE_DATA = {
    "System": "be brief",
    "Prompt": "hi",
    "Response": "",
    "Suffix": "",
    "Think": False,
    "Messages": [
        GoStruct("*template.templateMessage", {"Role": "user", "Content": "hi",
                                               "ToolCalls": [], "Thinking": ""}),
        GoStruct("*template.templateMessage", {"Role": "assistant", "Content": "hello",
                                               "ToolCalls": [], "Thinking": "hm"}),
    ],
    "Tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
}


def gotemplate(data: bytes) -> None:
    """Go template text: parses or TemplateError; runs within its caps or TemplateError."""
    try:
        template = Template.parse(_text(data))
        template.identifiers()  # Ollama's Vars() refuses some parsed templates too
    except TemplateError:
        return
    start = time.perf_counter()
    try:
        out = template.execute(TEMPLATE_DATA, **TEMPLATE_LIMITS)
    except TemplateError:
        out = ""
    elapsed = time.perf_counter() - start
    assert len(out) <= TEMPLATE_LIMITS["max_output"], "template output past its cap"
    assert elapsed < TEMPLATE_LIMITS["max_seconds"] + 0.5, "template ran past its time cap"


def name(text: str) -> None:
    """A model name: ModelName or InvalidNameError, and the manifest path stays in the store."""
    try:
        parsed = ModelName.parse(text)
    except InvalidNameError:
        return
    parts = parsed.manifest_parts
    for part in parts:
        assert part and "/" not in part and "\\" not in part and "\0" not in part, part
        assert part not in (".", "..") and not part.startswith("."), part
        assert len(part.encode()) <= 255, "longer than a path component (ENAMETOOLONG)"
    path = STORE.joinpath("manifests", *parts)
    assert path.parent.parent.parent.parent == STORE / "manifests", path
    again = ModelName.parse(parsed.full)
    assert again == ModelName(parsed.host, parsed.namespace, parsed.model, parsed.tag)


def digest(text: str) -> None:
    """A digest: accepted exactly when `sha256:` + 64 lowercase hex; its blob in `blobs/`."""
    try:
        validate_digest(text)
    except InvalidDigestError:
        assert DIGEST_RE.fullmatch(text) is None
        return
    hexpart = text.removeprefix("sha256:")
    assert len(text) == 71 and len(hexpart) == 64 and set(hexpart) <= set("0123456789abcdef")
    path = BlobStore(STORE / "blobs").path(text)
    assert path.parent == Path(STORE / "blobs") and path.name == "sha256-" + hexpart


def names(data: bytes) -> None:
    """Names and digests both, from one input (the atheris harness's entry point)."""
    text = _text(data)
    name(text)
    digest(text)
