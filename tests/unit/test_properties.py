"""Property tests (hypothesis) for the parsers of untrusted input: whatever the bytes, each
one answers with a value or its own 4xx error, within its caps.

The invariants themselves live in `fuzz/targets.py`, shared with the atheris harnesses; this
module supplies the inputs: arbitrary data, mutations of valid files, and grammar-shaped
text that reaches deeper than random characters do. `max_examples` is kept small so the
module runs in seconds; `fuzz/` runs the same targets for minutes.
"""

from __future__ import annotations

import functools
import os
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz import targets
from pasture.api.modelfile import (
    COMMANDS,
    ROLES,
    Command,
    Modelfile,
    parse,
    quote,
    render,
)
from pasture.errors import GGUFError, InvalidNameError, ModelfileError
from pasture.gguf import ValueType, parse_gguf
from pasture.store.names import ModelName
from tests.ggufs import write_gguf
from tests.unit.test_gguf import gstr, header, tensor_info, u32, u64

# PASTURE_PROPERTY_EXAMPLES=5000 for a long run; CI keeps the default, a few seconds in all.
EXAMPLES = int(os.environ.get("PASTURE_PROPERTY_EXAMPLES", "150"))
FAST = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@functools.cache
def small_gguf() -> bytes:
    """A valid file with every structure the reader walks: strings, arrays, tensors."""
    with tempfile.TemporaryDirectory() as tmp:
        return write_gguf(
            Path(tmp) / "seed.gguf",
            {"general.name": "m", "general.file_type": 0, "llama.context_length": 128,
             "xs": list(range(70)), "words": ["a", "b"], "nested": [[1.5], [2.5]], "f": True},
            [("w", np.ones((2, 8), dtype=np.float32)), ("v", np.ones(4, dtype=np.float16))],
        ).read_bytes()


# --- GGUF ---------------------------------------------------------------------------------


@FAST
@given(st.binary(max_size=512))
def test_gguf_arbitrary_bytes_give_only_gguf_error(data: bytes) -> None:
    targets.gguf(data)


@FAST
@given(st.binary(max_size=256))
def test_gguf_arbitrary_bytes_after_a_valid_header_give_only_gguf_error(data: bytes) -> None:
    targets.gguf(b"GGUF" + u32(3) + data)


_edit = st.tuples(st.integers(min_value=0), st.sampled_from([0, 1, 0x7F, 0x80, 0xFF]) |
                  st.integers(0, 255))


@FAST
@given(st.lists(_edit, min_size=1, max_size=8), st.integers(min_value=0))
def test_gguf_mutated_valid_files_give_only_gguf_error(edits: list[tuple[int, int]],
                                                       cut: int) -> None:
    data = bytearray(small_gguf())
    for pos, byte in edits:
        data[pos % len(data)] = byte
    targets.gguf(bytes(data))
    targets.gguf(bytes(data[: cut % len(data)]))


_count = st.sampled_from([0, 1, 2, 2**31 - 1, 2**32 - 1, 2**32, 2**62, 2**63, 2**64 - 1]) | \
    st.integers(0, 2**64 - 1)


@FAST
@given(n_tensors=_count, n_kv=_count, vtype=st.integers(0, 2**32 - 1), length=_count,
       dims=st.lists(_count, max_size=5), tail=st.binary(max_size=64))
def test_gguf_hostile_counts_and_lengths_are_refused_in_bounded_memory(
        n_tensors: int, n_kv: int, vtype: int, length: int, dims: list[int], tail: bytes) -> None:
    """Counts and lengths claiming far more than the file holds cost neither time nor RAM."""
    files = [
        header(n_tensors, n_kv) + gstr("k") + u32(vtype) + u64(length) + tail,
        header(1, 1) + gstr("k") + u32(ValueType.ARRAY) + u32(vtype % 13) + u64(length) + tail,
        header(1, 0) + gstr("t")[:8] + u64(length) + b"t" + u32(len(dims)) +
        b"".join(u64(d) for d in dims) + u32(vtype % 40) + u64(length) + tail,
        header(1) + tensor_info("t", tuple(dims[:4]), vtype % 40, length) + b"\0" * 32,
    ]
    tracemalloc.start()
    try:
        for data in files:
            targets.gguf(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_gguf_seed_file_is_valid() -> None:
    """The mutation seed parses: mutations start from a file that reaches the tensors."""
    info = parse_gguf(small_gguf())
    assert [t.name for t in info.tensors] == ["w", "v"]
    with pytest.raises(GGUFError):
        parse_gguf(small_gguf()[:-40])


# --- Modelfile ----------------------------------------------------------------------------

_modelfile_words = st.sampled_from(
    [c.upper() for c in COMMANDS] + list(COMMANDS) + list(ROLES) +
    ['"', '"""', " ", "\t", "\n", "\r\n", "\r", "#", "x", "temperature", "stop", "\ufeff",
     "\x00", "\u2028", "é"]
)
_modelfile_text = st.lists(_modelfile_words | st.text(max_size=5), max_size=40).map("".join)


@FAST
@given(st.one_of(st.text(max_size=200), _modelfile_text))
def test_modelfile_any_text_parses_or_raises_modelfile_error_and_round_trips(text: str) -> None:
    targets.modelfile(text.encode("utf-8", "surrogatepass"))


@FAST
@given(st.binary(max_size=200))
def test_modelfile_any_bytes_parse_or_raise_modelfile_error(data: bytes) -> None:
    targets.modelfile(data)


def _representable(value: str) -> bool:
    """Whether `quote`'s spelling of `value` parses back to it (always, with the `<<TAG`
    form for values outside Ollama's grammar: see test_modelfile_roundtrip)."""
    try:
        return parse(f"FROM x\nSYSTEM {quote(value)}\n").system == value
    except ModelfileError:
        return False


# Printable text (the parser drops other characters, as Go's strconv.IsPrint does), spaces, line
# breaks and quotes, in values `quote` can spell.
_printable = st.characters(blacklist_categories=["Cc", "Cf", "Cn", "Co", "Cs", "Zl", "Zp", "Zs"])
_value = st.lists(st.text(_printable, max_size=4) |
                  st.sampled_from(["\t", "\n", "\r\n", '"', '"""', " "]),
                  max_size=12).map("".join).filter(_representable)
_param_name = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz_0123456789"), min_size=1,
                      max_size=12)
_command = st.one_of(
    st.builds(Command, st.sampled_from([c for c in COMMANDS if c not in ("parameter", "message")]),
              _value),
    st.builds(lambda k, v: Command("parameter", v, key=k), _param_name, _value),
    st.builds(lambda k, v: Command("message", v, key=k), st.sampled_from(ROLES), _value),
)


@FAST
@given(_value, st.lists(_command, max_size=6))
def test_modelfile_render_then_parse_is_the_identity(source: str, commands: list[Command]) -> None:
    original = Modelfile([Command("from", source), *commands])
    again = parse(render(original))
    assert [(c.name, c.key, c.args) for c in again.commands] == [
        (c.name, c.key, c.args) for c in original.commands
    ]


@FAST
@given(st.text(_printable, max_size=30))
def test_modelfile_printable_one_line_values_are_always_representable(value: str) -> None:
    assert _representable(value.strip(" \t"))


def test_modelfile_without_from_is_an_error() -> None:
    with pytest.raises(ModelfileError, match="no FROM"):
        parse("SYSTEM hi\n")


# --- Go templates -------------------------------------------------------------------------

_template_words = st.sampled_from([
    "{{", "}}", "{{- ", " -}}", "{{/*", "*/}}", " ", "\n", ".", "$", "$x", ":=", "=", "|", "(",
    ")", ",", '"', "`", "'a'", "\\", "0", "1e9", "-1", "0x1F", "true", "nil", "range", "if",
    "else", "end", "with", "define", "template", "block", "break", "continue", "and", "or",
    "not", "len", "index", "slice", "eq", "lt", "printf", "print", "json", "html", "call",
    '"%v"', '"%s%s%s"', ".Messages", ".Role", ".Content", ".System", ".Tools", ".Prompt",
    '"t"', "$i, $m := .Messages", "$.Messages", "toTypeScriptType", "currentDate",
])
_template_text = st.lists(_template_words | st.text(max_size=3), max_size=40).map("".join)


@FAST
@given(st.one_of(_template_text, st.text(max_size=120)))
def test_gotemplate_any_text_parses_or_raises_template_error_within_caps(text: str) -> None:
    targets.gotemplate(text.encode("utf-8", "surrogatepass"))


@pytest.mark.parametrize("source", [
    '{{ define "a" }}{{ template "a" }}{{ end }}{{ template "a" }}',
    '{{ range $i := 1000000000 }}x{{ end }}',
    '{{ range .Messages }}{{ range $.Messages }}{{ range $.Messages }}{{ printf "%s%s" '
    '$.System $.System }}{{ end }}{{ end }}{{ end }}',
    "{{" * 500 + "}}" * 500,
    "(" * 5000,
])
def test_gotemplate_hostile_seeds_stay_within_caps(source: str) -> None:
    targets.gotemplate(source.encode())


# --- names and digests ----------------------------------------------------------------

_name_words = st.sampled_from([
    "/", ":", "@", ".", "..", "\\", "%2e", "\0", "_", "-", "a", "Z", "9", "library",
    "registry.ollama.ai", "http://", "https://", "file://", "sha256:", "~", " ", "é", "\n",
])
_name_text = st.lists(_name_words | st.text(max_size=3), max_size=20).map("".join)


@settings(FAST, max_examples=EXAMPLES * 3)
@given(st.one_of(_name_text, st.text(max_size=60),
                 st.tuples(st.integers(1, 400), _name_text).map(lambda t: "h" * t[0] + t[1])))
def test_names_parse_or_raise_invalid_name_and_stay_inside_the_store(text: str) -> None:
    targets.name(text)


@settings(FAST, max_examples=EXAMPLES * 3)
@given(st.one_of(
    st.text(max_size=80),
    st.text(st.sampled_from("0123456789abcdefABCDEF:/.-\n"), max_size=80).map(
        lambda s: "sha256:" + s),
    st.text(st.sampled_from("0123456789abcdef"), min_size=64, max_size=64).map(
        lambda s: "sha256:" + s),
))
def test_digests_are_exactly_sha256_and_64_lowercase_hex(text: str) -> None:
    targets.digest(text)


@pytest.mark.parametrize("text", [
    "../../etc/passwd", "a/../../b", "..:latest", "x/./y:z", "a/b/c/d/e", "host/ns/..",
    "m:..", "m:.hidden", ".m", "m\0:t", "m\\..\\x", "a@sha256:" + "0" * 64 + "/x",
    "h" * 256 + "/ns/m:t",  # found by the API fuzz run: ENAMETOOLONG writing the manifest
])
def test_traversal_shaped_names_are_refused(text: str) -> None:
    with pytest.raises(InvalidNameError):
        ModelName.parse(text)
