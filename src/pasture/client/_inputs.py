"""Turning what callers pass (paths, bytes, dicts, functions) into wire values.

The official client accepts images as paths, bytes or base64 text, messages and tools
as dicts or models, and tools as plain Python functions; Pasture's client accepts the
same so code written for `ollama` works unchanged. Shared by `Client` and `AsyncClient`.
"""

from __future__ import annotations

import base64
import binascii
import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pasture.api.ollama import Message, Tool

ImageInput = str | bytes | Path
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".wav")


def encode_image(image: ImageInput) -> str:
    """Base64 text for an image given as bytes, a path, or base64 text already."""
    if isinstance(image, bytes):
        return base64.b64encode(image).decode()
    if isinstance(image, Path):
        return base64.b64encode(image.read_bytes()).decode()
    if not isinstance(image, str):
        raise TypeError(f"an image must be a path, bytes or base64 text, not {type(image)}")
    if len(image) < 4096:  # long base64 text is not a path, and Path() would choke on it
        path = Path(image).expanduser()
        try:
            if path.is_file():
                return base64.b64encode(path.read_bytes()).decode()
        except OSError:
            pass
        if image.lower().endswith(_IMAGE_SUFFIXES):
            raise ValueError(f"file {image} does not exist")
    try:
        base64.b64decode(image, validate=True)
    except binascii.Error:
        raise ValueError("invalid image data: expected base64 text or a path to a file") from None
    return image


def encode_images(images: Sequence[ImageInput] | None) -> list[str] | None:
    return [encode_image(image) for image in images] if images else None


def _as_dict(value: Any) -> dict[str, Any]:
    if hasattr(value, "model_dump"):  # any pydantic model, ours or the official client's
        return value.model_dump(exclude_none=True, by_alias=True)
    return dict(value)


def to_options(options: Mapping[str, Any] | Any | None) -> dict[str, Any] | None:
    if options is None:
        return None
    return {key: value for key, value in _as_dict(options).items() if value is not None}


def to_messages(messages: Sequence[Mapping[str, Any] | Any] | None) -> list[Message]:
    result = []
    for message in messages or []:
        fields = {key: value for key, value in _as_dict(message).items() if value is not None}
        if fields.get("images"):
            fields["images"] = encode_images(fields["images"])
        result.append(Message.model_validate(fields))
    return result


def to_tools(tools: Sequence[Mapping[str, Any] | Any | Callable[..., Any]] | None) -> list[Tool]:
    result = []
    for tool in tools or []:
        if isinstance(tool, Tool):
            result.append(tool)
        elif callable(tool) and not isinstance(tool, Mapping) and not hasattr(tool, "model_dump"):
            result.append(function_to_tool(tool))
        else:
            result.append(Tool.model_validate(_as_dict(tool)))
    return result


# ----- Python functions as tools ----------------------------------------------------------

_JSON_TYPES: dict[Any, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    list: "array",
    tuple: "array",
    set: "array",
    dict: "object",
    type(None): "null",
}


def _json_type(annotation: Any) -> str | list[str]:
    """JSON-schema type for a Python annotation; unions become a list of types."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        names: list[str] = []
        for arg in typing.get_args(annotation):
            name = _json_type(arg)
            for single in [name] if isinstance(name, str) else name:
                if single not in names:
                    names.append(single)
        return names[0] if len(names) == 1 else names
    return _JSON_TYPES.get(origin or annotation, "string")


def _docstring_args(doc: str, names: set[str]) -> tuple[str, dict[str, str]]:
    """The summary and the `Args:` descriptions of a Google-style docstring.

    Only the function's own parameter names start a description, so a continuation line
    that happens to contain a colon stays part of the description above it.
    """
    summary_lines: list[str] = []
    args: dict[str, str] = {}
    section = "summary"
    current: str | None = None
    for raw in inspect.cleandoc(doc).splitlines():
        line = raw.strip()
        if re.fullmatch(r"(Args|Arguments|Parameters):", line):
            section, current = "args", None
        elif re.fullmatch(r"[A-Z][A-Za-z ]*:", line):
            section, current = "other", None
        elif section == "summary":
            summary_lines.append(line)
        elif section == "args" and line:
            match = re.match(r"(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)", line)
            if match and match.group(1) in names and match.group(1) not in args:
                current = match.group(1)
                args[current] = match.group(2)
            elif current:
                args[current] = f"{args[current]} {line}".strip()
    return "\n".join(summary_lines).strip(), args


def function_to_tool(func: Callable[..., Any]) -> Tool:
    """A tool definition from a function's signature, type hints and Google-style docstring."""
    parameters = inspect.signature(func).parameters
    summary, descriptions = _docstring_args(func.__doc__ or "", set(parameters))
    hints = typing.get_type_hints(func)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, parameter in parameters.items():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        properties[name] = {
            "type": _json_type(hints.get(name, str)),
            "description": descriptions.get(name, ""),
        }
        if parameter.default is inspect.Parameter.empty:
            required.append(name)
    return Tool(
        type="function",
        function={
            "name": func.__name__,
            "description": summary,
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    )
