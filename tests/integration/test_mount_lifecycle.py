"""Mount lifecycle with real overlays: shared layer cache under concurrency, crashes, hand-made umounts, rw + commit."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from imgbuild.errors import CommandFailed
from imgbuild.home import home
from imgbuild.oci.store import open_store
from imgbuild.rootfs.commit import commit
from imgbuild.rootfs.difftree import diff
from imgbuild.rootfs.records import mounted_points
from imgbuild.rootfs.unpack import cached_layers
from tests.support.layered_images import d, f, make_layered_image
from tests.support.local import EXEC, list_mounts, mount, mounts_dir, record_of, umount

pytestmark = pytest.mark.root

ROOT = Path(__file__).resolve().parents[2]
SHARED = {"usr/": d(), "usr/bin/tool": f(b"tool" * 1000, 0o755), "etc/base": b"base"}



def _ours(home: Path) -> list[str]:
    return [p for p in mounted_points() if p.startswith(str(home) + "/")]


def _mount_in_child(ref: str) -> dict:
    m = mount(ref)
    return {"path": str(m.path), "unpacked": list(m.unpacked), "id": m.id}


def test_concurrent_mounts_of_images_sharing_layers_unpack_each_layer_once(imgbuild_home: Path):
    store = open_store(home())
    refs = []
    for n in range(4):
        make_layered_image(store, f"localhost/share/app{n}:v1", SHARED, {f"app/{n}": b"own %d" % n})
        refs.append(f"localhost/share/app{n}:v1")
    jobs = refs * 2  # 8 concurrent mounts, every one needing the shared base layer
    with ProcessPoolExecutor(max_workers=len(jobs)) as pool:
        results = list(pool.map(_mount_in_child, jobs))
    unpacked = [d for r in results for d in r["unpacked"]]
    assert len(unpacked) == len(set(unpacked)) == 5, unpacked  # 1 shared + 4 own layers, each unpacked once
    assert sorted(cached_layers(home())) == sorted(unpacked)
    assert len({r["path"] for r in results}) == 8 and len(list_mounts()) == 8
    for r in results:
        assert (Path(r["path"]) / "usr/bin/tool").read_bytes() == b"tool" * 1000
    assert not list((imgbuild_home / "cache" / "layers").glob(".tmp-*"))
    assert len(umount(all=True)) == 8
    assert not _ours(imgbuild_home) and not list_mounts()


def test_read_only_mount_is_reused_and_umount_by_path_or_ref(imgbuild_home: Path):
    make_layered_image(open_store(home()), "localhost/one:v1", SHARED)
    a = mount("localhost/one:v1", reuse=True)
    b = mount("localhost/one:v1", reuse=True)
    assert a.id == b.id and len(list_mounts()) == 1
    assert (a.path / "etc/base").read_bytes() == b"base"  # one layer: an empty second lower makes it valid
    assert [u.record.id for u in umount(str(a.path))] == [a.id]
    c = mount("localhost/one:v1")
    assert [u.record.id for u in umount("localhost/one:v1")] == [c.id]
    assert not _ours(imgbuild_home) and not list(mounts_dir().iterdir())


def test_umount_after_mount_point_was_removed_by_hand(imgbuild_home: Path):
    make_layered_image(open_store(home()), "localhost/hand:v1", SHARED, {"x": b"x"})
    m = mount("localhost/hand:v1", rw=True)
    EXEC.run(["umount", str(m.path)])
    shutil.rmtree(m.path.parent)
    done = umount("localhost/hand:v1")
    assert len(done) == 1 and "mount point was removed" in done[0].note
    assert not _ours(imgbuild_home) and not list(mounts_dir().iterdir())
    m2 = mount("localhost/hand:v1")
    EXEC.run(["umount", str(m2.path)])  # unmounted by hand, directory left
    assert list_mounts() == [] and not m2.path.parent.exists()


_CRASH = """
import os, sys
import imgbuild.rootfs.mount as M
from imgbuild.engine.exec import LocalExecutor
from imgbuild.home import home
from imgbuild.oci.store import open_store
real = M.write_record
def crash_after_kernel_mount(mdir, rec):
    if rec.state == "mounted":
        os.kill(os.getpid(), 9)  # die between the kernel mount and the record saying so
    real(mdir, rec)
M.write_record = crash_after_kernel_mount
M.mount(sys.argv[1], store=open_store(home()), executor=LocalExecutor(), rw=sys.argv[2] == "rw")
"""


@pytest.mark.parametrize("mode", ["ro", "rw"])
def test_crash_while_mounting_leaves_no_stale_overlay(imgbuild_home: Path, mode: str):
    make_layered_image(open_store(home()), "localhost/crash:v1", SHARED, {"y": b"y"})
    proc = subprocess.run([sys.executable, "-c", _CRASH, "localhost/crash:v1", mode], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert len(_ours(imgbuild_home)) == 1  # the kernel mount outlived its creator
    recs = [json.loads(p.read_text()) for p in mounts_dir().glob("*.json")]
    assert [r["state"] for r in recs] == ["pending"]
    assert list_mounts() == []  # detected as stale and cleaned
    assert not _ours(imgbuild_home) and not list(mounts_dir().iterdir())


def test_killed_process_leaves_a_usable_mount_that_umount_removes(imgbuild_home: Path):
    make_layered_image(open_store(home()), "localhost/killed:v1", SHARED)
    code = ("import imgbuild.rootfs.mount as M, os, sys; from imgbuild.engine.exec import LocalExecutor; "
            "from imgbuild.home import home; from imgbuild.oci.store import open_store; "
            "M.mount(sys.argv[1], store=open_store(home()), executor=LocalExecutor()); os.kill(os.getpid(), 9)")
    subprocess.run([sys.executable, "-c", code, "localhost/killed:v1"], cwd=ROOT,
                   env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
    [rec] = list_mounts()
    assert rec.state == "mounted" and (Path(rec.path) / "etc/base").exists()
    umount(all=True)
    assert not _ours(imgbuild_home)


@pytest.mark.parametrize("mechanism", ["overlay", "fuse-overlayfs", "copy"])
def test_rw_mount_commit_and_discard(imgbuild_home: Path, mechanism: str):
    store = open_store(home())
    make_layered_image(store, "localhost/rw:v1", SHARED, {"opt/a/1": b"1", "opt/a/2": b"2", "etc/conf": b"v1"},
                       labels={"version": "1"})
    m = mount("localhost/rw:v1", rw=True, mechanism=mechanism)
    (m.path / "etc/conf").write_bytes(b"v2 config")
    (m.path / "etc/new.d").mkdir()
    (m.path / "etc/new.d/file").write_bytes(b"new")
    os.chmod(m.path / "usr/bin/tool", 0o700)
    os.remove(m.path / "etc/base")
    shutil.rmtree(m.path / "opt/a")
    (m.path / "opt/a").mkdir()  # re-created directory: becomes opaque, old children stay hidden
    (m.path / "opt/a/3").write_bytes(b"3")
    os.link(m.path / "etc/new.d/file", m.path / "etc/hardlinked")
    desc = commit(record_of(m.id), "localhost/rw:v2", store=store)
    assert store.resolve("localhost/rw:v2").digest == desc.digest
    changes = diff("localhost/rw:v1", "localhost/rw:v2", store=store)
    assert [i.path for i in changes.files.added] == ["etc/hardlinked", "etc/new.d", "etc/new.d/file", "opt/a/3"]
    assert [i.path for i in changes.files.removed] == ["etc/base", "opt/a/1", "opt/a/2"]
    assert {c.path: c.fields for c in changes.files.changed} == {
        "etc/conf": ("size", "sha256"), "usr/bin/tool": ("mode",)}
    assert changes.config is not None and not changes.config.labels
    with mount("localhost/rw:v2", mechanism=mechanism) as m2:
        assert not diff(str(m.path), str(m2.path), store=store).files  # the committed image shows what the rw mount showed
    umount(m.id)
    with mount("localhost/rw:v1", mechanism=mechanism) as again:  # the writable layer was discarded
        assert (again.path / "etc/conf").read_bytes() == b"v1" and (again.path / "etc/base").exists()
    assert not _ours(imgbuild_home)


def test_many_layers_fit_the_overlay_option_limit(imgbuild_home: Path):
    layers = [{f"layer{n:03d}/file": b"%d" % n} for n in range(150)]
    make_layered_image(open_store(home()), "localhost/tall:v1", *layers, compression="gzip")
    assert len(str(imgbuild_home / "cache/layers" / ("0" * 64))) * 150 > 4096
    with mount("localhost/tall:v1", mechanism="overlay") as m:
        assert m.mechanism == "overlay"
        assert sorted(os.listdir(m.path)) == [f"layer{n:03d}" for n in range(150)]


class _RefuseKernelOverlay:
    """An executor that behaves like a kernel without overlayfs and runs everything else for real."""

    host = "localhost"

    def run(self, argv, **kw):
        if list(argv[:3]) == ["mount", "-t", "overlay"]:
            from imgbuild.engine.exec import Result

            raise CommandFailed(Result(tuple(argv), "", "mount: unknown filesystem type 'overlay'.", 32))
        return EXEC.run(argv, **kw)


def test_auto_falls_back_to_fuse_overlayfs_and_says_so(imgbuild_home: Path):
    make_layered_image(open_store(home()), "localhost/fb:v1", SHARED)
    with mount("localhost/fb:v1", executor=_RefuseKernelOverlay()) as m:
        assert m.mechanism == "fuse-overlayfs" and "overlay failed" in m.note
        assert (m.path / "etc/base").read_bytes() == b"base"
        assert record_of(m.id).mechanism == "fuse-overlayfs"
    assert not _ours(imgbuild_home) and not list(mounts_dir().iterdir())


def _reachable_by_others(path: Path) -> bool:
    """True if every directory down to ``path`` lets other users through (so uid 65534 can import us)."""
    return all(os.stat(p).st_mode & 0o005 == 0o005 for p in [*reversed(path.parents), path])


def test_without_root_mount_is_an_extracted_copy(imgbuild_home: Path, monkeypatch: pytest.MonkeyPatch):
    import imgbuild.rootfs.mount as M

    make_layered_image(open_store(home()), "localhost/user:v1", SHARED, {"etc/base": None})
    monkeypatch.setattr(M.os, "geteuid", lambda: 65534)  # the decision, in process
    with mount("localhost/user:v1") as m:
        assert m.mechanism == "copy" and "not running as root" in m.note
        assert sorted(os.listdir(m.path)) == ["etc", "usr"] and not os.listdir(m.path / "etc")
    monkeypatch.undo()
    if _reachable_by_others(ROOT) and _reachable_by_others(Path(sys.prefix)):
        _really_as_nobody()


def _really_as_nobody() -> None:
    import tempfile

    from imgbuild.oci.store import Store

    home = Path(tempfile.mkdtemp(prefix="imgbuild-nonroot-", dir="/tmp"))
    try:
        make_layered_image(Store(home / "store"), "localhost/user:v1", SHARED, {"etc/base": None})
        for p in [home, *home.rglob("*")]:
            os.chown(p, 65534, 65534)
        code = ("import imgbuild.rootfs.mount as M, sys, json, os; from imgbuild.engine.exec import LocalExecutor; "
                "from imgbuild.home import home; from imgbuild.oci.store import open_store; "
                "m = M.mount(sys.argv[1], store=open_store(home()), executor=LocalExecutor()); "
                "print(json.dumps([m.mechanism, m.note, str(m.path), sorted(os.listdir(m.path)), "
                "os.listdir(m.path / 'etc')])); m.umount()")
        proc = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", code,
             "localhost/user:v1"], cwd=ROOT, capture_output=True, text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(home), "IMGBUILD_HOME": str(home)})
        assert proc.returncode == 0, proc.stderr
        mechanism, note, path, listing, etc = json.loads(proc.stdout)
        assert mechanism == "copy" and "not running as root" in note
        assert path.startswith(str(home)) and listing == ["etc", "usr"] and etc == []
        assert not list((home / "mounts").iterdir())
    finally:
        shutil.rmtree(home, ignore_errors=True)
