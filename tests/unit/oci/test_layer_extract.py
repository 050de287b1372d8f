"""Safe extraction: hostile tars are refused without writing outside; whiteouts; replacements; metadata.

Hostile tars are made with :mod:`tarfile` directly (our writer refuses to make them).
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from imgbuild.errors import InputError, UnsafePathError
from imgbuild.oci.layer import Entry, extract_layer, write_layer
from imgbuild.oci.model import MediaType


def _tar(*members: tuple) -> io.BytesIO:
    """A tar from (name, kind, payload) tuples: kind in file/dir/sym/hard/chr/fifo."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind, *rest in members:
            payload = rest[0] if rest else None
            info = tarfile.TarInfo(name)
            info.mtime = 1000
            if kind == "file":
                data = payload if isinstance(payload, bytes) else b""
                info.size, info.mode = len(data), 0o644
                tf.addfile(info, io.BytesIO(data))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE,
                         "chr": tarfile.CHRTYPE, "fifo": tarfile.FIFOTYPE}[kind]
            info.mode = 0o755 if kind == "dir" else 0o644
            if kind in ("sym", "hard"):
                info.linkname = payload
            if kind == "chr":
                info.devmajor, info.devminor = 1, 3
            tf.addfile(info)
    buf.seek(0)
    return buf


def _extract(tar: io.BytesIO, dest: Path, **kw) -> None:
    extract_layer(tar, MediaType.OCI_LAYER, dest, **kw)


def _listing(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture
def box(tmp_path: Path) -> tuple[Path, Path]:
    """(dest, outside): dest is where we extract; outside is a sibling that must stay untouched."""
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    dest.mkdir()
    outside.mkdir()
    (outside / "secret").write_text("keep me\n")
    return dest, outside


def test_dotdot_escape_is_refused(box) -> None:
    dest, outside = box
    with pytest.raises(UnsafePathError) as err:
        _extract(_tar(("../outside/secret", "file", b"pwned"), ("../../etc/passwd", "file", b"x")), dest)
    assert err.value.where == "../outside/secret"
    assert (outside / "secret").read_text() == "keep me\n"
    assert _listing(dest) == set()


def test_dotdot_inside_the_tree_is_fine(box) -> None:
    dest, _ = box
    _extract(_tar(("a/b/../c", "file", b"x"), ("./d", "file", b"y")), dest)
    assert (dest / "a" / "c").read_bytes() == b"x" and (dest / "d").read_bytes() == b"y"


def test_write_through_absolute_symlink_is_refused(box) -> None:
    dest, outside = box
    with pytest.raises(UnsafePathError, match="symlink") as err:
        _extract(_tar(("link", "sym", "/"), (f"link{outside}/new", "file", b"pwned")), dest)
    assert err.value.where == f"link{outside}/new"
    assert not (outside / "new").exists()
    assert os.readlink(dest / "link") == "/"


def test_write_through_relative_symlink_is_refused(box) -> None:
    dest, outside = box
    with pytest.raises(UnsafePathError, match="symlink"):
        _extract(_tar(("up", "sym", "../outside"), ("up/secret", "file", b"pwned")), dest)
    assert (outside / "secret").read_text() == "keep me\n"


def test_symlink_from_an_earlier_layer_is_not_followed_either(box) -> None:
    dest, outside = box
    _extract(_tar(("etc", "sym", str(outside))), dest)
    with pytest.raises(UnsafePathError):
        _extract(_tar(("etc/secret", "file", b"pwned")), dest)
    with pytest.raises(UnsafePathError):
        _extract(_tar(("etc/.wh.secret", "file")), dest)
    assert (outside / "secret").read_text() == "keep me\n"


def test_hardlink_to_outside_is_refused(box) -> None:
    dest, outside = box
    for target in ("../outside/secret", str(outside / "secret"), "/etc/passwd"):
        with pytest.raises(UnsafePathError, match="hardlink") if ".." not in target else pytest.raises(UnsafePathError):
            _extract(_tar(("h", "hard", target)), dest)
        assert not (dest / "h").exists()
    assert (outside / "secret").stat().st_nlink == 1


def test_hardlink_through_a_symlink_is_refused(box) -> None:
    dest, outside = box
    with pytest.raises(UnsafePathError):
        _extract(_tar(("o", "sym", str(outside)), ("h", "hard", "o/secret")), dest)
    assert (outside / "secret").stat().st_nlink == 1


def test_hardlink_to_a_directory_or_a_missing_file_is_refused(box) -> None:
    dest, _ = box
    with pytest.raises(UnsafePathError):
        _extract(_tar(("d", "dir"), ("h", "hard", "d")), dest)
    with pytest.raises(UnsafePathError):
        _extract(_tar(("h2", "hard", "later"), ("later", "file", b"")), dest)


def test_symlinks_are_created_as_links_and_replaced_not_written_through(box) -> None:
    dest, outside = box
    _extract(_tar(("etc/passwd-link", "sym", "/etc/passwd"), ("s", "sym", str(outside / "secret"))), dest)
    assert os.readlink(dest / "etc" / "passwd-link") == "/etc/passwd"
    _extract(_tar(("s", "file", b"replaced")), dest)
    assert not (dest / "s").is_symlink() and (dest / "s").read_bytes() == b"replaced"
    assert (outside / "secret").read_text() == "keep me\n"


def test_absolute_names_are_relative_to_dest(box) -> None:
    dest, _ = box
    _extract(_tar(("/abs/file", "file", b"ok"), ("/", "dir")), dest)
    assert (dest / "abs" / "file").read_bytes() == b"ok"


def test_hardlinks_inside_the_tree_work(box) -> None:
    dest, _ = box
    _extract(_tar(("a", "file", b"data"), ("b", "hard", "/a"), ("d/c", "hard", "a")), dest)
    assert (dest / "a").stat().st_ino == (dest / "b").stat().st_ino == (dest / "d" / "c").stat().st_ino


def test_a_layer_may_replace_a_dir_with_a_file_and_back(box) -> None:
    dest, _ = box
    _extract(_tar(("x", "dir"), ("x/inner", "file", b"1"), ("y", "file", b"2")), dest)
    _extract(_tar(("x", "file", b"now a file"), ("y", "dir"), ("y/z", "file", b"3")), dest)
    assert (dest / "x").read_bytes() == b"now a file"
    assert (dest / "y" / "z").read_bytes() == b"3"


def test_parent_that_is_a_file_is_an_input_error(box) -> None:
    dest, _ = box
    with pytest.raises(InputError, match="not a directory"):
        _extract(_tar(("f", "file", b""), ("f/child", "file", b"")), dest)


def test_whiteouts_delete_and_opaque_dirs_hide_lower_content(box) -> None:
    dest, _ = box
    _extract(_tar(("etc/a", "file", b"a"), ("etc/b", "file", b"b"), ("var/lib/x", "file", b"x"),
                  ("var/lib/sub/y", "file", b"y"), ("keep", "file", b"k")), dest)
    _extract(_tar(("etc/.wh.a", "file"), ("var/lib/new", "file", b"n"), ("var/lib/.wh..wh..opq", "file"),
                  ("var/.wh.missing", "file"), ("nodir/.wh.gone", "file")), dest)
    assert _listing(dest) == {"etc", "etc/b", "var", "var/lib", "var/lib/new", "keep"}


def test_whiteouts_can_be_kept_as_plain_files(box) -> None:
    dest, _ = box
    _extract(_tar(("a", "file", b"a"), (".wh.a", "file")), dest, whiteouts=False)
    assert _listing(dest) == {"a", ".wh.a"}


def test_whiteout_with_dotdot_is_refused(box) -> None:
    dest, outside = box
    with pytest.raises(UnsafePathError):
        _extract(_tar(("../outside/.wh.secret", "file")), dest)
    assert (outside / "secret").exists()


def test_modes_and_mtimes_are_applied_dirs_last(box) -> None:
    dest, _ = box
    entries = [Entry("ro", "dir", mode=0o555, mtime=5000), Entry("ro/f", "bytes", data=b"x", mode=0o600),
               Entry("ro/sub", "dir", mode=0o700), Entry("run.sh", "bytes", data=b"#!", mode=0o4755),
               Entry("l", "symlink", linkname="run.sh", mtime=77)]
    buf = io.BytesIO()
    write_layer(entries, buf, epoch=1234)
    buf.seek(0)
    extract_layer(buf, MediaType.OCI_LAYER_ZSTD, dest, setid=True)  # setuid kept only when asked
    st = (dest / "ro").stat()
    assert (stat.S_IMODE(st.st_mode), st.st_mtime) == (0o555, 5000)
    assert stat.S_IMODE((dest / "ro" / "f").stat().st_mode) == 0o600
    assert stat.S_IMODE((dest / "run.sh").stat().st_mode) == 0o4755
    assert (dest / "ro" / "f").stat().st_mtime == 1234
    assert os.lstat(dest / "l").st_mtime == 77


def test_fifo_and_devices(box) -> None:
    dest, _ = box
    _extract(_tar(("p", "fifo"), ("null", "chr")), dest)
    assert stat.S_ISFIFO(os.lstat(dest / "p").st_mode)
    assert not (dest / "null").exists()  # devices only on request


@pytest.mark.root
def test_devices_on_request_as_root(box) -> None:
    dest, _ = box
    _extract(_tar(("dev/null", "chr"),), dest, devices=True)
    st = os.lstat(dest / "dev" / "null")
    assert stat.S_ISCHR(st.st_mode) and (os.major(st.st_rdev), os.minor(st.st_rdev)) == (1, 3)


@pytest.mark.root
def test_owners_are_applied_as_root(box) -> None:
    dest, _ = box
    buf = io.BytesIO()
    write_layer([Entry("d", "dir", uid=7, gid=8), Entry("d/f", "bytes", data=b"x", uid=1000, gid=1001),
                 Entry("d/l", "symlink", linkname="f", uid=5, gid=6)], buf, compression="gzip")
    buf.seek(0)
    extract_layer(buf, MediaType.OCI_LAYER_GZIP, dest)
    assert ((dest / "d").stat().st_uid, (dest / "d").stat().st_gid) == (7, 8)
    assert ((dest / "d" / "f").stat().st_uid, (dest / "d" / "f").stat().st_gid) == (1000, 1001)
    assert (os.lstat(dest / "d" / "l").st_uid, os.lstat(dest / "d" / "l").st_gid) == (5, 6)


@pytest.mark.root
def test_overlay_whiteouts_are_stored_for_mounting(box) -> None:
    dest, _ = box
    _extract(_tar(("etc/.wh.old", "file"), ("var/.wh..wh..opq", "file"), ("var/new", "file", b"n")), dest,
             keep_whiteout_files=True)
    st = os.lstat(dest / "etc" / "old")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)
    assert os.getxattr(dest / "var", "trusted.overlay.opaque") == b"y"
    assert (dest / "var" / "new").read_bytes() == b"n"


@pytest.mark.parametrize("compression", ["zstd", "gzip", "none"])
def test_truncated_layers_are_input_errors(box, compression: str) -> None:
    dest, _ = box
    buf = io.BytesIO()
    res = write_layer([Entry("big", "bytes", data=os.urandom(200_000)), Entry("z", "bytes", data=b"z")], buf,
                      compression=compression)
    with pytest.raises(InputError) as err:
        extract_layer(io.BytesIO(buf.getvalue()[: res.size // 2]), res.media_type, dest)
    assert not isinstance(err.value, UnsafePathError)


def test_corrupt_gzip_data_is_an_input_error(box) -> None:
    dest, _ = box
    buf = io.BytesIO()
    write_layer([Entry("f", "bytes", data=os.urandom(100_000))], buf, compression="gzip")
    data = bytearray(buf.getvalue())
    data[-8:] = bytes(8)  # wrong CRC and size
    with pytest.raises(InputError, match="corrupt"):
        extract_layer(io.BytesIO(bytes(data)), MediaType.OCI_LAYER_GZIP, dest)
