"""`/api/show`: a model described for people, with a Modelfile that recreates it."""

from __future__ import annotations

import json
import sys
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from pasture import gguf
from pasture.api import modelfile
from pasture.api.ollama import Message, ShowResponse, Tensor
from pasture.errors import TemplateError
from pasture.prompt.render import parse_template_cached
from pasture.store.model import LocalModel

# What a built-in output parser (the config's `parser`) gives a model, as in Ollama.
_PARSER_CAPABILITIES = {"harmony": ("tools", "thinking")}
_HIDDEN_KEYS = ("general.name", "tokenizer.chat_template")
# What the parsed GGUF headers kept for `show` and every request may hold in all.
GGUF_CACHE_BYTES = 64 << 20


class GGUFCache:
    """GGUF headers by blob, least recently used first out, bounded by the bytes they
    hold rather than by count: a hostile 70 MB header of a million tiny tensors holds
    hundreds of MB as Python objects, so 32 of them would not fit in any server.

    Blobs are immutable: path and size identify one. A header larger than the whole
    budget is returned and not kept.
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.held_bytes = 0
        self._entries: OrderedDict[tuple[str, int], tuple[gguf.GGUFInfo, int]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, path: Path) -> gguf.GGUFInfo:
        """The header of the GGUF at `path` (blocking: parses on a miss)."""
        key = (str(path), path.stat().st_size)
        with self._lock:
            if (hit := self._entries.get(key)) is not None:
                self._entries.move_to_end(key)
                return hit[0]
        info = gguf.read_gguf(path)  # outside the lock: other headers stay available
        cost = estimated_bytes(info)
        if cost > self.budget:
            return info
        with self._lock:
            if key not in self._entries:
                self._entries[key] = (info, cost)
                self.held_bytes += cost
            while self.held_bytes > self.budget:
                _, (_, freed) = self._entries.popitem(last=False)
                self.held_bytes -= freed
        return info


def estimated_bytes(info: gguf.GGUFInfo) -> int:
    """About what a parsed header holds in memory, measured with tracemalloc on CPython
    3.12: some 230 bytes a tensor (its TensorInfo, name and shape tuple), some 100 a
    metadata entry plus its strings and list elements. Errs on the high side."""
    total = 1024 + len(info.tensors) * 300 + sum(len(t.name) for t in info.tensors)
    for key, value in info.metadata.items():
        total += 160 + len(key) + _value_bytes(value)
    return total


def _value_bytes(value: Any) -> int:
    if isinstance(value, str):
        return 64 + len(value.encode())
    if isinstance(value, list):
        return 64 + sum(8 + (_value_bytes(item) if isinstance(item, str | list) else 16)
                        for item in value)
    return 40


gguf_cache = GGUFCache(GGUF_CACHE_BYTES)


def model_gguf(model: LocalModel) -> gguf.GGUFInfo:
    return gguf_cache.get(model.model_path)


def capabilities(model: LocalModel, info: gguf.GGUFInfo) -> list[str]:
    """What the model can do, from its GGUF and templates (as Ollama derives them)."""
    if info.reranker:  # scores pairs: it gives no vectors (Ollama has no such capability)
        return ["rerank"]
    if info.pooling_type is not None:
        return ["embedding"]
    found = ["completion"]
    if model.template:  # a Go TEMPLATE is what the model is prompted with (rendered mode)
        found.extend(_go_template_capabilities(model.template))
    else:
        found.extend(_chat_template_capabilities(info.chat_template or ""))
    extra = _PARSER_CAPABILITIES.get(model.config.parser or "", ())
    found.extend(c for c in extra if c not in found)
    if model.projector_path is not None:  # llama.cpp sees images only through a projector
        found.append("vision")
    if "audio.block_count" in info.metadata or (
            model.projector_path is not None
            and _projector_hears(gguf_cache.get(model.projector_path))):
        found.append("audio")
    # What the config lists (Ollama's `image`, for image generation, comes only from there).
    found.extend(c for c in model.config.capabilities or () if c not in found)
    return found


def _projector_hears(projector: gguf.GGUFInfo) -> bool:
    """A projector with an audio encoder, as Ollama reads it (`projectorHasAudio`): Gemma
    3n's, which Ollama does not let hear, excepted."""
    if projector.metadata.get("vision.projector_type") == "gemma3nv":
        return False
    return any(value is True for key, value in projector.metadata.items()
               if key == "has_audio_encoder" or key.endswith(".has_audio_encoder"))


def _go_template_capabilities(source: str) -> list[str]:
    """`tools` if it uses `.Tools`, `insert` if `.Suffix`, `thinking` if tags are inferable."""
    try:
        return parse_template_cached(source).capabilities()
    except TemplateError:  # a stored template that no longer parses gives nothing (Ollama)
        return []


def _chat_template_capabilities(chat_template: str) -> list[str]:
    """Ollama's reading of a GGUF Jinja template: mentions of tools, `<think>` tags."""
    found = []
    if "tools" in chat_template or "tool_call" in chat_template:
        found.append("tools")
    splits_reasoning = ("content.split('</think>')" in chat_template
                        or 'content.split("</think>")' in chat_template)
    if ("<think>" in chat_template and "</think>" in chat_template) or (
            splits_reasoning and "reasoning_content" not in chat_template
            and "<SPECIAL_12>" not in chat_template):
        found.append("thinking")
    return found


def parameters_text(params: dict[str, Any]) -> str:
    """Ollama's `%-30s %#v` lines: one per value, strings JSON-quoted."""
    lines = []
    for key in sorted(params):
        values = params[key] if isinstance(params[key], list) else [params[key]]
        lines.extend(f"{key:<30} {json.dumps(value)}" for value in values)
    return "\n".join(lines)


def modelfile_text(model: LocalModel) -> str:
    """A Modelfile that recreates the model from its stored layers."""
    name = model.name.display
    commands = [modelfile.Command("from", name)]
    # Adapters and the draft as their blob paths, as Ollama prints them: re-creating from
    # the same server finds the blobs (and keeps the model's own adapters only once).
    commands.extend(modelfile.Command("adapter", str(adapter.path))
                    for adapter in model.adapters)
    if model.draft_path is not None:
        commands.append(modelfile.Command("draft", str(model.draft_path)))
    if model.template is not None:
        commands.append(modelfile.Command("template", model.template))
    if model.system is not None:
        commands.append(modelfile.Command("system", model.system))
    if model.config.parser:
        commands.append(modelfile.Command("parser", model.config.parser))
    for key in sorted(model.params):
        values = model.params[key] if isinstance(model.params[key], list) else [model.params[key]]
        commands.extend(
            modelfile.Command("parameter", _parameter_value(v), key=key) for v in values
        )
    commands.extend(modelfile.Command("license", text) for text in model.licenses)
    commands.extend(
        modelfile.Command("message", m.get("content", ""), key=m.get("role", "user"))
        for m in model.messages
    )
    if model.config.requires:
        commands.append(modelfile.Command("requires", model.config.requires))
    header = (
        '# Modelfile generated by "pasture show"\n'
        "# To build a new Modelfile based on this, replace FROM with:\n"
        f"# FROM {name}\n\n"
    )
    return header + modelfile.render(modelfile.Modelfile(commands))


def _parameter_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def model_info(info: gguf.GGUFInfo, verbose: bool) -> dict[str, Any]:
    """GGUF metadata for `model_info`, arrays as Ollama gives them: whole with `verbose`
    (from a header read by `read_whole`), else null (`[]` when empty)."""
    result: dict[str, Any] = {"general.parameter_count": info.parameter_count}
    for key, value in info.metadata.items():
        if key in _HIDDEN_KEYS:
            continue
        if isinstance(value, gguf.ArrayInfo) or (isinstance(value, list) and value
                                                 and not verbose):
            value = None
        result[key] = value
    return result


def read_whole(path: Path) -> gguf.GGUFInfo:
    """A GGUF header with every array in it (the vocabulary, the merges), for `verbose`:
    read again, not cached, since only `show --verbose` wants them."""
    return gguf.read_gguf(path, max_inline_array=sys.maxsize)


def show_model(model: LocalModel, verbose: bool = False) -> ShowResponse:
    info = model_gguf(model)
    projector = model.projector_path
    return ShowResponse(
        license="\n".join(model.licenses) or None,
        modelfile=modelfile_text(model),
        parameters=parameters_text(model.params) or None,
        template=model.template if model.template is not None else info.chat_template,
        system=model.system,
        details=model.details,
        messages=[Message(**m) for m in model.messages] or None,
        model_info=model_info(read_whole(model.model_path) if verbose else info, verbose),
        projector_info=None if projector is None else model_info(
            read_whole(projector) if verbose else gguf_cache.get(projector), verbose),
        tensors=[Tensor(name=t.name, type=t.type_name, shape=list(t.shape))
                 for t in info.tensors],
        capabilities=capabilities(model, info),
        modified_at=model.modified_at,
        requires=model.config.requires,
        parser=model.config.parser,
    )
