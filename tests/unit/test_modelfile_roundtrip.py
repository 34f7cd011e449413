"""Every value survives `render` then `parse`: `show --modelfile` output recreates the model.

Values Ollama's grammar can carry keep Ollama's spellings (bare, `"…"`, `\"\"\"…\"\"\"`);
the rest (a line ending in `\"\"\"` inside a multi-line value, control characters) use
Pasture's `<<TAG` form, which these tests also parse directly.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pasture.api.modelfile import Command, Modelfile, parse, quote, render
from pasture.errors import ModelfileError
from tests.unit.test_properties import FAST

# Any text at all, weighted towards what breaks quoting: quotes, line breaks, spaces,
# control characters, and the heredoc's own markers.
_tricky = st.sampled_from(['"""', '"', "\n", "\r\n", "\r", " ", "\t", "\x00", "\x1b",
                           "\u200d", "\u2028", "\ufeff", "EOF", "<<EOF", "EOF1", "#"])
_text = st.lists(st.text(max_size=6) | _tricky, max_size=16).map("".join)
_command = st.one_of(
    st.builds(Command, st.sampled_from(["system", "template", "license", "adapter", "draft",
                                        "requires"]), _text),
    st.builds(lambda role, text: Command("message", text, key=role),
              st.sampled_from(["system", "user", "assistant"]), _text),
    st.builds(lambda text: Command("parameter", text, key="stop"), _text),
)


def _triples(modelfile: Modelfile) -> list[tuple[str, str, str]]:
    return [(c.name, c.key, c.args) for c in modelfile.commands]


@FAST
@given(_text, st.lists(_command, max_size=6))
def test_render_then_parse_gives_back_every_value(source: str, commands: list[Command]
                                                  ) -> None:
    original = Modelfile([Command("from", source), *commands])
    assert _triples(parse(render(original))) == _triples(original)


@pytest.mark.parametrize("value", [
    'def f():\n    """docstring"""\n    return 1',
    '"""\n',
    "a\x00b",
    "coder \U0001f468\u200d\U0001f4bb",
    "vertical\x0btab, ends in CR\r",
    '  lines named EOF\nEOF\nEOF1\n"""\n',
])
def test_values_outside_ollamas_grammar_use_the_heredoc_form(value: str) -> None:
    spelled = quote(value)
    assert spelled.startswith("<<EOF")
    assert parse(f"FROM m\nTEMPLATE {spelled}\nSYSTEM after\n").template == value


def test_values_ollama_can_carry_keep_ollamas_spelling() -> None:
    assert quote("You are terse.") == "You are terse."
    assert quote("  padded  ") == '"  padded  "'
    assert quote('say "hi"\nnow') == '"""say "hi"\nnow"""'
    assert quote("<<EOF") == '"<<EOF"'  # bare it would open a heredoc


def test_heredoc_values_are_verbatim_and_lines_are_counted() -> None:
    text = ("FROM m\nSYSTEM <<END\n  keep \"\"\"\n\tall\x07\nEND\nTEMPLATE <<EOF\r\nEOF\r\n"
            "PARAMETER stop <<X\nX\nBOGUS\n")
    with pytest.raises(ModelfileError, match=r"line 10"):
        parse(text)
    mf = parse(text.replace("BOGUS\n", ""))
    assert mf.system == '  keep """\n\tall\x07'
    assert mf.template == ""
    assert mf.parameters == [("stop", "", 8)]


@pytest.mark.parametrize("text", ["FROM m\nSYSTEM <<EOF\nno end\n", "FROM m\nSYSTEM <<EOF"])
def test_an_unterminated_heredoc_names_its_line(text: str) -> None:
    with pytest.raises(ModelfileError, match=r"line 2.*no line EOF ends the <<EOF value"):
        parse(text)


def test_a_heredoc_opener_must_be_alone_on_the_first_line() -> None:
    assert parse("FROM m\nSYSTEM <<EOF more\n").system == "<<EOF more"
    assert parse("FROM m\nSYSTEM <<eof\n").system == "<<eof"
    assert parse('FROM m\nSYSTEM """\n<<EOF\n"""\n').system == "\n<<EOF\n"
