"""Unit tests of the diff algorithm: layer merging with whiteouts, directory trees, tree and config comparison."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from imgbuild.rootfs.diff import (
    FileInfo, MapDiff, collapse, compare_configs, compare_trees, listing_from_json, listing_to_json, merge_layers,
    tar_members, tree_from_dir,
)
from imgbuild.errors import UnsafePathError


def make_tar(entries: dict[str, object]) -> tarfile.TarFile:
    """A streamed tar of ``entries``: bytes -> file, None -> dir, ('sym', t) / ('hard', t) -> links."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, value in entries.items():
            ti = tarfile.TarInfo(name)
            if value is None:
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(ti)
            elif isinstance(value, tuple):
                ti.type = tarfile.SYMTYPE if value[0] == "sym" else tarfile.LNKTYPE
                ti.linkname = value[1]
                tar.addfile(ti)
            else:
                ti.size, ti.mode = len(value), 0o644
                tar.addfile(ti, io.BytesIO(value))
    buf.seek(0)
    return tarfile.open(fileobj=buf, mode="r|")


def merged(*layers: dict[str, object]) -> dict[str, FileInfo]:
    return merge_layers(tar_members(make_tar(layer)) for layer in layers)


def test_files_dirs_links_and_implicit_parents():
    tree = merged({"./etc/": None, "./etc/a.conf": b"a", "usr/bin/tool": b"x", "etc/link": ("sym", "a.conf"),
                   "etc/hard": ("hard", "etc/a.conf")})
    assert list(tree) == ["etc", "etc/a.conf", "etc/hard", "etc/link", "usr", "usr/bin", "usr/bin/tool"]
    assert tree["usr/bin"].kind == "dir" and tree["usr/bin"].mode == 0o755
    assert tree["etc/link"].linkname == "a.conf"
    assert tree["etc/hard"].kind == "file" and tree["etc/hard"].sha256 == tree["etc/a.conf"].sha256
    assert tree["etc/a.conf"].size == 1


def test_whiteout_removes_file_and_subtree():
    tree = merged({"a/x": b"1", "a/y": b"2", "b/c/d": b"3"}, {"a/.wh.x": b"", ".wh.b": b""})
    assert list(tree) == ["a", "a/y"]


def test_opaque_dir_hides_lower_but_keeps_same_layer_entries():
    tree = merged({"d/old": b"1", "d/sub/f": b"2"}, {"d/.wh..wh..opq": b"", "d/new": b"3"})
    assert list(tree) == ["d", "d/new"]


def test_whiteout_applies_to_lower_layers_only_even_when_listed_after():
    tree = merged({"f": b"old"}, {"f": b"new", ".wh.f": b""})
    assert tree["f"].sha256 is not None and tree["f"].size == 3


def test_file_replacing_dir_drops_children_and_readding():
    tree = merged({"x/y": b"1"}, {"x": b"now a file"})
    assert "x/y" not in tree and tree["x"].kind == "file"
    tree = merged({"x/y": b"1"}, {"x": b"file"}, {"x/z": b"2"})
    assert list(tree) == ["x", "x/z"] and tree["x"].kind == "dir"


def test_dotdot_member_is_refused():
    with pytest.raises(UnsafePathError):
        merged({"../evil": b"x"})


def test_listing_roundtrip():
    members = tar_members(make_tar({"a": b"1", "d": None, "l": ("sym", "a"), ".wh.q": b""}))
    assert listing_from_json(listing_to_json(members)) == members


def test_tree_from_dir_matches_layer_tree(tmp_path: Path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "a.conf").write_bytes(b"a")
    os.symlink("a.conf", tmp_path / "etc" / "link")
    os.chmod(tmp_path / "etc", 0o755)
    os.chmod(tmp_path / "etc" / "a.conf", 0o644)
    disk = tree_from_dir(tmp_path)
    layer = merged({"etc/": None, "etc/a.conf": b"a", "etc/link": ("sym", "a.conf")})
    diff = compare_trees(layer, disk, owners=False)
    assert not diff, diff


def test_compare_trees_reports_fields():
    a = merged({"keep": b"same", "gone": b"x", "edit": b"v1", "d/f": b"1"})
    b = merged({"keep": b"same", "new": b"y", "edit": b"v22", "d/f": b"1"})
    d = compare_trees(a, b)
    assert [i.path for i in d.added] == ["new"]
    assert [i.path for i in d.removed] == ["gone"]
    assert [(c.path, c.fields) for c in d.changed] == [("edit", ("size", "sha256"))]
    js = d.to_dict()
    assert js["changed"][0]["changes"]["size"] == {"old": 2, "new": 3}


def test_mode_change_of_directory_is_a_change():
    a = {"d": FileInfo("d", "dir", 0o755, size=4096)}
    b = {"d": FileInfo("d", "dir", 0o700, size=8192)}
    assert compare_trees(a, b).changed[0].fields == ("mode",)
    assert compare_trees(a, b).to_dict()["changed"][0]["changes"]["mode"] == {"old": "0755", "new": "0700"}


def test_collapse_folds_children_of_added_dir():
    infos = [FileInfo("r", "dir"), FileInfo("r/a", "file", size=5), FileInfo("r/b", "dir"),
             FileInfo("r/b/c", "file", size=7), FileInfo("s", "file", size=1)]
    out = collapse(infos)
    assert [(i.path, n, s) for i, n, s in out] == [("r", 3, 12), ("s", 0, 0)]


def test_compare_configs():
    a = {"architecture": "amd64", "os": "linux", "created": "1",
         "config": {"Labels": {"v": "1", "gone": "x"}, "Env": ["A=1", "B=2"], "Cmd": ["a"], "WorkingDir": "/"},
         "rootfs": {"diff_ids": ["sha256:aa"]}, "history": [{}]}
    b = {"architecture": "amd64", "os": "linux", "created": "2",
         "config": {"Labels": {"v": "2", "new": "y"}, "Env": ["A=1", "B=3", "C=4"], "Cmd": ["a"], "User": "me"},
         "rootfs": {"diff_ids": ["sha256:bb"]}, "history": [{}, {}]}
    d = compare_configs(a, b)
    assert d.labels == MapDiff({"new": "y"}, {"gone": "x"}, {"v": ("1", "2")})
    assert d.env == MapDiff({"C": "4"}, {}, {"B": ("2", "3")})
    assert d.cmd is None and d.entrypoint is None
    assert d.other == MapDiff({"config.User": "me"}, {"config.WorkingDir": "/"}, {"created": ("1", "2")})
    assert not compare_configs(a, a)
