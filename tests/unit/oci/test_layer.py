"""The deterministic layer writer, the tree walker and the layer readers (no external tools)."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import tracemalloc
from pathlib import Path

import pytest
import zstandard

from imgbuild.errors import ContextError, ImgbuildError, InputError, UnsafePathError
from imgbuild.oci.layer import (
    Entry, LayerResult, entries_from_tree, iter_layer_members, opaque_entry, open_layer, whiteout_entry, write_layer,
)
from imgbuild.oci.model import Digest, MediaType


def _layer(entries, compression="zstd", **kw) -> tuple[bytes, LayerResult]:
    buf = io.BytesIO()
    res = write_layer(entries, buf, compression=compression, **kw)
    return buf.getvalue(), res


def _members(blob: bytes, media_type: str = MediaType.OCI_LAYER_ZSTD) -> list[tarfile.TarInfo]:
    return list(iter_layer_members(io.BytesIO(blob), media_type))


def _untar(blob: bytes) -> bytes:
    return open_layer(io.BytesIO(blob), "").read()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    (root / "etc" / "conf.d").mkdir(parents=True)
    (root / "etc" / "kubelet.conf").write_text("kubelet\n")
    (root / "etc" / "conf.d" / "a.conf").write_text("a\n")
    (root / "bin").mkdir()
    (root / "bin" / "tool").write_bytes(b"\x7fELF" + bytes(5000))
    os.chmod(root / "bin" / "tool", 0o4755)
    os.symlink("/etc/passwd", root / "etc" / "passwd-link")
    os.symlink("../outside-dir", root / "escape")  # must stay a link, never walked
    os.link(root / "etc" / "kubelet.conf", root / "bin" / "hard")
    return root


def test_output_is_deterministic_and_independent_of_input_order(tree: Path) -> None:
    entries = entries_from_tree(tree, "opt")
    first, res1 = _layer(entries)
    second, res2 = _layer(list(reversed(entries)))
    assert first == second and res1 == res2
    os.utime(tree / "etc" / "kubelet.conf", (12345, 67890))  # atime/mtime of sources never leak in
    third, res3 = _layer(entries_from_tree(tree, "opt"))
    assert third == first and res3 == res1


def test_digests_and_size_describe_what_was_written(tree: Path) -> None:
    for compression, media_type in (("zstd", MediaType.OCI_LAYER_ZSTD), ("gzip", MediaType.OCI_LAYER_GZIP),
                                    ("none", MediaType.OCI_LAYER)):
        blob, res = _layer(entries_from_tree(tree), compression)
        assert res.media_type == media_type
        assert res.size == len(blob)
        assert res.digest == Digest.of(blob)
        assert res.diff_id == Digest.of(_untar(blob))
    desc = res.descriptor({"org.example": "x"})
    assert (desc.media_type, desc.digest, desc.size) == (MediaType.OCI_LAYER, res.digest, res.size)
    assert desc.annotations == {"org.example": "x"}


def test_same_tar_whatever_the_compression(tree: Path) -> None:
    entries = entries_from_tree(tree)
    diff_ids = {_layer(entries, c)[1].diff_id for c in ("zstd", "gzip", "none")}
    assert len(diff_ids) == 1


def test_headers_are_stable_and_minimal(tree: Path) -> None:
    long_name = "d/" + "x" * 150
    entries = [*entries_from_tree(tree), Entry(long_name, "bytes", data=b"long"), Entry("d", "dir", mode=0o755)]
    blob, _ = _layer(entries, epoch=1700000000)
    members = {m.name: m for m in _members(blob)}
    for m in members.values():
        assert (m.uid, m.gid, m.uname, m.gname, m.mtime) == (0, 0, "", "", 1700000000)
        assert not {"atime", "ctime", "mtime"} & set(m.pax_headers), m.name
    assert members[long_name].pax_headers == {"path": long_name}
    assert members["etc/kubelet.conf"].pax_headers == {}
    assert members["bin/tool"].mode == 0o4755
    assert members["etc/passwd-link"].issym() and members["etc/passwd-link"].linkname == "/etc/passwd"
    assert members["escape"].issym()
    hard = [n for n in ("bin/hard", "etc/kubelet.conf") if members[n].islnk()]
    assert hard == ["etc/kubelet.conf"] and members["etc/kubelet.conf"].linkname == "bin/hard"


def test_raw_tar_has_no_pax_header_for_short_names(tree: Path) -> None:
    raw = _untar(_layer(entries_from_tree(tree))[0])
    assert b"PaxHeader" not in raw and b"atime" not in raw and b"ctime" not in raw
    assert raw.endswith(bytes(1024)) and len(raw) % 512 == 0


def test_entries_come_in_tree_order(tree: Path) -> None:
    names = [m.name for m in _members(_layer(entries_from_tree(tree, "opt/app"))[0])]
    assert names[:3] == ["opt", "opt/app", "opt/app/bin"]
    assert names == sorted(names, key=lambda n: n.split("/"))


def test_epoch_comes_from_source_date_epoch(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "86400")
    assert {m.mtime for m in _members(_layer(entries_from_tree(tree))[0])} == {86400}
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    assert {m.mtime for m in _members(_layer(entries_from_tree(tree))[0])} == {0}
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(InputError, match="SOURCE_DATE_EPOCH"):
        _layer(entries_from_tree(tree))


def test_entry_mtime_and_owner_are_kept_when_given() -> None:
    blob, _ = _layer([Entry("f", "bytes", data=b"x", mtime=42, uid=1000, gid=2000, mode=0o600)], epoch=7)
    (m,) = _members(blob)
    assert (m.mtime, m.uid, m.gid, m.mode, m.size) == (42, 1000, 2000, 0o600, 1)


def test_gzip_header_has_no_time_and_no_name(tree: Path) -> None:
    blob, _ = _layer(entries_from_tree(tree), "gzip")
    assert blob[:3] == b"\x1f\x8b\x08"
    assert blob[3] & 0x08 == 0  # FNAME flag off
    assert blob[4:8] == bytes(4)  # MTIME 0
    assert gzip.decompress(blob) == _untar(blob)


def test_zstd_output_does_not_depend_on_thread_count(tree: Path) -> None:
    entries = entries_from_tree(tree)
    blobs = {_layer(entries, threads=t)[0] for t in (-1, 0, 1, 3)}
    assert len(blobs) == 1
    assert _layer(entries, level=19)[1].diff_id == _layer(entries)[1].diff_id


def test_last_entry_of_a_name_wins() -> None:
    blob, _ = _layer([Entry("a", "bytes", data=b"old"), Entry("/a", "bytes", data=b"new!")], "none")
    with tarfile.open(fileobj=io.BytesIO(blob)) as tf:
        assert tf.getnames() == ["a"] and tf.extractfile("a").read() == b"new!"


def test_bad_entries_are_refused() -> None:
    with pytest.raises(UnsafePathError):
        _layer([Entry("../etc/passwd", "bytes", data=b"")])
    with pytest.raises(InputError, match="earlier entry"):
        _layer([Entry("a", "hardlink", linkname="b"), Entry("b", "bytes", data=b"")])
    with pytest.raises(InputError, match="kind"):
        _layer([Entry("a", "socket")])
    with pytest.raises(InputError, match="compression"):
        _layer([], "lz4")
    with pytest.raises(InputError, match="link target"):
        _layer([Entry("a", "symlink")])
    with pytest.raises(ContextError):
        _layer([Entry("a", "file", source=Path("/nonexistent/file"))])


def test_whiteout_helpers() -> None:
    assert whiteout_entry("/etc/old.conf").arcname == "etc/.wh.old.conf"
    assert opaque_entry("var/lib/").arcname == "var/lib/.wh..wh..opq"


def test_entries_from_tree_maps_under_dest_and_keeps_links(tree: Path) -> None:
    entries = {e.arcname: e for e in entries_from_tree(tree, "/opt/app/")}
    assert entries["opt"] == Entry("opt", "dir", mode=0o755)
    assert entries["opt/app"].kind == "dir"
    assert entries["opt/app/escape"] == Entry("opt/app/escape", "symlink", linkname="../outside-dir", mode=0o777)
    assert entries["opt/app/bin/tool"].mode == 0o4755
    assert entries["opt/app/bin/tool"].source == tree / "bin" / "tool"
    assert entries["opt/app/etc/kubelet.conf"] == Entry(
        "opt/app/etc/kubelet.conf", "hardlink", linkname="opt/app/bin/hard")


def test_entries_from_tree_include_owner_and_mode(tree: Path) -> None:
    seen: list[str] = []

    def include(rel: str) -> bool:
        seen.append(rel)
        return rel != "etc"

    entries = entries_from_tree(tree, include=include, uid=1000, gid=1000, mode=0o700)
    names = [e.arcname for e in entries]
    assert names == ["bin", "bin/hard", "bin/tool", "escape"]
    assert "etc/kubelet.conf" not in seen  # an excluded directory is not descended into
    assert all((e.uid, e.gid) == (1000, 1000) for e in entries)
    assert {e.arcname: e.mode for e in entries}["bin/tool"] == 0o700
    assert {e.arcname: e.kind for e in entries}["bin/hard"] == "file"  # its twin is excluded


def test_entries_from_a_single_file(tree: Path) -> None:
    assert entries_from_tree(tree / "etc" / "kubelet.conf", "etc/kubernetes/kubelet.conf") == [
        Entry("etc", "dir", mode=0o755), Entry("etc/kubernetes", "dir", mode=0o755),
        Entry("etc/kubernetes/kubelet.conf", "file", source=tree / "etc" / "kubelet.conf", mode=0o644)]
    assert [e.arcname for e in entries_from_tree(tree / "etc" / "kubelet.conf")] == ["kubelet.conf"]
    with pytest.raises(ContextError):
        entries_from_tree(tree / "missing")


def test_fifo_is_kept_and_sockets_are_skipped(tmp_path: Path) -> None:
    import socket

    os.mkfifo(tmp_path / "pipe")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock"))
    try:
        entries = entries_from_tree(tmp_path)
    finally:
        sock.close()
    assert [(e.arcname, e.kind) for e in entries] == [("pipe", "fifo")]
    (m,) = _members(_layer(entries)[0])
    assert m.isfifo()


def test_a_big_file_is_streamed_not_held_in_memory(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        for i in range(48):
            f.write(hashlib.sha256(str(i).encode()).digest() * 32768)  # 48 MiB, mildly compressible
    tracemalloc.start()
    try:
        with open(tmp_path / "layer.zst", "wb") as out:
            res = write_layer([Entry("big.bin", "file", source=big)], out)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, peak  # bounded queues: a few MiB whatever the layer size
    with open(tmp_path / "layer.zst", "rb") as f:
        assert Digest.of(f.read()) == res.digest


class _PipeLike(io.RawIOBase):
    """A stream with read() only: no seek, no peek (like an HTTP body)."""

    def __init__(self, data: bytes) -> None:
        self._src = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        chunk = self._src.read(min(len(b), 1000))
        b[: len(chunk)] = chunk
        return len(chunk)


def test_open_layer_trusts_magic_bytes_over_media_type(tree: Path) -> None:
    entries = entries_from_tree(tree)
    raw = _layer(entries, "none")[0]
    for compression in ("zstd", "gzip", "none"):
        blob, _ = _layer(entries, compression)
        for media_type in (MediaType.OCI_LAYER, MediaType.OCI_LAYER_GZIP, MediaType.DOCKER_LAYER_GZIP, "x/y"):
            assert open_layer(_PipeLike(blob), media_type).read() == raw


def test_multi_frame_zstd_is_read_across_frames() -> None:
    raw = _layer([Entry("a", "bytes", data=b"a" * 5000), Entry("b", "bytes", data=b"b")], "none")[0]
    cctx = zstandard.ZstdCompressor()
    blob = cctx.compress(raw[:1536]) + cctx.compress(raw[1536:])
    assert [m.name for m in iter_layer_members(io.BytesIO(blob), MediaType.OCI_LAYER_ZSTD)] == ["a", "b"]


def test_corrupt_layers_raise_input_errors() -> None:
    with pytest.raises(InputError):
        list(iter_layer_members(io.BytesIO(b"\x28\xb5\x2f\xfd" + b"garbage" * 100), MediaType.OCI_LAYER_ZSTD))
    with pytest.raises(InputError):
        list(iter_layer_members(io.BytesIO(b"\x1f\x8b\x08" + b"garbage" * 100), MediaType.OCI_LAYER_GZIP))
    with pytest.raises(InputError):
        list(iter_layer_members(io.BytesIO(b"not a tar" * 100), MediaType.OCI_LAYER))


class _FullDisk:
    """An output that fails after a while, like a full disk."""

    def __init__(self, limit: int) -> None:
        self.left = limit

    def write(self, data) -> int:
        self.left -= len(data)
        if self.left < 0:
            raise OSError(28, "No space left on device")
        return len(data)


@pytest.mark.parametrize("compression", ["zstd", "gzip", "none"])
def test_output_errors_surface_and_nothing_hangs(tmp_path: Path, compression: str) -> None:
    import gc
    import sys

    big = tmp_path / "big"
    big.write_bytes(os.urandom(6 << 20))
    ignored: list = []
    hook, sys.unraisablehook = sys.unraisablehook, ignored.append
    try:
        with pytest.raises(ImgbuildError, match="No space left"):
            write_layer([Entry("big", "file", source=big), Entry("z", "bytes", data=b"x")], _FullDisk(1 << 20),
                        compression=compression)
        gc.collect()
    finally:
        sys.unraisablehook = hook
    assert not _pipeline_threads()  # joined, none leaked (other tests' threads may come and go)
    # the compressor was closed with the error: no finalizer flushes it later ("Exception ignored", Python 3.12+)
    assert not ignored, [str(u.exc_value) for u in ignored]


def _pipeline_threads() -> list:
    import threading

    return [t for t in threading.enumerate() if t.name.startswith("layer-")]


def test_input_errors_stop_the_pipeline(tmp_path: Path) -> None:
    with pytest.raises(ContextError, match="cannot read"):
        write_layer([Entry("a", "bytes", data=b"x" * 100_000), Entry("b", "file", source=tmp_path / "gone")],
                    io.BytesIO())
    assert not _pipeline_threads()  # joined, none leaked (other tests' threads may come and go)


def test_on_progress_counts_the_whole_uncompressed_tar(tmp_path):
    import io

    import zstandard

    from imgbuild.oci.layer import Entry, write_layer

    (tmp_path / "big").write_bytes(b"x" * (3 << 20) + b"y" * 7)
    entries = [Entry("big", "file", source=tmp_path / "big"), Entry("d", "dir", mode=0o755),
               Entry("d/note", "bytes", data=b"hello")]
    seen: list[int] = []
    out = io.BytesIO()
    write_layer(entries, out, on_progress=seen.append)
    tar = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(out.getvalue())).read()
    assert sum(seen) == len(tar) and len(seen) >= 3
