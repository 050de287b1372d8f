"""The transfer's file manifest: merged layers, content digests, what differs from a host's marker."""

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from imgbuild.engine._manifest import MARKER, DigestCache, Manifest, diff, scan, with_digest
from imgbuild.engine._tarsend import tar_members
from imgbuild.errors import InputError


@dataclass
class L:
    path: Path
    prefix: str = ""
    exclude: tuple = ()


def _tree(root: Path) -> Path:
    (root / "d/sub").mkdir(parents=True)
    (root / "d/sub/f").write_text("hello")
    (root / "top").write_text("x" * 10)
    os.symlink("top", root / "link")
    (root / MARKER).write_text("a stale marker in the source is never sent")
    return root


def _full(local, cache=None):
    cache = cache or DigestCache()
    return Manifest({rel: with_digest(e, cache) for rel, e in local.items()})


def test_scan_merges_layers_like_an_overlay(tmp_path):
    a, b = _tree(tmp_path / "a"), tmp_path / "b"
    b.mkdir()
    (b / "d").write_text("a file hides the directory below")
    got = scan([L(a, exclude=("top",)), L(b), L(a / "d", "registry/x")])
    assert sorted(got) == ["d", "link", "registry", "registry/x", "registry/x/sub", "registry/x/sub/f"]
    assert got["d"].type == "f" and got["link"].link == "top"


def test_digest_names_content_not_inodes(tmp_path):
    a = _tree(tmp_path / "a")
    os.system(f"cp -a {a} {tmp_path / 'b'}")
    assert _full(scan(a)).digest() == _full(scan(tmp_path / "b")).digest()
    (tmp_path / "b/top").write_text("y" * 10)
    os.utime(tmp_path / "b/top", ns=(os.stat(a / "top").st_mtime_ns,) * 2)  # same size and mtime
    assert _full(scan(a)).digest() != _full(scan(tmp_path / "b")).digest()


def test_diff_against_a_host(tmp_path):
    a = _tree(tmp_path / "a")
    held = Manifest.loads(_full(scan(a)).dumps().decode().splitlines())
    assert diff(scan(a), held, DigestCache([held])) == ([], [])
    (a / "top").chmod(0o600)
    (a / "d/sub/f").unlink()
    (a / "d/sub/f").mkdir()
    (a / "new").write_text("n")
    send, remove = diff(scan(a), held, DigestCache([held]))
    assert send == ["d/sub/f", "new", "top"] and remove == ["d/sub/f"]
    assert diff(scan(a), None, DigestCache()) == (sorted(scan(a)), [])


def test_unchanged_stat_keys_are_not_hashed(tmp_path, monkeypatch):
    a = _tree(tmp_path / "a")
    held = _full(scan(a))
    monkeypatch.setattr("imgbuild.engine._manifest.file_digest", lambda p: pytest.fail(f"hashed {p}"))
    assert diff(scan(a), held, DigestCache([held])) == ([], [])


def test_manifest_round_trip_and_garbage():
    assert Manifest.loads(["not json"]) is None and Manifest.loads([]) is None


def test_tar_members_hash_on_the_way_and_end_with_the_tail(tmp_path):
    import io
    import tarfile

    a = _tree(tmp_path / "a")
    local = scan(a)
    cache = DigestCache()
    data = b"".join(tar_members(local, sorted(local), cache, lambda: [(MARKER, b"m")]))
    names = tarfile.open(fileobj=io.BytesIO(data)).getnames()
    assert names == ["d", "d/sub", "d/sub/f", "link", "top", MARKER]
    assert cache.known(local["top"].key) == with_digest(local["top"], DigestCache()).hash


def test_a_file_that_changes_while_sent_is_an_error(tmp_path):
    a = _tree(tmp_path / "a")
    local = scan(a)
    (a / "top").write_text("longer than before")
    with pytest.raises(InputError, match="changed size"):
        b"".join(tar_members(local, ["top"], DigestCache(), list))


@dataclass
class ModedLayer:
    path: Path
    prefix: str = ""
    exclude: tuple = ()
    modes: tuple = ()


def test_a_layers_modes_put_setuid_bits_back_only_on_its_matching_files(tmp_path):
    a, b = _tree(tmp_path / "a"), tmp_path / "b"
    (a / "top").chmod(0o755)
    b.mkdir()
    (b / "d").mkdir()
    (b / "d" / "sub").mkdir()
    (b / "d" / "sub" / "f").write_text("replaced by a later layer")
    modes = (("top", 0o4755), ("d/sub/f", 0o2644), ("link", 0o4777), ("absent", 0o4755))
    out = scan([ModedLayer(a, "p", modes=modes), ModedLayer(b, "p")])
    assert out["p/top"].mode == 0o4755  # restored
    assert out["p/d/sub/f"].mode & 0o6000 == 0  # a later layer's file is not touched
    assert out["p/link"].type == "l" and "p/absent" not in out
    assert scan([ModedLayer(a, modes=(("top", 0o4700),))])["top"].mode == 0o755  # other permission bits: not ours
