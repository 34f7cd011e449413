"""The functions a Go template can call: Go's builtins and the ones Ollama adds.

A port of `text/template/funcs.go` (`and`, `or`, `not`, `len`, `index`, `slice`, the
`print` family, `html`/`js`/`urlquery` and the comparisons `eq`, `ne`, `lt`, `le`, `gt`,
`ge` with Go's type rules) plus Ollama's `json`, `currentDate`, `yesterdayDate` and
`toTypeScriptType`. Each is a plain function over template values with its argument
count; `and` and `or` short-circuit, so the executor runs those itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pasture.prompt.gotemplate import values as gv
from pasture.prompt.gotemplate.printer import sprint, sprint_value, sprintln
from pasture.prompt.gotemplate.printf import sprintf


class CallError(Exception):
    """A function refused its arguments (`error calling index: …`)."""


class ArgTypeError(Exception):
    """An argument of the wrong Go type."""


@dataclass(frozen=True)
class Function:
    """A builtin: what it calls and how many arguments it takes (`max_args` None: any)."""

    call: Callable[..., Any]
    min_args: int
    max_args: int | None


def _kind(value: Any) -> str:
    if value is None:
        return "invalid"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    return "other"


def _eq(first: Any, *others: Any) -> bool:
    k1 = _kind(first)
    for other in others:
        k2 = _kind(other)
        if k1 != k2:
            if first is not None and other is not None:
                raise CallError("incompatible types for comparison")
            continue
        if k1 == "other":
            if isinstance(first, list | dict) or isinstance(other, list | dict):
                raise CallError(f"non-comparable type {sprint_value(first)}: "
                                 f"{gv.type_name(first)}")
        if first == other:
            return True
    return False


def _ne(a: Any, b: Any) -> bool:
    return not _eq(a, b)


def _ordered(a: Any, b: Any) -> tuple[Any, Any]:
    ka, kb = _kind(a), _kind(b)
    if ka in ("bool", "other", "invalid") or kb in ("bool", "other", "invalid"):
        raise CallError("invalid type for comparison")
    if ka != kb:
        raise CallError("incompatible types for comparison")
    return a, b


def _lt(a: Any, b: Any) -> bool:
    x, y = _ordered(a, b)
    return bool(x < y)


def _le(a: Any, b: Any) -> bool:
    x, y = _ordered(a, b)
    return bool(x <= y)


def _gt(a: Any, b: Any) -> bool:
    x, y = _ordered(a, b)
    return bool(x > y)


def _ge(a: Any, b: Any) -> bool:
    x, y = _ordered(a, b)
    return bool(x >= y)


def _not(value: Any) -> bool:
    return not gv.truth(value)


def _len(value: Any) -> int:
    if value is None:
        raise CallError("len of nil pointer")
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass"))  # Go counts bytes
    if isinstance(value, list | tuple | dict):
        return len(value)
    raise CallError(f"len of type {gv.type_name(value)}")


def _index_arg(index: Any, cap: int) -> int:
    if not isinstance(index, int) or isinstance(index, bool):
        raise CallError(f"cannot index slice/array with type {gv.type_name(index)}")
    if index < 0 or index > cap:
        raise CallError(f"index out of range: {index}")
    return index


def _index(item: Any, *indexes: Any) -> Any:
    if item is None:
        raise CallError("index of untyped nil")
    for index in indexes:
        if item is None:
            raise CallError("index of nil pointer")
        if isinstance(item, str | list | tuple):
            data = item.encode() if isinstance(item, str) else item
            position = _index_arg(index, len(data))
            if position == len(data):
                raise CallError(f"index out of range: {position}")
            item = data[position]
        elif isinstance(item, dict):
            if not isinstance(index, str):
                raise CallError(f"value has type {gv.type_name(index)}; should be string")
            item = item.get(index)
        else:
            raise CallError(f"can't index item of type {gv.type_name(item)}")
    return item


def _slice(item: Any, *indexes: Any) -> Any:
    if item is None:
        raise CallError("slice of untyped nil")
    if len(indexes) > 3:
        raise CallError(f"too many slice indexes: {len(indexes)}")
    if isinstance(item, str):
        if len(indexes) == 3:
            raise CallError("cannot 3-index slice a string")
        data: Any = item.encode()
    elif isinstance(item, list | tuple):
        data = item
    else:
        raise CallError(f"can't slice item of type {gv.type_name(item)}")
    bounds = [0, len(data)]
    for i, index in enumerate(indexes[:2]):
        bounds[i] = _index_arg(index, len(data))
    if bounds[0] > bounds[1]:
        raise CallError(f"invalid slice index: {bounds[0]} > {bounds[1]}")
    result = data[bounds[0]:bounds[1]]
    return result.decode("utf-8", "replace") if isinstance(item, str) else list(result)


def _format_string(value: Any) -> str:
    if not isinstance(value, str):
        raise ArgTypeError(f"string; found {sprint_value(value)}")
    return value


def _printf(fmt: Any, *args: Any) -> str:
    return sprintf(_format_string(fmt), list(args))


def _print(*args: Any) -> str:
    return sprint(list(args))


def _println(*args: Any) -> str:
    return sprintln(list(args))


def _escaper(escape: Callable[[str], str]) -> Callable[..., str]:
    def call(*args: Any) -> str:
        if len(args) == 1 and isinstance(args[0], str):
            return escape(args[0])
        return escape(sprint(["<no value>" if a is None else a for a in args]))

    return call


def _json(value: Any) -> str:
    try:
        return gv.marshal(value)
    except gv.MarshalError:
        return ""  # Ollama ignores the marshalling error


def _date(days_ago: int) -> Callable[..., str]:
    def call(*formats: Any) -> str:
        for fmt in formats:
            _format_string(fmt)
        return (dt.date.today() - dt.timedelta(days=days_ago)).isoformat()

    return call


_TS_TYPES = {"string": "string", "number": "number", "integer": "number",
             "boolean": "boolean", "array": "any[]", "object": "Record<string, any>",
             "null": "null"}


def _to_typescript_type(value: Any) -> str:
    """Ollama's `toTypeScriptType`: a tool property's JSON-schema type in TypeScript."""
    if not isinstance(value, gv.GoStruct) or value.go_type != "api.ToolProperty":
        return "any"
    any_of = value.fields.get("AnyOf") or []
    if any_of:
        return " | ".join(_to_typescript_type(p) for p in any_of)
    types = value.fields.get("Type") or []
    if not types:
        return "any"
    return " | ".join(_TS_TYPES.get(t, "any") for t in types)


def _call(function: Any, *args: Any) -> Any:
    """Go's `call`: template data never holds a function, so it always fails as Go's does."""
    if function is None:
        raise CallError("call of nil")
    raise CallError(f"non-function of type {gv.type_name(function)}")


FUNCTIONS: dict[str, Function] = {
    "and": Function(lambda *a: None, 1, None),  # short-circuits: handled by the executor
    "or": Function(lambda *a: None, 1, None),
    "not": Function(_not, 1, 1),
    "eq": Function(lambda a, *rest: _eq(a, *rest) if rest else _raise_missing(), 1, None),
    "ne": Function(_ne, 2, 2),
    "lt": Function(_lt, 2, 2),
    "le": Function(_le, 2, 2),
    "gt": Function(_gt, 2, 2),
    "ge": Function(_ge, 2, 2),
    "len": Function(_len, 1, 1),
    "index": Function(_index, 1, None),
    "slice": Function(_slice, 1, None),
    "print": Function(_print, 0, None),
    "printf": Function(_printf, 1, None),
    "println": Function(_println, 0, None),
    "html": Function(_escaper(gv.html_escape), 0, None),
    "js": Function(_escaper(gv.js_escape), 0, None),
    "urlquery": Function(_escaper(gv.url_query_escape), 0, None),
    "call": Function(_call, 1, None),
    "json": Function(_json, 1, 1),
    "currentDate": Function(_date(0), 0, None),
    "yesterdayDate": Function(_date(1), 0, None),
    "toTypeScriptType": Function(_to_typescript_type, 1, 1),
}


def _raise_missing() -> bool:
    raise CallError("missing argument for comparison")


FUNCTION_NAMES = frozenset(FUNCTIONS)
# Ollama adds these to Go's builtins; a template built from a bare parse tree (the last
# turn of a legacy template) lacks them.
OLLAMA_FUNCTION_NAMES = frozenset({"json", "currentDate", "yesterdayDate", "toTypeScriptType"})
BUILTIN_NAMES = FUNCTION_NAMES - OLLAMA_FUNCTION_NAMES
