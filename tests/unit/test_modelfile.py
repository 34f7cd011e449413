"""The Modelfile parser reads what Ollama's reads, reports errors by line, and round-trips."""

from __future__ import annotations

import time

import pytest

from pasture.api.modelfile import (
    INVALID_COMMAND,
    INVALID_ROLE,
    Command,
    Modelfile,
    parse,
    quote,
    render,
)
from pasture.errors import ModelfileError

FULL = '''\
# a comment
FROM llama3.2
ADAPTER ./lora.gguf
DRAFT ./draft.gguf
PARAMETER temperature 0.2
PARAMETER stop "<|im_end|>"
PARAMETER stop <|endoftext|>
template """{{ if .System }}<|im_start|>system
{{ .System }}<|im_end|>
{{ end }}"""
SYSTEM You are "helpful".
MESSAGE user Is the sky blue?
MESSAGE assistant Yes.
LICENSE """MIT
License"""
LICENSE Apache
RENDERER qwen3
PARSER qwen3
REQUIRES 0.14.0
'''


def test_parses_every_instruction() -> None:
    mf = parse(FULL)
    assert mf.from_ == "llama3.2"
    assert mf.adapters == ["./lora.gguf"]
    assert mf.draft == "./draft.gguf"
    assert mf.parameters == [
        ("temperature", "0.2", 5),
        ("stop", "<|im_end|>", 6),
        ("stop", "<|endoftext|>", 7),
    ]
    assert mf.template == "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
    assert mf.system == 'You are "helpful".'
    assert mf.messages == [("user", "Is the sky blue?"), ("assistant", "Yes.")]
    assert mf.licenses == ["MIT\nLicense", "Apache"]
    assert (mf.renderer, mf.parser, mf.requires) == ("qwen3", "qwen3", "0.14.0")


def test_commands_keep_order_lines_and_keys() -> None:
    mf = parse(FULL)
    assert mf.commands[0] == Command("from", "llama3.2", 2)
    assert mf.commands[3] == Command("parameter", "0.2", 5, "temperature")
    assert [c.line for c in mf.commands if c.name == "message"] == [12, 13]
    assert [c.line for c in mf.commands if c.name == "license"] == [14, 16]


def test_instructions_are_case_insensitive() -> None:
    mf = parse("from m\nSyStEm hi\nparameter num_ctx 8")
    assert (mf.from_, mf.system, mf.parameters) == ("m", "hi", [("num_ctx", "8", 3)])


def test_last_system_and_template_win_and_several_froms_are_kept() -> None:
    mf = parse("FROM a.gguf\nFROM b.gguf\nSYSTEM one\nSYSTEM two\n")
    assert mf.froms == ["a.gguf", "b.gguf"]
    assert mf.from_ == "a.gguf"
    assert mf.system == "two"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("SYSTEM   spaced out  ", "spaced out"),
        ('SYSTEM "  kept spaces  "', "  kept spaces  "),
        ('SYSTEM ""', ""),
        ('SYSTEM """"""', ""),
        ("SYSTEM", None),
        ('SYSTEM "multi\nline"', "multi\nline"),
        ('SYSTEM """a "quoted" word"""', 'a "quoted" word'),
        ('SYSTEM """\nfirst\n\nthird\n"""', "\nfirst\n\nthird\n"),
        ("SYSTEM a\\nb", "a\\nb"),  # no escape sequences, as in Ollama
        ("SYSTEM tab\there", "tab\there"),
        ("SYSTEM bell\x07gone", "bellgone"),  # control characters are dropped
        ('SYSTEM say "hi"', 'say "hi"'),
        ("SYSTEM # not a comment", "# not a comment"),
        ("SYSTEM héllo wörld ✓", "héllo wörld ✓"),
    ],
)
def test_values_bare_and_quoted(text: str, value: str | None) -> None:
    if value is None:
        with pytest.raises(ModelfileError):
            parse("FROM m\n" + text)
        return
    assert parse("FROM m\n" + text).system == value


def test_crlf_line_endings() -> None:
    mf = parse('FROM m\r\nSYSTEM """a\r\nb"""\r\nPARAMETER top_k 5\r\n')
    assert mf.system == "a\r\nb"
    assert mf.parameters == [("top_k", "5", 4)]


def test_bom_is_tolerated_in_text_and_bytes() -> None:
    assert parse("\ufeffFROM m").from_ == "m"
    assert parse(b"\xef\xbb\xbfFROM m\n").from_ == "m"
    assert parse("FROM m\n".encode("utf-16")).from_ == "m"


def test_comments_and_blank_lines_are_skipped() -> None:
    mf = parse("\n# c1\n   \n\t# c2\nFROM m # trailing text is part of the value\n")
    assert mf.commands == [Command("from", "m # trailing text is part of the value", 5)]


def test_missing_from_is_ollamas_error() -> None:
    with pytest.raises(ModelfileError) as info:
        parse("SYSTEM hi\n")
    assert info.value.message == "no FROM line"
    assert info.value.status == 400


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("FROM m\nSYSTEM hi\nINSTRUCTION x\n", 3, INVALID_COMMAND),
        ("FROM m\n\n\nFROM: x\n", 4, INVALID_COMMAND),
        ("FROM m\nSYSTEM\nx", 2, INVALID_COMMAND),
        ("FROM m\nMESSAGE tool hi\n", 2, INVALID_ROLE),
        ("FROM m\nMESSAGE User hi\n", 2, INVALID_ROLE),
        ("FROM m\nMESSAGE user: hi\n", 2, INVALID_ROLE),
        ("FROM m\nPARAMETER top-k 5\n", 2, "invalid or missing parameter name"),
        ("FROM m\nPARAMETER stop\n", 2, "invalid or missing parameter name"),
        ('FROM m\nSYSTEM """never closed\nmore\n', 2, "unterminated"),
        ('FROM m\n\nSYSTEM "open\n', 3, "unterminated"),
    ],
)
def test_errors_name_the_line(text: str, line: int, message: str) -> None:
    with pytest.raises(ModelfileError) as info:
        parse(text)
    assert info.value.message.startswith(f"(line {line}): ")
    assert message in info.value.message


def test_invalid_command_wording_matches_ollama() -> None:
    assert INVALID_COMMAND == (
        'command must be one of "from", "license", "template", "system", "adapter", "draft", '
        '"renderer", "parser", "parameter", "message", or "requires"'
    )


def test_extra_spaces_after_parameter_and_message_are_skipped() -> None:
    mf = parse("FROM m\nPARAMETER   stop   x y\nMESSAGE  user  hi there\n")
    assert mf.parameters == [("stop", "x y", 2)]
    assert mf.messages == [("user", "hi there")]


def test_parameter_names_and_raw_values_are_kept_as_written() -> None:
    mf = parse("FROM m\nPARAMETER Num_Ctx 4096\nPARAMETER seed -1\n")
    assert mf.parameters == [("Num_Ctx", "4096", 2), ("seed", "-1", 3)]


@pytest.mark.parametrize(
    "value",
    [
        "plain",
        "",
        " leading",
        "trailing ",
        "two\nlines",
        'has "quotes"',
        '"starts with a quote',
        'ends with a quote"',
        'multi\nline with "quotes"',
        '"',
        '""',
        '"""',
        "\ttabbed\t",
        "{{ .System }}\n<|im_start|>user\n{{ .Prompt }}<|im_end|>\n",
        "windows\r\nline",
    ],
)
def test_quote_round_trips(value: str) -> None:
    assert parse(f"FROM m\nSYSTEM {quote(value)}\n").system == value


def test_quote_leaves_simple_values_bare() -> None:
    assert quote("0.7") == "0.7"
    assert quote("has spaces inside") == "has spaces inside"
    assert quote("two\nlines") == '"two\nlines"'
    assert quote('two\n"lines"') == '"two\n"lines""'


def test_render_parses_back_to_the_same_commands() -> None:
    original = parse(FULL)
    again = parse(render(original))
    assert [(c.name, c.key, c.args) for c in again.commands] == [
        (c.name, c.key, c.args) for c in original.commands
    ]


def test_render_of_built_commands() -> None:
    mf = Modelfile(
        [
            Command("from", "/models/my model.gguf"),
            Command("parameter", "<|im_end|>", key="stop"),
            Command("message", "hello\nthere", key="user"),
            Command("template", "{{ .Prompt }}"),
        ]
    )
    text = render(mf)
    assert text.splitlines()[0] == "FROM /models/my model.gguf"
    assert "PARAMETER stop <|im_end|>" in text
    assert parse(text).messages == [("user", "hello\nthere")]
    assert str(mf) == text


def test_huge_inputs_parse_in_linear_time() -> None:
    long_line = "FROM m\nSYSTEM " + "word " * 2_000_000 + "\n"
    many_lines = 'FROM m\nTEMPLATE """' + "x\n" * 500_000 + '"""\n'
    start = time.perf_counter()
    assert len(parse(long_line).system) == 5 * 2_000_000 - 1
    assert parse(many_lines).template.count("\n") == 500_000
    assert time.perf_counter() - start < 10
