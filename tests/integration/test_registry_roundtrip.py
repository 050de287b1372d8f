"""Push/pull round trips against a real docker-registry, checked by skopeo too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.local import EXEC
from imgbuild.oci.model import Digest
from imgbuild.oci.store import Store
from imgbuild.oci.transfer import inspect_remote, pull, push
from imgbuild.home import home
from tests.support.images import make_random_image

pytestmark = pytest.mark.registry


def _blob_digests(store: Store, ref: str) -> list[str]:
    image = store.image(ref)
    return [str(image.manifest.config.digest)] + [str(d.digest) for d in image.layers]


@pytest.mark.slow
def test_big_multilayer_round_trip(registry, tmp_path: Path):
    store = Store(tmp_path / "store")
    ref = f"{registry.host}/rt/app:v1"
    desc = make_random_image(store, ref, [(100 << 20) + 12345, 4096, 3 << 20], workdir=tmp_path)
    before = _blob_digests(store, ref)
    assert push(ref, store=store, jobs=3) == desc.digest
    store.untag(ref)
    store.gc()
    assert not any(store.has_blob(d) for d in before)
    got = pull(ref, store=store)
    assert got.digest == desc.digest
    assert _blob_digests(store, ref) == before
    assert store.verify() == []


def test_push_skips_blobs_the_registry_has_and_mounts_across_repositories(registry, tmp_path: Path):
    store = Store(tmp_path / "store")
    ref = f"{registry.host}/one/app:v1"
    desc = make_random_image(store, ref, [2 << 20, 1000], workdir=tmp_path)
    seen: list[tuple[str, str]] = []

    class Record:
        def started(self, label, total_bytes=None):
            pass

        def advanced(self, label, nbytes):
            pass

        def finished(self, label, outcome="done"):
            if "/" in label:  # a blob (push/sha256:...), not the whole push
                seen.append((label.split("/", 1)[1], outcome))

    push(ref, store=store, progress=Record())
    assert {o for _, o in seen} == {"pushed"}
    seen.clear()
    push(ref, store=store, progress=Record())
    assert {o for _, o in seen} == {"exists"}
    seen.clear()
    other = f"{registry.host}/two/app:v2"
    store.tag(other, desc)
    assert push(other, store=store, progress=Record()) == desc.digest
    assert {o for _, o in seen} == {"mounted"}


def test_inspect_remote_reads_manifest_and_config_without_storing(registry, tmp_path: Path):
    store = Store(tmp_path / "store")
    ref = f"{registry.host}/insp/app:v1"
    desc = make_random_image(store, ref, [1000], workdir=tmp_path)
    push(ref, store=store)
    info = inspect_remote(ref)
    assert info["digest"] == desc.digest
    assert info["config"]["rootfs"]["type"] == "layers"
    assert len(info["layers"]) == 1


@pytest.mark.skopeo
def test_skopeo_sees_the_pushed_image_and_copies_it_back_identically(registry, tmp_path: Path):
    store = Store(tmp_path / "store")
    ref = f"{registry.host}/sk/app:v1"
    desc = make_random_image(store, ref, [5 << 20, 777, 1 << 20], workdir=tmp_path)
    push(ref, store=store)
    raw = EXEC.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"]).stdout
    assert Digest.of(raw.encode()) == desc.digest
    layout = tmp_path / "back"
    EXEC.run(["skopeo", "copy", "--src-tls-verify=false", f"docker://{ref}", f"oci:{layout}:v1"])
    index = json.loads((layout / "index.json").read_text())
    assert index["manifests"][0]["digest"] == desc.digest
    for d in _blob_digests(store, ref):
        assert (layout / "blobs" / "sha256" / Digest(d).hex).stat().st_size == store.blob_size(d)


def test_cli_inspect_remote_stores_nothing(registry, tmp_path: Path, capsys):
    from imgbuild.cli.main import run
    from imgbuild.oci.store import open_store

    store = Store(tmp_path / "store")
    ref = f"{registry.host}/insp/cli:v1"
    desc = make_random_image(store, ref, [1000, 2000], workdir=tmp_path)
    push(ref, store=store)
    assert run(["inspect", "--remote", ref]) == 0
    out = capsys.readouterr().out
    assert desc.digest in out and "Layers:     2" in out
    assert run(["inspect", "--remote", ref, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["digest"] == desc.digest
    assert open_store(home()).tags() == []


def test_cli_push_and_pull_quiet_print_only_the_digest(registry, tmp_path: Path, capsys):
    from imgbuild.cli.main import run
    from imgbuild.oci.store import open_store

    ref = f"{registry.host}/quiet/cli:v1"
    desc = make_random_image(open_store(home()), ref, [1000, 2000], workdir=tmp_path)
    assert run(["push", ref, "-q"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == desc.digest and err == ""
    assert run(["rmi", ref]) == 0
    capsys.readouterr()
    assert run(["-q", "pull", ref]) == 0
    out, err = capsys.readouterr()
    assert desc.digest in out and err == ""
