"""Property tests: no input makes the engine raise anything but TemplateError, and rendering is deterministic."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imgbuild.gotemplate import Template, TemplateError
from imgbuild.gotemplate.sprig import SPRIG

_WORDS = ["{{", "}}", "{{-", "-}}", "{{- ", " -}}", "/*", "*/", "(", ")", "|", ":=", "=", ",", ".", "$", "$x", "$y",
          ".a", ".a.b", ".l", ".m", ".n", ".s", ".nil", "if", "else", "end", "range", "with", "define", "template",
          "block", "break", "continue", "nil", "true", "false", '"t"', '"a"', "`raw`", "'c'", "1", "-2", "3.5", "0x1F",
          "1e3", "and", "or", "not", "eq", "ne", "lt", "len", "index", "slice", "print", "printf", '"%d %s %v"',
          "html", "js", "call", "default", "quote", "toYaml", "toJson", "indent", "nindent", "upper", "list", "dict",
          "merge", "fail", "required", "semverCompare", "int", "div", "mod", "regexFind", "split", "first", " ",
          "\n", "\t", "#", "@", "é", "\x00", "{", "}", "\\", '"', "'"]
_TEXT = st.lists(st.one_of(st.sampled_from(_WORDS), st.text(max_size=4)), max_size=30).map("".join)
_ACTION = st.lists(st.sampled_from(_WORDS[10:]), min_size=1, max_size=8).map(lambda ws: "{{ " + " ".join(ws) + " }}")
_SHAPED = st.lists(st.one_of(_ACTION, st.sampled_from(["x", "\n", "{{ end }}", "{{ else }}"])),
                   max_size=12).map("".join)
_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=True), st.text(max_size=5))
_VALUE = st.recursive(_SCALAR, lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(st.text(max_size=3), c,
                                                                                          max_size=3)), max_leaves=8)
_FUNCS = ["and", "or", "not", "eq", "ne", "lt", "le", "len", "index", "slice", "print", "printf", "default", "quote",
          "toYaml", "toJson", "indent", "upper", "list", "dict", "merge", "first", "int", "add", "div", "empty", "keys",
          "join", "split", "has", "coalesce", "ternary", "trunc", "toString", "kindOf", "regexFind", "b64enc"]
_OPERAND = st.sampled_from([".a", ".a.b", ".l", ".m", ".m.k", ".n", ".s", ".nil", ".", "$", "$.s", "1", "0", '"x"',
                            '"%v"', "true", "nil", "3.5", "-1"])
_CALL = st.builds(lambda f, args: " ".join([f, *args]), st.sampled_from(_FUNCS), st.lists(_OPERAND, max_size=3))
_PIPE = st.recursive(st.one_of(_OPERAND, _CALL), lambda inner: st.one_of(
    st.builds(lambda a, b: f"{a} | {b}", inner, _CALL), st.builds(lambda a: f"({a})", inner),
    st.builds(lambda f, a: f"{f} ({a})", st.sampled_from(_FUNCS), inner)), max_leaves=6)
_NODE = st.recursive(st.one_of(st.sampled_from(["text", "\n", " "]), _PIPE.map(lambda p: "{{ " + p + " }}"),
                               _PIPE.map(lambda p: "{{- $v := " + p + " -}}")), lambda body: st.one_of(
    st.builds(lambda k, p, b, e: f"{{{{ {k} {p} }}}}{b}{{{{ else }}}}{e}{{{{ end }}}}",
              st.sampled_from(["if", "with", "range"]), _PIPE, body, body),
    st.builds(lambda p, b: f"{{{{ range $i, $e := {p} }}}}{b}{{{{ $i }}}}{{{{ break }}}}{{{{ end }}}}", _PIPE, body),
    st.lists(body, max_size=4).map("".join)), max_leaves=10)
DATA = {"a": {"b": 1}, "l": [1, "x", None], "m": {"k": "v", "z": [1]}, "n": 2, "s": "str", "nil": None}
FUNCS = set(SPRIG)


def _run(text: str, data: object, missingkey: str = "default") -> str | None:
    try:
        t = Template.parse(text, name="fuzz")
    except TemplateError as exc:
        assert exc.line is None or exc.line >= 1
        return None
    try:
        return t.execute(data, missingkey=missingkey)
    except TemplateError as exc:
        assert exc.where and exc.where.startswith("fuzz")
        return None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_TEXT)
def test_token_soup_only_raises_template_error(text):
    _run(text, DATA)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_SHAPED, st.sampled_from(["default", "zero", "error"]))
def test_shaped_actions_only_raise_template_error(text, missingkey):
    _run(text, DATA, missingkey)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_NODE, st.sampled_from(["default", "zero", "error"]))
def test_grammatical_templates_only_raise_template_error(text, missingkey):
    _run(text, DATA, missingkey)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text_only_raises_template_error(text):
    _run(text, DATA)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(FUNCS - {"randAlphaNum", "randAlpha", "randNumeric", "randAscii", "uuidv4"})),
       st.lists(_VALUE, max_size=3))
def test_every_function_on_any_data_only_raises_template_error(name, args):
    data = {f"a{i}": v for i, v in enumerate(args)}
    text = "{{ " + name + "".join(f" .a{i}" for i in range(len(args))) + " }}"
    first = _run(text, data)
    assert _run(text, data) == first


@settings(max_examples=200, deadline=None)
@given(_VALUE)
def test_printing_and_encoding_any_data_is_total(value):
    out = _run("{{ . }}|{{ printf \"%v %s %d %q %x\" . . . . . }}|{{ toJson . }}|{{ toYaml . }}|{{ quote . }}", value)
    assert out is not None
