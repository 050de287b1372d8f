"""``imgbuild build`` end to end: build, push, rebuild to the same digest, push nothing new; dry-run, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imgbuild.cli.main import run

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "kubefiles"


def _blobs(root: Path) -> set[str]:
    return {p.parent.name for p in root.rglob("blobs/sha256/*/*/data")}


@pytest.mark.registry
def test_build_push_rebuild_pushes_nothing(registry, capsys: pytest.CaptureFixture) -> None:
    ref = f"{registry.host}/demo/app:v1"
    assert run(["build", "-t", ref, str(EXAMPLES / "sealer-app")]) == 0
    out = capsys.readouterr()
    assert "STEP 3/6: APP greeting local://manifests/config.yaml local://install.sh" in out.err
    digest = out.out.strip().splitlines()[-1].split()[-1]
    assert digest.startswith("sha256:")
    assert run(["push", ref]) == 0
    capsys.readouterr()
    first = _blobs(registry.root)
    assert run(["build", "-q", "-t", ref, str(EXAMPLES / "sealer-app")]) == 0
    assert capsys.readouterr().out.strip() == digest
    assert run(["push", ref]) == 0
    err = capsys.readouterr().err
    assert "pushed" not in err
    assert _blobs(registry.root) == first


def test_dry_run_prints_the_plan(capsys: pytest.CaptureFixture) -> None:
    assert run(["build", "--dry-run", str(EXAMPLES / "multistage")]) == 0
    out = capsys.readouterr().out
    assert "stage 0 AS gather: FROM scratch" in out and "STEP 6/6: COPY --from=gather /out /payload" in out
    assert run(["build", "--dry-run", "--json", str(EXAMPLES / "minimal")]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["backend"] == "native" and plan["ignore_file"] == ".dockerignore"


def test_json_result_and_images_listing(capsys: pytest.CaptureFixture) -> None:
    assert run(["build", "--json", "-t", "imgbuild.local/demo/pause:3.9", str(EXAMPLES / "pause-demo")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["backend"] == "native" and data["images"][0]["layers"][0]["role"] == "rootfs"
    assert run(["images", "--json"]) == 0
    assert "imgbuild.local/demo/pause" in capsys.readouterr().out


def test_bad_input_exits_2_with_the_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "Kubefile").write_text("FROM scratch\nCOPY missing /m\n")
    assert run(["build", str(tmp_path)]) == 2
    assert "Kubefile:2" in capsys.readouterr().err
    assert run(["build", "--build-arg", "NOEQUALS_UNSET_VAR", str(tmp_path)]) == 2
    assert run(["build", str(tmp_path / "nope")]) == 2


def test_gzip_and_platform_options(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert run(["build", "--json", "--compression", "gzip", "--platform", "linux/arm64",
                str(EXAMPLES / "pause-demo")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["images"][0]["platform"] == "linux/arm64"


def test_bad_tag_fails_before_building(tmp_path, capsys):
    from imgbuild.cli.main import run

    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "Kubefile").write_text("FROM scratch\nCOPY a.txt /a.txt\n")
    assert run(["build", "-t", "Bad:Tag", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert "STEP" not in captured.out + captured.err
    assert "invalid image reference 'Bad:Tag'" in captured.err


def test_templated_image_values_are_reported_not_bundled(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests/pod.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
        "  - name: c\n    image: \"{{ .Values.image }}\"\n")
    (tmp_path / "Kubefile").write_text("FROM scratch\nCOPY manifests manifests\n")
    assert run(["build", "-t", "localhost/templated:v1", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "warning: image value '{{ .Values.image }}' is not bundled (manifests/pod.yaml:7)" in err
