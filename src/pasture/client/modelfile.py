"""A Modelfile read on the client side, ready for `POST /api/create`.

Ollama's design, kept here: the client parses the Modelfile, reads every file it names
(FROM, ADAPTER and DRAFT paths, relative to the Modelfile's directory) and sends only digests,
so the server never opens a path from a request. PARAMETER values are typed here too,
so a bad value is reported with its line before anything is uploaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pasture.api import modelfile as parser
from pasture.api.requires import parse_version
from pasture.errors import BadRequestError, ModelfileError
from pasture.options import add_parameter

# Suffixes that make a missing FROM an obvious typo'd path rather than a model name.
_PATH_PREFIXES = ("./", "../", "/", "~", ".\\", "..\\")
_MODEL_SUFFIXES = (".gguf", ".bin", ".safetensors")
# What a Safetensors directory sends, as Ollama's client: weights, JSON configs and the
# tokenizer, and the chat template where transformers saves it apart.
_SAFETENSORS_DIR_SUFFIXES = (".safetensors", ".json", ".jinja")
_SAFETENSORS_DIR_NAMES = ("tokenizer.model",)
# Instructions Pasture's server cannot honour yet: refused early, never silently dropped.
_UNSUPPORTED = ("renderer",)


@dataclass
class CreatePlan:
    """What a Modelfile asks the server to build, with local files still as paths."""

    from_: str | None = None
    files: list[tuple[str, Path]] = field(default_factory=list)
    adapters: list[tuple[str, Path]] = field(default_factory=list)
    draft_files: list[tuple[str, Path]] = field(default_factory=list)
    requires: str | None = None
    parser: str | None = None
    template: str | None = None
    system: str | None = None
    license: list[str] | None = None
    parameters: dict[str, Any] | None = None
    messages: list[dict[str, str]] | None = None

    @property
    def paths(self) -> list[Path]:
        """Every local file to upload, once each, in Modelfile order."""
        seen: dict[Path, None] = {}
        for _, path in [*self.files, *self.adapters, *self.draft_files]:
            seen.setdefault(path, None)
        return list(seen)

    def arguments(self, digests: Mapping[Path, str]) -> dict[str, Any]:
        """Keyword arguments for `Client.create` once each path has been uploaded."""
        return {
            "from_": self.from_,
            "files": {name: digests[path] for name, path in self.files} or None,
            "adapters": {name: digests[path] for name, path in self.adapters} or None,
            "template": self.template,
            "system": self.system,
            "license": self.license,
            "parameters": self.parameters,
            "messages": self.messages,
            "requires": self.requires,
            "parser": self.parser,
            "draft_files": {name: digests[path] for name, path in self.draft_files} or None,
        }


def _resolve(value: str, base_dir: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base_dir / path


def _model_files(path: Path, line: int) -> list[tuple[str, Path]]:
    """A file as itself; a directory as the GGUF files in it, else as a Safetensors
    model or LoRA adapter directory (converted by the server)."""
    if path.is_file():
        return [(path.name, path)]
    files = sorted(p for p in path.iterdir() if p.is_file())
    found = [p for p in files if p.suffix.lower() == ".gguf"]
    if not found and any(p.suffix.lower() == ".safetensors" for p in files):
        found = [p for p in files if p.suffix.lower() in _SAFETENSORS_DIR_SUFFIXES
                 or p.name in _SAFETENSORS_DIR_NAMES]
    elif not found and any(p.suffix.lower() in (".bin", ".pt", ".pth") for p in files):
        raise ModelfileError(f"(line {line}): {path} holds PyTorch pickle weights, which "
                             "Pasture does not import: save the model as Safetensors")
    if not found:
        raise ModelfileError(f"(line {line}): no GGUF or Safetensors files found in {path}")
    return [(p.name, p) for p in found]


def _looks_like_path(value: str) -> bool:
    return value.startswith(_PATH_PREFIXES) or value.lower().endswith(_MODEL_SUFFIXES)


def _add_files(files: list[tuple[str, Path]], new: list[tuple[str, Path]], line: int) -> None:
    names = {name for name, _ in files}
    for name, path in new:
        if name in names:
            raise ModelfileError(f"(line {line}): two files are named {name}")
        names.add(name)
        files.append((name, path))


def _parameter(parameters: dict[str, Any], name: str, raw: str, line: int) -> None:
    try:
        add_parameter(parameters, name, raw)
    except BadRequestError as exc:
        raise ModelfileError(f"(line {line}): {exc.message}") from None


def plan_create(text: str, base_dir: Path) -> CreatePlan:
    """Parse Modelfile `text`; ModelfileError (with the line) for anything unusable."""
    modelfile = parser.parse(text)
    plan = CreatePlan()
    parameters: dict[str, Any] = {}
    messages: list[dict[str, str]] = []
    licenses: list[str] = []
    for command in modelfile.commands:
        name, args, line = command.name, command.args, command.line
        if name == "from":
            path = _resolve(args, base_dir)
            if path.exists():
                _add_files(plan.files, _model_files(path, line), line)
            elif _looks_like_path(args):
                raise ModelfileError(f"(line {line}): no such file: {path}")
            elif plan.from_ is not None and plan.from_ != args:
                raise ModelfileError(f"(line {line}): only one FROM may name a model")
            else:
                plan.from_ = args
        elif name == "adapter":
            path = _resolve(args, base_dir)
            if not path.exists():
                raise ModelfileError(f"(line {line}): no such adapter file: {path}")
            _add_files(plan.adapters, _model_files(path, line), line)
        elif name == "parameter":
            _parameter(parameters, command.key, args, line)
        elif name == "message":
            messages.append({"role": command.key, "content": args})
        elif name == "license":
            licenses.append(args)
        elif name == "system":
            plan.system = args
        elif name == "template":
            plan.template = args
        elif name == "parser":
            plan.parser = args
        elif name == "draft":
            path = _resolve(args, base_dir)
            if not path.exists():  # as in Ollama, a local GGUF file (or a directory of one):
                hint = "" if _looks_like_path(args) else " (DRAFT takes a file, not a model name)"
                raise ModelfileError(f"(line {line}): no such draft model file: {path}{hint}")
            plan.draft_files = []
            _add_files(plan.draft_files, _model_files(path, line), line)
        elif name == "requires":
            try:  # checked here so a typo is reported with its line, before any upload
                parse_version(args)
            except BadRequestError as exc:
                raise ModelfileError(f"(line {line}): {exc.message}") from None
            plan.requires = args.strip()
        elif name in _UNSUPPORTED:
            raise ModelfileError(f"(line {line}): {name.upper()} is not supported by Pasture yet")
    if plan.from_ is not None and plan.files:
        raise ModelfileError("FROM cannot name both a model and files")
    plan.parameters = parameters or None
    plan.messages = messages or None
    plan.license = licenses or None
    return plan
