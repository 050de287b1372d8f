"""``imgbuild store gc`` through the CLI: blobs first, then the caches, per cache in text and --json."""

from __future__ import annotations

import json

import pytest

from imgbuild.cli.main import run
from imgbuild.oci.store import open_store
from imgbuild.rootfs.unpack import cached_layers
from imgbuild.home import home
from tests.support.layered_images import make_layered_image

pytestmark = pytest.mark.root



def _run(capsys, argv: list[str], code: int = 0):
    assert run(argv) == code, argv
    return capsys.readouterr()


def _used(capsys, ref: str) -> None:
    """Mount (unpacking the layers), diff (making listings), unmount."""
    _run(capsys, ["mount", "--mechanism", "overlay", ref])
    _run(capsys, ["diff", ref, ref])
    _run(capsys, ["umount", ref])


def test_store_gc_reports_each_cache(capsys):
    store = open_store(home())
    make_layered_image(store, "localhost/gc/a:1", {"etc/base": b"base"}, {"opt/a": b"a" * 3000})
    make_layered_image(store, "localhost/gc/b:1", {"etc/base": b"base"}, {"opt/b": b"b"})
    _used(capsys, "localhost/gc/a:1")
    _used(capsys, "localhost/gc/b:1")
    assert len(cached_layers(home())) == 3
    _run(capsys, ["rmi", "localhost/gc/a:1"])
    out = _run(capsys, ["store", "gc"]).out.splitlines()
    assert out[0] == "removed 0 blobs, freed 0 B"  # rmi collected the blobs already
    assert out[1] == "layers cache: removed 1, freed 3 kB" and out[2].startswith("listings cache: removed 1, ")
    assert len(cached_layers(home())) == 2
    data = json.loads(_run(capsys, ["store", "gc", "--json"]).out)
    assert data["blobs_removed"] == 0 and data["bytes_freed"] == 0 and data["cache_bytes_freed"] == 0
    assert set(data["caches"]) == {"layers", "listings", "build-steps"}
    assert data["caches"]["layers"] == {"cache": "layers", "removed": 0, "bytes": 0, "busy": 0, "note": ""}
    assert _run(capsys, ["store", "gc"]).out == "removed 0 blobs, freed 0 B\n"


def test_no_caches_leaves_them(capsys):
    make_layered_image(open_store(home()), "localhost/gc/c:1", {"etc/c": b"c"})
    _used(capsys, "localhost/gc/c:1")
    _run(capsys, ["rmi", "localhost/gc/c:1"])
    assert json.loads(_run(capsys, ["store", "gc", "--no-caches", "--json"]).out) == {
        "blobs_removed": 0, "bytes_freed": 0}
    assert len(cached_layers(home())) == 1
    assert "layers cache: removed 1, " in _run(capsys, ["store", "gc"]).out
    assert cached_layers(home()) == []
