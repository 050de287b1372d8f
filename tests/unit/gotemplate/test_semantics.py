"""Go text/template behaviours, each a (template, data, expected output) row derived from Go's documented semantics."""

import pytest

from imgbuild.gotemplate import Template, render


class Obj:
    """A struct-like value: fields and methods, as Helm's .Chart and .Files are."""

    Name = "chart"
    Version = "1.2.3"

    def Get(self, path):  # noqa: N802 - a Go method name
        return f"content of {path}"

    def Upper(self):  # noqa: N802
        return "UP"


DATA = {
    "s": "str", "n": 3, "f": 1.5, "big": 1e6, "t": True, "no": False, "zero": 0, "empty": "", "nil": None,
    "l": ["a", "b", "c"], "el": [], "m": {"b": 2, "a": 1, "c": 3}, "em": {},
    "nested": {"inner": {"deep": "v"}, "list": [{"k": "x"}, {"k": "y"}]},
    "ints": [3, 1, 2], "obj": Obj(), "mixed": {"10": "ten", "9": "nine"},
}

CASES = [
    # text, comments, trimming
    ("plain text", "plain text"),
    ("a {{/* a comment */}} b", "a  b"),
    ("a  {{- /* trimmed */ -}}  b", "ab"),
    ("a \n\t {{- .s }}", "astr"),
    ("{{ .s -}} \n\n b", "strb"),
    ("{{- .s -}}", "str"),
    ("x{{ 3 -}} < 4", "x3< 4"),
    ("{{ .s }}\n{{- .n }}", "str3"),
    ("line1\n{{- /* multi\nline */}}\nline2", "line1\nline2"),
    # fields and printing
    ("{{ .s }} {{ .n }} {{ .f }} {{ .t }} {{ .zero }}", "str 3 1.5 true 0"),
    ("{{ .big }}", "1e+06"),
    ("{{ .l }} {{ .m }} {{ .em }} {{ .el }}", "[a b c] map[a:1 b:2 c:3] map[] []"),
    ("{{ .nested.inner.deep }}", "v"),
    ("{{ .nested.inner }}", "map[deep:v]"),
    ("{{ .nil }}", "<no value>"),
    ("{{ . }}", None),  # skipped: printing the whole data is covered by the map case
    ("{{ .obj.Name }}-{{ .obj.Version }}", "chart-1.2.3"),
    ('{{ .obj.Get "a.txt" }}', "content of a.txt"),
    ('{{ "b.txt" | .obj.Get }}', "content of b.txt"),
    ("{{ .obj.Upper }}", "UP"),
    ("{{ (index .nested.list 1).k }}", "y"),
    ("{{ $.s }}", "str"),
    # literals
    ('{{ "a\\tb\\u00e9\\x41\\101" }}', "a\tbéAA"),
    ("{{ `raw \\n {{` }}", "raw \\n {{"),
    ("{{ 'a' }} {{ '\\n' }} {{ '\\u00e9' }}", "97 10 233"),
    ("{{ 0x1F }} {{ 0o17 }} {{ 017 }} {{ 0b101 }} {{ 1_000 }} {{ -7 }} {{ +7 }}", "31 15 15 5 1000 -7 7"),
    ("{{ 1.5 }} {{ 1e3 }} {{ .5 }} {{ 0x1p4 }}", "1.5 1000 0.5 16"),
    ("{{ true }} {{ false }}", "true false"),
    ("{{ print nil }}", "<nil>"),
    # variables
    ("{{ $x := 1 }}{{ $x }}{{ $x = 2 }}{{ $x }}", "12"),
    ("{{ $x := .s }}{{ with .n }}{{ $x }}{{ $x := 9 }}{{ $x }}{{ end }}{{ $x }}", "str9str"),
    ("{{ if true }}{{ $y := 1 }}{{ end }}{{ $y := 2 }}{{ $y }}", "2"),
    ("{{ $x := 1 }}{{ if true }}{{ $x = 5 }}{{ end }}{{ $x }}", "5"),
    ("{{ range .l }}{{ $ }}{{ break }}{{ end }}", None),
    ("{{ range .l }}{{ $.s }}{{ end }}", "strstrstr"),
    ("{{ ($x := 3) }}{{ $x }}", "33"),
    # if / else if / with
    ("{{ if .t }}yes{{ end }}", "yes"),
    ("{{ if .no }}yes{{ else }}no{{ end }}", "no"),
    ("{{ if .zero }}a{{ else if .empty }}b{{ else if .l }}c{{ else }}d{{ end }}", "c"),
    ("{{ if .nil }}a{{ else if .el }}b{{ else if .em }}c{{ else }}d{{ end }}", "d"),
    ("{{ if .f }}float{{ end }}{{ if 0.0 }}zero{{ end }}", "float"),
    ("{{ if .obj }}struct is true{{ end }}", "struct is true"),
    ("{{ with .nested.inner }}{{ .deep }}{{ end }}", "v"),
    ("{{ with .empty }}x{{ else }}empty{{ end }}", "empty"),
    ("{{ with $v := .n }}{{ $v }}{{ . }}{{ end }}", "33"),
    ("{{ with .zero }}a{{ else with .n }}{{ . }}{{ else }}c{{ end }}", "3"),
    # range
    ("{{ range .l }}[{{ . }}]{{ end }}", "[a][b][c]"),
    ("{{ range $i, $e := .l }}{{ $i }}={{ $e }};{{ end }}", "0=a;1=b;2=c;"),
    ("{{ range $e := .l }}{{ $e }}{{ end }}", "abc"),
    ("{{ range $k, $v := .m }}{{ $k }}{{ $v }}{{ end }}", "a1b2c3"),
    ("{{ range .m }}{{ . }}{{ end }}", "123"),
    ("{{ range $k, $v := .mixed }}{{ $k }}{{ end }}", "109"),
    ("{{ range .el }}x{{ else }}none{{ end }}", "none"),
    ("{{ range .nil }}x{{ else }}nil{{ end }}", "nil"),
    ("{{ range .em }}x{{ else }}empty map{{ end }}", "empty map"),
    ("{{ range 3 }}{{ . }}{{ end }}", "012"),
    ("{{ range $i := 3 }}{{ $i }}{{ end }}", "012"),
    ("{{ range 0 }}x{{ else }}zero{{ end }}", "zero"),
    ("{{ range .l }}{{ if eq . \"b\" }}{{ continue }}{{ end }}{{ . }}{{ end }}", "ac"),
    ("{{ range .l }}{{ if eq . \"b\" }}{{ break }}{{ end }}{{ . }}{{ end }}", "a"),
    ("{{ range .nested.list }}{{ .k }}{{ end }}", "xy"),
    ("{{ range $i, $_ := .l }}{{ range $.ints }}{{ $i }}{{ . }} {{ end }}{{ end }}", None),
    ("{{ range .l }}{{ range $.ints }}{{ . }}{{ end }}|{{ end }}", "312|312|312|"),
    # define / template / block
    ('{{ define "t" }}<{{ . }}>{{ end }}{{ template "t" .s }}{{ template "t" 5 }}', "<str><5>"),
    ('{{ template "t" }}{{ define "t" }}{{ . }}{{ end }}', "<no value>"),
    ('{{ block "b" .n }}default {{ . }}{{ end }}', "default 3"),
    ('{{ define "r" }}{{ if gt . 0 }}{{ . }}{{ template "r" (sub . 1) }}{{ end }}{{ end }}{{ template "r" 3 }}',
     "321"),
    ('{{ define "t" }}{{ $ }}{{ end }}{{ $x := 1 }}{{ template "t" .n }}', "3"),
    # pipelines and parentheses
    ("{{ .s | printf \"%s-%s\" \"a\" }}", "a-str"),
    ("{{ .n | printf \"%d\" | printf \"(%s)\" }}", "(3)"),
    ("{{ (printf \"%d\" .n) | len }}", "1"),
    ("{{ printf \"%s\" (printf \"%d\" (len .l)) }}", "3"),
    ("{{ (.nested).inner.deep }}", "v"),
    ("{{ (dict \"a\" (dict \"b\" 7)).a.b }}", "7"),
    # builtins
    ("{{ and 1 2 }} {{ and 1 0 }} {{ and 0 .nil }} {{ or 0 \"\" }} {{ or 0 3 }} {{ or .s .zero }}", "2 0 0  3 str"),
    ("{{ and .no .missing.x }}", "false"),  # short-circuit: the second is never evaluated
    ("{{ or .t .missing.x }}", "true"),
    ("{{ not 0 }} {{ not .s }} {{ not .nil }}", "true false true"),
    ("{{ eq 1 1 }} {{ eq .s \"str\" }} {{ eq 2 1 3 2 }} {{ eq .nil nil }} {{ eq .s nil }}", "true true true true false"),
    ("{{ ne 1 2 }} {{ lt 1 2 }} {{ le 2 2 }} {{ gt \"b\" \"a\" }} {{ ge 1.5 2.5 }}", "true true true true false"),
    ("{{ len .l }} {{ len .m }} {{ len \"héllo\" }} {{ len .el }}", "3 3 6 0"),
    ("{{ index .l 1 }} {{ index .m \"b\" }} {{ index .nested \"list\" 0 \"k\" }} {{ index .m \"zz\" }}",
     "b 2 x <no value>"),
    ("{{ index \"abc\" 0 }}", "97"),
    ("{{ slice .l 1 }} {{ slice .l 0 2 }} {{ slice .l 1 2 3 }} {{ slice .el }}", "[b c] [a b] [b] <no value>"),
    ("{{ print \"a\" 1 2 \"b\" }}|{{ print 1 }}|{{ println \"a\" 1 }}", "a1 2b|1|a 1\n"),
    ("{{ html \"<a href=\\\"x\\\">&'\" }}", "&lt;a href=&#34;x&#34;&gt;&amp;&#39;"),
    ("{{ js \"it's \\\"x\\\" <b> & =\" }}", "it\\'s \\\"x\\\" \\u003Cb\\u003E \\u0026 \\u003D"),
    ("{{ urlquery \"a b&c=d/é\" }}", "a+b%26c%3Dd%2F%C3%A9"),
    ("{{ call .fn 2 3 }}", None),
    # printing through fmt
    ("{{ printf \"%v %d %s %q %x %X %o %b %c %U\" .l 42 .s .s 255 255 8 5 65 65 }}",
     '[a b c] 42 str "str" ff FF 10 101 A U+0041'),
    ("{{ printf \"%5d|%-5d|%05d|%+d|%x\" 42 42 42 42 \"hi\" }}", "   42|42   |00042|+42|6869"),
    ("{{ printf \"%.2f %e %g %v %6.1f\" 3.14159 1234.5 0.00001 2.5 2.25 }}", "3.14 1.234500e+03 1e-05 2.5    2.2"),
    ("{{ printf \"%s %d\" 1 \"x\" }}", "%!s(int=1) %!d(string=x)"),
    ("{{ printf \"%s %s\" \"a\" }}|{{ printf \"%s\" \"a\" \"b\" }}", "a %!s(MISSING)|a%!(EXTRA string=b)"),
    ("{{ printf \"%T %T %T %T %T\" .s .n .f .l .m }}", "string int float64 []interface {} map[string]interface {}"),
    ("{{ printf \"%v %#v %q\" .nil .s .l }}", '<nil> "str" ["a" "b" "c"]'),
    ("{{ printf \"100%%\" }}", "100%"),
]


@pytest.mark.parametrize(("text", "expected"), [c for c in CASES if c[1] is not None], ids=lambda x: str(x)[:40])
def test_go_semantics(text, expected):
    assert render(text, DATA, missingkey="default") == expected


def test_call_invokes_a_function_value():
    assert render("{{ call .fn 2 3 }}", {"fn": lambda a, b: a * b}) == "6"


def test_range_var_and_root_inside_nested_ranges():
    out = render("{{ range $i, $_ := .l }}{{ range $.ints }}{{ $i }}{{ . }} {{ end }}{{ end }}", DATA)
    assert out == "03 01 02 13 11 12 23 21 22 "


def test_missingkey_modes_differ_as_in_go():
    data = {"a": {}}
    assert render("{{ .x }}", data, missingkey="default") == "<no value>"
    assert render("{{ .x }}", data, missingkey="zero") == "<no value>"  # Go: a nil interface prints <no value>
    assert render("{{ .x.y }}", data, missingkey="default") == "<no value>"  # invalid receiver: no value
    with pytest.raises(Exception, match="nil pointer evaluating interface"):
        render("{{ .x.y }}", data, missingkey="zero")  # zero value is a nil interface: Go (and helm) fail
    with pytest.raises(Exception, match='map has no entry for key "x"'):
        render("{{ .a.x }}", data)


def test_index_does_not_obey_missingkey():
    assert render('{{ index . "x" | default "d" }}', {}, missingkey="error") == "d"


def test_template_set_is_parsed_once_and_run_many_times():
    t = Template.parse("{{ .n }}{{ range .l }},{{ . }}{{ end }}", name="t")
    assert [t.execute({"n": i, "l": list(range(i))}) for i in range(3)] == ["0", "1,0", "2,0,1"]


def test_redefinition_in_a_later_add_replaces_and_an_empty_one_does_not():
    t = Template.parse('{{ define "x" }}one{{ end }}{{ template "x" }}', name="main")
    t.add('{{ define "x" }}two{{ end }}', name="other")
    assert t.execute({}) == "two"
    t.add('{{ define "x" }}  {{ end }}', name="third")
    assert t.execute({}) == "two"


def test_generated_code_never_contains_template_text():
    """Blocks are compiled to Python; text, keys and names reach it only as bound values."""
    nasty = '"""\n\'\'\'\n    import os; os._exit(1)\n{}\\x00 # \\n'
    text = nasty + "{{ .a }}" + nasty + '{{ index . "b\\"c" }}' + nasty * 3 + "{{ .a }}{{ .a }}{{ .a }}"
    out = render(text, {"a": nasty, 'b"c': "q"})
    assert out == nasty * 3 + "q" + nasty * 6


def test_long_blocks_and_short_blocks_agree():
    body = "".join(f"x{i}={{{{ .k{i} }}}}\n" for i in range(12))
    data = {f"k{i}": i for i in range(12)}
    long_out = render(body, data)
    short_out = "".join(render(f"x{i}={{{{ .k{i} }}}}\n", data) for i in range(12))
    assert long_out == short_out and long_out.count("\n") == 12


def test_a_method_map_calls_its_methods_and_ranges_as_a_map():
    from imgbuild.gotemplate.values import MethodMap

    class Files(MethodMap):
        def Get(self, name):  # noqa: N802 - a Go method name
            return self.get(name, "").upper()

    data = {"F": Files({"b": "two", "a": "one", "Keys": "a key"})}
    text = '{{ .F.Get "a" }}|{{ range $k, $v := .F }}{{ $k }}={{ $v }},{{ end }}|{{ len .F }}|{{ .F.Keys }}|{{ .F.b }}'
    assert render(text, data) == "ONE|Keys=a key,a=one,b=two,|3|a key|two"
