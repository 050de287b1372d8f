"""``imgbuild images find`` through the real CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

from imgbuild.cli.main import run
from tests.unit.builder.test_images import EXPECTED, context  # noqa: F401  (fixture)


def test_table_lists_refs_sources_and_warnings(context: Path, capsys) -> None:  # noqa: F811
    assert run(["images", "find", str(context)]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split() == ["REFERENCE", "FOUND", "IN"]
    assert "docker.io/library/nginx:latest" in out and "manifests/apps/deploy.yaml:18 (+1 more)" in out
    for ref in EXPECTED:
        assert ref in out
    assert "ARCHIVE IMAGE" in out and "docker-archive:images/skopeo/calico-node.tar" in out
    assert "warning: manifests/apps/ingress.yaml.tmpl:18: skipped '${EDGE_IMAGE}'" in err
    assert "ignored (ignore list): registry.example.com/shop/ignored-tool:1.0" in err
    assert "subchart metrics disabled" in err


def test_json_and_lists(context: Path, tmp_path: Path, capsys) -> None:  # noqa: F811
    extra = tmp_path / "extra.txt"
    extra.write_text("quay.io/acme/new:1\n")
    skip = tmp_path / "skip.txt"
    skip.write_text("nginx\n")
    argv = ["images", "find", str(context), "--json", "--image-list", str(extra), "--ignore-image-list", str(skip)]
    assert run(argv) == 0
    data = json.loads(capsys.readouterr().out)
    refs = [i["ref"] for i in data["images"]]
    assert "quay.io/acme/new:1" in refs and "docker.io/library/nginx:latest" not in refs
    assert refs == sorted(refs)


def test_bad_input_exits_2(tmp_path: Path, capsys) -> None:
    assert run(["images", "find", str(tmp_path / "missing")]) == 2
    assert "build context is not a directory" in capsys.readouterr().err
    bad = tmp_path / "bad.txt"
    bad.write_text("Not A Ref\n")
    assert run(["images", "find", str(tmp_path), "--image-list", str(bad)]) == 2
    assert f"{bad}:1" in capsys.readouterr().err
