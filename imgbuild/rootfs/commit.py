"""Commit a writable mount as a new image: the mount's changes become one more layer.

For an overlay mount the changes are the upper directory: files, dirs and
links as they are (owners and modes kept), overlayfs whiteouts (character
device 0/0, or ``.wh.`` files that fuse-overlayfs writes without root) turned
back into OCI ``.wh.<name>`` entries, and opaque directories
(``trusted.overlay.opaque=y`` / ``user.fuseoverlayfs.opaque``) into
``.wh..wh..opq``. For an extracted copy the changes are found by comparing the
copy with the image's tree (:mod:`imgbuild.rootfs.diff`). The layer is written by the
deterministic layer writer into the store, the config gains its diffID and a
history entry, and the new manifest is stored and tagged.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from imgbuild.errors import InputError
from imgbuild.rootfs.records import MountRecord
from imgbuild.oci.layer import Entry, opaque_entry, tree_key, whiteout_entry, write_layer
from imgbuild.oci.model import Descriptor, MediaType

__all__ = ["commit", "upper_entries", "copy_entries"]

_OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.fuseoverlayfs.opaque")


def _opaque(path: str) -> bool:
    for key in _OPAQUE_XATTRS:
        try:
            if os.getxattr(path, key, follow_symlinks=False) == b"y":
                return True
        except OSError:
            continue
    return False


def _entry(rel: str, full: str, st: os.stat_result, seen: dict[tuple[int, int], str]) -> Entry | None:
    """The layer entry of one upper-dir object (None for one that needs no entry)."""
    common = dict(mode=stat.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid)
    if stat.S_ISDIR(st.st_mode):
        return Entry(rel, "dir", **common)
    if stat.S_ISLNK(st.st_mode):
        return Entry(rel, "symlink", linkname=os.readlink(full), uid=st.st_uid, gid=st.st_gid, mode=0o777)
    if stat.S_ISREG(st.st_mode):
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in seen:
            return Entry(rel, "hardlink", linkname=seen[key], **common)
        seen[key] = rel
        return Entry(rel, "file", source=Path(full), **common)
    kinds = {stat.S_IFCHR: "chardev", stat.S_IFBLK: "blockdev", stat.S_IFIFO: "fifo"}
    kind = kinds.get(stat.S_IFMT(st.st_mode))
    if kind is None:
        return None  # sockets do not go into layers
    return Entry(rel, kind, devmajor=os.major(st.st_rdev), devminor=os.minor(st.st_rdev), **common)


def upper_entries(upper: Path) -> list[Entry]:
    """The layer entries of an overlay upper directory, whiteouts converted to OCI form."""
    out: list[Entry] = []
    found: list[tuple[str, str, os.stat_result]] = []
    stack = [("", str(upper))]
    while stack:
        rel_dir, full_dir = stack.pop()
        for e in os.scandir(full_dir):
            rel = f"{rel_dir}/{e.name}" if rel_dir else e.name
            st = e.stat(follow_symlinks=False)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                out.append(whiteout_entry(rel))
            elif e.name == ".wh..wh..opq":
                out.append(opaque_entry(rel_dir))
            elif e.name.startswith(".wh."):
                out.append(whiteout_entry(f"{rel_dir}/{e.name[4:]}".lstrip("/")))
            else:
                found.append((rel, e.path, st))
                if stat.S_ISDIR(st.st_mode):
                    if _opaque(e.path):
                        out.append(opaque_entry(rel))
                    stack.append((rel, e.path))
    return out + _entries_in_order(found)


def _entries_in_order(found: list[tuple[str, str, os.stat_result]]) -> list[Entry]:
    """Entries in tree order, so the first path of a hardlinked inode is the file and later ones link to it."""
    seen: dict[tuple[int, int], str] = {}
    entries = (_entry(rel, full, st, seen) for rel, full, st in sorted(found, key=lambda x: tree_key(x[0])))
    return [e for e in entries if e is not None]


def copy_entries(image, copy: Path) -> list[Entry]:
    """The layer entries that turn ``image`` into the tree at ``copy`` (changed paths plus whiteouts)."""
    from imgbuild.rootfs.diff import collapse, compare_trees, tree_from_dir
    from imgbuild.rootfs.difftree import image_tree

    changes = compare_trees(image_tree(image), tree_from_dir(copy))
    out = [whiteout_entry(top.path) for top, _, _ in collapse(changes.removed)]
    found = [(i.path, str(copy / i.path), os.lstat(copy / i.path))
             for i in [*changes.added, *(c.new for c in changes.changed)]]
    return out + _entries_in_order(found)


def commit(rec: MountRecord, ref: str, *, store, compression: str | None = None,
           message: str | None = None) -> Descriptor:
    """Write the changes of the writable mount ``rec`` as a layer on its image in ``store``, tag the result ``ref``."""
    if not rec.rw:
        raise InputError("a read-only mount has no changes to commit; mount with --rw", rec.path)
    image = store.image(rec.digest)
    if rec.mechanism == "copy":
        entries = copy_entries(image, Path(rec.path))
    else:
        entries = upper_entries(Path(rec.upper or ""))
    docker = image.manifest.media_type == MediaType.DOCKER_MANIFEST
    if docker and compression not in (None, "gzip"):
        raise InputError("a Docker schema 2 image takes gzip layers only", rec.ref)
    with store.blob_writer() as out:
        res = write_layer(entries, out, compression=compression or ("gzip" if docker else "zstd"))
    layer = res.descriptor()
    if docker:  # keep a Docker schema 2 manifest's layer media types consistent
        layer = Descriptor(MediaType.DOCKER_LAYER_GZIP, layer.digest, layer.size)
    history = {"created_by": message or f"imgbuild commit {rec.ref}", "comment": "imgbuild commit"}
    config = image.config.with_layer(res.diff_id, history)
    manifest = image.manifest.with_layers([*image.layers, layer], config=store.put_config(config))
    desc = store.put_manifest(manifest)
    store.tag(ref, desc)
    return desc
