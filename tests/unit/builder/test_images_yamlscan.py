"""The YAML scanner: template masking, line numbers, image maps, the line-scan fallback."""

from __future__ import annotations

from pathlib import Path

from imgbuild.builder.images import find_images
from imgbuild.builder.yamlscan import mask_templates, scan_lines, scan_yaml_text


def _hits(text: str) -> list[tuple[str, int]]:
    hits, _note = scan_yaml_text(text, "f.yaml", "manifest")
    return sorted((h.value, h.line) for h in hits)


def test_masking_keeps_line_numbers_and_blanks_action_only_lines() -> None:
    text = "a: 1\n{{- if .x }}\nb: {{ .y }}\n{{/* two\nlines */}}\nc: 3\n"
    masked, actions = mask_templates(text)
    assert masked.count("\n") == text.count("\n")
    lines = masked.split("\n")
    assert lines[1] == "" and lines[3] == "" and lines[4] == ""
    assert lines[2].startswith("b: __imgbuild_tmpl_") and lines[5] == "c: 3"
    assert actions == ["{{- if .x }}", "{{ .y }}", "{{/* two\nlines */}}"]


def test_every_image_in_the_tree_with_its_line() -> None:
    text = """\
apiVersion: v1
kind: List
items:
  - kind: Pod
    spec:
      containers: [{name: a, image: "nginx:1.25"}]
      initContainers:
        - image: 'alpine:3.19'
  - kind: Widget
    spec:
      deep: {deeper: {image: quay.io/x/y:1}}
"""
    assert _hits(text) == [("alpine:3.19", 8), ("nginx:1.25", 6), ("quay.io/x/y:1", 11)]


def test_non_string_and_empty_image_values_are_ignored() -> None:
    text = "a:\n  image: true\nb:\n  image: 12\nc:\n  image: ''\nd:\n  image:\ne:\n  image: [x]\n"
    assert _hits(text) == []


def test_image_maps_keep_tags_as_written() -> None:
    text = """\
spec:
  one: {repository: foo/bar, tag: 1.20}
  two:
    registry: localhost:5000/
    repository: team/app
    digest: sha256:%s
  three: {repository: https://github.com/x/y.git, tag: v1}
  four: {repository: foo/bar}
""" % ("a" * 64)
    assert _hits(text) == [
        ("foo/bar:1.20", 2),
        ("https://github.com/x/y.git:v1", 7),
        ("localhost:5000/team/app@sha256:" + "a" * 64, 5),
    ]


def test_image_map_without_tag_under_an_image_key_is_reported(tmp_path: Path) -> None:
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "cr.yaml").write_text("spec:\n  image:\n    repository: acme/thing\n")
    result = find_images(tmp_path)
    assert result.found == ()
    assert [(s.line, s.value, s.reason) for s in result.skipped] == [
        (3, "acme/thing", "image map without tag or digest")
    ]


def test_invalid_references_are_skipped_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "a.yaml").write_text(
        "spec:\n  image: Nginx:Latest\n  other:\n    image: 'nginx:1.25 --flag'\n  x:\n    image: nginx:1.25\n"
    )
    result = find_images(tmp_path)
    assert result.refs == ["docker.io/library/nginx:1.25"]
    assert [(s.line, s.value) for s in result.skipped] == [(2, "Nginx:Latest"), (4, "nginx:1.25 --flag")]
    assert all(s.reason.startswith("invalid image reference") for s in result.skipped)


def test_empty_and_comment_only_documents() -> None:
    assert _hits("---\n# nothing\n---\n---\nimage: a:1\n...\n---\n") == [("a:1", 5)]
    assert _hits("") == []


def test_helm_style_template_parses_after_masking() -> None:
    text = """\
spec:
  template:
    metadata:
      labels:
        {{- include "x.labels" . | nindent 8 }}
    spec:
      {{- if .Values.init }}
      initContainers:
        - name: init
          image: busybox:1.36
      {{- end }}
      containers:
        - image: {{ .Values.image }}
          {{- with .Values.env }}
          env: {{ toYaml . | nindent 12 }}
          {{- end }}
"""
    hits, note = scan_yaml_text(text, "t.yaml", "manifest")
    assert note is None
    assert [(h.value, h.line, h.templated) for h in hits] == [
        ("busybox:1.36", 10, False),
        ("{{ .Values.image }}", 13, True),
    ]


def test_line_scanner_fallback() -> None:
    text = """\
- image: nginx:1.25 # comment
  "image": "quay.io/a/b:1"
# image: commented:1
    #image: commented:2
  image: |
  image: {repository: x}
  image: {{ .Values.image }}
  myimage: not-this:1
  image:
  image: 'alpine:3.19'   # quoted
"""
    assert [(h.value, h.line) for h in scan_lines(text, "f", "x")] == [
        ("nginx:1.25", 1),
        ("quay.io/a/b:1", 2),
        ("{{ .Values.image }}", 7),
        ("alpine:3.19", 10),
    ]


def test_unparseable_file_falls_back_with_a_note() -> None:
    hits, note = scan_yaml_text("a: [\nimage: nginx:1\n", "f.yaml", "manifest")
    assert [(h.value, h.line, h.how) for h in hits] == [("nginx:1", 2, "manifest-line-scan")]
    assert note is not None and "scanned line by line" in note
