"""``docker-daemon:REF`` against a real Docker-API service (podman's), images from imgbuild's own store.

An image imgbuild built is pushed into the daemon (``POST /images/load``), loaded back
(``GET /images/{name}/get``, digests checked) under another name, and comes back with
the same IMAGE ID and the same files; a missing image is an input error naming the daemon.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imgbuild.cli.main import run
from tests.support import local

pytestmark = pytest.mark.docker


def _context(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "hello.txt").write_text("hello from imgbuild\n")
    (ctx / "Kubefile").write_text('FROM scratch\nCOPY hello.txt /etc/hello.txt\nLABEL demo=yes\nCMD ["/bin/true"]\n')
    return ctx


def _members(ref: str):
    """(path, content or None) of every member of ``ref``'s layers, in order."""
    import tarfile

    from imgbuild.oci.layer import open_layer

    image = local.store().image(ref)
    for desc in image.layers:
        with image.open_layer(desc) as raw, tarfile.open(fileobj=open_layer(raw, desc.media_type), mode="r|") as tar:
            for m in tar:
                yield m.name.removeprefix("./"), tar.extractfile(m).read() if m.isreg() else None  # type: ignore


def _paths(ref: str) -> set[str]:
    """Every member path of ``ref``'s layers."""
    return {path for path, _ in _members(ref)}


def _files(ref: str) -> dict[str, bytes]:
    """The regular files of ``ref``'s layers (path -> bytes)."""
    return {path: data for path, data in _members(ref) if data is not None}


def test_push_into_daemon_then_load_back(tmp_path: Path, podman_service, capsys) -> None:
    assert run(["build", "-q", "-t", "app:v1", str(_context(tmp_path))]) == 0
    capsys.readouterr()
    built = local.store().image("app:v1")

    assert run(["push", "--json", "app:v1", "docker-daemon:demo/app:v2"]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == str(built.id)
    listed = podman_service.podman("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").stdout
    assert f"docker.io/demo/app:v2 {built.id.hex[:12]}" in listed

    assert run(["load", "--json", "docker-daemon:demo/app:v2"]) == 0
    out = capsys.readouterr()
    loaded = json.loads(out.out)
    assert "exported" in out.err  # one line per exported member (not a terminal: lines, not bars)
    assert loaded[0]["names"] == ["docker.io/demo/app:v2"]
    back = local.store().image("demo/app:v2")
    assert back.id == built.id and back.config.labels["demo"] == "yes"
    assert _files("demo/app:v2") == _files("app:v1") == {"etc/hello.txt": b"hello from imgbuild\n"}

    assert run(["pull", "docker-daemon:" + built.id.hex[:12]]) == 0
    assert capsys.readouterr().out.strip() == loaded[0]["digest"]


def test_a_missing_image_is_an_input_error(podman_service, capsys) -> None:
    assert run(["load", "docker-daemon:nothing/here:v9"]) == 2
    err = capsys.readouterr().err
    assert "no image nothing/here:v9 in the docker daemon" in err and podman_service.docker_host in err


def test_an_unreachable_daemon_fails_with_its_address(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/absent.sock")
    assert run(["load", "docker-daemon:app:v1"]) == 1
    assert "absent.sock" in capsys.readouterr().err


def test_from_docker_daemon_and_registry_save(tmp_path: Path, podman_service, capsys) -> None:
    assert run(["build", "-q", "-t", "app:v1", str(_context(tmp_path))]) == 0
    assert run(["push", "app:v1", "docker-daemon:demo/base:1"]) == 0
    assert run(["rmi", "app:v1"]) == 0
    child = tmp_path / "child"
    child.mkdir()
    (child / "more.txt").write_text("more\n")
    (child / "Kubefile").write_text("FROM docker-daemon:demo/base:1\nCOPY more.txt /etc/more.txt\n")
    assert run(["build", "-q", "-t", "child:v1", str(child)]) == 0
    assert _files("child:v1") == {"etc/hello.txt": b"hello from imgbuild\n", "etc/more.txt": b"more\n"}
    assert local.store().image("demo/base:1").config.labels["demo"] == "yes"  # the base came into the store
    capsys.readouterr()

    regdir = tmp_path / "registry"
    assert run(["registry", "save", "--registry-dir", str(regdir), "--images", "docker-daemon:demo/base:1",
                "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [(s["ref"], s["source"]) for s in report["saved"]] == [("docker.io/demo/base:1", "daemon")]
    assert (regdir / "docker/registry/v2/repositories/demo/base/_manifests/tags/1").is_dir()

    # an images/shim line naming a daemon image is bundled from the daemon by the build, as REF
    shim = tmp_path / "shim"
    (shim / "images" / "shim").mkdir(parents=True)
    (shim / "images" / "shim" / "list").write_text("docker-daemon:demo/base:1\n")
    (shim / "Kubefile").write_text("FROM scratch\nCOPY registry registry\n")
    assert run(["images", "find", "--json", str(shim)]) == 0
    found = json.loads(capsys.readouterr().out)
    assert [(f["ref"], f.get("daemon")) for f in found["images"]] == [("docker.io/demo/base:1", True)]
    assert found["skipped"] == []
    assert run(["build", "-q", "-t", "bundled:v1", str(shim)]) == 0
    assert any(p.startswith("registry/docker/registry/v2/repositories/demo/base/") for p in _paths("bundled:v1"))


@pytest.mark.buildah
def test_from_docker_daemon_with_the_buildah_backend(tmp_path: Path, podman_service, capsys) -> None:
    from tests.support.podman import host_image_context

    assert run(["build", "-q", "-t", "shell:1", str(host_image_context(tmp_path / "shell"))]) == 0
    assert run(["push", "shell:1", "docker-daemon:demo/shell:1"]) == 0
    assert run(["rmi", "shell:1"]) == 0
    ctx = tmp_path / "run"
    ctx.mkdir()
    (ctx / "Kubefile").write_text("FROM docker-daemon:demo/shell:1\nRUN echo built-by-buildah > /etc/built\n")
    assert run(["build", "-q", "--backend", "buildah", "-t", "ran:1", str(ctx)]) == 0
    assert _files("ran:1")["etc/built"] == b"built-by-buildah\n"
