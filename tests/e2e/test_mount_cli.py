"""The mount commands end to end: mount, mounts, diff, commit, umount through the CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imgbuild.cli.main import run
from imgbuild.rootfs.records import mounted_points
from imgbuild.oci.store import open_store
from imgbuild.home import home
from tests.support.layered_images import make_layered_image

pytestmark = pytest.mark.root



@pytest.fixture
def images() -> tuple[str, str]:
    store = open_store(home())
    make_layered_image(store, "localhost/demo/app:v1", {"etc/app.conf": b"v1", "etc/old": b"o", "bin/app": b"1"},
                       labels={"version": "v1", "sealos.io.type": "rootfs"}, env=["A=1"], cmd=["app"])
    make_layered_image(store, "localhost/demo/app:v2", {"etc/app.conf": b"v2!", "bin/app": b"1", "bin/new": b"n"},
                       labels={"version": "v2", "sealos.io.type": "rootfs"}, env=["A=2", "B=1"], cmd=["app", "-v"])
    return "localhost/demo/app:v1", "localhost/demo/app:v2"


def test_mount_mounts_umount(images, capsys, imgbuild_home: Path):
    assert run(["mount", images[0]]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert (path / "etc/app.conf").read_bytes() == b"v1" and str(path) in mounted_points()
    assert run(["mount", images[0]]) == 0
    assert capsys.readouterr().out.strip() == str(path)  # a read-only mount is reused
    assert run(["mounts", "--json"]) == 0
    [rec] = json.loads(capsys.readouterr().out)
    assert rec["path"] == str(path) and rec["mechanism"] == "overlay" and rec["rw"] is False
    assert run(["mounts"]) == 0
    assert "overlay" in capsys.readouterr().out
    assert run(["umount", images[0]]) == 0
    assert "unmounted" in capsys.readouterr().err and str(path) not in mounted_points()
    assert run(["umount", images[0]]) == 2
    assert "no mount matches" in capsys.readouterr().err
    assert run(["umount"]) == 2


def test_mount_json_and_copy_mechanism(images, capsys):
    assert run(["mount", "--mechanism", "copy", "--json", images[1]]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["mechanism"] == "copy" and data["type"] == "rootfs"
    assert (Path(data["path"]) / "bin/new").read_bytes() == b"n"
    assert run(["umount", "--all"]) == 0
    assert not Path(data["path"]).exists()
    assert run(["mount", "--mechanism", "nfs", images[1]]) == 2


def test_diff_human_and_json(images, capsys):
    assert run(["diff", *images]) == 0
    out = capsys.readouterr().out
    assert "A bin/new  (file, 1 B)" in out and "D etc/old  (file, 1 B)" in out
    assert "M etc/app.conf  size 2 B -> 3 B, sha256" in out
    assert "label ~ version: v1 -> v2" in out and "env + B=1" in out and "env ~ A: 1 -> 2" in out
    assert "cmd ~ ['app'] -> ['app', '-v']" in out
    assert run(["diff", "--json", *images]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [a["path"] for a in data["files"]["added"]] == ["bin/new"]
    assert data["config"]["labels"]["changed"] == {"version": {"old": "v1", "new": "v2"}}
    assert run(["diff", images[0], images[0]]) == 0
    assert capsys.readouterr().out.strip() == "no differences"
    assert run(["diff", images[0], "localhost/demo/nope:v9"]) == 2


def test_diff_image_against_directory_and_mount(images, capsys, tmp_path: Path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "app.conf").write_bytes(b"v1")
    assert run(["diff", "--ignore-owner", "--json", images[0], str(tmp_path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {r["path"] for r in data["files"]["removed"]} == {"bin", "bin/app", "etc/old"}
    assert data["config"] is None
    assert run(["mount", images[0]]) == 0
    path = capsys.readouterr().out.strip()
    assert run(["diff", images[0], path]) == 0
    assert capsys.readouterr().out.strip() == "no differences"


def test_rw_mount_commit(images, capsys):
    assert run(["mount", "--rw", images[0]]) == 0
    path = Path(capsys.readouterr().out.strip())
    (path / "etc/app.conf").write_bytes(b"patched")
    (path / "etc/old").unlink()
    assert run(["commit", str(path), "-t", "localhost/demo/app:patched", "--json"]) == 0
    new = json.loads(capsys.readouterr().out)
    assert open_store(home()).resolve("localhost/demo/app:patched").digest == new["digest"]
    assert run(["diff", "--json", images[0], "localhost/demo/app:patched"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["path"] for r in data["files"]["removed"]] == ["etc/old"]
    assert [c["path"] for c in data["files"]["changed"]] == ["etc/app.conf"]
    assert run(["umount", str(path)]) == 0
    assert run(["mount", images[1]]) == 0
    ro = capsys.readouterr().out.strip()
    assert run(["commit", ro, "-t", "localhost/demo/app:nope"]) == 2
    assert "read-only" in capsys.readouterr().err


def test_cold_mount_says_which_layers_it_unpacks(images, capsys):
    assert run(["mount", "--rw", images[0]]) == 0
    err = capsys.readouterr().err
    assert "unpacking layer " in err and "compressed)" in err
    assert run(["mount", "--rw", images[0]]) == 0  # every layer cached now: nothing to say
    assert "unpacking layer" not in capsys.readouterr().err
    assert run(["mount", "--mechanism", "copy", images[1]]) == 0  # a copy extracts every layer
    assert "unpacking layer" in capsys.readouterr().err
