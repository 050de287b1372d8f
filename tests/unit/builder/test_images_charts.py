"""Helm charts without helm: merged values, subchart conditions/tags/aliases, packaged charts, safety."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from imgbuild.builder.charts import merge_values
from imgbuild.builder.images import find_images
from imgbuild.builder.yamlscan import load_tree
from imgbuild.errors import ContextError, UnsafePathError
from tests.unit.builder.test_images import add_bytes, pack


@pytest.fixture(autouse=True)
def _static_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests pin the static read of charts: what a chart that cannot be rendered gets (builder.helm)."""
    from imgbuild.builder import charts, helm

    monkeypatch.setattr(helm, "scan_charts_rendered", lambda root, ignored, **_: charts.scan_charts(root, ignored))


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def _sources(ctx: Path) -> dict[str, str]:
    return {f.ref: str(f.sources[0]) for f in find_images(ctx).found}


def test_tags_alias_and_conditions(tmp_path: Path) -> None:
    _write(tmp_path, {
        "charts/app/Chart.yaml": """\
apiVersion: v2
name: app
version: 1.0.0
dependencies:
  - {name: db, alias: primary, condition: primary.enabled}
  - {name: db, alias: replica, condition: "replica.on,replica.enabled"}
  - {name: tagged, tags: [extras, more]}
  - {name: strcond, condition: strcond.enabled}
""",
        "charts/app/values.yaml": """\
primary: {image: {tag: "16.1"}}
replica: {enabled: false, on: "{{ .Values.x }}"}
tags: {extras: false, more: false}
strcond: {enabled: "false"}
""",
        "charts/app/charts/db/Chart.yaml": "name: db\nversion: 1.0.0\nappVersion: '16.0'\n",
        "charts/app/charts/db/values.yaml": "image: {repository: postgres}\n",
        "charts/app/charts/tagged/Chart.yaml": "name: tagged\nversion: 1.0.0\n",
        "charts/app/charts/tagged/values.yaml": "image: acme/tagged:1\n",
        "charts/app/charts/strcond/Chart.yaml": "name: strcond\nversion: 1.0.0\n",
        "charts/app/charts/strcond/values.yaml": "image: acme/strcond:1\n",
        "charts/app/charts/unlisted/Chart.yaml": "name: unlisted\nversion: 1.0.0\n",
        "charts/app/charts/unlisted/values.yaml": "image: acme/unlisted:1\n",
    })
    result = find_images(tmp_path)
    assert result.refs == [
        "docker.io/acme/strcond:1",  # a condition that is a string, not a bool, is ignored (helm does too)
        "docker.io/acme/unlisted:1",  # in charts/ but not in dependencies: always rendered
        "docker.io/library/postgres:16.1",  # alias 'primary' with the parent's tag
    ]
    notes = [str(n) for n in result.notes]
    assert any("subchart replica disabled by condition replica.enabled=false" in n for n in notes)
    assert any("subchart tagged disabled by tags.extras=false" in n for n in notes)


def test_override_null_deletes_and_app_version_fallback(tmp_path: Path) -> None:
    _write(tmp_path, {
        "charts/app/Chart.yaml": "name: app\nversion: 1.0.0\nappVersion: v2.0.0\n",
        "charts/app/values.yaml": "image:\n  repository: acme/app\n  tag: v1.0.0\nextra:\n  image: acme/extra:1\n",
        "charts/app.values.yaml": "image:\n  tag: null\nextra: null\n",
    })
    assert _sources(tmp_path) == {"docker.io/acme/app:v2.0.0": "charts/app/values.yaml:2"}


def test_map_without_tag_and_no_app_version_is_skipped(tmp_path: Path) -> None:
    _write(tmp_path, {
        "charts/app/Chart.yaml": "name: app\nversion: 1.0.0\n",
        "charts/app/values.yaml": "image:\n  repository: acme/app\n  tag: ''\n",
    })
    result = find_images(tmp_path)
    assert result.found == ()
    assert [(s.file, s.line, s.reason) for s in result.skipped] == [
        ("charts/app/values.yaml", 2, "image map without tag or digest (and no chart appVersion)")
    ]


def test_global_reaches_subcharts_and_requirements_yaml(tmp_path: Path) -> None:
    _write(tmp_path, {
        "charts/app/Chart.yaml": "apiVersion: v1\nname: app\nversion: 1.0.0\n",
        "charts/app/requirements.yaml": "dependencies:\n  - {name: sub, condition: sub.enabled}\n",
        "charts/app/values.yaml": "sub: {enabled: true}\nglobal: {sidecarImage: acme/sidecar:2}\n",
        "charts/app/charts/sub/Chart.yaml": "name: sub\nversion: 1.0.0\n",
        "charts/app/charts/sub/values.yaml": "global: {sidecarImage: acme/sidecar:1}\n",
    })
    assert _sources(tmp_path) == {"docker.io/acme/sidecar:2": "charts/app/values.yaml:2"}


def test_library_chart_and_stray_entries(tmp_path: Path) -> None:
    _write(tmp_path, {
        "charts/lib/Chart.yaml": "name: lib\nversion: 1.0.0\ntype: library\n",
        "charts/lib/values.yaml": "image: acme/lib:1\n",
        "charts/README.md": "notes\n",
        "charts/empty/.keep": "",
    })
    result = find_images(tmp_path)
    assert result.found == ()
    assert [str(n) for n in result.notes] == [
        "charts/README.md: not a chart (no Chart.yaml, not a .tgz); ignored",
        "charts/empty: not a chart (no Chart.yaml, not a .tgz); ignored",
        "charts/lib/Chart.yaml: library chart: no images of its own",
    ]


def test_tgz_override_by_chart_name(tmp_path: Path) -> None:
    src = _write(tmp_path / "src", {
        "Chart.yaml": "name: tool\nversion: 3.1.0\n",
        "values.yaml": "image: {repository: acme/tool, tag: '3.0'}\n",
    })
    ctx = _write(tmp_path / "ctx", {"charts/tool.values.yaml": "image: {tag: '3.1'}\n"})
    (ctx / "charts" / "tool-3.1.0.tgz").write_bytes(pack(src, "tool"))
    assert _sources(ctx) == {"docker.io/acme/tool:3.1": "charts/tool.values.yaml:1"}


def _evil_tgz(tmp_path: Path, name: str, kind: bytes = tarfile.REGTYPE) -> Path:
    ctx = _write(tmp_path, {})
    (ctx / "charts").mkdir()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        add_bytes(tf, "evil/Chart.yaml", b"name: evil\nversion: 1.0.0\n")
        add_bytes(tf, name, b"image: acme/evil:1\n", kind)
    (ctx / "charts" / "evil.tgz").write_bytes(buf.getvalue())
    return ctx


@pytest.mark.parametrize("name", ["../values.yaml", "/etc/values.yaml", "evil/../../values.yaml"])
def test_tgz_entries_that_escape_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(UnsafePathError, match="escapes"):
        find_images(_evil_tgz(tmp_path, name))


def test_tgz_links_are_not_followed(tmp_path: Path) -> None:
    ctx = _evil_tgz(tmp_path, "evil/values.yaml", tarfile.SYMTYPE)
    assert find_images(ctx).found == ()


def test_corrupt_tgz_and_invalid_values_are_context_errors(tmp_path: Path) -> None:
    ctx = _write(tmp_path / "a", {"charts/bad.tgz": "not a tar"})
    with pytest.raises(ContextError, match="not a readable chart archive"):
        find_images(ctx)
    ctx = _write(tmp_path / "b", {"charts/app/Chart.yaml": "name: app\n", "charts/app/values.yaml": "a: [\n"})
    with pytest.raises(ContextError, match="invalid YAML") as err:
        find_images(ctx)
    assert err.value.where == "charts/app/values.yaml:2"


def test_merge_values_is_helm_like() -> None:
    base = load_tree("a: {b: 1, c: {d: 2}}\nl: [1, 2]\nx: 1\n", "base")
    over = load_tree("a: {c: {e: 3}}\nl: [3]\nx: null\n", "over")
    merged = merge_values(base, over)
    assert set(merged) == {"a", "l"}
    assert set(merged["a"]) == {"b", "c"} and set(merged["a"]["c"]) == {"d", "e"}
    assert [s.text for s in merged["l"]] == ["3"]


def test_override_file_without_a_chart_is_noted(tmp_path: Path) -> None:
    _write(tmp_path, {"charts/gone.values.yaml": "image: {tag: '2'}\n"})
    assert [str(n) for n in find_images(tmp_path).notes] == [
        "charts/gone.values.yaml: override values for no chart in charts/; unused"
    ]
