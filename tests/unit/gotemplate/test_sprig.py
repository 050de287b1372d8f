"""Sprig's (and helm's) functions as images and charts use them: (template, expected) rows on fixed data."""

import pytest

from imgbuild.gotemplate import TemplateError, render

DATA = {
    "s": "  Hello World  ", "name": "my-app", "n": 3, "l": ["b", "a", "b", None, "c"], "nums": [1, 2, 3],
    "m": {"a": 1, "b": {"c": 2}}, "e": "", "z": 0, "nil": None, "yes": True,
    "img": {"repository": "nginx", "tag": ""}, "port": 8080,
}

CASES = [
    # defaults and flow
    ('{{ default "d" .e }} {{ default "d" .s }} {{ default 5 .z }} {{ default "d" .nil }} {{ .e | default "x" }}',
     "d   Hello World   5 d x"),
    ('{{ default "d" }}', "d"),
    ("{{ empty .e }} {{ empty .z }} {{ empty .nil }} {{ empty .l }} {{ empty .m }} {{ empty list }} {{ empty dict }}",
     "true true true false false true true"),
    ("{{ coalesce .e .z .nil .name }} {{ coalesce .e }}", "my-app <no value>"),
    ('{{ ternary "yes" "no" .yes }} {{ ternary "yes" "no" false }}', "yes no"),
    ('{{ required "need name" .name }}', "my-app"),
    # strings
    ("{{ upper .name }} {{ lower \"ABC\" }} {{ title \"hello wide-world it's\" }} {{ untitle \"Hello World\" }}",
     "MY-APP abc Hello Wide-World It'S hello world"),
    ('[{{ trim .s }}] [{{ trimAll "$" "$$5$" }}] [{{ trimPrefix "my-" .name }}] [{{ trimSuffix "-app" .name }}]',
     "[Hello World] [5] [app] [my]"),
    ('{{ trunc 3 .name }} {{ trunc -3 .name }} {{ trunc 63 .name }}', "my- app my-app"),
    ('{{ replace "-" "_" .name }} {{ repeat 3 "ab" }} {{ nospace .s }}', "my_app ababab HelloWorld"),
    ('{{ contains "app" .name }} {{ hasPrefix "my" .name }} {{ hasSuffix "my" .name }}', "true true false"),
    ('{{ $p := split "-" .name }}{{ $p._0 }},{{ $p._1 }} {{ splitList "," "a,b,c" }} {{ (splitn "-" 2 "a-b-c")._1 }}',
     "my,app [a b c] b-c"),
    ('{{ join "," .l }} {{ join "-" .nums }} {{ join "," "single" }}', "b,a,b,c 1-2-3 single"),
    ('{{ quote .name 1 .nil }} {{ squote .name }} {{ quote "a\\"b" }} {{ cat "a" 1 .nil "b" }}',
     '"my-app" "1" \'my-app\' "a\\"b" a 1 b'),
    ('{{ indent 2 "a\\nb" }}|{{ nindent 4 "x" }}', "  a\n  b|\n    x"),
    ('{{ camelcase "http_server" }} {{ camelcase "_complex__case_" }} {{ snakecase "FirstName" }} '
     '{{ snakecase "HTTPServer" }} {{ kebabcase "myAppName" }}',
     "HttpServer _Complex_Case_ first_name http_server my-app-name"),
    ('{{ substr 0 2 .name }} {{ abbrev 5 "hello world" }} {{ plural "one" "many" 2 }}', "my he... many"),
    ('{{ regexMatch "^[a-z-]+$" .name }} {{ regexFind "[0-9]+" "abc123def" }} {{ regexFindAll "[ab]" "abcab" -1 }}',
     "true 123 [a b a b]"),
    ('{{ regexReplaceAll "a(x*)b" "-ab-axxb-" "${1}W" }} {{ regexReplaceAll "(?<w>o)" "foo" "[$w]" }} '
     '{{ regexReplaceAllLiteral "a(x*)b" "-ab-" "${1}" }} {{ regexSplit "z+" "pizza" -1 }}',
     "-W-xxW- f[o][o] -${1}- [pi a]"),
    ('{{ b64enc "hello" }} {{ b64dec "aGVsbG8=" }} {{ b32enc "hi" }} {{ sha256sum "hello" | trunc 12 }}',
     "aGVsbG8= hello NBUQ==== 2cf24dba5fb0"),
    ('{{ sha1sum "a" }} {{ adler32sum "a" }}', "86f7e437faa5a7fce15d1ddcb9eaeaea377667b8 6422626"),
    ("{{ toString 5 }} {{ toString .nums }} {{ toString .nil }} {{ toStrings .nums }}", "5 [1 2 3] <nil> [1 2 3]"),
    ("{{ sortAlpha .l }} {{ sortAlpha .nums }}", "[a b b c] [1 2 3]"),
    # lists
    ("{{ list 1 \"a\" .nil }} {{ tuple 1 2 }} {{ list }}", "[1 a <nil>] [1 2] []"),
    ("{{ first .nums }} {{ last .nums }} {{ rest .nums }} {{ initial .nums }} {{ first list }}",
     "1 3 [2 3] [1 2] <no value>"),
    ("{{ append .nums 4 }} {{ prepend .nums 0 }} {{ .nums }} {{ reverse .nums }}", "[1 2 3 4] [0 1 2 3] [1 2 3] [3 2 1]"),
    ("{{ uniq .l }} {{ compact .l }} {{ without .l \"b\" }} {{ has \"a\" .l }} {{ has 9 .nums }} {{ has 1 .nil }}",
     "[b a <nil> c] [b a b c] [a <nil> c] true false false"),
    ("{{ concat .nums (list 4 5) }} {{ until 3 }} {{ until -2 }} {{ untilStep 0 10 4 }}",
     "[1 2 3 4 5] [0 1 2] [0 -1] [0 4 8]"),
    ("{{ seq 3 }}|{{ seq 2 4 }}|{{ seq 5 2 }}|{{ seq 0 2 7 }}|{{ seq 0 }}", "1 2 3|2 3 4|5 4 3 2|0 2 4 6|1 0"),
    # dicts
    ('{{ $d := dict "a" 1 "b" }}{{ $d.a }}[{{ $d.b }}] {{ get $d "a" }}[{{ get $d "zz" }}] {{ hasKey $d "a" }}',
     "1[] 1[] true"),
    ('{{ $d := dict "x" 1 }}{{ $_ := set $d "y" 2 }}{{ $d }} {{ unset $d "x" }} {{ keys $d }} {{ values $d }}',
     "map[x:1 y:2] map[y:2] [y] [2]"),
    ('{{ pluck "a" (dict "a" 1) (dict "b" 2) (dict "a" 3) }} {{ pick .m "a" }} {{ omit .m "a" }}',
     "[1 3] map[a:1] map[b:map[c:2]]"),
    ('{{ $d := dict "a" 1 "b" (dict "c" 0 "d" "keep") }}'
     '{{ merge $d (dict "a" 9 "b" (dict "c" 5 "d" "x" "e" 6) "f" 7) }}',
     "map[a:1 b:map[c:5 d:keep e:6] f:7]"),
    ('{{ mergeOverwrite (dict "a" 1 "b" (dict "c" 1 "d" 2)) (dict "a" 9 "b" (dict "c" false)) }}',
     "map[a:9 b:map[c:false d:2]]"),
    ('{{ dig "b" "c" "none" .m }} {{ dig "b" "x" "none" .m }} {{ dig "zz" "none" .m }}', "2 none none"),
    ('{{ $c := deepCopy .m }}{{ $_ := set $c.b "c" 9 }}{{ .m.b.c }} {{ $c.b.c }}', "2 9"),
    # numbers
    ('{{ int "42" }} {{ int "0x1F" }} {{ int "12.0" }} {{ int "junk" }} {{ int 3.9 }} {{ int64 true }} {{ atoi "7" }}',
     "42 31 12 0 3 1 7"),
    ('{{ float64 "1.5" }} {{ float64 2 }}', "1.5 2"),
    ("{{ add 1 2 3 }} {{ add1 .n }} {{ sub 5 7 }} {{ mul 2 3 4 }} {{ div 7 2 }} {{ div -7 2 }} {{ mod -7 3 }}",
     "6 4 -2 24 3 -3 -1"),
    ('{{ max 1 9 3 }} {{ min 4 2 8 }} {{ add "2" 3 }} {{ floor 1.7 }} {{ ceil 1.2 }} {{ addf 1.5 1 }}',
     "9 2 5 1 2 2.5"),
    # encodings
    ('{{ toJson .m }} {{ toJson .l }} {{ toJson "<a&b>" }} {{ toJson 1.0 }} {{ toJson .nil }}',
     '{"a":1,"b":{"c":2}} ["b","a","b",null,"c"] "\\u003ca\\u0026b\\u003e" 1 null'),
    ("{{ toPrettyJson .m }}", '{\n  "a": 1,\n  "b": {\n    "c": 2\n  }\n}'),
    ('{{ toRawJson "<x>" }}', '"<x>"'),
    ("{{ $j := fromJson \"{\\\"a\\\": [1, {\\\"b\\\": true}]}\" }}{{ index $j.a 0 }} {{ (index $j.a 1).b }} "
     "{{ kindOf (index $j.a 0) }}", "1 true float64"),
    ('{{ (fromJson "not json").Error | empty }}', "false"),
    ("{{ toYaml .m }}", "a: 1\nb:\n  c: 2"),
    ("{{ toYaml .l }}", "- b\n- a\n- b\n- null\n- c"),
    ('{{ toYaml (dict "s" "true" "n" "1.0" "e" "" "multi" "a\\nb" "k" (list) "d" (dict)) }}',
     'd: {}\ne: ""\nk: []\nmulti: |-\n  a\n  b\n"n": "1.0"\ns: "true"'),
    ('{{ toYaml "plain" }} {{ toYaml 5 }} {{ toYaml .nil }}', "plain 5 null"),
    ('{{ toYaml (dict "b10" 1 "b9" 2 "B" 3 "a01" 4 "a1" 5 "_x" 6 "10" 7 "2" 8) }}',
     '_x: 6\n"2": 8\n"10": 7\nB: 3\na1: 5\na01: 4\nb9: 2\nb10: 1'),
    ('{{ toYaml (list "*" "08" "2024-01-02" "1_000" "+1" "a: b" "it\'s" "=" "<<" "~" " x" "a\tb" "12:30") }}',
     "- '*'\n- \"08\"\n- \"2024-01-02\"\n- \"1_000\"\n- \"+1\"\n- 'a: b'\n- it's\n- =\n- <<\n- \"~\"\n- ' x'\n"
     '- "a\\tb"\n- "12:30"'),
    ("{{ toYaml (list 1.5 1e21 123456789.5 0.000001 -0.0 3.0 49102616454735390.0) }}",
     "- 1.5\n- 1e+21\n- 1.234567895e+08\n- 1e-06\n- 0\n- 3\n- 49102616454735390"),
    ('{{ toYaml (dict "" 1 "k" "\\n") }}', '"": 1\nk: |2+\n'),
    ("{{ toYaml (dict \"long\" (repeat 20 \"word \")) }}",
     "long: 'word word word word word word word word word word word word word word word\n  word word word word word '"),
    ("{{ toJson (list 0.0000610 1e21 1e-7 -0.0) }}", "[0.000061,1e+21,1e-7,-0]"),
    ('{{ (fromYaml "a: 1\\nb: [x, y]").b }} {{ (fromYaml "a: 1").a | kindOf }} {{ (fromYaml ": : bad").Error | empty }}',
     "[x true] float64 false"),
    ('{{ fromYamlArray "- 1\\n- a" }} {{ fromJsonArray "[1, 2]" }}', "[1 a] [1 2]"),
    ("{{ .m | toYaml | nindent 2 }}", "\n  a: 1\n  b:\n    c: 2"),
    # types and versions
    ('{{ kindOf .m }} {{ kindOf .l }} {{ kindOf .n }} {{ kindOf "" }} {{ kindOf .nil }} {{ kindIs "map" .m }}',
     "map slice int string invalid true"),
    ("{{ typeOf .m }} {{ typeOf .l }} {{ typeOf 1.5 }} {{ typeIs \"int\" .n }}",
     "map[string]interface {} []interface {} float64 true"),
    ('{{ semverCompare ">=1.21-0" "v1.28.3" }} {{ semverCompare "<1.19" "1.28" }} {{ semverCompare "^1.2" "1.9.9" }}',
     "true false true"),
    ('{{ semverCompare ">=1.19" "v1.28.0-gke.1" }} {{ semverCompare ">=1.19-0" "v1.28.0-gke.1" }}', "false true"),
    ('{{ (semver "v1.28.3-rc.1+b").Major }}.{{ (semver "1.28.3").Minor }} {{ (semver "1.2.3-rc.1").Prerelease }} '
     '{{ semver "v1.2" }}', "1.28 rc.1 1.2.0"),
    ('{{ $v := semver "1.2.3" }}{{ $v.Compare (semver "1.3.0") }}', "-1"),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0][:50] for c in CASES])
def test_sprig(text, expected):
    assert render(text, DATA, missingkey="default") == expected


def test_random_and_uuid_have_the_right_shape():
    out = render('{{ randAlphaNum 16 }} {{ randNumeric 4 }} {{ uuidv4 }}', {})
    alnum, digits, uid = out.split(" ")
    assert len(alnum) == 16 and alnum.isalnum() and digits.isdigit() and len(uid) == 36


@pytest.mark.parametrize(("text", "message"), [
    ('{{ required "registryDomain is required" .nil }}', "registryDomain is required"),
    ('{{ fail "no" }}', "error calling fail: no"),
    ('{{ semverCompare "~>" "1.0" }}', "improper constraint"),
    ('{{ semverCompare ">1" "junk" }}', "Invalid Semantic Version"),
    ('{{ regexFind "(" "x" }}', "error parsing regexp"),
    ('{{ repeat -1 "a" }}', "negative Repeat count"),
    ("{{ first 5 }}", "Cannot find first on type int"),
    ("{{ append .nil 1 }}", "Cannot push on type <nil>"),
    ('{{ slice "hello" 1 3 }}', "list should be type of slice or array but string"),
    ("{{ slice .nums 2 9 }}", "slice bounds out of range"),
    ('{{ set (index . "missing") "a" 1 }}', "assignment to entry in nil map"),
    ('{{ set .nil "a" 1 }}', "wrong type for value; expected map[string]interface {}; got interface {}"),
    ('{{ merge (dict) 5 }}', "wrong type for value; expected map[string]interface {}; got int"),
])
def test_sprig_errors(text, message):
    with pytest.raises(TemplateError, match=message.replace("[", r"\[").replace("]", r"\]").replace("{", r"\{")
                       .replace("}", r"\}")):
        render(text, DATA)
