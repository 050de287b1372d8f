"""``api.gc`` prunes the caches: unpacked layers, listings and build-step entries, never what is in use.

Real overlay mounts of real images (we are root), a real second process holding a layer's
unpack lock, and a real native build whose cache entries outlive their blobs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from imgbuild import api
from imgbuild.builder.request import BuildRequest
from imgbuild.rootfs.difftree import image_tree
from imgbuild.home import home
from imgbuild.rootfs.records import MountRecord, new_mount_id, write_record
from imgbuild.oci.store import open_store
from imgbuild.rootfs.unpack import cached_layers, layer_cache, unpack_image
from tests.support.layered_images import make_layered_image
from tests.support.local import build, mount

pytestmark = pytest.mark.root

EXAMPLES = Path(__file__).resolve().parents[2] / "kubefiles"
BASE = {"etc/base.conf": b"shared base\n", "usr/bin/tool": b"\x7fELF" + b"t" * 4096}



@pytest.fixture
def two_images() -> tuple[list[str], list[str]]:
    """Images a and b sharing a base layer; the diffID hexes of each."""
    store = open_store(home())
    for name, top in (("a", {"opt/a": b"only a" * 1000}), ("b", {"opt/b": b"only b"})):
        make_layered_image(store, f"localhost/prune/{name}:1", BASE, top)
    return tuple([d.hex for d in store.image(f"localhost/prune/{n}:1").config.diff_ids] for n in "ab")


def _cache(result: api.GcResult, name: str):
    return {p.cache: p for p in result.caches}[name]


def _hexes() -> set[str]:
    return {d.hex for d in cached_layers(home())}


def test_gc_frees_a_removed_images_layers_and_listings_but_keeps_shared_ones(two_images):
    a, b = two_images
    store = open_store(home())
    for ref in ("localhost/prune/a:1", "localhost/prune/b:1"):
        mount(ref, mechanism="overlay").umount()
        image_tree(store.image(ref))  # makes the listings
    assert _hexes() == {*a, *b} and a[0] == b[0]
    api.rmi(["localhost/prune/a:1"], store=open_store(home()))
    assert _hexes() == {*a, *b}, "rmi alone leaves the caches"
    result = api.gc(store=open_store(home()))
    assert _hexes() == set(b)
    layers = _cache(result, "layers")
    assert layers.removed == 1 and layers.bytes == 6000 and layers.busy == 0 and not layers.note
    listings = sorted(p.stem for p in (home().cache / "listings").glob("*.json"))
    assert listings == sorted(b) and _cache(result, "listings").removed == 1
    assert not [p for p in layer_cache(home()).iterdir() if p.name.startswith((".gc-", ".tmp-"))]
    mount("localhost/prune/b:1", mechanism="overlay").umount()  # what is left still mounts
    again = api.gc(store=open_store(home()))
    assert all(p.removed == 0 for p in again.caches) and again.cache_bytes_freed == 0


def test_a_layer_under_a_live_mount_of_a_removed_image_survives_until_umount(two_images):
    a, b = two_images
    m = mount("localhost/prune/a:1", mechanism="overlay")
    api.rmi(["localhost/prune/a:1"], store=open_store(home()))
    result = api.gc(store=open_store(home()))
    assert _hexes() == set(a) and _cache(result, "layers").removed == 0
    assert (m.path / "opt/a").read_bytes() == b"only a" * 1000
    m.umount()
    assert _cache(api.gc(store=open_store(home())), "layers").removed == 1 and _hexes() == {a[0]} == {b[0]}


def test_a_mount_record_without_its_layers_keeps_every_layer(two_images):
    a, b = two_images
    digest = str(open_store(home()).resolve("localhost/prune/a:1").digest)
    unpack_image(open_store(home()).image("localhost/prune/a:1"))
    api.rmi(["localhost/prune/a:1"], store=open_store(home()))
    rec = MountRecord(id=new_mount_id(), ref="localhost/prune/a:1", digest=digest, path="/nonexistent/merged",
                      mechanism="overlay", pid=os.getpid())  # pending, creator alive: live
    write_record(home().mounts, rec)
    result = api.gc(store=open_store(home()))
    assert _hexes() == set(a) and "does not record its layers" in _cache(result, "layers").note
    (home().mounts / f"{rec.id}.json").unlink()
    assert _cache(api.gc(store=open_store(home())), "layers").removed == 1 and _hexes() == {b[0]}


def _hold_lock(path: Path) -> subprocess.Popen:
    """Another process holding the flock on ``path`` until its stdin closes."""
    code = ("import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); sys.stdin.read()")
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_gc_leaves_a_layer_alone_while_another_process_unpacks_it(two_images):
    a, b = two_images
    unpack_image(open_store(home()).image("localhost/prune/a:1"))
    api.rmi(["localhost/prune/a:1"], store=open_store(home()))
    root = layer_cache(home())
    half = root / f".tmp-{a[1]}-0badcafe"
    (half / "opt").mkdir(parents=True)
    (half / "opt/partial").write_bytes(b"half written")
    holder = _hold_lock(root / ".locks" / f"{a[1]}.lock")
    try:
        result = api.gc(store=open_store(home()))
        assert _cache(result, "layers").busy == 1 and _cache(result, "layers").removed == 0
        assert _hexes() == set(a) and (half / "opt/partial").read_bytes() == b"half written"
    finally:
        holder.stdin.close()
        holder.wait(10)
    result = api.gc(store=open_store(home()))
    assert _cache(result, "layers").removed == 2 and not half.exists() and _hexes() == {b[0]}


def test_build_cache_entries_of_collected_blobs_go_and_a_rebuild_still_works():
    first = build(BuildRequest(context=EXAMPLES / "pause-demo", tags=("localhost:5000/demo/pause:gc",)))
    steps = home().cache / "build-steps"
    entries = sorted(steps.rglob("*.json"))
    assert entries
    kept = api.gc(store=open_store(home()))
    assert _cache(kept, "build-steps").removed == 0 and sorted(steps.rglob("*.json")) == entries
    api.rmi(["localhost:5000/demo/pause:gc"], store=open_store(home()))
    result = api.gc(store=open_store(home()))
    assert _cache(result, "build-steps").removed == len(entries) and not list(steps.rglob("*.json"))
    second = build(BuildRequest(context=EXAMPLES / "pause-demo"))
    assert second.digest == first.digest and second.results[0].cached_layers == 0
    third = build(BuildRequest(context=EXAMPLES / "pause-demo"))
    assert third.results[0].cached_layers >= 1


def test_a_store_other_than_the_home_store_prunes_no_caches(two_images, tmp_path: Path):
    from imgbuild.oci.store import Store

    unpack_image(open_store(home()).image("localhost/prune/a:1"))
    result = api.gc(store=Store(tmp_path / "other"))
    assert result.caches == () and _hexes() == set(two_images[0])
