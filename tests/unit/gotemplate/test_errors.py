"""Parse and execution errors: each names what is wrong and where (name:line:col, as Go counts them)."""

import pytest

from imgbuild.errors import InputError
from imgbuild.gotemplate import Template, TemplateError, render

PARSE_ERRORS = [
    ("ok\n{{ .a ", "unclosed action", 2, 0),
    ("{{ if .a }}x", "unexpected EOF", 1, 12),
    ("{{ end }}", "unexpected {{end}}", 1, 3),
    ("{{ else }}", "unexpected {{else}}", 1, 3),
    ("a\nb\n{{ foo 1 }}", 'function "foo" not defined', 3, 3),
    ("{{ $x }}", 'undefined variable "$x"', 1, 3),
    ("{{ $x = 1 }}", 'undefined variable "$x"', 1, 3),
    ("{{ break }}", "{{break}} outside {{range}}", 1, 3),
    ("{{ range .l }}{{ else }}{{ continue }}{{ end }}", "{{continue}} outside {{range}}", 1, 27),
    ("{{ 1 | 2 }}", "non executable command in pipeline stage 2", 1, 7),
    ('{{ "abc }}', "unterminated quoted string", 1, 3),
    ("{{ `abc }}", "unterminated raw quoted string", 1, 3),
    ("{{ 'ab' }}", "invalid syntax", 1, 3),
    ("{{/* never closed", "unclosed comment", 1, 0),
    ("{{/* c */ x}}", "comment ends before closing delimiter", 1, 0),
    ("{{ (1 }}", "unclosed left paren", 1, 6),
    ("{{ 1) }}", "unexpected right paren", 1, 4),
    ("{{ 3k }}", "bad number syntax", 1, 3),
    ("{{ # }}", 'unexpected "#" in command', 1, 3),
    ("{{ .a.b\x01 }}", "bad character U+0001", 1, 7),
    ("{{ \x01 }}", "unrecognized character in action: U+0001", 1, 3),
    ("{{ if }}{{ end }}", "missing value for if", 1, 6),
    ("{{ define \"a\" }}x{{ end }}{{ define \"a\" }}y{{ end }}", 'multiple definition of template', 1, 42),
    ("{{ template foo }}", "unexpected", 1, 12),
    ("{{ range $a, $b, $c := .l }}{{ end }}", "too many declarations in range", 1, 15),
    ("{{ with $a, $b := .l }}{{ end }}", "too many declarations in with", 1, 10),
    ("{{ \"a\".b }}", 'unexpected . after term', 1, 6),
    ("{{ \"\\q\" }}", "invalid syntax", 1, 3),
    ("{{ if .a }}{{ else }}{{ else }}{{ end }}", "expected end; found {{else}}", 1, 24),
]


@pytest.mark.parametrize(("text", "message", "line", "col"), PARSE_ERRORS, ids=[c[1] for c in PARSE_ERRORS])
def test_parse_errors_name_the_line(text, message, line, col):
    with pytest.raises(TemplateError) as info:
        Template.parse(text, name="etc/x.conf.tmpl")
    err = info.value
    assert message in err.message
    assert (err.name, err.line, err.col) == ("etc/x.conf.tmpl", line, col)
    assert err.where == f"etc/x.conf.tmpl:{line}:{col}"
    assert isinstance(err, InputError) and err.exit_code == 2


EXEC_ERRORS = [
    ("a: {{ .registryDomain }}", {}, 'at <.registryDomain>: map has no entry for key "registryDomain"', 1, 6),
    ("\n  {{ .a.b.c }}", {"a": {"b": {}}}, 'map has no entry for key "c"', 2, 5),
    ("{{ .a.b }}", {"a": None}, "nil pointer evaluating interface {}.b", 1, 3),
    ("{{ .s.x }}", {"s": "str"}, "can't evaluate field x in type string", 1, 3),
    ("{{ .s 1 }}", {"s": {}}, "s is not a method but has arguments", 1, 3),
    ("{{ .a | upper }}", {"a": None}, "invalid value; expected string", 1, 8),
    ("{{ upper .n }}", {"n": 3}, "wrong type for value; expected string; got int", 1, 3),
    ("{{ indent .n \"x\" }}", {"n": 2.0}, "wrong type for value; expected int; got float64", 1, 3),
    ('{{ fail "boom" }}', {}, 'at <fail "boom">: error calling fail: boom', 1, 3),
    ('{{ required "registryDomain is required" .x }}', {"x": ""}, "registryDomain is required", 1, 3),
    ("{{ eq 1 \"1\" }}", {}, "error calling eq: incompatible types for comparison", 1, 3),
    ("{{ lt true false }}", {}, "invalid type for comparison", 1, 3),
    ("{{ eq .l .l }}", {"l": [1]}, "non-comparable types", 1, 3),
    ("{{ index .l 3 }}", {"l": [1]}, "index out of range: 3", 1, 3),
    ("{{ index .x 0 }}", {"x": None}, "index of untyped nil", 1, 3),
    ("{{ len 3 }}", {}, "len of type int", 1, 3),
    ("{{ slice .l 2 1 }}", {"l": [1, 2, 3]}, "slice bounds out of range", 1, 3),
    ("{{ upper .n }}", {"n": None}, "wrong type for value; expected string; got interface {}", 1, 3),
    ("{{ div 1 0 }}", {}, "runtime error: integer divide by zero", 1, 3),
    ('{{ template "nope" }}', {}, 'template "nope" not defined', 1, 3),
    ("{{ range .s }}{{ end }}", {"s": "abc"}, "range can't iterate over abc", 1, 3),
    ("{{ range $i, $e := 3 }}{{ end }}", {}, "can't use 3 to iterate over more than one variable", 1, 3),
    ("{{ printf }}", {}, "wrong number of args for printf: want at least 1 got 0", 1, 3),
    ('{{ trimPrefix "a" }}', {}, "wrong number of args for trimPrefix: want 2 got 1", 1, 3),
    ("{{ .s | .t }}", {"s": 1, "t": 2}, "t is not a method but has arguments", 1, 8),
    ("{{ (1) 2 }}", {}, "can't give argument to non-function 1", 1, 4),
    ("{{ nil }}", {}, "nil is not a command", 1, 3),
    ("{{ .obj.missing }}", {"obj": object()}, "can't evaluate field missing in type object", 1, 3),
    ('{{ define "t" }}\n{{ .x }}{{ end }}{{ template "t" . }}', {}, 'executing "t" at <.x>', 2, 3),
]


@pytest.mark.parametrize(("text", "data", "message", "line", "col"), EXEC_ERRORS, ids=[c[2][:40] for c in EXEC_ERRORS])
def test_execution_errors_name_the_node(text, data, message, line, col):
    with pytest.raises(TemplateError) as info:
        render(text, data, name="f.tmpl")
    err = info.value
    assert message in err.message
    assert (err.line, err.col) == (line, col)
    assert str(err).endswith(f"(f.tmpl:{line}:{col})")


def test_recursion_is_bounded():
    with pytest.raises(TemplateError, match="exceeded maximum template depth"):
        render('{{ define "a" }}{{ template "a" . }}{{ end }}{{ template "a" . }}', {})


def test_deep_nesting_is_an_error_not_a_crash():
    with pytest.raises(TemplateError):
        render("{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}", {})


def test_unknown_missingkey_option():
    with pytest.raises(TemplateError, match="missingkey"):
        render("x", {}, missingkey="maybe")


def test_the_data_itself_can_be_nil():
    assert render("{{ . }}", None, missingkey="default") == "<no value>"
    with pytest.raises(TemplateError, match='nil data; no entry for key "x"'):
        render("{{ .x }}", None)
