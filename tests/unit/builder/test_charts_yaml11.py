"""Chart.yaml string fields written as YAML 1.1 booleans (off, on, yes, no, y, n) stay strings, as in Helm."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgbuild.builder.images import find_images
from tests.unit.builder.test_images import pack
from tests.unit.builder.test_images_charts import _write

WORDS = ["off", "on", "yes", "no", "y", "n", "True", "FALSE"]


@pytest.fixture(autouse=True)
def _static_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests pin the static read of charts: what a chart that cannot be rendered gets (builder.helm)."""
    from imgbuild.builder import charts, helm

    monkeypatch.setattr(helm, "scan_charts_rendered", lambda root, ignored, **_: charts.scan_charts(root, ignored))


@pytest.mark.parametrize("word", WORDS)
def test_a_dependency_named_like_a_boolean_is_matched_and_can_be_disabled(tmp_path: Path, word: str) -> None:
    _write(tmp_path, {
        "charts/app/Chart.yaml": f"name: app\nversion: 1.0.0\ndependencies:\n"
                                 f"  - {{name: {word}, condition: {word}.enabled, alias: {word}}}\n"
                                 f"  - {{name: keep, condition: keep.enabled}}\n",
        "charts/app/values.yaml": f"{word}: {{enabled: true}}\nkeep: {{enabled: true}}\n",
        f"charts/app/charts/{word}/Chart.yaml": f"name: {word}\nversion: 1.0.0\n",
        f"charts/app/charts/{word}/values.yaml": "image: acme/bool-named:1\n",
        "charts/app/charts/keep/Chart.yaml": "name: keep\nversion: 1.0.0\n",
        "charts/app/charts/keep/values.yaml": "image: acme/keep:1\n",
    })
    assert find_images(tmp_path).refs == ["docker.io/acme/bool-named:1", "docker.io/acme/keep:1"]
    _write(tmp_path, {"charts/app.values.yaml": f"{word}: {{enabled: false}}\n"})
    result = find_images(tmp_path)
    assert result.refs == ["docker.io/acme/keep:1"]
    assert any(f"subchart {word} disabled by condition {word}.enabled=false" in n.message for n in result.notes)


def test_a_packaged_subchart_named_off_is_found_by_its_chart_name(tmp_path: Path) -> None:
    src = _write(tmp_path / "src", {"Chart.yaml": "name: off\nversion: 2.0.0\nappVersion: on\n",
                                    "values.yaml": "image: {repository: acme/off}\n"})
    ctx = _write(tmp_path / "ctx", {
        "charts/app/Chart.yaml": "name: app\nversion: 1.0.0\ndependencies:\n  - {name: off, condition: off.enabled}\n",
        "charts/app/values.yaml": "off: {enabled: false}\n",
    })
    (ctx / "charts/app/charts").mkdir()
    (ctx / "charts/app/charts/off-2.0.0.tgz").write_bytes(pack(src, "off"))
    assert find_images(ctx).refs == []
    (ctx / "charts/app/values.yaml").write_text("off: {enabled: true}\n")
    assert find_images(ctx).refs == ["docker.io/acme/off:on"]  # appVersion `on` is the text "on" too
