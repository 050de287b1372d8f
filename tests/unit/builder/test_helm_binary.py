"""``--helm auto|always|never``: the helm binary on the executor's PATH, or the built-in renderer (FakeExecutor)."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgbuild.builder.images import find_images
from imgbuild.engine.exec import FakeExecutor
from imgbuild.errors import InputError, ToolMissing
from tests.unit.builder.test_helm import deploy, write

HELM_OUTPUT = """\
---
# Source: app/templates/d.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: release-name-x
spec:
  template:
    spec:
      containers:
        - name: x
          image: "acme/by-helm:1"
---
# Source: app/charts/db/templates/s.yaml
apiVersion: v1
kind: Pod
spec:
  containers: [{name: db, image: acme/db-by-helm:2}]
"""


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    """A context with one chart (rendered by the built-in engine to acme/builtin:1) and an override file."""
    return write(tmp_path, {
        "charts/app/Chart.yaml": "apiVersion: v2\nname: app\nversion: 1.0.0\n",
        "charts/app/templates/d.yaml": deploy("x", "        - name: x\n          image: acme/builtin:1"),
        "charts/app.values.yaml": "x: 1\n",
    })


def _helm(stdout: str = HELM_OUTPUT, exit_code: int = 0, present: bool = True) -> FakeExecutor:
    ex = FakeExecutor()
    ex.expect(["helm", "version"], stdout="v3.15.4+gfa9efb0", exit_code=0 if present else 127)
    ex.expect(["helm", "template"], stdout=stdout, stderr="Error: boom" if exit_code else "", exit_code=exit_code)
    return ex


def test_auto_uses_the_helm_binary_when_the_executor_has_one(ctx: Path) -> None:
    ex = _helm()
    result = find_images(ctx, helm="auto", executor=ex)
    assert [(f.ref, str(f.sources[0]), f.sources[0].how) for f in result.found] == [
        ("docker.io/acme/by-helm:1", "charts/app/templates/d.yaml:10", "helm-template"),
        ("docker.io/acme/db-by-helm:2", "charts/app/charts/db/templates/s.yaml:1", "helm-template"),
    ]
    [call] = [c for c in ex.calls if c[1] == "template"]
    assert call == ("helm", "template", "release-name", str(ctx / "charts" / "app"), "--namespace", "default",
                    "--values", str(ctx / "charts" / "app.values.yaml"))


def test_auto_without_helm_renders_itself(ctx: Path) -> None:
    ex = _helm(present=False)
    assert find_images(ctx, helm="auto", executor=ex).refs == ["docker.io/acme/builtin:1"]
    assert all(c[1] != "template" for c in ex.calls)
    assert find_images(ctx).refs == ["docker.io/acme/builtin:1"]  # no executor: built-in


def test_never_does_not_ask_the_executor(ctx: Path) -> None:
    ex = FakeExecutor()
    assert find_images(ctx, helm="never", executor=ex).refs == ["docker.io/acme/builtin:1"]
    assert ex.calls == []


def test_always_needs_helm(ctx: Path) -> None:
    with pytest.raises(ToolMissing, match="helm"):
        find_images(ctx, helm="always", executor=_helm(present=False))
    with pytest.raises(InputError, match="--helm must be auto, always or never"):
        find_images(ctx, helm="sometimes")


def test_a_failing_helm_template(ctx: Path) -> None:
    auto = find_images(ctx, helm="auto", executor=_helm(exit_code=1))
    assert auto.refs == ["docker.io/acme/builtin:1"] and auto.warnings == ()  # the built-in renderer took over
    always = find_images(ctx, helm="always", executor=_helm(exit_code=1))
    assert always.refs == ["docker.io/acme/builtin:1"]  # the static read: a literal image in a template
    assert always.found[0].sources[0].how == "chart-template" and len(always.warnings) == 1
    assert "helm template failed: " in always.warnings[0].message and "Error: boom" in always.warnings[0].message
