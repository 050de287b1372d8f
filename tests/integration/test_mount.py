"""Mounts of real multi-layer images: overlay, fuse-overlayfs and extracted copy agree with buildah's own mount."""

from __future__ import annotations

import errno
from dataclasses import replace
from pathlib import Path

import pytest

from imgbuild.rootfs.diff import compare_trees, tree_from_dir
from imgbuild.rootfs.difftree import image_tree
from imgbuild.home import home
from imgbuild.oci.layer import Entry
from imgbuild.oci.store import open_store
from imgbuild.rootfs.records import mounted_points
from tests.support.layered_images import d, f, make_layered_image, sym
from tests.support.local import EXEC, list_mounts, mount

pytestmark = pytest.mark.root

BASE = {
    "etc/": d(), "etc/keep.conf": b"keep\n", "etc/gone.conf": b"gone\n", "etc/secret": f(b"s", 0o600, 1000, 1000),
    "etc/kubernetes/": d(0o700), "etc/kubernetes/admin.conf": b"admin\n", "etc/kubernetes/pki/ca.crt": b"ca\n",
    "usr/bin/kubelet": f(b"\x7fELF" + b"x" * (1 << 20), 0o755), "usr/bin/suid": f(b"#!", 0o4755),
    "usr/bin/kubelet2": Entry("", "hardlink", linkname="usr/bin/kubelet", mode=0o755),
    "opt/app/old/a": b"a", "opt/app/old/b": b"b", "opt/app/cfg": b"cfg",
    "var/lib/data": b"data", "var/link-abs": sym("/etc/keep.conf"), "var/link-rel": sym("../etc/keep.conf"),
    "a dir/with space.txt": b"space", "unicode/résumé": b"r", "empty": b"",
    "turns-into-dir": b"file first", "turns-into-file/x": b"x",
}
MIDDLE = {
    "etc/gone.conf": None,                       # whiteout a file
    "opt/app/old": None,                         # whiteout a whole directory
    "opt/app/new/c": b"c",
    "etc/kubernetes/": None,                     # opaque: hide admin.conf and pki/
    "etc/kubernetes": d(0o700),                  # (builders list the dir; without it overlay shows 0755)
    "etc/kubernetes/kubelet.conf": b"kubelet\n",
    "turns-into-dir": d(), "turns-into-dir/inside": b"now a dir",
    "turns-into-file": b"now a file",
}
TOP = {"var/lib/data": f(b"data v2", 0o640, 0, 0), "etc/keep.conf": None, "etc/keep.conf.d/x": b"x",
       "var/lib/data2": b"second"}



@pytest.fixture
def image() -> str:
    make_layered_image(open_store(home()), "localhost/mnt/app:v1", BASE, MIDDLE, TOP, labels={"sealos.io.type": "rootfs"})
    return "localhost/mnt/app:v1"


def _expected_paths() -> set[str]:
    return {"etc", "etc/secret", "etc/kubernetes", "etc/kubernetes/kubelet.conf", "etc/keep.conf.d",
            "etc/keep.conf.d/x", "usr", "usr/bin", "usr/bin/kubelet", "usr/bin/suid", "usr/bin/kubelet2", "opt",
            "opt/app", "opt/app/cfg", "opt/app/new", "opt/app/new/c", "var", "var/lib", "var/lib/data",
            "var/lib/data2", "var/link-abs", "var/link-rel", "a dir", "a dir/with space.txt", "unicode",
            "unicode/résumé", "empty", "turns-into-dir", "turns-into-dir/inside", "turns-into-file"}


@pytest.mark.parametrize("mechanism", ["overlay", "fuse-overlayfs", "copy"])
def test_each_mechanism_shows_the_runtime_view(image: str, mechanism: str):
    m = mount(image, mechanism=mechanism)
    try:
        assert m.mechanism == mechanism and m.type == "rootfs" and m.env["PATH"] == "/usr/bin"
        tree = tree_from_dir(m.path)
        assert tree["usr/bin/suid"].mode == 0o755  # setuid dropped from an untrusted image (rootfs.policy)
        tree["usr/bin/suid"] = replace(tree["usr/bin/suid"], mode=0o4755)  # all else is the layer merge
        assert set(tree) == _expected_paths()
        assert not compare_trees(image_tree(open_store(home()).image(image)), tree), "mount differs from layer merge"
        assert tree["etc/secret"].uid == 1000 and tree["etc/secret"].mode == 0o600
        assert tree["usr/bin/suid"].mode == 0o4755 and tree["etc/kubernetes"].mode == 0o700
        assert tree["usr/bin/kubelet2"].sha256 == tree["usr/bin/kubelet"].sha256
        assert (m.path / "var/lib/data").read_bytes() == b"data v2"
        if mechanism != "copy":
            with pytest.raises(OSError) as err:
                (m.path / "etc/new").write_text("x")
            assert err.value.errno in (errno.EROFS, errno.EPERM, errno.EACCES)
    finally:
        m.umount()
    assert not list_mounts() and not any(str(m.path.parent) in p for p in mounted_points())


@pytest.mark.buildah
def test_overlay_mount_equals_buildah_mount(image: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    store_root = open_store(home()).root
    (tmp_path / "auth.json").write_text('{"auths": {}}')
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "auth.json"))
    bh = ["buildah", "--root", str(tmp_path / "bh-root"), "--runroot", str(tmp_path / "bh-run"),
          "--storage-driver", "vfs"]
    EXEC.run([*bh, "from", "--name", "cmp", f"oci:{store_root}:{image}"])
    try:
        theirs = Path(EXEC.run([*bh, "mount", "cmp"]).stdout.strip())
        with mount(image, mechanism="overlay") as m:
            ours = tree_from_dir(m.path)
            assert ours["usr/bin/suid"].mode == 0o755  # buildah as root keeps it; we drop it unless asked
            ours["usr/bin/suid"] = replace(ours["usr/bin/suid"], mode=0o4755)
            buildah_tree = tree_from_dir(theirs)
            diff = compare_trees(buildah_tree, ours)
            assert not diff, diff.to_dict()
            assert len(ours) == len(_expected_paths())
    finally:
        EXEC.run([*bh, "umount", "cmp"], check=False)
        EXEC.run([*bh, "rm", "cmp"], check=False)
        EXEC.run([*bh, "rmi", "-a", "-f"], check=False)
