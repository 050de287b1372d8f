"""Interop of the store and archives with the real skopeo and a real registry."""

from __future__ import annotations

import hashlib
import json
import subprocess

import pytest

from imgbuild import api
from imgbuild.oci.store import Store, open_store
from imgbuild.home import home
from tests.support.oci_images import make_image

pytestmark = pytest.mark.skopeo


def skopeo(*args: str) -> str:
    res = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, f"skopeo {' '.join(args)} failed: {res.stderr}"
    return res.stdout


@pytest.fixture
def layout(tmp_path):
    """A source OCI layout (written by us) holding one two-layer image."""
    st = Store(tmp_path / "layout")
    make_image(st, "localhost/demo/app:v1", {"etc/a.conf": b"a=1\n"}, {"scripts/init.sh": b"echo hi\n"},
               labels={"sealos.io.type": "rootfs", "init": "init.sh"}, env=("registryPort=5000",), cmd=("init.sh",))
    return st


def _check_loaded(ref: str) -> None:
    d = api.inspect(ref, open_store(home()))
    assert d.type == "rootfs" and d.labels["init"] == "init.sh"
    assert d.env == ["registryPort=5000"] and d.cmd == ["init.sh"] and len(d.layers) == 2
    assert open_store(home()).verify() == []


def test_skopeo_written_layout_loads(layout, tmp_path):
    out = tmp_path / "by-skopeo"
    skopeo("copy", f"oci:{layout.root}:localhost/demo/app:v1", f"oci:{out}:localhost/demo/app:v1")
    loaded = api.load(out, store=open_store(home()))
    assert loaded[0].names == ("localhost/demo/app:v1",)
    _check_loaded("localhost/demo/app:v1")


def test_skopeo_oci_archive_loads(layout, tmp_path):
    out = tmp_path / "skopeo-oci.tar"
    skopeo("copy", f"oci:{layout.root}:localhost/demo/app:v1", f"oci-archive:{out}:localhost/demo/app:v1")
    api.load(out, store=open_store(home()))
    assert api.inspect("localhost/demo/app:v1", open_store(home())).digest == str(layout.resolve("localhost/demo/app:v1").digest)
    _check_loaded("localhost/demo/app:v1")


def test_skopeo_docker_archive_loads(layout, tmp_path):
    out = tmp_path / "skopeo-docker.tar"
    skopeo("copy", f"oci:{layout.root}:localhost/demo/app:v1", f"docker-archive:{out}:localhost/demo/app:v1")
    api.load(out, store=open_store(home()))
    _check_loaded("localhost/demo/app:v1")
    # skopeo keeps the config bytes, so the IMAGE ID survives the docker-archive trip
    assert api.inspect("localhost/demo/app:v1", open_store(home())).image_id == str(layout.image("localhost/demo/app:v1").id)


def test_store_read_by_skopeo_and_registry_roundtrip(layout, registry, tmp_path):
    api.load(layout.root, store=open_store(home()))
    store = open_store(home())
    ref = "docker.io/library/app:v1"
    api.tag("localhost/demo/app:v1", ref, open_store(home()))
    info = json.loads(skopeo("inspect", f"oci:{store.root}:{ref}"))
    digest = str(store.resolve(ref).digest)
    assert info["Digest"] == digest and info["Labels"]["sealos.io.type"] == "rootfs"
    remote = f"docker://{registry.host}/demo/app:v1"
    skopeo("copy", "--dest-tls-verify=false", f"oci:{store.root}:{ref}", remote)
    raw = skopeo("inspect", "--tls-verify=false", "--raw", remote)
    assert "sha256:" + hashlib.sha256(raw.encode()).hexdigest() == digest
    back = tmp_path / "back"
    skopeo("copy", "--src-tls-verify=false", remote, f"oci:{back}:again")
    assert json.loads(skopeo("inspect", f"oci:{back}:again"))["Digest"] == digest


def test_our_docker_archive_is_read_by_skopeo(layout, tmp_path):
    api.load(layout.root, store=open_store(home()))
    out = tmp_path / "ours-docker.tar"
    api.save(["localhost/demo/app:v1"], out, "docker-archive", store=open_store(home()))
    info = json.loads(skopeo("inspect", f"docker-archive:{out}"))
    cfg = layout.image("localhost/demo/app:v1").config
    assert info["Labels"]["init"] == "init.sh" and len(info["Layers"]) == 2
    # skopeo reports the layer blobs, which in a docker-archive are the uncompressed tars: the diffIDs
    assert info["Layers"] == [str(d) for d in cfg.diff_ids]
    copied = tmp_path / "from-docker-archive"
    skopeo("copy", f"docker-archive:{out}", f"oci:{copied}:x")
    cfg_raw = json.loads(skopeo("inspect", "--config", f"oci:{copied}:x"))
    assert cfg_raw["rootfs"]["diff_ids"] == [str(d) for d in cfg.diff_ids]


def test_our_oci_archive_is_read_by_skopeo(layout, tmp_path):
    api.load(layout.root, store=open_store(home()))
    out = tmp_path / "ours-oci.tar"
    api.save(["localhost/demo/app:v1"], out, store=open_store(home()))
    info = json.loads(skopeo("inspect", f"oci-archive:{out}:localhost/demo/app:v1"))
    assert info["Digest"] == str(layout.resolve("localhost/demo/app:v1").digest)


def test_zstd_image_to_docker_archive(tmp_path):
    st = open_store(home())
    make_image(st, "zs:1", {"big": bytes(range(256)) * 400}, compression="zstd")
    out = tmp_path / "zs.tar"
    api.save(["zs:1"], out, "docker-archive", store=open_store(home()))
    info = json.loads(skopeo("inspect", f"docker-archive:{out}"))
    assert info["Layers"] == [str(d) for d in st.image("zs:1").config.diff_ids]
