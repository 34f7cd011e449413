"""Go's own text/template, held as literals: each case here once rendered differently in
Pasture than in Go (found by fuzz/gotemplate_diff.py, which renders with Go's
text/template and Ollama's data model), and the expected text is what Go produced.

The conversation is the checker's: a system prompt, a tool call whose arguments hold
numbers Go decodes into float64, a tool result and a user turn. Templates without
`.Messages` render in Ollama's legacy mode (one execution per turn, the last one cut at
`.Response` and run without Ollama's own functions or the defined templates).
"""

from __future__ import annotations

from typing import Any

import pytest

from pasture.errors import TemplateError
from pasture.prompt.render import parse_template

CONVERSATION: list[dict[str, Any]] = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Add <these> & \"those\"."},
    {"role": "assistant", "content": "", "tool_calls": [{"function": {
        "name": "add", "arguments": {
            "a": 3, "b": 12345678901234567890, "c": 0.1, "d": 1e21, "e": 1e20, "f": 1e-7,
            "g": 0.000001, "h": -2.5, "i": [1, 2.0, 1e100], "j": {"z": 1, "y": None},
            "k": True, "l": "x<y", "m": 123456789, "n": 1.5e300, "o": 100000, "p": -0.0}}}]},
    {"role": "tool", "content": "12345678901234567890", "tool_name": "add"},
    {"role": "user", "content": "Thanks"},
]
TOOLS: list[dict[str, Any]] = [{"type": "function", "function": {
    "name": "add", "description": "Add numbers",
    "parameters": {"type": "object", "required": ["a"], "properties": {
        "b": {"type": ["number", "null"], "description": "second"},
        "a": {"type": "number", "enum": [1, 2.5, 1e21]}}}}}]
# Legacy mode: system, user, assistant "A", user.
LEGACY = [*CONVERSATION[:2], {"role": "assistant", "content": "A"}, CONVERSATION[4]]

GO_RENDERS: list[tuple[str, str]] = [
    # Ollama's granite4 template counts with printf's `*` width
    ("{{ len (printf \"a%*s\" 3 \"\") }}|{{ printf \"a%*s|\" 0 \"\" }}",
     "4|a|"),
    ("{{ printf \"%[2]s %[1]s\" \"a\" \"b\" }}",
     "b a"),
    ("{{ printf \"%[3]d\" 1 2 }}",
     "%!d(BADINDEX)"),
    ("{{ printf \"%[1]d %d\" 1 2 }}",
     "1 2"),
    ("{{ printf \"%*[2]d|\" 1 5 }}",
     "5|"),
    ("{{ printf \"%[2]*[1]d|\" 7 4 }}",
     "   7|"),
    ("{{ printf \"%[0]d\" 1 }}",
     "%!d(BADINDEX)"),
    ("{{ printf \"%[x]d\" 1 }}",
     "%!d(BADINDEX)"),
    ("{{ printf \"%.[2]*[1]f\" 3.14159 2 }}",
     "3.14"),
    ("{{ printf \"%x %X %o %O %b\" 255 -255 8 8 5 }}",
     "ff -FF 10 0o10 101"),
    ("{{ printf \"%#x %#o %#X %#b\" 255 8 255 5 }}",
     "0xff 010 0XFF 0b101"),
    ("{{ printf \"%+d % d %+.3d %08.3d|%-05d|%05d\" 5 5 5 5 5 -5 }}",
     "+5  5 +005      005|5    |-0005"),
    ("{{ printf \"%x % x %X % X\" \"hi!\" \"hi!\" \"é\" \"é\" }}",
     "686921 68 69 21 C3A9 C3 A9"),
    ("{{ printf \"%05s|%-5s|%5s|%.2s|%5.1s|\" \"ab\" \"é\" \"日本\" \"日本語\" \"xyz\" }}",
     "000ab|é    |   日本|日本|    x|"),
    ("{{ printf \"%q %+q %#q %q\" \"a\\\"b\\n\" \"é日\" \"raw\" 97 }}",
     "\"a\\\"b\\n\" \"\\u00e9\\u65e5\" `raw` 'a'"),
    ("{{ printf \"%c %c %U %#U\" 97 26085 26085 97 }}",
     "a 日 U+65E5 U+0061 'a'"),
    ("{{ printf \"%x\" 3.5 }}",
     "0x1.cp+01"),
    ("{{ printf \"%8.3f|%-8.3f|%08.3f|%+08.3f\" -1.5 1.5 -1.5 1.5 }}",
     "  -1.500|1.500   |-001.500|+001.500"),
    ("{{ printf \"%6.2v|%.3v|%10.3v\" 3.14159 \"abcdef\" 1234.5 }}",
     "   3.1|abc|  1.23e+03"),
    ("{{ printf \"%#v %#v %#v\" \"s\" 3 1.0 }}",
     "\"s\" 3 1"),
    ("{{ printf \"%10.3q|\" \"abcdef\" }}",
     "     \"abc\"|"),
    ("{{ printf \"%-#10x|\" \"hi\" }}",
     "0x6869    |"),
    ("{{ printf \"% 05d|%+05d\" 42 42 }}",
     " 0042|+0042"),
    ("{{ printf \"%08q|%-8q|\" \"a\" \"b\" }}",
     "00000\"a\"|\"b\"     |"),
    ("{{ 1e21 }} {{ 1e20 }} {{ 1.0 }} {{ 1e3 }} {{ 0x10 }} {{ 0o17 }} {{ 0b101 }} {{ 1_000 }}",
     "1e+21 1e+20 1 1000 16 15 5 1000"),
    ("{{ 0x1p-2 }}",
     "0.25"),
    ("{{ range .Messages }}{{ range .ToolCalls }}{{ .Function.Arguments }}{{ end }}{{ end }}",
     "{\"a\":3,\"b\":12345678901234567000,\"c\":0.1,\"d\":1e+21,\"e\":100000000000000000000,\"f\":1e-7,\"g\":0.000001,\"h\":-2.5,\"i\":[1,2,1e+100],\"j\":{\"y\":null,\"z\":1},\"k\":true,\"l\":\"x\\u003cy\",\"m\":123456789,\"n\":1.5e+300,\"o\":100000,\"p\":-0}"),  # noqa: E501
    ("{{ range .Messages }}{{ range .ToolCalls }}{{ range $k, $v := .Function.Arguments }}{{ $k }}={{ $v }};{{ end }}{{ end }}{{ end }}",  # noqa: E501
     "a=3;b=1.2345678901234567e+19;c=0.1;d=1e+21;e=1e+20;f=1e-07;g=1e-06;h=-2.5;i=[1 2 1e+100];j=map[y:<nil> z:1];k=true;l=x<y;m=1.23456789e+08;n=1.5e+300;o=100000;p=-0;"),  # noqa: E501
    ("{{ range .Messages }}{{ range .ToolCalls }}{{ json .Function.Arguments }}{{ printf \"%v|%d|%.2f\" .Function.Arguments.a .Function.Arguments.a .Function.Arguments.c }}{{ end }}{{ end }}",  # noqa: E501
     "{\"a\":3,\"b\":12345678901234567000,\"c\":0.1,\"d\":1e+21,\"e\":100000000000000000000,\"f\":1e-7,\"g\":0.000001,\"h\":-2.5,\"i\":[1,2,1e+100],\"j\":{\"y\":null,\"z\":1},\"k\":true,\"l\":\"x\\u003cy\",\"m\":123456789,\"n\":1.5e+300,\"o\":100000,\"p\":-0}3|%!d(float64=3)|0.10"),  # noqa: E501
    ("{{ range .Messages }}{{ range .ToolCalls }}{{ if eq .Function.Arguments.a 3.0 }}three{{ end }}{{ end }}{{ end }}",  # noqa: E501
     "three"),
    ("{{ range .Messages }}{{ printf \"%+v|%T\" . . }}{{ end }}",
     "&{Role:system Content:Be brief. Thinking: Images:[] ToolCalls:[] ToolName: ToolCallID:}|*template.templateMessage&{Role:user Content:Add <these> & \"those\". Thinking: Images:[] ToolCalls:[] ToolName: ToolCallID:}|*template.templateMessage&{Role:assistant Content: Thinking: Images:[] ToolCalls:[{ID: Function:{Index:0 Name:add Arguments:{\"a\":3,\"b\":12345678901234567000,\"c\":0.1,\"d\":1e+21,\"e\":100000000000000000000,\"f\":1e-7,\"g\":0.000001,\"h\":-2.5,\"i\":[1,2,1e+100],\"j\":{\"y\":null,\"z\":1},\"k\":true,\"l\":\"x\\u003cy\",\"m\":123456789,\"n\":1.5e+300,\"o\":100000,\"p\":-0}}}] ToolName: ToolCallID:}|*template.templateMessage&{Role:tool Content:12345678901234567890 Thinking: Images:[] ToolCalls:[] ToolName:add ToolCallID:}|*template.templateMessage&{Role:user Content:Thanks Thinking: Images:[] ToolCalls:[] ToolName: ToolCallID:}|*template.templateMessage"),  # noqa: E501
    ("{{ printf \"%T %T %T\" .Tools (index .Messages 0) (index (index .Messages 2).ToolCalls 0).Function.Arguments }}",  # noqa: E501
     "template.templateTools *template.templateMessage template.templateArgs"),
]
GO_REFUSES: list[tuple[str, str]] = [
    ("{{ printf \"%v %v\" (slice \"abc\" 1) (index .Messages 0).Role }}", "exec"),  # Go: exec
    ("{{ 12345678901234567890 }}", "exec"),  # Go: exec
    ("{{ 1e400 }}", "parse"),  # Go: parse
    ("{{ range .Messages }}{{ range .ToolCalls }}{{ if eq .Function.Arguments.a 3 }}three{{ end }}{{ end }}{{ end }}", "exec"),  # noqa: E501
    ("{{ .Tools }}|{{ json .Tools }}|{{ range .Tools }}{{ .Function.Parameters.Properties }}{{ range $k, $v := .Function.Parameters.Properties }}{{ $k }}:{{ $v.Type }}:{{ $v.Enum }};{{ end }}{{ end }}", "exec"),  # noqa: E501
    ("{{ template \"x\" }}", "parse"),  # Go: parse
    ("{{ call .System }}", "exec"),  # Go: exec
    ("{{ json 1e21 }} {{ json 3.0 }} {{ json 1e-7 }} {{ json \"<&>\" }}", "exec"),  # Go: exec
    ("{{ currentDate | len }}", "exec"),  # Go: exec
    ("{{ toTypeScriptType 1 }}", "exec"),  # Go: exec
    ("{{ .Prompt }}{{ if .System }}{{ .Response }}{{ else }}E{{ end }}", "exec"),  # Go: panic
    ("{{ printf \"%5d|%-4v|%x|%05v\" (slice (index .Messages 2).ToolCalls 0) .Tools (index (index .Messages 2).ToolCalls 0).Function.Arguments 7 }}", "exec"),  # noqa: E501
    ("{{ printf \"%v|%d|%s\" (index (index .Messages 2).ToolCalls 0).Function.Arguments.i (index (index .Messages 2).ToolCalls 0).Function.Arguments.i .Tools }}", "exec"),  # noqa: E501
]
GO_REFUSES_LEGACY: list[tuple[str, str]] = [
    ("{{ .Prompt }}{{ if .System }}{{ .Response }}{{ else }}E{{ end }}", "exec"),  # Go: panic
]


def render(source: str, messages: list[dict[str, Any]]) -> str:
    return parse_template(source).render(messages, TOOLS)


@pytest.mark.parametrize(("source", "expected"), GO_RENDERS)
def test_renders_as_go_does(source: str, expected: str) -> None:
    assert render(source, CONVERSATION) == expected


@pytest.mark.parametrize(("source", "stage"), GO_REFUSES)
def test_refuses_what_go_refuses_at_the_same_stage(source: str, stage: str) -> None:
    if stage == "parse":
        with pytest.raises(TemplateError):
            parse_template(source)
        return
    template = parse_template(source)  # Go parses it: so must Pasture
    with pytest.raises(TemplateError):
        template.render(CONVERSATION, TOOLS)


@pytest.mark.parametrize(("source", "stage"), GO_REFUSES_LEGACY)
def test_legacy_mode_refuses_what_ollama_refuses(source: str, stage: str) -> None:
    template = parse_template(source)
    with pytest.raises(TemplateError):
        template.render(LEGACY, TOOLS)
