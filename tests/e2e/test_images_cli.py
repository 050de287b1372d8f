"""The image commands end to end: images, inspect, tag, rmi, save, load, store verify/gc."""

from __future__ import annotations

import json

import pytest

from imgbuild.cli.images import relative_time
from imgbuild.cli.main import run
from imgbuild.oci.store import open_store
from imgbuild.home import home
from tests.support.oci_images import make_image


@pytest.fixture
def store():
    st = open_store(home())
    make_image(st, "localhost:5000/demo/app:v1", {"etc/a": b"a"}, {"scripts/init.sh": b"echo\n"},
               labels={"sealos.io.type": "rootfs", "version": "v1"}, cmd=("bash", "init.sh"), role="rootfs",
               compression="zstd")
    make_image(st, "tool:2", {"bin/t": b"t"})
    return st


def _out(capsys, argv, code=0):
    assert run(argv) == code, capsys.readouterr().err
    return capsys.readouterr()


def test_images_table(store, capsys):
    out = _out(capsys, ["images"]).out.splitlines()
    assert out[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE", "TYPE"]
    app = next(line for line in out if line.startswith("localhost:5000/demo/app"))
    image_id = store.image("localhost:5000/demo/app:v1").id.hex[:12]
    assert "v1" in app and image_id in app and app.rstrip().endswith("rootfs")
    tool = next(line for line in out if line.startswith("tool "))
    assert tool.rstrip().endswith("-")


def test_images_json_quiet_digests(store, capsys):
    rows = json.loads(_out(capsys, ["images", "--json"]).out)
    assert {r["reference"] for r in rows} == {"localhost:5000/demo/app:v1", "docker.io/library/tool:2"}
    assert json.loads(_out(capsys, ["--json", "images"]).out) == rows
    ids = _out(capsys, ["images", "-q"]).out.split()
    assert sorted(ids) == sorted(r["image_id"][7:19] for r in rows)
    digests = _out(capsys, ["images", "--digests"]).out
    assert "DIGEST" in digests and str(store.resolve("tool:2").digest) in digests


def test_images_empty_store(capsys):
    assert _out(capsys, ["images"]).out.split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE", "TYPE"]


def test_inspect_human_and_json(store, capsys):
    out = _out(capsys, ["inspect", "localhost:5000/demo/app:v1"]).out
    for text in ("Reference:  localhost:5000/demo/app:v1", "Type:       rootfs", "sealos.io.type=rootfs",
                 '["bash", "init.sh"]', "Layers:     2", "tar+zstd", "role=rootfs", "Platform:"):
        assert text in out, text
    data = json.loads(_out(capsys, ["inspect", "--json", "localhost:5000/demo/app:v1"]).out)
    img = store.image("localhost:5000/demo/app:v1")
    assert data["manifest"] == json.loads(img.manifest.raw) and data["config"] == json.loads(img.config.raw)
    assert data["layers"][0]["role"] == "rootfs"
    by_id = json.loads(_out(capsys, ["inspect", "--json", img.id.hex[:8]]).out)
    assert by_id["digest"] == data["digest"]


def test_unknown_image_is_exit_2(capsys):
    err = _out(capsys, ["inspect", "nope:1"], 2).err
    assert err == "error: no such image in the local store (docker.io/library/nope:1)\n"


def test_tag_and_rmi_semantics(store, capsys):
    _out(capsys, ["tag", "tool:2", "localhost:5000/x/tool:3"])
    assert store.resolve("localhost:5000/x/tool:3").digest == store.resolve("tool:2").digest
    image_id = store.image("tool:2").id.hex[:12]
    err = _out(capsys, ["rmi", image_id], 2).err  # two tags: by ID needs -f
    assert "tagged 2 times" in err and "-f" in err
    out = _out(capsys, ["rmi", "tool:2"]).out  # by tag: only that name goes, the image stays
    assert out == "Untagged: docker.io/library/tool:2\n"
    assert store.resolve("localhost:5000/x/tool:3")
    _out(capsys, ["tag", "localhost:5000/x/tool:3", "tool:2"])
    out = _out(capsys, ["rmi", "-f", image_id]).out
    assert "Untagged: localhost:5000/x/tool:3" in out and "Deleted: sha256:" in out
    rows = json.loads(_out(capsys, ["images", "--json"]).out)
    assert [r["reference"] for r in rows] == ["localhost:5000/demo/app:v1"]
    assert store.verify() == []
    blobs = len(list((store.root / "blobs" / "sha256").iterdir()))
    assert blobs == 1 + len(store.image("localhost:5000/demo/app:v1").manifest.blobs())


def test_rmi_json_and_missing(store, capsys):
    data = json.loads(_out(capsys, ["rmi", "--json", "tool:2"]).out)
    assert data["untagged"] == ["docker.io/library/tool:2"] and data["blobs_removed"] >= 3
    _out(capsys, ["rmi", "tool:2"], 2)


@pytest.mark.parametrize("fmt", ["oci-archive", "docker-archive"])
def test_save_and_load(store, capsys, tmp_path, monkeypatch, fmt):
    out = tmp_path / f"{fmt}.tar"
    _out(capsys, ["save", "localhost:5000/demo/app:v1", "tool:2", "-o", str(out), "--format", fmt])
    image_ids = {r["reference"]: r["image_id"] for r in json.loads(_out(capsys, ["images", "--json"]).out)}
    monkeypatch.setenv("IMGBUILD_HOME", str(tmp_path / "other-home"))
    loaded = _out(capsys, ["load", "-i", str(out)]).out
    assert "Loaded image: localhost:5000/demo/app:v1" in loaded and "Loaded image: docker.io/library/tool:2" in loaded
    rows = json.loads(_out(capsys, ["images", "--json"]).out)
    assert {r["reference"]: r["image_id"] for r in rows} == image_ids
    assert _out(capsys, ["store", "verify"]).err == "store is consistent\n"


def test_save_errors(store, capsys, tmp_path):
    _out(capsys, ["save", "tool:2", "-o", str(tmp_path / "x.tar"), "--format", "zip"], 2)
    _out(capsys, ["save", "nope:1", "-o", str(tmp_path / "x.tar")], 2)
    assert not (tmp_path / "x.tar").exists()
    _out(capsys, ["load", "-i", str(tmp_path / "missing.tar")], 2)


def test_store_verify_repair_and_gc(store, capsys):
    layer = store.image("tool:2").layers[0]
    store.blob_path(layer.digest).write_bytes(b"bit rot")
    res = _out(capsys, ["store", "verify"], 1)
    assert f"{layer.digest}: corrupt" in res.out
    data = json.loads(_out(capsys, ["store", "verify", "--json", "--repair"], 1).out)
    assert data["ok"] is False and any("removed" in p for p in data["problems"])
    assert not store.has_blob(layer.digest)
    _out(capsys, ["rmi", "tool:2"])
    _out(capsys, ["store", "verify"])
    orphan = store.write_blob(b"orphan")
    store.tag("again:1", store.resolve("localhost:5000/demo/app:v1"))  # tagging ends this process's import
    out = _out(capsys, ["store", "gc", "--no-caches", "--json"]).out
    assert json.loads(out) == {"blobs_removed": 1, "bytes_freed": 6}
    assert not store.has_blob(orphan)
    assert _out(capsys, ["store", "gc"]).out == "removed 0 blobs, freed 0 B\n"


def test_help_has_examples(capsys):
    for cmd in (["images"], ["inspect"], ["tag"], ["rmi"], ["save"], ["load"], ["store", "verify"], ["store", "gc"]):
        assert "Example:" in _out(capsys, [*cmd, "--help"]).out, cmd


def test_relative_time():
    from datetime import datetime, timezone

    now = datetime(2024, 1, 10, tzinfo=timezone.utc)
    assert relative_time("2024-01-07T00:00:00Z", now) == "3 days ago"
    assert relative_time("2024-01-09T23:00:00Z", now) == "1 hour ago"
    assert relative_time(None, now) == "N/A"
    assert relative_time("1970-01-01T00:00:00Z", now) == "1970-01-01"
