"""Ollama's prompt rendering with a Go TEMPLATE: its data model and modes.

Ollama (`template/template.go`, `server/prompt.go`) gives a template one of three views:

- *messages* (the template mentions `.Messages`): `.System` (all system contents joined
  by a blank line), `.Messages` (consecutive same-role messages merged, except `tool`),
  `.Tools`, `.Response` (empty), `.Think`, `.ThinkLevel`, `.IsThinkSet`;
- *legacy* (no `.Messages`): the template runs once per user/assistant turn with
  `.System`, `.Prompt`, `.Response`, and the last turn is cut at `{{ .Response }}`;
- *insert* (generate with a suffix): `.Prompt`, `.Suffix`, `.Response`.

A template that mentions neither `.Messages` nor `.Response` gets `{{ .Response }}`
appended. Fitting the conversation into the context is `prompt.fit`'s.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from pasture.errors import BadRequestError, TemplateError
from pasture.prompt.gotemplate import (
    BUILTIN_NAMES,
    Action,
    Branch,
    Command,
    Field,
    GoStruct,
    JSONList,
    JSONMap,
    Node,
    Pipe,
    Template,
    Text,
    json_decoded,
)

# The largest TEMPLATE a request may send (to /api/create or /api/generate): Ollama's own
# templates are a few KiB, and parsing is linear but slow (about 70 µs an action here).
MAX_TEMPLATE_BYTES = 64 * 1024


@dataclass(frozen=True)
class Think:
    """A request's `think`: whether thinking is on, its level, and whether it was sent."""

    enabled: bool = False
    level: str = ""
    is_set: bool = False

    @classmethod
    def of(cls, value: bool | str | None) -> Think:
        if value is None:
            return cls()
        if isinstance(value, str):
            return cls(True, value, True)
        return cls(value, "medium" if value else "", True)

    def values(self) -> dict[str, Any]:
        return {"Think": self.enabled, "ThinkLevel": self.level, "IsThinkSet": self.is_set}


class PromptTemplate:
    """A model's Go TEMPLATE, parsed once, rendered the way Ollama renders it."""

    def __init__(self, source: str) -> None:
        self.template = Template.parse(source)
        self.vars = self.template.identifiers()
        if "messages" not in self.vars and "response" not in self.vars:
            end = len(source)
            response = Field(end, ["Response"])
            self.template.root.append(Action(end, Pipe(end, [], False,
                                                       [Command(end, [response])])))
            self.vars.add("response")
        # Ollama runs the last turn as a new template holding only the cut tree: without
        # the defined templates and without its own functions (`json`, `currentDate`, …),
        # and its cut panics on an `{{ else }}` after the `.Response` (a 500 there).
        self.legacy_last_turn: Template | None = None
        self.legacy_refusal = ""
        try:
            self.legacy_last_turn = Template(source, cut_at_response(self.template.root), {})
        except CutPanic as panic:
            self.legacy_refusal = str(panic)

    @property
    def uses_messages(self) -> bool:
        return "messages" in self.vars

    def capabilities(self) -> list[str]:
        """What the template supports, as Ollama infers it (`tools`, `insert`, `thinking`)."""
        found = []
        if "tools" in self.vars:
            found.append("tools")
        if "suffix" in self.vars:
            found.append("insert")
        if all(thinking_tags(self.template)):
            found.append("thinking")
        return found

    def render(self, messages: Sequence[dict[str, Any]], tools: list[dict[str, Any]] | None = None,
               think: Think | None = None) -> str:
        """The prompt for a conversation (messages as on the wire, roles lower-case)."""
        think = think or Think()
        system, collated = collate(messages)
        if self.uses_messages:
            return self.template.execute({
                "System": system,
                "Messages": [template_message(m) for m in collated],
                "Tools": template_tools(tools),
                "Response": "",
                **think.values(),
            })
        return self._render_legacy(collated, think)

    def render_insert(self, prompt: str, suffix: str, think: Think | None = None) -> str:
        """The fill-in-the-middle prompt for generate with a `suffix`."""
        think = think or Think()
        return self.template.execute({"Prompt": prompt, "Suffix": suffix, "Response": "",
                                      **think.values()})

    def _render_legacy(self, messages: list[dict[str, Any]], think: Think) -> str:
        parts: list[str] = []
        turn = {"System": "", "Prompt": "", "Response": ""}

        def flush() -> None:
            parts.append(self.template.execute({**turn, **think.values()}))
            turn.update(System="", Prompt="", Response="")

        for message in messages:
            role, content = message.get("role"), message.get("content") or ""
            if role == "system":
                if turn["Prompt"] or turn["Response"]:
                    flush()
                turn["System"] = content
            elif role == "user":
                if turn["Response"]:
                    flush()
                turn["Prompt"] = content
            elif role == "assistant":
                turn["Response"] = content
        if self.legacy_last_turn is None:
            raise TemplateError(self.legacy_refusal)
        parts.append(self.legacy_last_turn.execute({**turn, **think.values()},
                                                   functions=BUILTIN_NAMES))
        return "".join(parts)


def parse_template(source: str) -> PromptTemplate:
    """Parse a Go TEMPLATE from a request (TemplateError, a 400 with the position, when it
    is invalid; a 400 too when it is larger than `MAX_TEMPLATE_BYTES`). CPU work: call it
    off the event loop."""
    # surrogatepass: JSON can carry a lone surrogate (`"\ud800"`), which plain UTF-8
    # refuses to encode; the template parses and renders with it all the same
    if len(source) > MAX_TEMPLATE_BYTES \
            or len(source.encode("utf-8", "surrogatepass")) > MAX_TEMPLATE_BYTES:
        raise BadRequestError(f"template is larger than {MAX_TEMPLATE_BYTES // 1024} KiB")
    return PromptTemplate(source)


@functools.lru_cache(maxsize=64)
def parse_template_cached(source: str) -> PromptTemplate:
    """`parse_template` for stored templates, parsed once per distinct source.

    Rendering never changes a parsed template, so one instance serves every request.
    """
    return PromptTemplate(source)


# ----- the data model a template sees ------------------------------------------------------


def collate(messages: Sequence[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """System contents joined, and consecutive same-role messages (but `tool`) merged."""
    system: list[str] = []
    collated: list[dict[str, Any]] = []
    for message in messages:
        if message.get("role") == "system":
            system.append(message.get("content") or "")
        if collated and collated[-1].get("role") == message.get("role") \
                and message.get("role") != "tool":
            last = collated[-1]
            last["content"] = (last.get("content") or "") + "\n\n" + (message.get("content") or "")
        else:
            collated.append(dict(message))
    return "\n\n".join(system), collated


def template_message(message: dict[str, Any]) -> GoStruct:
    """A message as Ollama's `templateMessage`; tool-call arguments print as JSON."""
    calls = []
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        arguments = function.get("arguments")
        calls.append(GoStruct("template.templateToolCall", {
            "ID": call.get("id") or "",
            "Function": GoStruct("template.templateToolCallFunction", {
                "Index": function.get("index") or 0,
                "Name": function.get("name") or "",
                "Arguments": JSONMap(go_json(arguments or {}), is_nil=arguments is None,
                                     go_type="template.templateArgs"),
            }),
        }))
    return GoStruct("*template.templateMessage", {
        "Role": message.get("role") or "",
        "Content": message.get("content") or "",
        "Thinking": message.get("thinking") or "",
        "Images": list(message.get("images") or []),
        "ToolCalls": calls,
        "ToolName": message.get("tool_name") or "",
        "ToolCallID": message.get("tool_call_id") or "",
    })


def go_json(value: Any) -> Any:
    """Request JSON as Ollama's Go types hold it (numbers are float64); a 400 for a
    number a float64 cannot hold, as Go's decoder refuses it."""
    try:
        return json_decoded(value)
    except ValueError as error:
        raise BadRequestError(str(error)) from None


class PropertyType(list[str]):
    """Ollama's `PropertyType`: one JSON-schema type prints and marshals as a string."""

    def go_string(self) -> str:
        if len(self) == 1:
            return self[0]
        return "[" + " ".join(self) + "]" if self else ""

    def go_json(self) -> Any:
        return self[0] if len(self) == 1 else list(self)


_PROPERTY_TAGS = {"AnyOf": ("anyOf", True), "Type": ("type", True), "Items": ("items", True),
                  "Description": ("description", True), "Enum": ("enum", True),
                  "Properties": ("properties", True), "Required": ("required", True)}


def _property(name: str, raw: Any) -> GoStruct:
    if not isinstance(raw, dict):
        raise BadRequestError(f"invalid tool definition: property {name!r} must be an object")
    types = raw.get("type")
    if isinstance(types, str):
        types = [types]
    if types is not None and not (isinstance(types, list)
                                  and all(isinstance(t, str) for t in types)):
        raise BadRequestError(f"invalid tool definition: property {name!r} has a bad type")
    nested = raw.get("properties")
    return GoStruct("api.ToolProperty", {
        "AnyOf": [_property(name, p) for p in _list(raw.get("anyOf"), name)],
        "Type": PropertyType(types or []),
        "Items": go_json(raw.get("items")),
        "Description": _text(raw.get("description"), name),
        "Enum": go_json(_list(raw.get("enum"), name)) or None,
        "Properties": None if not isinstance(nested, dict) else JSONMap(
            {k: _property(k, v) for k, v in nested.items()}, ordered=True),
        "Required": _list(raw.get("required"), name),
    }, _PROPERTY_TAGS)


def _list(value: Any, name: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadRequestError(f"invalid tool definition: {name!r} has a non-list field")
    return value


def _text(value: Any, name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadRequestError(f"invalid tool definition: {name!r} has a non-string field")
    return value


def template_tool(tool: dict[str, Any]) -> GoStruct:
    """A tool as Ollama's `templateTool`: prints as its JSON, properties sorted."""
    function = tool.get("function") or {}
    if not isinstance(function, dict):
        raise BadRequestError("invalid tool definition: 'function' must be an object")
    name = _text(function.get("name"), "name")
    parameters = function.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise BadRequestError(f"invalid tool definition: {name!r} parameters must be an object")
    properties = parameters.get("properties")
    if properties is not None and not isinstance(properties, dict):
        raise BadRequestError(f"invalid tool definition: {name!r} properties must be an object")
    # Ollama's own templateToolFunction(Parameters) print as Go structs; the older API types
    # they replaced printed JSON, which is what templates written for them expect.
    return GoStruct("template.templateTool", {
        "Type": tool.get("type") or "",
        "Items": go_json(tool.get("items")),
        "Function": GoStruct("template.templateToolFunction", {
            "Name": name,
            "Description": _text(function.get("description"), name),
            "Parameters": GoStruct("template.templateToolFunctionParameters", {
                "Type": _text(parameters.get("type"), name),
                "Defs": go_json(parameters.get("$defs")),
                "Items": go_json(parameters.get("items")),
                "Required": _list(parameters.get("required"), name),
                "Properties": JSONMap({k: _property(k, v) for k, v in (properties or {}).items()},
                                      is_nil=properties is None,
                                      go_type="template.templateProperties"),
            }, {"Type": ("type", False), "Defs": ("$defs", True), "Items": ("items", True),
                "Required": ("required", True), "Properties": ("properties", False)},
                stringer=True),
        }, {"Name": ("name", False), "Description": ("description", False),
            "Parameters": ("parameters", False)}, stringer=True),
    }, {"Type": ("type", False), "Items": ("items", True), "Function": ("function", False)},
        stringer=True)


def template_tools(tools: list[dict[str, Any]] | None) -> JSONList:
    return JSONList([template_tool(t) for t in tools or []], is_nil=tools is None,
                    go_type="template.templateTools")


# ----- legacy templates: cut at {{ .Response }} ----------------------------------------------


class CutPanic(Exception):
    """Ollama's `deleteNode` panics on this template: an `{{ else }}` follows the cut."""


def cut_at_response(nodes: list[Node]) -> list[Node]:
    """The template up to its first `.Response` field (Ollama's `deleteNode`).

    Everything after that field, in walk order, goes; the field's own action stays (it
    prints the empty response). Branch pipelines are not searched, as in Ollama. An
    if/with/range whose body holds the field and that has an else body makes Ollama's
    walk assert a nil list (a panic, answered 500): CutPanic.
    """
    cut = False

    def hit(node: Any) -> bool:
        nonlocal cut
        if isinstance(node, Field) and "Response" in node.idents:
            cut = True
            return False
        return cut

    def walk_list(items: list[Node]) -> list[Node]:
        if cut:
            return []
        return [kept for item in items if (kept := walk(item)) is not None]

    def walk(node: Any) -> Any:
        if hit(node):
            return None
        if isinstance(node, Branch):
            body = walk_list(node.body)
            if cut and node.else_body is not None:
                raise CutPanic("template: an {{ else }} after {{ .Response }} cannot be cut "
                               "for the last turn (Ollama panics on this template)")
            else_body = None if node.else_body is None else walk_list(node.else_body)
            return replace(node, body=body, else_body=else_body)
        if isinstance(node, Action):
            pipe = walk(node.pipe)
            return None if pipe is None else replace(node, pipe=pipe)
        if isinstance(node, Pipe):
            cmds = []
            for cmd in node.cmds:
                args = [kept for arg in cmd.args if (kept := walk(arg)) is not None]
                if not args:
                    return None
                cmds.append(replace(cmd, args=args))
            return replace(node, cmds=cmds) if cmds else None
        return node

    return walk_list(nodes)


# ----- thinking tags ---------------------------------------------------------------------------


def thinking_tags(template: Template) -> tuple[str, str]:
    """Opening and closing thinking tags, inferred as Ollama's `thinking.InferTags` does.

    For a `.Thinking` field inside a `range` over `.Messages`, the nearest enclosing list's
    first and last text nodes (trimmed) are the tags; the last such field wins.
    """
    tags = ("", "")

    def visit(node: Any, lists: list[list[Node]], ranges: list[Branch]) -> None:
        nonlocal tags
        if isinstance(node, list):
            for child in node:
                visit(child, [*lists, node], ranges)
        elif isinstance(node, Branch):
            inner = [*ranges, node] if node.kind == "range" else ranges
            visit(node.pipe, lists, inner)
            visit(node.body, lists, inner)
            if node.else_body is not None:
                visit(node.else_body, lists, inner)
        elif isinstance(node, Action):
            visit(node.pipe, lists, ranges)
        elif isinstance(node, Pipe):
            for cmd in node.cmds:
                for arg in cmd.args:
                    visit(arg, lists, ranges)
        elif isinstance(node, Field) and node.idents[0] == "Thinking":
            if ranges and _ranges_over_messages(ranges[-1]) and lists:
                nearest = lists[-1]
                first, last = nearest[0], nearest[-1]
                tags = (first.text.strip() if isinstance(first, Text) else tags[0],
                        last.text.strip() if isinstance(last, Text) else tags[1])

    visit(template.root, [], [])
    return tags


def _ranges_over_messages(node: Branch) -> bool:
    return any(isinstance(arg, Field) and arg.idents[0] == "Messages"
               for cmd in node.pipe.cmds for arg in cmd.args)


# ----- images -------------------------------------------------------------------


def tag_images(messages: Sequence[dict[str, Any]], start: int = 0
               ) -> tuple[list[dict[str, Any]], int]:
    """Messages with `[img-N]` markers for their images (replacing `[img]` where written)."""
    tagged = [dict(m) for m in messages]
    count = 0
    for message in tagged[start:]:
        prefix, content = "", message.get("content") or ""
        for _ in message.get("images") or []:
            tag = f"[img-{count}]"
            count += 1
            if "[img]" in content:
                content = content.replace("[img]", tag, 1)
            else:
                prefix += tag
        message["content"] = prefix + content
    return tagged, count
