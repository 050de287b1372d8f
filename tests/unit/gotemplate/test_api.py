"""The public API others code against: render, Template.parse/add/execute/execute_named/funcs, helm's include."""

import pytest

import imgbuild.gotemplate as gt
from imgbuild.gotemplate import FuncError, Template, TemplateError, gofunc, render


def test_public_names():
    assert set(gt.__all__) == {"render", "Template", "TemplateError", "FuncError", "gofunc", "NO_VALUE_TEXT"}
    for name in gt.__all__:
        assert getattr(gt, name) is not None


def test_render_signature_and_name_in_errors():
    assert render("{{ .a }}", {"a": "x"}, name="n", missingkey="error", funcs=None) == "x"
    with pytest.raises(TemplateError) as info:
        render("{{ .b }}", {"a": "x"}, name="etc/a.tmpl")
    assert info.value.where == "etc/a.tmpl:1:3"


def test_execute_named_and_names():
    t = Template.parse('{{ define "a" }}A{{ . }}{{ end }}{{ define "b" }}B{{ end }}main', name="main")
    assert t.names() == ["a", "b", "main"] and "a" in t and "zz" not in t
    assert t.execute_named("a", 1) == "A1"
    assert t.execute({}) == "main"
    with pytest.raises(TemplateError, match='template "zz" not defined'):
        t.execute_named("zz", {})


def test_include_as_helm_adds_it():
    t = Template("chart", funcs={"include": lambda name, data: ""})
    t.funcs({"include": lambda name, data: t.execute_named(name, data)})
    t.add('{{- define "fullname" -}}{{ .Release.Name }}-{{ .Chart.Name | trunc 63 }}{{- end -}}', "_helpers.tpl")
    t.add('name: {{ include "fullname" . | quote }}\nlabels: {{ include "fullname" . | upper }}', "deploy.yaml")
    data = {"Release": {"Name": "rel"}, "Chart": {"Name": "app"}}
    assert t.execute_named("deploy.yaml", data) == 'name: "rel-app"\nlabels: REL-APP'


def test_an_error_inside_an_include_keeps_its_own_position():
    t = Template("chart")
    t.funcs({"include": lambda name, data: t.execute_named(name, data)})
    t.add('{{ define "x" }}\n  {{ .missing }}{{ end }}', "_helpers.tpl")
    t.add('{{ include "x" . }}', "a.yaml")
    with pytest.raises(TemplateError) as info:
        t.execute_named("a.yaml", {})
    assert info.value.where == "_helpers.tpl:2:5" and 'no entry for key "missing"' in info.value.message


def test_functions_must_be_known_when_parsed_and_can_be_replaced_later():
    with pytest.raises(TemplateError, match='function "tpl" not defined'):
        Template.parse("{{ tpl . }}")
    t = Template.parse("{{ tpl . }}", funcs={"tpl": lambda s: s})
    assert t.execute("x") == "x"
    assert t.funcs({"tpl": lambda s: s * 2}).execute("x") == "xx"


def test_user_functions_override_sprig_and_builtins():
    assert render("{{ upper . }}", "a", funcs={"upper": lambda s: "custom"}) == "custom"
    assert render("{{ and 1 0 }}", {}, funcs={"and": lambda *a: "mine"}) == "mine"


def test_a_user_function_failure_is_reported_as_go_does():
    def boom(x):
        raise ValueError(f"bad {x}")
    with pytest.raises(TemplateError, match="error calling boom: bad 1"):
        render("{{ boom 1 }}", {}, funcs={"boom": boom})
    with pytest.raises(TemplateError, match="wrong number of args for boom: want 1 got 2"):
        render("{{ boom 1 2 }}", {}, funcs={"boom": boom})


def test_gofunc_declares_go_parameter_types():
    @gofunc("string", variadic="int")
    def f(s, *n):
        if not n:
            raise FuncError("need numbers")
        return s * sum(n)
    funcs = {"f": f}
    assert render('{{ f "ab" 1 1 }}', {}, funcs=funcs) == "abab"
    with pytest.raises(TemplateError, match="expected int; got string"):
        render('{{ f "ab" "x" }}', {}, funcs=funcs)
    with pytest.raises(TemplateError, match="error calling f: need numbers"):
        render('{{ f "ab" }}', {}, funcs=funcs)


def test_methods_of_objects_are_called_with_arguments():
    class Caps:
        def Has(self, api):  # noqa: N802
            return api == "apps/v1"

        _private = "hidden"

    data = {"Capabilities": {"APIVersions": Caps()}}
    assert render('{{ .Capabilities.APIVersions.Has "apps/v1" }}', data) == "true"
    with pytest.raises(TemplateError, match="can't evaluate field _private"):
        render("{{ .Capabilities.APIVersions._private }}", data)


def test_no_value_text_for_helm():
    out = render("a={{ .x }}", {}, missingkey="zero")
    assert out.replace(gt.NO_VALUE_TEXT, "") == "a="


def test_templates_can_run_concurrently():
    from concurrent.futures import ThreadPoolExecutor
    t = Template.parse("{{ range .l }}{{ . }}{{ end }}")
    with ThreadPoolExecutor(4) as pool:
        outs = list(pool.map(lambda i: t.execute({"l": [i] * 3}), range(50)))
    assert outs == [str(i) * 3 for i in range(50)]
