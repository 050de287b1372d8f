"""Layers against the real tools: GNU tar and the zstd/gzip CLIs read what we write, and we
extract exactly what GNU tar extracts (types, modes, owners, sizes, contents, links, mtimes).
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
from pathlib import Path

import pytest

from tests.support.local import EXEC
from imgbuild.errors import UnsafePathError
from imgbuild.oci.layer import Entry, entries_from_tree, extract_layer, iter_layer_members, write_layer
from imgbuild.oci.model import Digest, MediaType

LONG = "deep/" + "/".join(["segment-" + "x" * 40] * 4) + "/file-with-a-long-name-" + "y" * 60 + ".txt"


def _make_tree(root: Path) -> Path:
    """A tree with every kind of entry a rootfs has, including awkward names and modes."""
    (root / "etc" / "kubernetes").mkdir(parents=True)
    (root / "etc" / "kubernetes" / "kubelet.conf").write_text("apiVersion: v1\n" * 200)
    (root / "etc" / "empty").write_bytes(b"")
    (root / "etc" / "block").write_bytes(b"b" * 512)
    (root / "bin").mkdir()
    (root / "bin" / "tool").write_bytes(os.urandom(300_000))
    os.chmod(root / "bin" / "tool", 0o4755)
    (root / "tmp").mkdir(mode=0o1777)
    os.chmod(root / "tmp", 0o1777)
    (root / "private").mkdir()
    os.chmod(root / "private", 0o700)
    (root / "emptydir").mkdir()
    (root / "unicodé-名前.txt").write_text("utf-8 name\n")
    (root / LONG).parent.mkdir(parents=True)
    (root / LONG).write_text("long\n")
    os.symlink("/etc/passwd", root / "etc" / "abs-link")
    os.symlink("kubernetes/kubelet.conf", root / "etc" / "rel-link")
    os.symlink("../nowhere", root / "dangling")
    os.link(root / "bin" / "tool", root / "bin" / "tool-hardlink")
    os.mkfifo(root / "fifo")
    return root


def _snapshot(root: Path) -> dict[str, tuple]:
    """Everything observable about a tree, by relative path (the root itself excluded)."""
    snap: dict[str, tuple] = {}
    inodes: dict[int, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    content = hashlib.sha256(f.read()).hexdigest()
                first = inodes.setdefault(st.st_ino, rel)
            else:
                content = os.readlink(path) if stat.S_ISLNK(st.st_mode) else ""
                first = rel
            snap[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                         st.st_size if not stat.S_ISDIR(st.st_mode) else 0, content, int(st.st_mtime),
                         first if st.st_nlink > 1 else rel)
    return snap


def _sh(cmd: str, cwd: Path | None = None) -> str:
    return EXEC.run(["bash", "-o", "pipefail", "-c", cmd], cwd=str(cwd) if cwd else None).stdout


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return _make_tree(tmp_path / "tree")


def _entries(tree: Path) -> list[Entry]:
    extra = [Entry("owned", "bytes", data=b"owned by 1000\n", uid=1000, gid=1001, mode=0o640),
             Entry("stamped", "bytes", data=b"with its own mtime\n", mtime=1_600_000_000)]
    return [*entries_from_tree(tree), *extra]


def test_imgbuild_extracts_exactly_what_gnu_tar_extracts(tree: Path, tmp_path: Path) -> None:
    layer = tmp_path / "layer.tar"
    with open(layer, "wb") as f:
        res = write_layer(_entries(tree), f, compression="none", epoch=1_700_000_000)
    gnu, ours = tmp_path / "gnu", tmp_path / "ours"
    gnu.mkdir()
    _sh(f"tar -xpf {layer} -C {gnu} --numeric-owner --same-owner")
    with open(layer, "rb") as f:
        extract_layer(f, res.media_type, ours, setid=True)  # like tar -p as root
    expected = _snapshot(gnu)
    assert LONG in expected and "unicodé-名前.txt" in expected and "fifo" in expected
    assert _snapshot(ours) == expected
    assert expected["owned"][1:4] == (0o640, 1000, 1001)
    assert expected["bin/tool-hardlink"][-1] == "bin/tool"
    assert expected["tmp"][1] == 0o1777 and expected["private"][1] == 0o700


def test_gnu_tar_lists_our_layer_as_it_would_write_it(tree: Path, tmp_path: Path) -> None:
    """Same names, order, types, modes, owners, sizes, times and link targets as GNU tar --sort=name."""
    ours = tmp_path / "ours.tar"
    with open(ours, "wb") as f:
        write_layer(entries_from_tree(tree), f, compression="none")
    top = " ".join(sorted(os.listdir(tree)))
    _sh(f"tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --format=posix "
        f"-cf {tmp_path / 'gnu.tar'} {top}", cwd=tree)
    listing = "tar -tv --numeric-owner --full-time -f {}"
    assert _sh(listing.format(ours)) == _sh(listing.format(tmp_path / "gnu.tar"))


def test_zstd_and_gzip_clis_read_our_blobs(tree: Path, tmp_path: Path) -> None:
    blobs = {}
    for compression in ("none", "zstd", "gzip"):
        path = tmp_path / f"layer.{compression}"
        with open(path, "wb") as f:
            blobs[compression] = (path, write_layer(_entries(tree), f, compression=compression))
    raw = blobs["none"][0].read_bytes()
    (zst, zres), (gz, gres) = blobs["zstd"], blobs["gzip"]
    _sh(f"zstd -t -q {zst} && zstd -d -q -c {zst} > {tmp_path / 'from-zstd.tar'}")
    _sh(f"gzip -t {gz} && gzip -d -c {gz} > {tmp_path / 'from-gzip.tar'}")
    assert (tmp_path / "from-zstd.tar").read_bytes() == raw
    assert (tmp_path / "from-gzip.tar").read_bytes() == raw
    assert Digest.of(raw) == zres.diff_id == gres.diff_id
    names = _sh(f"tar --zstd -tf {zst}").splitlines()
    assert names == _sh(f"tar -tzf {gz}").splitlines()
    with open(zst, "rb") as f:
        ours = [m.name + ("/" if m.isdir() else "") for m in iter_layer_members(f, MediaType.OCI_LAYER_ZSTD)]
    assert names == ours


def test_gnu_tar_made_layers_extract_like_gnu_tar(tree: Path, tmp_path: Path) -> None:
    layer = tmp_path / "gnu.tar.zst"
    _sh(f"tar --sort=name --format=posix -C {tree} -cf - . | zstd -q -c > {layer}")
    gnu, ours = tmp_path / "gnu", tmp_path / "ours"
    gnu.mkdir()
    _sh(f"zstd -d -q -c {layer} | tar -xpf - -C {gnu} --numeric-owner")
    with open(layer, "rb") as f:
        extract_layer(f, MediaType.OCI_LAYER_ZSTD, ours, setid=True)
    assert _snapshot(ours) == _snapshot(gnu)


def test_hostile_gnu_tar_archives_are_refused(tmp_path: Path) -> None:
    """An archive GNU tar itself wrote with ../ names and one writing through a symlink to /."""
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "passwd").write_text("pwned\n")
    os.symlink("/", src / "link")
    evil = tmp_path / "evil.tar"
    _sh(f"tar -P --transform 's,^sub,../../etc,' -cf {evil} sub/passwd", cwd=src)
    assert "../../etc/passwd" in _sh(f"tar -tPf {evil}")
    dest = tmp_path / "dest"
    with open(evil, "rb") as f, pytest.raises(UnsafePathError):
        extract_layer(f, MediaType.OCI_LAYER, dest)
    probe = f"imgbuild-probe-{os.getpid()}"
    through = tmp_path / "through.tar"
    _sh(f"tar -cf {through} link && tar --transform 's,^sub/passwd,link/tmp/{probe},' -rf {through} sub/passwd",
        cwd=src)
    with open(through, "rb") as f, pytest.raises(UnsafePathError, match="symlink"):
        extract_layer(f, MediaType.OCI_LAYER, dest)
    assert not Path("/tmp", probe).exists()
    assert os.readlink(dest / "link") == "/"


def test_a_real_rootfs_directory_round_trips(tmp_path: Path) -> None:
    """/usr/lib/python3* from this machine: thousands of entries, symlinks, real modes."""
    src = next(Path("/usr/lib").glob("python3*"))
    buf = io.BytesIO()
    res = write_layer(entries_from_tree(src), buf)
    buf.seek(0)
    dest = tmp_path / "out"
    extract_layer(buf, res.media_type, dest)
    want = {k: v[:2] + v[4:6] for k, v in _snapshot(src).items()}
    got = {k: v[:2] + v[4:6] for k, v in _snapshot(dest).items()}
    assert got == want
