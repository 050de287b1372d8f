"""fsutil.remove_tree (any depth, no symlink followed, read-only dirs) and private_dir (0700 whatever the umask)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from imgbuild.fsutil import private_dir, remove_tree
from tests.support.hostile import nest_dirs


def test_remove_tree_of_3000_nested_directories(tmp_path: Path) -> None:
    tree = tmp_path / "deep"
    tree.mkdir()
    nest_dirs(tree, 3000, leaf=b"x" * 10)  # deeper than the recursion limit and than PATH_MAX
    assert remove_tree(tree) == 10
    assert list(tmp_path.iterdir()) == []


def test_remove_tree_never_follows_symlinks_and_counts_hard_links_once(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_bytes(b"k" * 7)
    tree = tmp_path / "t"
    (tree / "a/b").mkdir(parents=True)
    (tree / "a/f").write_bytes(b"f" * 100)
    os.link(tree / "a/f", tree / "a/b/f2")
    (tree / "a/link").symlink_to(outside)
    (tree / "a/b/dirlink").symlink_to(outside, target_is_directory=True)
    os.mkfifo(tree / "fifo")
    assert remove_tree(tree) == 100
    assert not tree.exists() and (outside / "keep").read_bytes() == b"k" * 7


def test_remove_tree_of_read_only_directories_and_missing_paths(tmp_path: Path) -> None:
    tree = tmp_path / "ro"
    (tree / "x/y").mkdir(parents=True)
    (tree / "x/y/z").write_bytes(b"z")
    for p in (tree / "x/y", tree / "x", tree):
        p.chmod(0o500)
    (tmp_path / "file").write_bytes(b"12345")
    assert remove_tree(tree) == 1 and not tree.exists()
    assert remove_tree(tmp_path / "file") == 5 and remove_tree(tmp_path / "nothing") == 0


def test_private_dir_is_0700_whatever_existed(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        made = private_dir(tmp_path / "a" / "b")
    finally:
        os.umask(old)
    assert stat.S_IMODE(made.stat().st_mode) == 0o700
    (tmp_path / "open").mkdir(mode=0o755)
    assert stat.S_IMODE(private_dir(tmp_path / "open").stat().st_mode) == 0o700
