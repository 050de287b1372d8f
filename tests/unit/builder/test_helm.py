"""Charts rendered as ``helm template`` renders them: each case the static read of values.yaml got wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgbuild.builder.images import find_images
from tests.unit.builder.test_images_charts import _write as write

DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-%s
spec:
  template:
    spec:
      containers:
%s
"""


def deploy(name: str, *containers: str) -> str:
    """A Deployment template whose containers are the given ``- name: ...`` blocks."""
    return DEPLOY % (name, "\n".join(containers))


def refs(ctx: Path) -> list[str]:
    """What discovery finds with the built-in renderer, asserting that no chart fell back."""
    result = find_images(ctx, helm="never")
    assert result.warnings == ()
    return result.refs


def test_tag_in_a_sibling_key(tmp_path: Path) -> None:
    write(tmp_path, {
        "charts/app/Chart.yaml": "apiVersion: v2\nname: app\nversion: 1.0.0\n",
        "charts/app/values.yaml": "image: org/x\nimageTag: v3\n",
        "charts/app/templates/d.yaml": deploy("x", '        - name: x\n          image: "{{ .Values.image }}:{{ .Values.imageTag }}"'),
    })
    assert refs(tmp_path) == ["docker.io/org/x:v3"]  # the static read said org/x:latest


def test_the_tag_the_template_uses_not_a_guess_from_the_chart_version(tmp_path: Path) -> None:
    write(tmp_path, {
        "charts/app/Chart.yaml": "apiVersion: v2\nname: app\nversion: 2.0.0\nappVersion: '1.7'\n",
        "charts/app/values.yaml": "image: {repository: acme/app}\n",
        "charts/app/templates/d.yaml": deploy("x", '        - name: x\n          image: "{{ .Values.image.repository }}:v{{ .Chart.AppVersion }}-alpine"'),
    })
    assert refs(tmp_path) == ["docker.io/acme/app:v1.7-alpine"]


def test_names_composed_in_templates_suffix_and_helper(tmp_path: Path) -> None:
    helpers = """\
{{- define "app.image" -}}
{{- $registry := .Values.global.imageRegistry | default .Values.image.registry -}}
{{- printf "%s/%s:%s" $registry .Values.image.repository (.Values.image.tag | default (printf "v%s" .Chart.AppVersion)) -}}
{{- end }}
"""
    write(tmp_path, {
        "charts/app/Chart.yaml": "apiVersion: v2\nname: app\nversion: 1.0.0\nappVersion: 2.5.0\n",
        "charts/app/values.yaml": "global: {}\nimage: {registry: quay.io, repository: acme/app, tag: ''}\n"
                                  "controller: {repository: acme/ctl, tag: '1.0', chroot: true}\n",
        "charts/app/templates/_helpers.tpl": helpers,
        "charts/app/templates/d.yaml": deploy(
            "x", '        - name: app\n          image: {{ include "app.image" . }}',
            '        - name: ctl\n          image: "{{ .Values.controller.repository }}{{ if .Values.controller.chroot }}-chroot'
                 '{{ end }}:{{ .Values.controller.tag }}"'),
    })
    assert refs(tmp_path) == ["docker.io/acme/ctl-chroot:1.0", "quay.io/acme/app:v2.5.0"]


def test_app_version_default_tag_is_filled_in(tmp_path: Path) -> None:
    write(tmp_path, {
        "charts/app/Chart.yaml": "apiVersion: v2\nname: app\nversion: 1.0.0\nappVersion: 1.10\n",  # a string, not 1.1
        "charts/app/values.yaml": "image: {repository: acme/app, tag: ''}\n",
        "charts/app/templates/d.yaml": deploy(
            "x", '        - name: x\n          image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"'),
    })
    assert refs(tmp_path) == ["docker.io/acme/app:1.10"]


def test_switched_off_features_are_not_bundled(tmp_path: Path) -> None:
    write(tmp_path, {
        "charts/app/Chart.yaml": "apiVersion: v2\nname: app\nversion: 1.0.0\n",
        "charts/app/values.yaml": "metrics: {enabled: false, image: acme/exporter:1}\nshell: {image: acme/shell:2}\n",
        "charts/app/templates/d.yaml": deploy(
            "x", "        - name: main\n          image: acme/main:1",
            "        {{- if .Values.metrics.enabled }}\n        - name: metrics\n          image: {{ .Values.metrics.image }}\n"
            "        {{- end }}"),
    })
    assert refs(tmp_path) == ["docker.io/acme/main:1"]  # neither the disabled exporter nor the unused shell image


def test_every_kind_of_container_and_an_embedded_pod_template(tmp_path: Path) -> None:
    pod = """\
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  initContainers: [{name: i, image: "acme/init:1"}]
  containers:
    - {name: c, image: acme/main:1}
  ephemeralContainers:
    - name: debug
      image: acme/debug:1
---
apiVersion: v1
kind: ConfigMap
metadata: {name: job-template}
data:
  job.yaml: |
    spec:
      containers:
        - name: j
          image: acme/job:{{ .Chart.Version }}
"""
    write(tmp_path, {"charts/app/Chart.yaml": "apiVersion: v2\nname: app\nversion: 3.0.0\n",
                     "charts/app/templates/pod.yaml": pod})
    assert refs(tmp_path) == ["docker.io/acme/debug:1", "docker.io/acme/init:1", "docker.io/acme/job:3.0.0",
                              "docker.io/acme/main:1"]


def test_sealos_override_file_and_null_deletes(tmp_path: Path) -> None:
    write(tmp_path, {
        "charts/app/Chart.yaml": "apiVersion: v2\nname: app\nversion: 1.0.0\nappVersion: v9\n",
        "charts/app/values.yaml": "image: {repository: acme/app, tag: v1}\nsidecar: {image: acme/side:1}\n",
        "charts/app.values.yaml": "image: {tag: null}\nsidecar: null\n",
        "charts/app/templates/d.yaml": deploy(
            "x", '        - name: x\n          image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"',
            "        {{- with .Values.sidecar }}\n        - name: s\n          image: {{ .image }}\n        {{- end }}"),
    })
    assert refs(tmp_path) == ["docker.io/acme/app:v9"]


def test_helm_functions_release_capabilities_files_lookup_tpl(tmp_path: Path) -> None:
    tmpl = """\
{{- $cm := lookup "v1" "ConfigMap" .Release.Namespace "x" }}
{{- if and (not $cm) (.Capabilities.APIVersions.Has "policy/v1/PodDisruptionBudget")
           (semverCompare ">=1.25-0" .Capabilities.KubeVersion.GitVersion)
           (not (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1")) }}
apiVersion: v1
kind: Pod
metadata: {name: {{ .Release.Name }}, namespace: {{ .Release.Namespace }}}
spec:
  containers:
    - name: a
      image: {{ tpl .Values.image . }}
    - name: b
      image: {{ .Files.Get "files/image.txt" | trim }}
    - name: c
      image: {{ required "image c is required" .Values.c }}
{{- end }}
"""
    write(tmp_path, {
        "charts/app/Chart.yaml": "apiVersion: v2\nname: app\nversion: 1.0.0\nappVersion: '5'\n",
        "charts/app/values.yaml": "registry: r.example.com\nimage: '{{ .Values.registry }}/a:{{ .Chart.AppVersion }}'\n"
                                  "c: acme/c:1\n",
        "charts/app/files/image.txt": "acme/from-file:2\n",
        "charts/app/templates/pod.yaml": tmpl,
    })
    assert refs(tmp_path) == ["docker.io/acme/c:1", "docker.io/acme/from-file:2", "r.example.com/a:5"]


def test_subcharts_conditions_tags_aliases_globals_and_import_values(tmp_path: Path) -> None:
    sub_tmpl = deploy("db", '        - name: db\n          image: "{{ .Values.global.registry }}/{{ .Values.image }}:{{ .Values.tag }}"')
    write(tmp_path, {
        "charts/app/Chart.yaml": """\
apiVersion: v2
name: app
version: 1.0.0
dependencies:
  - {name: db, version: 1.x, alias: primary, condition: primary.enabled}
  - {name: db, version: 1.x, alias: replica, condition: replica.enabled}
  - {name: extra, version: 0.1.0, tags: [extras]}
  - {name: exporter, version: 0.1.0, import-values: [defaults]}
""",
        "charts/app/values.yaml": "global: {registry: reg.example.com}\nprimary: {tag: '16'}\n"
                                  "replica: {enabled: false}\ntags: {extras: false}\n",
        "charts/app/templates/d.yaml": deploy("app", '        - name: app\n          image: "acme/app:{{ .Values.exporterTag }}"'),
        "charts/app/charts/db/Chart.yaml": "apiVersion: v2\nname: db\nversion: 1.2.0\n",
        "charts/app/charts/db/values.yaml": "image: postgres\ntag: '15'\nglobal: {registry: docker.io}\n",
        "charts/app/charts/db/templates/d.yaml": sub_tmpl,
        "charts/app/charts/extra/Chart.yaml": "apiVersion: v2\nname: extra\nversion: 0.1.0\n",
        "charts/app/charts/extra/templates/d.yaml": deploy("e", "        - name: e\n          image: acme/extra:1"),
        "charts/app/charts/exporter/Chart.yaml": "apiVersion: v2\nname: exporter\nversion: 0.1.0\n",
        "charts/app/charts/exporter/values.yaml": "exports: {defaults: {exporterTag: '0.9'}}\n",
    })
    result = find_images(tmp_path, helm="never")
    assert result.refs == ["docker.io/acme/app:0.9", "reg.example.com/postgres:16"]
    notes = {str(n) for n in result.notes}
    assert "charts/app/charts/db: subchart replica disabled by condition replica.enabled=false" in notes
    assert "charts/app/charts/extra: subchart extra disabled by tags.extras=false" in notes


def test_packaged_chart_with_a_packaged_subchart(tmp_path: Path) -> None:
    from tests.unit.builder.test_images import pack

    sub = write(tmp_path / "sub", {
        "Chart.yaml": "apiVersion: v2\nname: sub\nversion: 0.1.0\nappVersion: '2.0'\n",
        "values.yaml": "image: {repository: acme/sub}\n",
        "templates/d.yaml": deploy("s", '        - name: s\n          image: "{{ .Values.image.repository }}:{{ .Chart.AppVersion }}"'),
    })
    top = write(tmp_path / "top", {"Chart.yaml": "apiVersion: v2\nname: top\nversion: 1.0.0\n",
                                  "templates/d.yaml": deploy("t", "        - name: t\n          image: acme/top:1")})
    ctx = write(tmp_path / "ctx", {"charts/top.values.yaml": "sub: {image: {repository: acme/renamed}}\n"})
    (ctx / "charts" / "top-1.0.0.tgz").write_bytes(pack(top, "top", {"charts/sub-0.1.0.tgz": pack(sub, "sub")}))
    found = find_images(ctx, helm="never").found
    assert [(f.ref, str(f.sources[0])) for f in found] == [
        ("docker.io/acme/renamed:2.0", "charts/top-1.0.0.tgz!top/charts/sub-0.1.0.tgz!sub/templates/d.yaml:10"),
        ("docker.io/acme/top:1", "charts/top-1.0.0.tgz!top/templates/d.yaml:10"),
    ]


def test_found_images_name_the_line_that_wrote_them(tmp_path: Path) -> None:
    write(tmp_path, {
        "charts/app/Chart.yaml": "apiVersion: v2\nname: app\nversion: 1.0.0\n",
        "charts/app/values.yaml": "reload: {enabled: false}\n",
        "charts/app/templates/_pod.tpl": '{{- define "app.pod" -}}\ncontainers:\n  - name: p\n'
                                         '    {{- $repo := "acme/from-partial" }}\n    image: "{{ $repo }}:1"\n{{- end }}\n',
        "charts/app/templates/d.yaml": deploy(
            "x", "        {{- if .Values.reload.enabled }}\n        - name: reload\n          image: acme/reload:1\n"
                 "        {{- end }}", "        - name: main\n          image: acme/main:1"),
        "charts/app/templates/p.yaml": "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n"
                                       '  {{- include "app.pod" . | nindent 2 }}\n',
    })
    found = {f.ref: str(f.sources[0]) for f in find_images(tmp_path, helm="never").found}
    assert found == {"docker.io/acme/main:1": "charts/app/templates/d.yaml:14",  # not the disabled line 11
                     "docker.io/acme/from-partial:1": "charts/app/templates/_pod.tpl:5"}


@pytest.mark.parametrize("template, reason", [
    ('{{ fail "set .Values.password" }}', "set .Values.password"),
    ("{{ .Values.x | nosuchfunc }}", 'function "nosuchfunc" not defined'),
    ("{{ if }}", "missing value for if"),
])
def test_a_chart_that_cannot_be_rendered_falls_back_with_a_warning(tmp_path: Path, template: str, reason: str) -> None:
    write(tmp_path, {
        "charts/app/Chart.yaml": "apiVersion: v2\nname: app\nversion: 1.0.0\n",
        "charts/app/values.yaml": "image: acme/from-values:1\n",
        "charts/app/templates/bad.yaml": template,
        "charts/ok/Chart.yaml": "apiVersion: v2\nname: ok\nversion: 1.0.0\n",
        "charts/ok/templates/d.yaml": deploy("ok", "        - name: ok\n          image: acme/ok:1"),
    })
    result = find_images(tmp_path, helm="never")
    assert result.refs == ["docker.io/acme/from-values:1", "docker.io/acme/ok:1"]
    [warning] = result.warnings
    assert warning.file == "charts/app" and reason in warning.message
    assert "charts/app/templates/bad.yaml:1" in warning.message
    assert "read from its values and literal templates instead" in warning.message


def test_library_charts_render_nothing_and_their_defines_serve_the_parent(tmp_path: Path) -> None:
    write(tmp_path, {
        "charts/app/Chart.yaml": "apiVersion: v2\nname: app\nversion: 1.0.0\ndependencies:\n  - {name: lib, version: 1.0.0}\n",
        "charts/app/templates/d.yaml": deploy("x", '        - name: x\n          image: {{ include "lib.image" (dict "r" "acme/lib-made") }}'),
        "charts/app/charts/lib/Chart.yaml": "apiVersion: v2\nname: lib\nversion: 1.0.0\ntype: library\n",
        "charts/app/charts/lib/templates/_image.tpl": '{{- define "lib.image" -}}{{ .r }}:1{{- end }}\n',
        "charts/app/charts/lib/templates/pod.yaml": "kind: Pod\nspec: {containers: [{name: l, image: acme/never:1}]}\n",
    })
    assert refs(tmp_path) == ["docker.io/acme/lib-made:1"]


def test_files_is_a_map_range_walks_with_its_methods(tmp_path: Path) -> None:
    tmpl = """\
apiVersion: v1
kind: Pod
metadata: {name: x, annotations: {files: "{{ len (.Files.Glob "images/*") }}"}}
spec:
  containers:
{{- range $path, $bytes := .Files.Glob "images/*.txt" }}
    - name: {{ base $path | trimSuffix ".txt" }}
      image: {{ $.Files.Get $path | trim }}
{{- end }}
{{- range .Files.Lines "images/list" }}
    - name: l{{ . | sha256sum | trunc 6 }}
      image: {{ . }}
{{- end }}
"""
    write(tmp_path, {
        "charts/app/Chart.yaml": "apiVersion: v2\nname: app\nversion: 1.0.0\n",
        "charts/app/images/a.txt": "acme/a:1\n", "charts/app/images/b.txt": "acme/b:2\n",
        "charts/app/images/list": "acme/c:3\nacme/d:4\n",
        "charts/app/templates/pod.yaml": tmpl,
    })
    assert refs(tmp_path) == ["docker.io/acme/a:1", "docker.io/acme/b:2", "docker.io/acme/c:3", "docker.io/acme/d:4"]
