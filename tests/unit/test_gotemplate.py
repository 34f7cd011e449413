"""The Go text/template interpreter: language, Go's semantics, errors and safety caps.

Expected outputs were checked against Go's own text/template (Go 1.19 plus the newer
`range` over integers), so these tests pin Go's behaviour, quirks included.
"""

from __future__ import annotations

import pytest

from pasture.errors import TemplateError
from pasture.prompt.gotemplate import GoStruct, JSONMap, Template, parser
from pasture.prompt.gotemplate.exec import MAX_WORK

DATA = {"A": "a", "B": "b", "E": "", "F": 2.5, "L": [1, 2, 3, 4], "M": {"x": "X", "y": 2},
        "Empty": [], "Zero": 0, "T": True, "Big": 12345678.0, "Small": 0.0000001}


def render(source: str, data: object = None, **limits: object) -> str:
    return Template.parse(source).execute(DATA if data is None else data, **limits)


@pytest.mark.parametrize(("source", "expected"), [
    ("{{ .A }}|{{ .Missing }}|{{ .M.x }}|{{ .M.nope }}|{{ .L }}|{{ .M }}",
     "a|<no value>|X|<no value>|[1 2 3 4]|map[x:X y:2]"),
    ("{{ 1e6 }} {{ 1.5 }} {{ 100000.0 }} {{ 0.00001 }} {{ -3 }} {{ 0x1F }} {{ 017 }} {{ 'a' }}",
     "1e+06 1.5 100000 1e-05 -3 31 15 97"),
    ("{{ .F }} {{ .Big }} {{ json .Big }} {{ json .Small }}", "2.5 1.2345678e+07 12345678 1e-7"),
    ('{{ print 1 2 "a" 3 true false nil }}|{{ println 1 "a" }}',
     "1 2a3 true false <nil>|1 a\n"),
    ('{{ printf "%s-%d-%v-%q-%5.2f|%-4d|%x" "s" 7 .L "q\\n" 3.14159 5 "hi" }}',
     's-7-[1 2 3 4]-"q\\n"- 3.14|5   |6869'),
    ('{{ printf "%d %s" "x" 5 }}|{{ printf "%d" }}|{{ printf "a" 1 }}|{{ printf "%v" nil }}',
     "%!d(string=x) %!s(int=5)|%!d(MISSING)|a%!(EXTRA int=1)|<nil>"),
    ("{{ if and .A .B }}yes{{ else if .E }}mid{{ else }}no{{ end }}", "yes"),
    ("{{ if .E }}1{{ else if .Zero }}2{{ else if .Empty }}3{{ else }}none{{ end }}", "none"),
    # and/or short-circuit and return the deciding value, not a bool
    ("{{ and .A .E .B }}|{{ or .E .Zero }}|{{ or .E .A }}|{{ and 1 2 }}|{{ not .E }}",
     "|0|a|2|true"),
    ('{{ eq .A "z" "a" }} {{ eq .A "z" }} {{ ne 1 2 }} {{ lt 1 2 }} {{ ge "b" "a" }}',
     "true false true true true"),
    ('{{ eq .Missing "x" }}', "false"),
    ('{{ len .L }} {{ len "héllo" }} {{ index .L 1 }} {{ index .M "x" }} {{ index .M "q" }}',
     "4 6 2 X <no value>"),
    ('{{ slice .L 1 }} {{ slice "abcdef" 1 3 }} {{ index "abc" 1 }}', "[2 3 4] bc 98"),
    ("{{ range $i, $e := .L }}[{{ $i }}={{ $e }}]{{ end }}", "[0=1][1=2][2=3][3=4]"),
    ("{{ range .M }}<{{ . }}>{{ end }}{{ range $k, $v := .M }}{{ $k }}:{{ $v }};{{ end }}",
     "<X><2>x:X;y:2;"),
    ("{{ range .Empty }}x{{ else }}empty{{ end }}{{ range .Missing }}x{{ else }}nil{{ end }}",
     "emptynil"),
    ("{{ range 3 }}{{ . }}{{ end }}{{ range $i := 2 }}{{ $i }}{{ end }}{{ range 0 }}x{{ end }}",
     "01201"),
    ("{{ range .L }}{{ if eq . 2 }}{{ continue }}{{ end }}{{ if eq . 4 }}{{ break }}{{ end }}"
     "{{ . }}{{ end }}", "13"),
    # a variable lives until the end of its control structure; `=` assigns the outer one
    ("{{ $x := 1 }}{{ range .L }}{{ $x = . }}{{ end }}{{ $x }}"
     "{{ if true }}{{ $x := 9 }}{{ $x }}{{ end }}{{ $x }}", "494"),
    ("{{ with .A }}[{{ . }}]{{ else }}none{{ end }}{{ with .E }}[{{ . }}]{{ else }}none{{ end }}",
     "[a]none"),
    ("{{ with .E }}1{{ else with .A }}{{ . }}{{ end }}", "a"),
    ("a  \n {{- .A -}} \n  b {{- /* comment */ -}}  c {{/* c2 */}} d", "aabc  d"),
    ('{{ .A | printf "%s!" }} {{ "x" | printf "%s%s" .A }} {{ .L | len }} {{ (.M).x }}',
     "a! ax 4 X"),
    ('{{ html "<a href=\'x\'>&" }} {{ js "a\'b<>=" }} {{ urlquery "a b&c" }}',
     "&lt;a href=&#39;x&#39;&gt;&amp; a\\'b\\u003C\\u003E\\u003D a+b%26c"),
    ('{{ json .M }} {{ json .L }} {{ json "<&>" }} {{ json nil }}',
     '{"x":"X","y":2} [1,2,3,4] "\\u003c\\u0026\\u003e" null'),
    ('{{ define "x" }}X{{ . }}{{ end }}{{ template "x" .A }}'
     '{{ block "b" .L }}B{{ len . }}{{ end }}', "XaB4"),
    ('{{ "a\\tb\\u00e9\\x41" }} {{ `raw\\n` }} {{ printf "%q %c" 65 66 }}', "a\tbéA raw\\n 'A' B"),
    ("{{ $.A }}{{ $x := .M }}{{ $x.x }}", "aX"),
])
def test_language_and_go_semantics(source: str, expected: str) -> None:
    assert render(source) == expected


def test_struct_fields_and_map_keys_print_like_go() -> None:
    message = GoStruct("*t.msg", {"Role": "user", "Content": "hi", "Images": []})
    data = {"Messages": [message], "Args": JSONMap({"b": 2, "a": "<"})}
    assert render("{{ range .Messages }}{{ .Role }} {{ . }}{{ end }} {{ .Args }}", data) == (
        'user {user hi []} {"a":"\\u003c","b":2}')


def test_print_shows_a_pointer_as_fmt_does_and_an_action_what_it_points_to() -> None:
    # fmt prints a pointer to a struct as `&{…}` (print.go, printValue at depth 0);
    # text/template's printableValue follows the pointer before printing `{{ . }}`.
    data = {"M": GoStruct("*t.msg", {"Role": "user", "Content": "hi"})}
    assert render('{{ .M }}|{{ print .M }}|{{ println .M }}|{{ printf "%v" .M }}', data) == (
        "{user hi}|&{user hi}|&{user hi}\n|&{user hi}")


@pytest.mark.parametrize(("source", "message"), [
    ("{{ .A.Foo }}", "can't evaluate field Foo in type string"),
    ('{{ eq 1 "a" }}', "error calling eq: incompatible types for comparison"),
    ("{{ index .L 5 }}", "error calling index: index out of range: 5"),
    ("{{ range .A }}x{{ end }}", "range can't iterate over a"),
    ("{{ printf 5 }}", "expected string; found 5"),
    ("{{ and }}", "wrong number of args for and: want at least 1 got 0"),
    ("{{ .A 1 }}", "A is not a method but has arguments"),
    ("{{ $.A 1 }}", "A is not a method but has arguments"),
    ("{{ . 1 }}", "can't give argument to non-function ."),
    ('{{ template "nope" . }}', 'no such template "nope"'),
    ("{{ $x = 1 }}", "undefined variable: $x"),
])
def test_execution_errors_name_the_position(source: str, message: str) -> None:
    with pytest.raises(TemplateError) as caught:
        render(source)
    assert caught.value.status == 400
    assert caught.value.message.startswith("template: :1:")
    assert message in caught.value.message


@pytest.mark.parametrize(("source", "message"), [
    ("{{ .Prompt ", "template: :1:12: unclosed action"),
    ("{{ if .X }}a", "template: :1:13: unexpected EOF"),
    ("{{ end }}", "template: :1:8: unexpected {{end}}"),
    ("{{ foo }}", 'template: :1:4: function "foo" not defined'),
    ("{{ $x }}", 'template: :1:4: undefined variable "$x"'),
    ("{{ break }}", "template: :1:4: {{break}} outside {{range}}"),
    ("{{/* a */ }}", "template: :1:10: comment ends before closing delimiter"),
    ("{{/* a", "template: :1:3: unclosed comment"),
    ("{{ }}", "template: :1:4: missing value for command"),
    ("{{ (1 }}", "template: :1:7: unclosed left paren"),
    ('{{ "abc }}', "template: :1:4: unterminated quoted string"),
    ("{{ .X\n }}\n\n  {{ if .Y }}\n{{ .Z ) }}", 'template: :5:7: unexpected ")" in command'),
    ("{{ 3abc }}", 'template: :1:4: bad number syntax: "3a"'),
    ("{{ .A.B(1) }}", 'template: :1:8: unexpected "(" in operand'),
    ("{{ range $a, $b, $c := .L }}{{ end }}", "too many declarations in range"),
    ("{{ $x := 1 | 2 }}", "non executable command in pipeline stage 2"),
    ("{{ range .X }}{{ else if .Y }}{{ end }}", "unexpected <if> in input"),
])
def test_parse_errors_carry_line_and_column(source: str, message: str) -> None:
    with pytest.raises(TemplateError) as caught:
        Template.parse(source)
    assert caught.value.status == 400
    assert message in caught.value.message


def test_trim_markers_need_a_space() -> None:
    assert render("x {{-3}} y") == "x -3 y"  # "{{-3" is the number -3, not a trim


def test_output_is_capped() -> None:
    with pytest.raises(TemplateError, match="output exceeds 1000"):
        render("{{ range 2000 }}x{{ end }}", max_output=1000)


def test_growing_strings_are_capped() -> None:
    source = '{{ $s := "xxxxxxxxxx" }}{{ range 40 }}{{ $s = printf "%s%s" $s $s }}{{ end }}'
    with pytest.raises(TemplateError, match="value exceeds"):
        render(source)


def test_steps_are_capped() -> None:
    with pytest.raises(TemplateError, match="exceeds 10000 steps"):
        render("{{ range 1000000 }}{{ end }}", max_steps=10_000)


def test_time_is_capped() -> None:
    with pytest.raises(TemplateError, match="longer than"):
        render("{{ range 100000000 }}{{ end }}", max_seconds=0.05, max_steps=10**9)


@pytest.mark.parametrize(("source", "expected"), [
    # Go's parsenum gives up on a written width or precision past 1e6 (`tooLarge`): the
    # rest of the format is dropped, so no directive builds a string of that size
    ('{{ printf "%999999999d" 1 }}', "%!(NOVERB)%!(EXTRA int=1)"),
    ('{{ printf "x%.999999999f" 1.5 }}', "x%!(NOVERB)%!(EXTRA float64=1.5)"),
    # one taken from an argument (`*`) is refused past 1e6 and the verb still prints
    ('{{ printf "%*d|" 1000001 7 }}', "%!(BADWIDTH)7|"),
    ('{{ printf "%.*f|" 1000001 1.5 }}', "%!(BADPREC)1.500000|"),
    ('{{ printf "%*d|%*d|%*d" 4 7 -3 7 "x" 1 }}', "   7|7  |%!(BADWIDTH)1"),
    ('{{ printf "%.3d|%.0d|%6.2f|%.2000000s" 7 0 3.14159 "abc" }}', "007||  3.14|abc"),
    ('{{ printf "%c%q" -1 -1 }}', "\ufffd'\ufffd'"),  # an invalid rune is U+FFFD
    ('{{ printf "%." 1 }}', "%!.(int=1)"),  # a '.' at the end is the verb
])
def test_printf_widths_and_precisions_follow_go(source: str, expected: str) -> None:
    assert render(source) == expected


@pytest.mark.parametrize("source", ['{{ printf "%9999999d" 1 }}',
                                    '{{ printf "%.9999999f" 1.5 }}'])
def test_a_width_go_accepts_but_over_the_output_cap_fails_before_building(source: str) -> None:
    with pytest.raises(TemplateError, match="template value exceeds 1048576 characters"):
        render(source)


def test_json_escapes_as_go_does() -> None:
    text = "\x00\x1f\b\f\n\t\"\\\x7f\u2028\u2029\ud800é<>&"
    assert render("{{ json . }}", text) == (
        '"\\u0000\\u001f\\b\\f\\n\\t\\"\\\\\x7f\\u2028\\u2029\ufffdé\\u003c\\u003e\\u0026"')


def test_a_function_call_is_charged_the_text_it_reads_and_builds() -> None:
    """`json` reads 1,000 characters and builds 1,002, which `len` reads again: 3,004."""
    source, data = "{{ $n := len (json .) }}", "a" * 1000
    assert render(source, data, max_work=3004) == ""
    with pytest.raises(TemplateError, match="template exceeds 3003 characters of work"):
        render(source, data, max_work=3003)


def test_costly_steps_exhaust_the_work_budget_not_the_clock() -> None:
    """The attack run's template: five steps an iteration, each iteration marshalling 800 KB
    of conversation. Counted in steps it ran 16 s against a 2 s budget; charged by the text
    each call reads and builds it stops after about 40 iterations, on the work budget."""
    messages = [GoStruct("api.Message", {"Role": "user", "Content": "a" * 20_000})] * 40
    with pytest.raises(TemplateError) as caught:
        render("{{ range 100000 }}{{ len (json $.Messages) }}{{ end }}",
               {"Messages": messages})
    assert caught.value.message.endswith(
        f"executing: template exceeds {MAX_WORK} characters of work")


def test_recursive_templates_are_capped() -> None:
    with pytest.raises(TemplateError, match="maximum template depth"):
        render('{{ define "r" }}{{ template "r" . }}{{ end }}{{ template "r" . }}')


def test_deep_nesting_is_a_parse_error() -> None:
    with pytest.raises(TemplateError, match="nesting exceeds"):
        Template.parse("{{ if 1 }}" * 150 + "{{ end }}" * 150)


def test_parsing_has_a_time_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    source = "{{ . }}" * 2000  # about 6,000 tokens: the clock is read every 1,024
    Template.parse(source)
    monkeypatch.setattr(parser, "MAX_PARSE_SECONDS", 0.0)
    with pytest.raises(TemplateError, match="template too complex: not parsed in 0 s"):
        Template.parse(source)
    Template.parse("{{ . }}" * 100)  # a template under 1,024 tokens never reads the clock


def test_identifiers_are_collected_lowercase() -> None:
    template = Template.parse("{{ range $m := .Messages }}{{ $m.Role }}{{ end }}{{ $.Tools }}")
    assert {"messages", "role", "tools", "$m", "$"} <= template.identifiers()
